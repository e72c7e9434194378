//! Issue 16, device identity: a device reinstalled with the same credentials but a fresh data
//! directory (its session counter back at 1, a new install id) is a new install of the same
//! device. It is online at once, a late will of the old install stays stale, its heartbeats are
//! kept, and its status history and availability go on across the reinstall (before install ids,
//! the counter below the stored one was taken for stale messages: offline until it passed the old
//! value, availability 12.9 % for a working cluster).

use std::time::Duration;

use crate::common;
use crate::dispatch_support::*;
use nguon_protocol::{DeviceId, topic};

async fn status(app: &common::TestApp, id: &str) -> serde_json::Value {
    common::json(app.get(&format!("/api/v1/devices/{id}")).await)
        .await
        .1
}

fn state(id: &str, online: bool, session: u64, install: &str) -> Vec<u8> {
    serde_json::to_vec(
        &serde_json::json!({"v": 1, "device": id, "online": online, "session": session,
        "at": chrono::Utc::now(), "install": install}),
    )
    .unwrap()
}

fn heartbeat(id: &str, session: u64, install: &str, marker: u64) -> Vec<u8> {
    serde_json::to_vec(
        &serde_json::json!({"v": 1, "device": id, "at": chrono::Utc::now(),
        "session": session, "volume": 80, "now_playing": null, "manifest_version": marker,
        "cache_bytes": 0, "disk_free_bytes": 0, "clock_offset_ms": null, "agent_version": "test",
        "uptime_s": 1, "install": install}),
    )
    .unwrap()
}

#[tokio::test]
async fn a_reinstall_with_its_counter_back_at_1_is_online_at_once_and_its_availability_goes_on() {
    let app = common::spawn_app().await;
    let p = uid("p");
    area(&app, &p, None).await;
    let id = uid("lc");
    device(&app, &id, &p, "install-password", None).await;
    let dev_id = DeviceId::parse(&id).unwrap();
    let (st, tel) = (topic::state(&dev_id), topic::telemetry(&dev_id));
    let from = chrono::Utc::now().timestamp_millis();

    // The first install has run a long time: session 500.
    let old = connect(&app, &id, "install-password", None).await.unwrap();
    old.publish(&st, state(&id, true, 500, "install-a"), true).await;
    eventually("online in session 500", || async {
        let s = status(&app, &id).await;
        (s["online"] == true && s["session"] == 500).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    old.publish(&st, state(&id, false, 500, "install-a"), true).await;
    eventually("offline", || async {
        (status(&app, &id).await["online"] == false).then_some(())
    })
    .await;
    old.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Reinstalled: a fresh data directory, session 1, a new install id.
    let new = connect(&app, &id, "install-password", None).await.unwrap();
    new.publish(&st, state(&id, true, 1, "install-b"), true).await;
    eventually("the reinstall online, numbered after the old install", || async {
        let s = status(&app, &id).await;
        (s["online"] == true && s["session"] == 501).then_some(())
    })
    .await;
    // A late will of the old install is stale; the new install's heartbeat is stored.
    new.publish(&st, state(&id, false, 500, "install-a"), false).await;
    new.publish(&tel, heartbeat(&id, 1, "install-b", 7777), false)
        .await;
    eventually("the reinstall's heartbeat", || async {
        (status(&app, &id).await["manifest_version"] == 7777).then_some(())
    })
    .await;
    let s = status(&app, &id).await;
    assert_eq!(
        (s["online"].clone(), s["session"].clone()),
        (true.into(), 501.into()),
        "{s}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let to = chrono::Utc::now().timestamp_millis();
    let (code, h) = common::json(
        app.get(&format!(
            "/api/v1/devices/{id}/status-history?from={from}&to={to}"
        ))
        .await,
    )
    .await;
    assert_eq!(code, 200, "{h}");
    let sessions: Vec<i64> = h["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["session"].as_i64().unwrap())
        .collect();
    assert_eq!(sessions, [501, 500], "newest first: {h}");
    assert!(
        h["intervals"][0]["online_to"].is_null(),
        "the reinstall's interval is open: {h}"
    );
    assert_eq!(h["intervals"][1]["ended_by"], "offline", "{h}");
    // Online about 1.5 s + (at least) 1.5 s of a period of about 3.5–4 s; counted without the
    // reinstall it would be under one half.
    let ratio = h["availability"]["ratio"].as_f64().unwrap();
    assert!(ratio > 0.6, "availability {ratio}: {h}");

    // Restarted in place later (same data directory, same install): the numbering goes on.
    new.publish(&st, state(&id, true, 2, "install-b"), true).await;
    eventually("session 502", || async {
        (status(&app, &id).await["session"] == 502).then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_agent_upgraded_in_place_keeps_its_numbering_when_it_first_sends_an_install_id() {
    let app = common::spawn_app().await;
    let p = uid("p");
    area(&app, &p, None).await;
    let id = uid("lc");
    device(&app, &id, &p, "install-password", None).await;
    let st = topic::state(&DeviceId::parse(&id).unwrap());
    let dev = connect(&app, &id, "install-password", None).await.unwrap();
    // An older agent (no install id), then the upgraded one continuing its counter.
    dev.publish(&st, state_payload(&id, true, 40), true).await;
    eventually("session 40", || async {
        (status(&app, &id).await["session"] == 40).then_some(())
    })
    .await;
    dev.publish(&st, state(&id, true, 41, "install-a"), true).await;
    eventually("session 41", || async {
        let s = status(&app, &id).await;
        (s["session"] == 41 && s["online"] == true).then_some(())
    })
    .await;
}
