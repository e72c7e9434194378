//! Commune autonomy (Circular 39, issue 16; docs/autonomy.md), the way a province uses it: a
//! commune turns acceptance on, province content waits for it ("Chờ xã tiếp nhận") and is not in
//! its devices' manifests until accepted; a declined item never reaches them; a re-slotted one
//! plays at the chosen time only there; other communes are unaffected; emergency content never
//! waits; nobody answering applies the commune's policy; a priority clash is ordered; another
//! commune's operator cannot answer; every answer is audited.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::common::{self, TestApp, json as body};
use crate::console_support::{TwoCommunes, scoped_user, two_communes};
use crate::dispatch_support::{device, eventually, media, open_manifest};

/// The items of a device's stored manifest: schedule id → start times.
async fn items(app: &TestApp, id: &str) -> BTreeMap<String, Vec<DateTime<Utc>>> {
    let body: Option<String> = sqlx::query_scalar("SELECT body FROM manifests WHERE device_id = $1")
        .bind(id.to_string())
        .fetch_optional(&app.state().store.pool)
        .await
        .unwrap();
    let mut out: BTreeMap<String, Vec<DateTime<Utc>>> = BTreeMap::new();
    if let Some(b) = body {
        for i in open_manifest(app, id, b.as_bytes()).items {
            out.entry(i.schedule_id).or_default().push(i.starts_at);
        }
    }
    out
}

/// A local time (Asia/Ho_Chi_Minh, the server's zone) `minutes` from now, to the minute.
fn local_in(minutes: i64) -> String {
    (Utc::now().with_timezone(&chrono_tz::Asia::Ho_Chi_Minh) + Duration::minutes(minutes))
        .format("%Y-%m-%dT%H:%M:00")
        .to_string()
}

