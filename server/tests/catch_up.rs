//! Emergencies as desired state (issue 12 §1) and per-target tracking (§2), against the real
//! server with fake devices: an emergency play-now becomes an item of each target's retained
//! manifest with its window; a stop cancels it there; the validity window is checked; the
//! tracking of `GET /api/v1/commands/{id}` follows the acks and proofs devices send.

use crate::common;
use crate::dispatch_support;

use chrono::{DateTime, Utc};
use dispatch_support::*;
use nguon_protocol::{
    Audience, DeviceId, Event, EventBatch, EventBody, Manifest, PlayOutcome, Priority, ProofOfPlay,
    ServerBody, ServerMessage, topic,
};
use serde_json::{Value, json};

/// The next manifest of `d` that `pred` accepts (also used by `schedule_repetition`).
pub(crate) async fn manifest_where(
    app: &common::TestApp,
    d: &mut TestDevice,
    pred: impl Fn(&Manifest) -> bool,
) -> Manifest {
    let desired = topic::desired(&DeviceId::parse(&d.id).unwrap());
    let key = app.server_key();
    let id = d.id.clone();
    let m = d
        .next_on(&desired, |b| {
            ServerMessage::open(
                b,
                &key,
                &Audience::Device(DeviceId::parse(&id).unwrap()),
                Utc::now(),
                chrono::Duration::seconds(60),
            )
            .ok()
            .and_then(|m| match m.body {
                ServerBody::Desired(m) => Some(pred(&m)),
                _ => None,
            })
            .unwrap_or(false)
        })
        .await;
    open_manifest(app, &d.id, &m.payload)
}

