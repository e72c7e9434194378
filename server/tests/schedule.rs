//! Schedules through the API: rule evaluation in a time zone (including DST), validation errors
//! that name the problem, overlap warnings, and that a change is written with its outbox row and
//! its audit entry in one transaction (all or nothing).

use crate::common;
use crate::console_support;
use crate::dispatch_support;

use dispatch_support::*;
use serde_json::{Value, json};

async fn setup(app: &common::TestApp) -> (String, String, String) {
    let p = uid("p");
    area(app, &p, None).await;
    let id = uid("lc");
    device(app, &id, &p, "schedule-password", None).await;
    let sha = media(app, "approved", 60_000).await;
    (p, id, sha)
}

async fn occurrences(app: &common::TestApp, body: Value, from: &str, to: &str) -> Vec<String> {
    let (s, b) = common::json(app.post_json("/api/v1/schedules", &body).await).await;
    assert_eq!(s, 201, "{b}");
    let id = b["schedule"]["id"].as_str().unwrap();
    let (s, occ) = common::json(
        app.get(&format!("/api/v1/schedules/{id}/occurrences?from={from}&to={to}"))
            .await,
    )
    .await;
    assert_eq!(s, 200, "{occ}");
    occ.as_array()
        .unwrap()
        .iter()
        .map(|o| o["utc"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_weekday_cron_in_ho_chi_minh_fires_at_2330_utc_the_previous_day_on_weekdays_only() {
    let app = common::spawn_app().await;
    let (p, _, sha) = setup(&app).await;
    let got = occurrences(
        &app,
        json!({"title": "sáng", "media": [sha], "targets": {"areas": [p]},
               "rule": {"kind": "cron", "cron": "30 6 * * 1-5"}, "time_zone": "Asia/Ho_Chi_Minh"}),
        "2026-11-28T00:00:00Z",
        "2026-12-07T00:00:00Z",
    )
    .await;
    // Mon 30 Nov .. Fri 4 Dec and Mon 7 Dec, 06:30 (+07:00) = 23:30 UTC the day before; no weekend.
    assert_eq!(
        got,
        [
            "2026-11-29T23:30:00Z",
            "2026-11-30T23:30:00Z",
            "2026-12-01T23:30:00Z",
            "2026-12-02T23:30:00Z",
            "2026-12-03T23:30:00Z",
            "2026-12-06T23:30:00Z"
        ]
    );
}

#[tokio::test]
async fn berlin_rules_follow_both_daylight_saving_changes() {
    let app = common::spawn_app().await;
    let (p, _, sha) = setup(&app).await;
    let spring = occurrences(
        &app,
        json!({"title": "gap", "media": [sha], "targets": {"areas": [p]},
               "rule": {"kind": "cron", "cron": "30 2 * * *"}, "time_zone": "Europe/Berlin"}),
        "2026-03-28T00:00:00Z",
        "2026-03-31T00:00:00Z",
    )
    .await;
    // 02:30 does not exist on 29 March: croner plays it at the first minute after the gap (03:00 CEST).
    assert_eq!(
        spring,
        [
            "2026-03-28T01:30:00Z",
            "2026-03-29T01:00:00Z",
            "2026-03-30T00:30:00Z"
        ]
    );
    let autumn = occurrences(
        &app,
        json!({"title": "morning", "media": [sha], "targets": {"areas": [p]},
               "rule": {"kind": "cron", "cron": "0 9 * * *"}, "time_zone": "Europe/Berlin"}),
        "2026-10-24T00:00:00Z",
        "2026-10-27T00:00:00Z",
    )
    .await;
    assert_eq!(
        autumn,
        [
            "2026-10-24T07:00:00Z",
            "2026-10-25T08:00:00Z",
            "2026-10-26T08:00:00Z"
        ]
    );
    let twice = occurrences(
        &app,
        json!({"title": "overlap", "media": [sha], "targets": {"areas": [p]},
               "rule": {"kind": "cron", "cron": "30 2 * * *"}, "time_zone": "Europe/Berlin"}),
        "2026-10-24T12:00:00Z",
        "2026-10-26T00:00:00Z",
    )
    .await;
    // 02:30 happens twice on 25 October: a fixed-time job plays once, at the first (CEST) one.
    assert_eq!(twice, ["2026-10-25T00:30:00Z"]);
}

#[tokio::test]
async fn invalid_schedules_are_refused_naming_the_problem() {
    let app = common::spawn_app().await;
    let (p, _, sha) = setup(&app).await;
    let draft = media(&app, "draft", 1000).await;
    let base = json!({"title": "t", "media": [sha], "targets": {"areas": [p]}, "rule": {"kind": "cron", "cron": "0 6 * * *"}});
    let cases = [
        (
            json!({"rule": {"kind": "cron", "cron": "0 6 * *"}}),
            400,
            "invalid_cron",
            "4 fields",
        ),
        (
            json!({"rule": {"kind": "cron", "cron": "75 6 * * *"}}),
            400,
            "invalid_cron",
            "75 6",
        ),
        (
            json!({"time_zone": "Mars/Olympus"}),
            400,
            "invalid_time_zone",
            "Mars/Olympus",
        ),
        (
            json!({"media": [sha, draft]}),
            422,
            "media_not_approved",
            draft.as_str(),
        ),
        (
            json!({"targets": {"areas": ["nowhere-xyz"]}}),
            422,
            "unknown_area",
            "nowhere-xyz",
        ),
        (
            json!({"targets": {"devices": ["ghost-1"]}}),
            422,
            "unknown_device",
            "ghost-1",
        ),
        (json!({"volume": 130}), 400, "invalid_volume", "volume"),
        (json!({"priority": "urgent"}), 400, "invalid_body", "priority"),
    ];
    for (patch, status, code, needle) in cases {
        let mut body = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (s, b) = common::json(app.post_json("/api/v1/schedules", &body).await).await;
        assert_eq!(s, status, "{patch}: {b}");
        assert_eq!(b["error"]["code"], code, "{patch}: {b}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains(needle),
            "{patch}: {b}"
        );
    }
}

#[tokio::test]
async fn a_second_schedule_at_the_same_priority_on_the_same_device_warns_about_the_overlap() {
    let app = common::spawn_app().await;
    let (p, id, sha) = setup(&app).await;
    let body = json!({"title": "a", "media": [sha], "targets": {"areas": [p]}, "rule": {"kind": "cron", "cron": "0 6 * * *"}});
    let (s, first) = common::json(app.post_json("/api/v1/schedules", &body).await).await;
    assert_eq!(s, 201);
    assert_eq!(first["warnings"]["overlap_count"], 0);
    // Starts 30 s into the first one's 60 s clip.
    let other = json!({"title": "b", "media": [sha], "targets": {"devices": [id]}, "rule": {"kind": "cron", "cron": "0 6 * * *"}});
    let (s, second) = common::json(app.post_json("/api/v1/schedules", &other).await).await;
    assert_eq!(s, 201, "{second}");
    let w = &second["warnings"];
    assert!(w["overlap_count"].as_u64().unwrap() >= 2, "{w}");
    assert_eq!(w["overlaps"][0]["device"], id.as_str());
    assert_eq!(w["overlaps"][0]["schedule_id"], first["schedule"]["id"]);
    // A different priority does not warn.
    let mut prio = other.clone();
    prio["priority"] = json!("emergency");
    let (_, third) = common::json(app.post_json("/api/v1/schedules", &prio).await).await;
    assert_eq!(third["warnings"]["overlap_count"], 0);
}

#[tokio::test]
async fn schedules_can_be_listed_disabled_and_deleted() {
    let app = common::spawn_app().await;
    let (p, _, sha) = setup(&app).await;
    let (_, b) = common::json(
        app.post_json(
            "/api/v1/schedules",
            &json!({"title": "x", "media": [sha], "targets": {"areas": [p]},
            "rule": {"kind": "once", "at": "2030-01-01T07:00:00"}}),
        )
        .await,
    )
    .await;
    let id = b["schedule"]["id"].as_str().unwrap().to_string();
    let (s, list) = common::json(app.get("/api/v1/schedules").await).await;
    assert_eq!(s, 200);
    assert!(list.as_array().unwrap().iter().any(|x| x["id"] == id.as_str()));
    let (s, off) = common::json(
        app.patch_json(&format!("/api/v1/schedules/{id}"), &json!({"enabled": false}))
            .await,
    )
    .await;
    assert_eq!((s, off["enabled"].as_bool()), (200, Some(false)));
    assert_eq!(
        app.delete(&format!("/api/v1/schedules/{id}"))
            .await
            .status()
            .as_u16(),
        204
    );
    assert_eq!(
        app.get(&format!("/api/v1/schedules/{id}"))
            .await
            .status()
            .as_u16(),
        404
    );
    assert_eq!(app.get_anon("/api/v1/schedules").await.status().as_u16(), 401);
}

/// What a schedule change leaves behind: schedule rows, dispatch outbox rows, `schedule.*` audit
/// entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rows {
    schedules: i64,
    outbox: i64,
    audit: i64,
}

async fn rows(app: &common::TestApp) -> Rows {
    let pool = &app.state().store.pool;
    let count =
        |sql: &'static str| async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await.unwrap() };
    Rows {
        schedules: count("SELECT COUNT(*) FROM schedules").await,
        outbox: count("SELECT COUNT(*) FROM dispatch_outbox").await,
        audit: count("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'schedule.%'").await,
    }
}

async fn status(
    app: &common::TestApp,
    method: reqwest::Method,
    path: &str,
    bearer: &str,
    body: &Value,
) -> (u16, Value) {
    common::json(
        app.client
            .request(method, app.url(path))
            .bearer_auth(bearer)
            .json(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn a_refused_schedule_change_leaves_no_schedule_row_no_outbox_row_and_no_audit_entry() {
    // The dispatcher waits ten minutes before it takes outbox rows: they stay to be counted.
    let app = common::spawn_app_with(|s| s.dispatch_debounce_ms = 600_000).await;
    let (p, _, sha) = setup(&app).await;
    let q = uid("q");
    dispatch_support::area(&app, &q, None).await;
    let draft = media(&app, "draft", 1000).await;
    let uid_op = console_support::user(&app, &uid("op"), "operator", &[&q], "operator-password").await;
    let op = console_support::token(&app, &uid_op).await;
    let body = json!({"title": "t", "media": [sha], "targets": {"areas": [p]},
                      "rule": {"kind": "cron", "cron": "0 6 * * *"}});
    let before = rows(&app).await;

    let mut unapproved = body.clone();
    unapproved["media"] = json!([sha, draft]);
    let (s, b) = status(
        &app,
        reqwest::Method::POST,
        "/api/v1/schedules",
        &app.token,
        &unapproved,
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (422, Some("media_not_approved")),
        "{b}"
    );
    let (s, b) = status(&app, reqwest::Method::POST, "/api/v1/schedules", &op, &body).await;
    assert_eq!(s, 403, "a target outside the operator's scope: {b}");
    assert_eq!(rows(&app).await, before, "a refused creation writes nothing");

    // A refused edit or delete of an existing schedule leaves it, and writes nothing either.
    let (s, b) = status(
        &app,
        reqwest::Method::POST,
        "/api/v1/schedules",
        &app.token,
        &body,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let path = format!("/api/v1/schedules/{}", b["schedule"]["id"].as_str().unwrap());
    let stored = rows(&app).await;
    let (s, _) = status(&app, reqwest::Method::PUT, &path, &app.token, &unapproved).await;
    assert_eq!(s, 422);
    for method in [
        reqwest::Method::PUT,
        reqwest::Method::PATCH,
        reqwest::Method::DELETE,
    ] {
        let b = if method == reqwest::Method::PATCH {
            json!({"enabled": false})
        } else {
            body.clone()
        };
        let (s, r) = status(&app, method.clone(), &path, &op, &b).await;
        assert_eq!(s, 403, "{method} by an operator of another area: {r}");
    }
    assert_eq!(rows(&app).await, stored);
    let (_, after) = common::json(app.get(&path).await).await;
    assert_eq!(
        (after["title"].as_str(), after["enabled"].as_bool()),
        (Some("t"), Some(true))
    );
}

#[tokio::test]
async fn an_accepted_schedule_change_leaves_exactly_one_schedule_row_outbox_row_and_audit_entry() {
    let app = common::spawn_app_with(|s| s.dispatch_debounce_ms = 600_000).await;
    let (p, _, sha) = setup(&app).await;
    let body = json!({"title": "t", "media": [sha], "targets": {"areas": [p]},
                      "rule": {"kind": "cron", "cron": "0 6 * * *"}});
    let before = rows(&app).await;
    let (s, b) = common::json(app.post_json("/api/v1/schedules", &body).await).await;
    assert_eq!(s, 201, "{b}");
    let id = b["schedule"]["id"].as_str().unwrap().to_string();
    let created = rows(&app).await;
    assert_eq!(
        created,
        Rows {
            schedules: before.schedules + 1,
            outbox: before.outbox + 1,
            audit: before.audit + 1
        }
    );
    let entry: (String, String, Option<String>, Option<String>) =
        sqlx::query_as("SELECT actor, action, before_json, after_json FROM audit_log WHERE entity = $1")
            .bind(format!("schedule:{id}"))
            .fetch_one(&app.state().store.pool)
            .await
            .unwrap();
    assert_eq!(
        (entry.0.as_str(), entry.1.as_str()),
        ("admin-token", "schedule.create")
    );
    assert!(entry.2.is_none() && entry.3.unwrap().contains(&id));
    let change: String =
        sqlx::query_scalar("SELECT change FROM dispatch_outbox ORDER BY created_at DESC, id DESC")
            .fetch_one(&app.state().store.pool)
            .await
            .unwrap();
    assert!(
        change.contains(&p),
        "the outbox row covers the schedule's targets: {change}"
    );

    let path = format!("/api/v1/schedules/{id}");
    let (s, _) = common::json(app.patch_json(&path, &json!({"enabled": false})).await).await;
    assert_eq!(s, 200);
    let disabled = rows(&app).await;
    assert_eq!(
        (disabled.outbox, disabled.audit),
        (created.outbox + 1, created.audit + 1)
    );
    let (s, _) = common::json(app.put_json(&path, &body).await).await;
    assert_eq!(s, 200);
    let edited = rows(&app).await;
    assert_eq!(
        (edited.outbox, edited.audit),
        (disabled.outbox + 1, disabled.audit + 1)
    );
    assert_eq!(app.delete(&path).await.status().as_u16(), 204);
    assert_eq!(
        rows(&app).await,
        Rows {
            schedules: before.schedules,
            outbox: edited.outbox + 1,
            audit: edited.audit + 1
        }
    );
}

/// Issue 11, item 2: four schedules every minute with 180-character titles made a 5.67 MB
/// manifest (8,003 items) that no device could take. The same requests now: the dispatcher cuts
/// the first schedule's window to fit `max_manifest_bytes` (1 MiB), and a schedule that would
/// exceed it even over the shortest window (24 h) is refused with a 422 naming the devices; the
/// refused ones leave nothing behind.
#[tokio::test]
async fn schedules_that_would_make_a_manifest_exceed_the_cap_are_refused_naming_the_devices() {
    let app = common::spawn_app().await;
    let p = uid("p");
    area(&app, &p, None).await;
    let ids: Vec<String> = (0..3).map(|_| uid("lc")).collect();
    for id in &ids {
        device(&app, id, &p, "cap-password", None).await;
    }
    let sha = media(&app, "approved", 20_000).await;
    let mut dev = connect(&app, &ids[0], "cap-password", None).await.unwrap();
    let desired = nguon_protocol::topic::desired(&nguon_protocol::DeviceId::parse(&ids[0]).unwrap());
    dev.subscribe(&desired).await;

    let title = "A".repeat(180);
    let mut codes = Vec::new();
    let mut refusal = Value::Null;
    for _ in 0..4 {
        let (s, b) = common::json(
            app.post_json(
                "/api/v1/schedules",
                &json!({"title": title, "media": [sha], "targets": {"areas": [p]},
                        "rule": {"kind": "cron", "cron": "* * * * *"}, "time_zone": "Asia/Ho_Chi_Minh"}),
            )
            .await,
        )
        .await;
        codes.push(s);
        if s == 422 {
            refusal = b;
        }
    }
    assert_eq!(codes, [201, 422, 422, 422], "{refusal}");
    assert_eq!(refusal["error"]["code"], "manifest_too_large", "{refusal}");
    let msg = refusal["error"]["message"].as_str().unwrap();
    for id in &ids {
        assert!(msg.contains(id.as_str()), "the refusal names {id}: {msg}");
    }
    let (_, list) = common::json(app.get("/api/v1/schedules").await).await;
    assert_eq!(
        list.as_array().map(|a| a.len()),
        Some(1),
        "the refused ones left nothing: {list}"
    );

    // What the device receives fits the cap.
    let cap = app.settings.max_manifest_bytes as usize;
    let m = dev
        .next_on(&desired, |b| String::from_utf8_lossy(b).contains("AAAAAAAAAA"))
        .await;
    assert!(m.payload.len() <= cap, "{} bytes > {cap}", m.payload.len());
}

/// The other half of the cap: a device whose manifest over the look-ahead window would exceed
/// `max_manifest_bytes` gets a shorter window that fits, ending where its items stop.
#[tokio::test]
async fn an_over_cap_manifest_is_sent_with_a_shorter_window_that_fits() {
    let cap = 256 * 1024;
    let app = common::spawn_app_with(|s| s.max_manifest_bytes = cap as u64).await;
    let p = uid("p");
    area(&app, &p, None).await;
    let id = uid("lc");
    device(&app, &id, &p, "cap-password", None).await;
    let sha = media(&app, "approved", 20_000).await;
    let mut dev = connect(&app, &id, "cap-password", None).await.unwrap();
    let did = nguon_protocol::DeviceId::parse(&id).unwrap();
    let desired = nguon_protocol::topic::desired(&did);
    dev.subscribe(&desired).await;
    // Every 5 minutes: ~150 KB a day fits the cap over 24 h; 72 h (~450 KB) does not.
    let (s, b) = common::json(
        app.post_json(
            "/api/v1/schedules",
            &json!({"title": "B".repeat(180), "media": [sha], "targets": {"devices": [id]},
                    "rule": {"kind": "cron", "cron": "*/5 * * * *"}, "time_zone": "Asia/Ho_Chi_Minh"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let m = dev
        .next_on(&desired, |b| String::from_utf8_lossy(b).contains("BBBBBBBBBB"))
        .await;
    let opened = nguon_protocol::ServerMessage::open(
        &m.payload,
        &app.server_key(),
        &nguon_protocol::Audience::Device(did),
        chrono::Utc::now(),
        chrono::Duration::seconds(60),
    )
    .unwrap();
    let nguon_protocol::ServerBody::Desired(man) = opened.body else {
        panic!("not a manifest")
    };
    let window = man.window_end - man.window_start;
    eprintln!(
        "manifest: {} bytes (cap {cap}), {} items, window {} h",
        m.payload.len(),
        man.items.len(),
        window.num_hours()
    );
    assert!(m.payload.len() <= cap, "{} bytes > {cap}", m.payload.len());
    assert!(
        window >= chrono::Duration::hours(24) && window < chrono::Duration::hours(72),
        "the window was shortened, not emptied: {window}"
    );
    assert!(man.items.len() >= 24 * 12, "{} items", man.items.len());
    assert!(man.items.iter().all(|i| i.starts_at < man.window_end));
    let last = man.items.last().unwrap().starts_at;
    assert!(
        man.window_end - last <= chrono::Duration::minutes(5),
        "the window ends where the items stop"
    );
    assert!(metric(&app, "nguon_manifests_shortened_total").await >= 1);
}
