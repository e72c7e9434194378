//! Alarms (issue 12 §6) against the real server: fake devices report presence, heartbeats,
//! proofs of play and acks over MQTT as agents do; `workers::alarms::evaluate` is called with a
//! chosen time (the background evaluation is set to once an hour, so it does not interfere), and
//! each condition raises its alarm and clears it when the condition ends. The database keeps one
//! open alarm per kind and subject even under two concurrent evaluations. The API lists alarms
//! in the caller's scope and records who acknowledged one.

use chrono::Utc;
use nguon_protocol::{DeviceId, Event, EventBatch, EventBody, PlayOutcome, Priority, ProofOfPlay, topic};
use serde_json::{Value, json};

use crate::common::{self, TestApp};
use crate::console_support::scoped_user;
use crate::dispatch_support::*;
use nguon_server::workers::alarms::evaluate;

/// The webhook receiver and SMTP sink of the system tests (tokio and std only).
#[path = "../../tests/src/sinks.rs"]
#[allow(dead_code)]
mod sinks;

async fn app() -> TestApp {
    common::spawn_app_with(|s| s.alarms.evaluate_every_s = 3_600).await
}

fn now() -> i64 {
    Utc::now().timestamp_millis()
}

async fn eval_at(app: &TestApp, at: i64) -> nguon_server::workers::alarms::Evaluation {
    evaluate(&app.state().store, &app.settings.alarms, at)
        .await
        .expect("evaluate")
}

/// `(kind, subject, cleared)` of every alarm about `subject`, oldest first.
async fn alarms_of(app: &TestApp, subject: &str) -> Vec<(String, bool)> {
    let (s, b) = common::json(app.get("/api/v1/alarms?state=all").await).await;
    assert_eq!(s, 200, "{b}");
    let mut out: Vec<(i64, String, bool)> = b
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["subject_id"] == subject)
        .map(|a| {
            (
                a["raised_at"].as_i64().unwrap(),
                a["kind"].as_str().unwrap().to_string(),
                !a["cleared_at"].is_null(),
            )
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, k, c)| (k, c)).collect()
}

async fn status(app: &TestApp, id: &str) -> Value {
    common::json(app.get(&format!("/api/v1/devices/{id}")).await)
        .await
        .1
}

async fn send(d: &TestDevice, events: Vec<EventBody>) {
    let did = DeviceId::parse(&d.id).unwrap();
    let batch = EventBatch {
        v: 1,
        device: did.clone(),
        sent_at: Utc::now(),
        events: events
            .into_iter()
            .map(|body| Event {
                id: uuid::Uuid::new_v4(),
                at: Utc::now(),
                body,
            })
            .collect(),
    };
    d.publish(&topic::events(&did), batch.seal(None).to_bytes(), false)
        .await;
}

fn proof(item: &str, outcome: PlayOutcome, silent: bool) -> EventBody {
    let at = Utc::now();
    EventBody::Play(ProofOfPlay {
        item_id: item.into(),
        schedule_id: "s".into(),
        occurrence_at: at,
        sha256: "0".repeat(64),
        priority: Priority::Normal,
        started_at: Some(at),
        ended_at: Some(at),
        outcome,
        reason: (outcome == PlayOutcome::Failed).then(|| "no audio device".to_string()),
        max_rms_dbfs: Some(if silent { -90 } else { -12 }),
        silent,
        relay: None,
    })
}