/// Create a schedule for `area` (admin token); its id and first occurrence.
async fn schedule(
    app: &TestApp,
    title: &str,
    sha: &str,
    area: &str,
    at: &str,
    priority: &str,
) -> (String, DateTime<Utc>) {
    let (s, b) = body(
        app.post_json(
            "/api/v1/schedules",
            &json!({"title": title, "media": [sha], "targets": {"areas": [area]},
                    "rule": {"kind": "once", "at": at}, "priority": priority}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let at: DateTime<Utc> = b["next_occurrences"][0]["utc"].as_str().unwrap().parse().unwrap();
    (b["schedule"]["id"].as_str().unwrap().to_string(), at)
}

/// Two communes under one province, a loudspeaker in each (`dm` in `mine`, `dt` in `theirs`);
/// `mine` decides on province content (the setting on, unanswered: play).
struct Deciding {
    province: String,
    mine: String,
    theirs: String,
    dm: String,
    dt: String,
}

async fn deciding(app: &TestApp) -> Deciding {
    let TwoCommunes {
        province,
        mine,
        theirs,
    } = two_communes(app).await;
    let (dm, dt) = (app.unique("lc"), app.unique("lc"));
    device(app, &dm, &mine, "autonomy-password", None).await;
    device(app, &dt, &theirs, "autonomy-password", None).await;
    put_setting(app, &mine, json!({"enabled": true})).await;
    Deciding {
        province,
        mine,
        theirs,
        dm,
        dt,
    }
}

async fn put_setting(app: &TestApp, area: &str, req: Value) {
    let (s, b) = body(
        app.put_json(&format!("/api/v1/areas/{area}/autonomy"), &req)
            .await,
    )
    .await;
    assert_eq!(s, 200, "{b}");
}

/// The questions of `area` (as `bearer`), waiting until there are `n` of them.
async fn questions(app: &TestApp, bearer: &str, area: &str, n: usize) -> Vec<Value> {
    eventually("the commune's questions", || async {
        let (s, b) = body(
            app.get_as(bearer, &format!("/api/v1/autonomy/requests?area={area}"))
                .await,
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let v = b.as_array().unwrap().clone();
        (v.len() == n).then_some(v)
    })
    .await
}

fn question<'a>(qs: &'a [Value], schedule_id: &str) -> &'a Value {
    qs.iter()
        .find(|q| q["schedule_id"] == schedule_id)
        .unwrap_or_else(|| panic!("no question about {schedule_id}: {qs:?}"))
}

async fn answer(app: &TestApp, bearer: &str, id: &str, req: Value) -> (u16, Value) {
    body(
        app.post_json_as(bearer, &format!("/api/v1/autonomy/requests/{id}/answer"), &req)
            .await,
    )
    .await
}

#[tokio::test]
async fn a_commune_accepts_declines_and_reslots_province_content_and_only_its_devices_follow() {
    let app = common::spawn_app().await;
    let Deciding {
        province,
        mine,
        theirs,
        dm,
        dt,
    } = deciding(&app).await;
    assert_eq!(
        app.audit_actions(&format!("area:{mine}")).await.last().unwrap().1,
        "area.autonomy"
    );
    let sha = media(&app, "approved", 30_000).await;
    let (acc, t_acc) = schedule(&app, "Tin tiếp nhận", &sha, &province, &local_in(120), "normal").await;
    let (dec, _) = schedule(&app, "Tin từ chối", &sha, &province, &local_in(180), "normal").await;
    let (res, t_res) = schedule(&app, "Tin đổi giờ", &sha, &province, &local_in(240), "normal").await;
    let (emg, _) = schedule(&app, "Khẩn cấp", &sha, &province, &local_in(150), "emergency").await;

    // Emergency reaches the commune at once; the normal items wait for it there, not elsewhere.
    let m = eventually("the emergency in the commune's manifest", || async {
        let m = items(&app, &dm).await;
        m.contains_key(&emg).then_some(m)
    })
    .await;
    for s in [&acc, &dec, &res] {
        assert!(!m.contains_key(s), "{s} awaits acceptance: {m:?}");
    }
    let other = eventually("the other commune's manifest", || async {
        let m = items(&app, &dt).await;
        (m.len() == 4).then_some(m)
    })
    .await;
    assert_eq!(other[&res], [t_res]);

    // "Chờ xã tiếp nhận": the commune's operator sees three questions.
    let (op_name, op) = scoped_user(&app, "xa", "operator", &[&mine]).await;
    let qs = questions(&app, &op, &mine, 3).await;
    assert!(
        qs.iter()
            .all(|q| q["state"] == "pending" && q["kind"] == "acceptance"),
        "{qs:?}"
    );
    assert_eq!(question(&qs, &acc)["title"], "Tin tiếp nhận");
    let (q_acc, q_dec, q_res) = (
        question(&qs, &acc)["id"].as_str().unwrap().to_string(),
        question(&qs, &dec)["id"].as_str().unwrap().to_string(),
        question(&qs, &res)["id"].as_str().unwrap().to_string(),
    );

    // Another commune's operator neither sees nor answers them; a viewer cannot answer.
    let (_, stranger) = scoped_user(&app, "xakhac", "operator", &[&theirs]).await;
    let (s, _) = answer(&app, &stranger, &q_acc, json!({"decision": "accept"})).await;
    assert_eq!(s, 404);
    let (s, b) = body(
        app.get_as(&stranger, &format!("/api/v1/autonomy/requests?area={mine}"))
            .await,
    )
    .await;
    assert_eq!((s, b), (200, json!([])));
    let (_, viewer) = scoped_user(&app, "xem", "viewer", &[&mine]).await;
    let (s, _) = answer(&app, &viewer, &q_acc, json!({"decision": "accept"})).await;
    assert_eq!(s, 403);

    // Accept, decline (a reason is required), choose another slot.
    let (s, b) = answer(&app, &op, &q_acc, json!({"decision": "accept"})).await;
    assert_eq!((s, b["state"].as_str()), (200, Some("accepted")), "{b}");
    let (s, b) = answer(&app, &op, &q_dec, json!({"decision": "decline"})).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (422, Some("reason_required")),
        "{b}"
    );
    let (s, b) = answer(
        &app,
        &op,
        &q_dec,
        json!({"decision": "decline", "reason": "Trùng giờ họp thôn"}),
    )
    .await;
    assert_eq!((s, b["state"].as_str()), (200, Some("declined")), "{b}");
    let slot = t_res + Duration::hours(3);
    let (s, b) = answer(&app, &op, &q_res, json!({"decision": "reslot", "slot_at": slot})).await;
    assert_eq!((s, b["state"].as_str()), (200, Some("reslotted")), "{b}");

    let m = eventually("the answers in the commune's manifest", || async {
        let m = items(&app, &dm).await;
        (m.contains_key(&acc) && m.contains_key(&res)).then_some(m)
    })
    .await;
    assert_eq!(m[&acc], [t_acc], "accepted: as scheduled");
    assert_eq!(m[&res], [slot], "re-slotted: at the chosen time");
    assert!(!m.contains_key(&dec), "declined: never");
    let other = items(&app, &dt).await;
    assert_eq!(
        (other[&res].clone(), other.len()),
        (vec![t_res], 4),
        "other commune unaffected"
    );

    // Audited, by the operator.
    for (q, action) in [
        (&q_acc, "autonomy.accept"),
        (&q_dec, "autonomy.decline"),
        (&q_res, "autonomy.reslot"),
    ] {
        let a = app.audit_actions(&format!("autonomy:{q}")).await;
        assert!(a.contains(&(op_name.clone(), action.to_string())), "{q}: {a:?}");
    }

    // In the report (JSON, the CSV section and the XLSX sheet), per commune.
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .format("%Y-%m-%d")
        .to_string();
    let path = format!("/api/v1/reports?from={today}&to={today}");
    let (s, rep) = body(app.get(&path).await).await;
    assert_eq!(s, 200, "{rep}");
    let row = rep["autonomy"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["area"] == mine.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("no row for {mine}: {rep}"));
    let counts: Vec<i64> = [
        "asked",
        "accepted",
        "declined",
        "reslotted",
        "unanswered",
        "pending",
    ]
    .iter()
    .map(|k| row[k].as_i64().unwrap())
    .collect();
    assert_eq!(counts, [3, 1, 1, 1, 0, 0], "{row}");
    assert!(row["median_answer_s"].as_i64().is_some(), "{row}");
    assert!(
        !rep["autonomy"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["area"] == theirs.as_str()),
        "a commune without the setting is asked nothing"
    );
    let csv = app
        .get(&format!("{path}&format=csv&section=autonomy"))
        .await
        .text()
        .await
        .unwrap();
    let line = csv
        .lines()
        .find(|l| l.contains(&format!("({mine})")))
        .unwrap_or_else(|| panic!("{csv}"));
    assert!(line.contains(",3,1,1,1,0,0,"), "{line}");
    let sheets = common::xlsx_sheets(&app, &format!("{path}&format=xlsx")).await;
    let sheet = &sheets["Xa tiep nhan"];
    assert!(
        sheet.iter().any(|r| r[0].contains(&mine) && r[1] == "3"),
        "{sheet:?}"
    );
    // The commune operator sees the same counts, only for its commune.
    let (s, mine_rep) = body(app.get_as(&op, &path).await).await;
    assert_eq!(s, 200);
    assert_eq!(mine_rep["autonomy"].as_array().unwrap().len(), 1, "{mine_rep}");
}

#[tokio::test]
async fn unanswered_content_follows_each_communes_policy_and_the_outcome_is_recorded() {
    let app = common::spawn_app().await;
    let Deciding {
        province,
        mine,
        theirs,
        dm,
        dt,
    } = deciding(&app).await;
    put_setting(&app, &theirs, json!({"enabled": true, "unanswered": "skip"})).await;
    let sha = media(&app, "approved", 30_000).await;
    // Less than the answer lead (5 min) away: unanswered at once.
    let (sid, at) = schedule(&app, "Tin gấp", &sha, &province, &local_in(3), "normal").await;

    let closed = |area: String| {
        let app = &app;
        let sid = sid.clone();
        async move {
            eventually("the question closed unanswered", || async {
                let (_, b) = body(app.get(&format!("/api/v1/autonomy/requests?area={area}")).await).await;
                b.as_array()
                    .unwrap()
                    .iter()
                    .find(|q| q["schedule_id"] == sid.as_str() && q["state"] == "unanswered")
                    .cloned()
            })
            .await
        }
    };
    let q_mine = closed(mine.clone()).await;
    let q_theirs = closed(theirs.clone()).await;
    assert_eq!(q_mine["outcome"], "played");
    assert_eq!(q_theirs["outcome"], "skipped");
    assert_eq!(q_mine["answered_by"], "system");
    let m = eventually("the default-played item in the commune's manifest", || async {
        let m = items(&app, &dm).await;
        m.contains_key(&sid).then_some(m)
    })
    .await;
    assert_eq!(m[&sid], [at]);
    assert!(!items(&app, &dt).await.contains_key(&sid), "skipped there");
    let a = app
        .audit_actions(&format!("autonomy:{}", q_theirs["id"].as_str().unwrap()))
        .await;
    assert_eq!(a, [("system".to_string(), "autonomy.unanswered".to_string())]);
}

#[tokio::test]
async fn a_priority_clash_plays_the_province_first_until_the_commune_orders_it() {
    let app = common::spawn_app().await;
    let Deciding {
        province,
        mine,
        theirs: _,
        dm,
        dt,
    } = deciding(&app).await;
    let sha = media(&app, "approved", 30_000).await;
    let when = local_in(120);
    let (own, t) = schedule(&app, "Thông báo của xã", &sha, &mine, &when, "normal").await;
    let (prio, _) = schedule(&app, "Tin ưu tiên của tỉnh", &sha, &province, &when, "priority").await;
    let half = Duration::seconds(30);

    let m = eventually("the default order in the commune's manifest", || async {
        let m = items(&app, &dm).await;
        (m.get(&own) == Some(&vec![t + half])).then_some(m)
    })
    .await;
    assert_eq!(m[&prio], [t], "the province's item first by default");
    let (op_name, op) = scoped_user(&app, "xa", "operator", &[&mine]).await;
    let qs = questions(&app, &op, &mine, 1).await;
    assert_eq!(
        (qs[0]["kind"].as_str(), qs[0]["other_id"].as_str()),
        (Some("order"), Some(own.as_str()))
    );
    let id = qs[0]["id"].as_str().unwrap().to_string();
    let (s, b) = answer(&app, &op, &id, json!({"decision": "accept"})).await;
    assert_eq!(s, 422, "an order question takes an order: {b}");
    let (s, b) = answer(&app, &op, &id, json!({"decision": "order", "first": "commune"})).await;
    assert_eq!((s, b["state"].as_str()), (200, Some("ordered")), "{b}");
    eventually("the commune's order in its manifest", || async {
        let m = items(&app, &dm).await;
        (m.get(&prio) == Some(&vec![t + half]) && m.get(&own) == Some(&vec![t])).then_some(())
    })
    .await;
    assert_eq!(items(&app, &dt).await[&prio], [t], "other commune unaffected");
    let a = app.audit_actions(&format!("autonomy:{id}")).await;
    assert_eq!(a, [(op_name, "autonomy.order".to_string())]);
}