async fn send(d: &TestDevice, events: Vec<EventBody>) {
    let batch = EventBatch {
        v: 1,
        device: DeviceId::parse(&d.id).unwrap(),
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
    d.publish(
        &topic::events(&DeviceId::parse(&d.id).unwrap()),
        batch.seal(None).to_bytes(),
        false,
    )
    .await;
}

#[tokio::test]
async fn an_emergency_is_in_every_target_manifest_for_its_window_and_a_stop_cancels_it_there() {
    let app = common::spawn_app().await;
    let p = uid("p");
    area(&app, &p, None).await;
    let (a, b) = (uid("lc"), uid("lc"));
    device(&app, &a, &p, "catch-up-password", None).await;
    device(&app, &b, &p, "catch-up-password", None).await;
    let sha = media(&app, "approved", 20_000).await;
    let mut d = connect(&app, &a, "catch-up-password", None).await.unwrap();
    d.subscribe(&topic::desired(&DeviceId::parse(&a).unwrap())).await;
    manifest_where(&app, &mut d, |_| true).await;

    let (s, issued) = common::json(
        app.post_json(
            &format!("/api/v1/areas/{p}/commands"),
            &json!({"action": "play_now", "media": [sha], "priority": "emergency", "valid_for_s": 900}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 202, "{issued}");
    assert_eq!(issued["targets"], 2, "{issued}");
    let cid = issued["command_id"].as_str().unwrap().to_string();
    let issued_at: DateTime<Utc> = issued["issued_at"].as_str().unwrap().parse().unwrap();
    let expires: DateTime<Utc> = issued["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((expires - issued_at).num_seconds(), 900);

    let m = manifest_where(&app, &mut d, |m| m.items.iter().any(|i| i.id == cid)).await;
    let item = m.items.iter().find(|i| i.id == cid).unwrap();
    assert_eq!(item.priority, Priority::Emergency);
    assert_eq!(item.schedule_id, "");
    assert_eq!(item.starts_at, issued_at);
    assert_eq!(item.play_until, Some(expires));
    assert!(m.media.iter().any(|r| r.sha256 == sha));
    assert!(m.cancelled.is_empty());

    // A stop naming it cancels it for the devices it covers.
    let (s, stop) = common::json(
        app.post_json(
            &format!("/api/v1/devices/{a}/commands"),
            &json!({"action": "stop", "item_id": cid}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 202, "{stop}");
    let m = manifest_where(&app, &mut d, |m| !m.cancelled.is_empty()).await;
    assert_eq!(m.cancelled, vec![cid.clone()]);
    assert!(!m.items.iter().any(|i| i.id == cid), "{m:?}");

    // Device b was not covered by the stop: its stored manifest still carries the message.
    let mut e = connect(&app, &b, "catch-up-password", None).await.unwrap();
    e.subscribe(&topic::desired(&DeviceId::parse(&b).unwrap())).await;
    let m = manifest_where(&app, &mut e, |_| true).await;
    assert!(m.items.iter().any(|i| i.id == cid), "{m:?}");
    assert!(m.cancelled.is_empty());
}

#[tokio::test]
async fn a_validity_window_is_checked_and_a_normal_play_now_has_none() {
    let app = common::spawn_app().await;
    let p = uid("p");
    area(&app, &p, None).await;
    device(&app, &uid("lc"), &p, "catch-up-password", None).await;
    let sha = media(&app, "approved", 1_000).await;
    let past = (Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    for bad in [
        json!({"action": "play_now", "media": [sha], "valid_for_s": 5}),
        json!({"action": "play_now", "media": [sha], "valid_for_s": 86_401}),
        json!({"action": "play_now", "media": [sha], "valid_for_s": 60, "expires_at": past}),
        json!({"action": "play_now", "media": [sha], "expires_at": past}),
    ] {
        let (s, b) = common::json(app.post_json(&format!("/api/v1/areas/{p}/commands"), &bad).await).await;
        assert_eq!(s, 400, "{bad} → {b}");
        assert_eq!(b["error"]["code"], "invalid_validity", "{b}");
    }
    let (s, b) = common::json(
        app.post_json(
            &format!("/api/v1/areas/{p}/commands"),
            &json!({"action": "play_now", "media": [sha], "priority": "normal"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 202, "{b}");
    let issued: DateTime<Utc> = b["issued_at"].as_str().unwrap().parse().unwrap();
    let expires: DateTime<Utc> = b["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((expires - issued).num_seconds(), 300, "the command TTL: {b}");
}

#[tokio::test]
async fn tracking_follows_acks_and_proofs_per_target_and_counts_them() {
    let app = common::spawn_app().await;
    let p = uid("p");
    area(&app, &p, None).await;
    let (a, b, c) = (uid("lc"), uid("lc"), uid("lc"));
    for id in [&a, &b, &c] {
        device(&app, id, &p, "catch-up-password", None).await;
    }
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
    assert_eq!(
        (issued["targets"].as_u64(), issued["online"].as_u64()),
        (Some(3), Some(0))
    );
    let cid = issued["command_id"].as_str().unwrap().to_string();
    let at: DateTime<Utc> = issued["issued_at"].as_str().unwrap().parse().unwrap();
    let proof = |outcome, late_s: i64| {
        EventBody::Play(ProofOfPlay {
            item_id: cid.clone(),
            schedule_id: String::new(),
            occurrence_at: at,
            sha256: sha.clone(),
            priority: Priority::Emergency,
            started_at: Some(at + chrono::Duration::seconds(late_s)),
            ended_at: Some(at + chrono::Duration::seconds(late_s + 5)),
            outcome,
            reason: None,
            max_rms_dbfs: None,
            silent: false,
            relay: None,
        })
    };
    let ack = EventBody::Ack {
        message_id: cid.parse().unwrap(),
        ok: true,
        manifest_version: None,
        reason: None,
    };
    let da = connect(&app, &a, "catch-up-password", None).await.unwrap();
    let db = connect(&app, &b, "catch-up-password", None).await.unwrap();
    send(&da, vec![ack.clone(), proof(PlayOutcome::Played, 0)]).await;
    send(&db, vec![ack, proof(PlayOutcome::PlayedLate, 42)]).await;
    let r = eventually("both proofs in the tracking", || async {
        let (s, r) = common::json(app.get(&format!("/api/v1/commands/{cid}")).await).await;
        (s == 200 && r["tracking"]["counts"]["played_late"] == 1 && r["tracking"]["counts"]["played"] == 1)
            .then_some(r)
    })
    .await;
    let t = &r["tracking"];
    assert_eq!(t["counts"]["offline_pending"], 1, "{t}");
    assert_eq!(t["reached"], 2, "{t}");
    let total: u64 = t["counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 3);
    let target = |id: &str| -> Value {
        t["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["device_id"] == id)
            .cloned()
            .unwrap()
    };
    let late = target(&b);
    assert_eq!(late["state"], "played_late");
    assert_eq!(late["delay_ms"], 42_000);
    let states: Vec<&str> = late["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["offline_pending", "delivered", "playing", "played_late"]);
    assert_eq!(target(&c)["state"], "offline_pending");
    assert_eq!(target(&a)["area"], p.as_str());
}

#[tokio::test]
async fn the_console_shows_who_heard_it_live_per_commune_and_as_csv_inside_the_operators_scope() {
    use crate::console_support::{client, login, user};
    let app = common::spawn_app().await;
    let (p, a, b) = (uid("p"), uid("xa-a"), uid("xa-b"));
    area(&app, &p, None).await;
    area(&app, &a, Some(&p)).await;
    area(&app, &b, Some(&p)).await;
    let (da, db) = (uid("lc"), uid("lc"));
    device(&app, &da, &a, "catch-up-password", None).await;
    device(&app, &db, &b, "catch-up-password", None).await;
    let sha = media(&app, "approved", 5_000).await;
    let (s, issued) = common::json(
        app.post_json(
            &format!("/api/v1/areas/{a}/commands"),
            &json!({"action": "play_now", "media": [sha], "priority": "emergency", "title": "Cảnh báo lũ"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 202, "{issued}");
    let cid = issued["command_id"].as_str().unwrap().to_string();
    user(&app, "vanhanh-a", "operator", &[&a], "mat-khau-van-hanh").await;
    user(&app, "vanhanh-b", "operator", &[&b], "mat-khau-van-hanh").await;
    let c = client();
    let sa = login(&app, &c, "vanhanh-a", "mat-khau-van-hanh").await;
    let get = |path: String, cookie: String| {
        let c = c.clone();
        let url = app.url(&path);
        async move { c.get(url).header("cookie", cookie).send().await.unwrap() }
    };
    let page = get(format!("/console/commands/{cid}"), sa.cookie.clone()).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Ai đã nghe"), "Vietnamese first");
    assert!(
        html.contains(&format!("data-area=\"{a}\"")),
        "a table for the commune"
    );
    assert!(html.contains(&format!("data-device=\"{da}\"")), "{html}");
    assert!(html.contains("Chờ (ngoại tuyến)"), "offline at issue");
    let list = get("/console/commands".into(), sa.cookie.clone())
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains(&cid), "listed for its commune's operator");

    // The live view: the first server-sent event carries the same tables.
    let mut live = get(format!("/console/commands/{cid}/live"), sa.cookie.clone()).await;
    assert_eq!(live.status(), 200);
    assert!(
        live.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut got = String::new();
    while !(got.contains("event: tracking") && got.contains(&da)) {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), live.chunk())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("the stream stays open");
        got.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(live);

    let csv = get(format!("/console/commands/{cid}/csv"), sa.cookie.clone()).await;
    assert_eq!(csv.status(), 200);
    let text = csv.text().await.unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 2, "a header and one target: {text}");
    assert!(
        rows[1].starts_with(&format!("{a},")) && rows[1].contains(&da) && rows[1].contains("offline_pending")
    );

    // Another commune's operator sees nothing of it.
    let sb = login(&app, &c, "vanhanh-b", "mat-khau-van-hanh").await;
    for path in [
        format!("/console/commands/{cid}"),
        format!("/console/commands/{cid}/csv"),
    ] {
        assert_eq!(get(path, sb.cookie.clone()).await.status(), 403);
    }
    let list = get("/console/commands".into(), sb.cookie.clone())
        .await
        .text()
        .await
        .unwrap();
    assert!(!list.contains(&cid));
    let _ = db;
}