#[tokio::test]
async fn offline_missed_heartbeats_and_low_disk_raise_and_clear_with_the_area_threshold_inherited() {
    let app = app().await;
    let (p, c) = (uid("p"), uid("c"));
    area(&app, &p, None).await;
    area(&app, &c, Some(&p)).await;
    // The province sets 2 minutes; its commune inherits it (the default is 10).
    let (s, b) = common::json(
        app.put_json(
            &format!("/api/v1/areas/{p}/alarm-settings"),
            &json!({"offline_after_s": 120}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = common::json(app.get(&format!("/api/v1/areas/{c}/alarm-settings")).await).await;
    assert_eq!(
        (s, b["offline_after_s"].as_u64(), b["from_area"].as_str()),
        (200, Some(120), Some(p.as_str()))
    );
    let (s, b) = common::json(
        app.put_json(
            &format!("/api/v1/areas/{p}/alarm-settings"),
            &json!({"offline_after_s": 5}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 422, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("offline_after_s"),
        "{b}"
    );

    let id = uid("lc");
    device(&app, &id, &c, "alarm-password", None).await;
    let did = DeviceId::parse(&id).unwrap();
    let d = connect(&app, &id, "alarm-password", None).await.unwrap();
    d.publish(&topic::state(&did), state_payload(&id, true, 1), true)
        .await;
    let mut hb = heartbeat(&id, 1, 1);
    hb.disk_free_bytes = 50 << 20;
    hb.disk_total_bytes = Some(1 << 30);
    d.publish(&topic::telemetry(&did), serde_json::to_vec(&hb).unwrap(), false)
        .await;
    eventually("online with a heartbeat", || async {
        let s = status(&app, &id).await;
        (s["online"] == true && s["manifest_version"] == 1).then_some(())
    })
    .await;

    // Now: only the disk (50 MiB of 1 GiB is under 10 %).
    let t0 = now();
    let e = eval_at(&app, t0).await;
    assert_eq!(e.raised.len(), 1, "{e:?}");
    assert_eq!(alarms_of(&app, &id).await, [("low_disk".to_string(), false)]);
    // Ten minutes on without a heartbeat (3 × 60 s allowed): missed heartbeats.
    eval_at(&app, t0 + 600_000).await;
    assert_eq!(
        alarms_of(&app, &id).await,
        [
            ("low_disk".to_string(), false),
            ("heartbeat_missed".to_string(), false)
        ]
    );
    // A heartbeat with room on the disk clears both (evaluated now).
    hb.disk_free_bytes = 900 << 20;
    hb.manifest_version = Some(2);
    d.publish(&topic::telemetry(&did), serde_json::to_vec(&hb).unwrap(), false)
        .await;
    eventually("the second heartbeat", || async {
        (status(&app, &id).await["manifest_version"] == 2).then_some(())
    })
    .await;
    let e = eval_at(&app, now()).await;
    assert_eq!((e.raised.len(), e.cleared), (0, 2), "{e:?}");

    // Offline: nothing before the inherited 2 minutes, the alarm after them.
    d.publish(&topic::state(&did), state_payload(&id, false, 1), true)
        .await;
    eventually("offline", || async {
        (status(&app, &id).await["online"] == false).then_some(())
    })
    .await;
    let t1 = now();
    assert!(eval_at(&app, t1 + 60_000).await.raised.is_empty());
    let e = eval_at(&app, t1 + 130_000).await;
    assert_eq!(e.raised.len(), 1, "{e:?}");
    assert_eq!(e.raised[0].area, c);
    // Evaluated again: still one open alarm, nothing raised twice.
    assert!(eval_at(&app, t1 + 200_000).await.raised.is_empty());
    // Back online: cleared.
    d.publish(&topic::state(&did), state_payload(&id, true, 2), true)
        .await;
    eventually("online again", || async {
        (status(&app, &id).await["online"] == true).then_some(())
    })
    .await;
    let e = eval_at(&app, now()).await;
    assert_eq!(e.cleared, 1, "{e:?}");
    let all = alarms_of(&app, &id).await;
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all.iter().all(|(_, cleared)| *cleared), "{all:?}");
    assert!(all.contains(&("device_offline".to_string(), true)));

    // The area's own threshold removed: the commune takes the default (600 s) again.
    let (s, b) = common::json(app.delete(&format!("/api/v1/areas/{p}/alarm-settings")).await).await;
    assert_eq!(
        (s, b["offline_after_s"].as_u64(), b["from_area"].is_null()),
        (200, Some(600), true),
        "{b}"
    );
}

#[tokio::test]
async fn a_failed_play_and_a_silent_play_raise_alarms_that_a_good_play_clears() {
    let app = app().await;
    let p = uid("p");
    area(&app, &p, None).await;
    let id = uid("lc");
    device(&app, &id, &p, "alarm-password", None).await;
    let d = connect(&app, &id, "alarm-password", None).await.unwrap();
    let plays = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM plays WHERE device_id = $1")
            .bind(id.clone())
            .fetch_one(&app.state().store.pool)
            .await
            .unwrap()
    };
    send(&d, vec![proof("i1", PlayOutcome::Failed, false)]).await;
    eventually("the failed play", || async { (plays().await == 1).then_some(()) }).await;
    let e = eval_at(&app, now()).await;
    assert_eq!(e.raised.len(), 1, "{e:?}");
    assert!(e.raised[0].message.contains("no audio device"), "{e:?}");
    // A silent play: the failure is over (it played), but it stayed silent.
    send(&d, vec![proof("i2", PlayOutcome::Played, true)]).await;
    eventually("the silent play", || async { (plays().await == 2).then_some(()) }).await;
    let e = eval_at(&app, now()).await;
    assert_eq!((e.raised.len(), e.cleared), (1, 1), "{e:?}");
    assert_eq!(e.raised[0].kind.as_str(), "silence");
    assert_eq!(e.raised[0].severity, "critical");
    send(&d, vec![proof("i3", PlayOutcome::Played, false)]).await;
    eventually("the good play", || async { (plays().await == 3).then_some(()) }).await;
    let e = eval_at(&app, now()).await;
    assert_eq!((e.raised.len(), e.cleared), (0, 1), "{e:?}");
    assert_eq!(
        alarms_of(&app, &id).await,
        [
            ("playback_failed".to_string(), true),
            ("silence".to_string(), true)
        ]
    );
}

#[tokio::test]
async fn an_emergency_under_its_delivery_threshold_raises_an_alarm_until_enough_targets_are_reached() {
    let app = app().await;
    let p = uid("p");
    area(&app, &p, None).await;
    let (a, b) = (uid("lc"), uid("lc"));
    device(&app, &a, &p, "alarm-password", None).await;
    device(&app, &b, &p, "alarm-password", None).await;
    let sha = media(&app, "approved", 5_000).await;
    let (s, issued) = common::json(
        app.post_json(
            &format!("/api/v1/areas/{p}/commands"),
            &json!({"action": "play_now", "media": [sha], "priority": "emergency"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 202, "{issued}");
    let cid = issued["command_id"].as_str().unwrap().to_string();
    // Before the 2 minutes: nothing, even with no target reached.
    assert!(eval_at(&app, now() + 60_000).await.raised.is_empty());
    let e = eval_at(&app, now() + 150_000).await;
    assert_eq!(e.raised.len(), 1, "{e:?}");
    assert_eq!(
        (e.raised[0].subject_type.as_str(), e.raised[0].subject_id.as_str()),
        ("command", cid.as_str())
    );
    assert!(e.raised[0].message.contains("0 of 2"), "{e:?}");
    // One of two acks: 50 %, still under 95 %.
    let ack = EventBody::Ack {
        message_id: cid.parse().unwrap(),
        ok: true,
        manifest_version: None,
        reason: None,
    };
    let reached = || async {
        common::json(app.get(&format!("/api/v1/commands/{cid}")).await)
            .await
            .1["tracking"]["reached"]
            .as_u64()
            .unwrap_or(0)
    };
    let da = connect(&app, &a, "alarm-password", None).await.unwrap();
    send(&da, vec![ack.clone()]).await;
    eventually("one reached", || async { (reached().await == 1).then_some(()) }).await;
    assert_eq!(eval_at(&app, now() + 150_000).await.cleared, 0);
    let db = connect(&app, &b, "alarm-password", None).await.unwrap();
    send(&db, vec![ack]).await;
    eventually("both reached", || async { (reached().await == 2).then_some(()) }).await;
    assert_eq!(eval_at(&app, now() + 150_000).await.cleared, 1);
    assert_eq!(
        alarms_of(&app, &cid).await,
        [("delivery_below_threshold".to_string(), true)]
    );
}

#[tokio::test]
async fn two_concurrent_evaluations_leave_one_open_alarm_per_subject_and_the_database_enforces_it() {
    let app = app().await;
    let p = uid("p");
    area(&app, &p, None).await;
    let ids: Vec<String> = (0..5).map(|_| uid("lc")).collect();
    for id in &ids {
        device(&app, id, &p, "alarm-password", None).await;
    }
    let seen = now() - 3_600_000;
    for id in &ids {
        sqlx::query(
            "INSERT INTO device_status (device_id, online, session, last_seen) VALUES ($1, 0, 1, $2)",
        )
        .bind(id.clone())
        .bind(seen)
        .execute(&app.state().store.pool)
        .await
        .unwrap();
    }
    let at = now();
    for round in 0..3 {
        let (x, y) = tokio::join!(eval_at(&app, at), eval_at(&app, at));
        let raised = x.raised.len() + y.raised.len();
        assert_eq!(
            raised,
            if round == 0 { 5 } else { 0 },
            "round {round}: {x:?} {y:?}"
        );
    }
    let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM alarms WHERE cleared_at IS NULL")
        .fetch_one(&app.state().store.pool)
        .await
        .unwrap();
    assert_eq!(open, 5);
    // The index itself refuses a second open alarm for the same subject ...
    let insert = |id: &'static str| {
        sqlx::query(
            "INSERT INTO alarms (id, kind, subject_type, subject_id, area, severity, message, raised_at) \
             VALUES ($1, 'device_offline', 'device', $2, $3, 'warning', 'x', 0)",
        )
        .bind(id)
        .bind(ids[0].clone())
        .bind(p.clone())
    };
    assert!(insert("dup-1").execute(&app.state().store.pool).await.is_err());
    // ... and accepts a new one once the open one is cleared.
    sqlx::query("UPDATE alarms SET cleared_at = 1 WHERE subject_id = $1")
        .bind(ids[0].clone())
        .execute(&app.state().store.pool)
        .await
        .unwrap();
    insert("dup-2").execute(&app.state().store.pool).await.unwrap();
}

#[tokio::test]
async fn a_commune_operator_sees_and_acknowledges_only_their_communes_alarms_and_the_ack_is_audited() {
    let app = app().await;
    let (tc, mine, _) = two_offline_devices(&app, None).await;
    let (op_name, op) = scoped_user(&app, "vanhanh", "operator", &[&tc.mine]).await;
    let (s, list) = common::json(app.get_as(&op, "/api/v1/alarms").await).await;
    assert_eq!(s, 200, "{list}");
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["subject_id"], mine.as_str());
    let (s, all) = common::json(app.get(&format!("/api/v1/alarms?area={}", tc.province)).await).await;
    assert_eq!((s, all.as_array().map(Vec::len)), (200, Some(2)), "{all}");
    let (s, b) = common::json(app.get("/api/v1/alarms?state=closed").await).await;
    assert_eq!(s, 422, "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("`state`"), "{b}");

    // Theirs is not found for this operator; theirs to acknowledge, mine is.
    let other = common::json(app.get(&format!("/api/v1/alarms?area={}", tc.theirs)).await)
        .await
        .1[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = common::json(
        app.post_json_as(&op, &format!("/api/v1/alarms/{other}/ack"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(s, 404);
    let id = list[0]["id"].as_str().unwrap();
    let (s, acked) = common::json(
        app.post_json_as(&op, &format!("/api/v1/alarms/{id}/ack"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(s, 200, "{acked}");
    assert_eq!(acked["acked_by"], op_name.as_str());
    let (_, open) = common::json(app.get_as(&op, "/api/v1/alarms").await).await;
    assert_eq!(
        open.as_array().unwrap().len(),
        0,
        "acknowledged alarms leave the open list"
    );
    let (_, acked_list) = common::json(app.get_as(&op, "/api/v1/alarms?state=acked").await).await;
    assert_eq!(acked_list.as_array().unwrap().len(), 1);
    let (actor, action): (String, String) =
        sqlx::query_as("SELECT actor, action FROM audit_log WHERE entity = $1")
            .bind(format!("alarm:{id}"))
            .fetch_one(&app.state().store.pool)
            .await
            .unwrap();
    assert_eq!((actor.as_str(), action.as_str()), (op_name.as_str(), "alarm.ack"));
}

#[tokio::test]
async fn subscriptions_are_checked_and_scoped_and_notifications_are_retried_and_recorded() {
    let mut hook = sinks::WebhookReceiver::start(2).await;
    let mut smtp = sinks::SmtpSink::start().await;
    let port = smtp.addr.port();
    let app = common::spawn_app_with(|s| {
        s.alarms.evaluate_every_s = 3_600;
        s.alarms.webhook_backoff_ms = 20;
        s.smtp = Some(nguon_server::config::alarms::SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            from: "canh-bao@nguon.test".into(),
            ..Default::default()
        });
    })
    .await;
    let tc = crate::console_support::two_communes(&app).await;
    for (body, field) in [
        (
            json!({"area": tc.mine, "channel": "sms", "target": "x"}),
            "`channel`",
        ),
        (
            json!({"area": tc.mine, "channel": "webhook", "target": "ftp://x"}),
            "`target`",
        ),
        (
            json!({"area": tc.mine, "channel": "email", "target": "a@b.vn", "kinds": ["fire"]}),
            "`kinds[0]`",
        ),
        (
            json!({"area": "nowhere", "channel": "email", "target": "a@b.vn"}),
            "`area`",
        ),
        (
            json!({"area": tc.mine, "channel": "webhook", "target": "http://x", "secret": "short"}),
            "`secret`",
        ),
    ] {
        let (s, b) = common::json(app.post_json("/api/v1/alarm-subscriptions", &body).await).await;
        assert_eq!(s, 422, "{body} → {b}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains(field),
            "{body} → {b}"
        );
    }
    // A webhook for the province's operators, an e-mail for the leaders (critical kinds only by
    // their role, so not the offline alarm), one e-mail naming the offline kind.
    let (s, sub) = common::json(
        app.post_json(
            "/api/v1/alarm-subscriptions",
            &json!({"area": tc.province, "role": "operator", "channel": "webhook", "target": hook.url}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{sub}");
    let secret = sub["secret"]
        .as_str()
        .expect("the generated secret, shown once")
        .to_string();
    for (role, kinds) in [("approver", json!([])), ("viewer", json!(["device_offline"]))] {
        let (s, b) = common::json(
            app.post_json(
                "/api/v1/alarm-subscriptions",
                &json!({"area": tc.mine, "role": role, "channel": "email", "target": format!("{role}@xa.test"), "kinds": kinds}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 201, "{b}");
    }
    let (_, listed) = common::json(app.get("/api/v1/alarm-subscriptions").await).await;
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s.get("secret").is_none()),
        "{listed}"
    );
    // A commune operator sees the subscriptions of their commune only.
    let (_, op) = scoped_user(&app, "vanhanh", "operator", &[&tc.theirs]).await;
    let (_, theirs) = common::json(app.get_as(&op, "/api/v1/alarm-subscriptions").await).await;
    assert_eq!(theirs.as_array().unwrap().len(), 0, "{theirs}");

    let dev = uid("lc");
    device(&app, &dev, &tc.mine, "alarm-password", None).await;
    sqlx::query("INSERT INTO device_status (device_id, online, session, last_seen) VALUES ($1, 0, 1, $2)")
        .bind(dev.clone())
        .bind(now() - 3_600_000)
        .execute(&app.state().store.pool)
        .await
        .unwrap();
    let e = eval_at(&app, now()).await;
    assert_eq!(e.raised.len(), 1);
    let id = e.raised[0].id.clone();

    // Two 500s, then 200: three attempts of the same signed body.
    let mut got = Vec::new();
    while got.len() < 3 {
        got.push(
            tokio::time::timeout(DEADLINE, hook.rx.recv())
                .await
                .expect("webhook attempts")
                .unwrap(),
        );
    }
    assert_eq!(got.iter().map(|r| r.status).collect::<Vec<_>>(), [500, 500, 200]);
    assert!(got.iter().all(|r| r.body == got[0].body));
    let sig = nguon_server::domain::notify::signature(&secret, &got[0].body);
    assert_eq!(got[2].header("x-nguon-signature"), Some(sig.as_str()));
    let alarm: Value = serde_json::from_slice(&got[2].body).unwrap();
    assert_eq!(
        (alarm["id"].as_str(), alarm["kind"].as_str()),
        (Some(id.as_str()), Some("device_offline"))
    );
    let mail = tokio::time::timeout(DEADLINE, smtp.rx.recv())
        .await
        .expect("a mail")
        .unwrap();
    assert_eq!(
        mail.to,
        ["viewer@xa.test"],
        "the leaders' role is not told of an offline device"
    );
    assert!(mail.data.contains(&dev), "{}", mail.data);
    let n = eventually("both notifications sent", || async {
        let (_, n) = common::json(app.get(&format!("/api/v1/alarms/{id}/notifications")).await).await;
        n.as_array()
            .is_some_and(|a| a.len() == 2 && a.iter().all(|d| d["state"] == "sent"))
            .then_some(n)
    })
    .await;
    let w = n
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel"] == "webhook")
        .unwrap()
        .clone();
    assert_eq!(
        (w["attempts"].as_i64(), w["statuses"].clone()),
        (Some(3), json!([500, 500, 200])),
        "{n}"
    );
}

#[tokio::test]
async fn console_alarms_list_open_first_with_a_badge_and_an_ack_button_and_the_command_page_has_a_map() {
    use crate::console_support::{client, form_body, login, page, user};
    let app = app().await;
    let (tc, mine, theirs) = two_offline_devices(&app, Some((22.48, 103.97))).await;
    user(
        &app,
        "vanhanh-canhbao",
        "operator",
        &[&tc.mine],
        "mat-khau-van-hanh",
    )
    .await;
    let c = client();
    let s = login(&app, &c, "vanhanh-canhbao", "mat-khau-van-hanh").await;
    let html = page(&c, &app, &s.cookie, "/console/alarms").await;
    assert!(html.contains("Cảnh báo hệ thống"), "Vietnamese first: {html}");
    assert!(html.contains("id=\"alarm-badge\""), "the badge in the menu");
    assert!(
        html.contains(">1</span>"),
        "one open alarm in the operator's scope"
    );
    assert!(html.contains(&format!("/console/devices/{mine}")), "{html}");
    assert!(!html.contains(&theirs), "another commune's alarm is not shown");
    assert!(html.contains("Mất kết nối"));
    let id = e_id(&html);
    // The ack form needs the session's CSRF token.
    let post = |body: String| {
        let (c, cookie, url) = (
            c.clone(),
            s.cookie.clone(),
            app.url(&format!("/console/alarms/{id}/ack")),
        );
        async move {
            c.post(url)
                .header("cookie", cookie)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(post(form_body(&[("csrf", "wrong")])).await.status(), 403);
    let r = post(form_body(&[("csrf", &s.csrf)])).await;
    assert_eq!(r.status(), 303);
    let html = page(&c, &app, &s.cookie, "/console/alarms?ok=alarm_acked").await;
    assert!(html.contains("Đã xác nhận cảnh báo."), "{html}");
    assert!(!html.contains("id=\"alarm-badge\""), "no open alarm left");
    let acked = page(&c, &app, &s.cookie, "/console/alarms?state=acked").await;
    assert!(acked.contains("vanhanh-canhbao"), "acknowledged by: {acked}");
    let filtered = page(
        &c,
        &app,
        &s.cookie,
        &format!("/console/alarms?state=all&kind=low_disk&area={}", tc.mine),
    )
    .await;
    assert!(filtered.contains("id=\"no-alarms\""), "{filtered}");

    // The command page draws its clusters with coordinates, coloured by state.
    let sha = media(&app, "approved", 5_000).await;
    let (st, issued) = common::json(
        app.post_json(
            &format!("/api/v1/areas/{}/commands", tc.mine),
            &json!({"action": "play_now", "media": [sha], "priority": "emergency"}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 202, "{issued}");
    let cid = issued["command_id"].as_str().unwrap();
    let html = page(&c, &app, &s.cookie, &format!("/console/commands/{cid}")).await;
    assert!(html.contains("id=\"tracking-map\""), "{html}");
    assert!(
        html.contains(&format!("data-device=\"{mine}\" data-state=\"offline_pending\"")),
        "{html}"
    );
}

/// The id of the first alarm row of a console page.
fn e_id(html: &str) -> String {
    let at = html.find("data-alarm=\"").expect("an alarm row") + "data-alarm=\"".len();
    html[at..].split('"').next().unwrap().to_string()
}

/// The alarm routes' steps of `hardening_audit`'s walk (each call must write an audit row
/// naming the caller), kept here to leave that file's scenario short.
pub(crate) async fn audit_steps(app: &TestApp, covered: &mut std::collections::BTreeSet<String>, area: &str) {
    use crate::hardening_audit::{Body, step};
    step(
        app,
        covered,
        "PUT /api/v1/areas/{code}/alarm-settings",
        &format!("/api/v1/areas/{area}/alarm-settings"),
        Body::Json(json!({"offline_after_s": 900})),
    )
    .await;
    step(
        app,
        covered,
        "DELETE /api/v1/areas/{code}/alarm-settings",
        &format!("/api/v1/areas/{area}/alarm-settings"),
        Body::None,
    )
    .await;
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO alarms (id, kind, subject_type, subject_id, area, severity, message, raised_at) \
         VALUES ($1, 'low_disk', 'device', 'audit-device', $2, 'warning', 'x', 0)",
    )
    .bind(id.clone())
    .bind(area.to_string())
    .execute(&app.state().store.pool)
    .await
    .unwrap();
    let sub = step(
        app,
        covered,
        "POST /api/v1/alarm-subscriptions",
        "/api/v1/alarm-subscriptions",
        Body::Json(json!({"area": area, "channel": "webhook", "target": "http://127.0.0.1:9/hook"})),
    )
    .await;
    let sid = sub["id"].as_str().unwrap().to_string();
    step(
        app,
        covered,
        "PATCH /api/v1/alarm-subscriptions/{id}",
        &format!("/api/v1/alarm-subscriptions/{sid}"),
        Body::Json(json!({"enabled": false})),
    )
    .await;
    step(
        app,
        covered,
        "DELETE /api/v1/alarm-subscriptions/{id}",
        &format!("/api/v1/alarm-subscriptions/{sid}"),
        Body::None,
    )
    .await;
    step(
        app,
        covered,
        "POST /api/v1/alarms/{id}/ack",
        &format!("/api/v1/alarms/{id}/ack"),
        Body::None,
    )
    .await;
}

/// A province with two communes and a device in each (`mine`, placed at `pos` when given;
/// `theirs`), both offline for an hour, and the two alarms that raises: the setup of the scoped
/// alarm tests.
async fn two_offline_devices(
    app: &common::TestApp,
    pos: Option<(f64, f64)>,
) -> (crate::console_support::TwoCommunes, String, String) {
    let tc = crate::console_support::two_communes(app).await;
    let (mine, theirs) = (uid("lc"), uid("lc"));
    device(app, &mine, &tc.mine, "alarm-password", None).await;
    device(app, &theirs, &tc.theirs, "alarm-password", None).await;
    if let Some((lat, lon)) = pos {
        sqlx::query("UPDATE devices SET lat = $1, lon = $2 WHERE id = $3")
            .bind(lat)
            .bind(lon)
            .bind(mine.clone())
            .execute(&app.state().store.pool)
            .await
            .unwrap();
    }
    for id in [&mine, &theirs] {
        sqlx::query(
            "INSERT INTO device_status (device_id, online, session, last_seen) VALUES ($1, 0, 1, $2)",
        )
        .bind(id.clone())
        .bind(now() - 3_600_000)
        .execute(&app.state().store.pool)
        .await
        .unwrap();
    }
    assert_eq!(eval_at(app, now()).await.raised.len(), 2);
    (tc, mine, theirs)
}
