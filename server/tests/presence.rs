//! Presence from retained state messages and last wills, with the session counter guarding
//! against late wills of older sessions.

use crate::common;
use crate::dispatch_support;

use dispatch_support::*;
use nguon_protocol::{DeviceId, topic};
use rumqttc::{LastWill, QoS};

async fn status(app: &common::TestApp, id: &str) -> serde_json::Value {
    common::json(app.get(&format!("/api/v1/devices/{id}")).await)
        .await
        .1
}

#[tokio::test]
async fn dropping_the_connection_marks_the_device_offline_and_a_late_old_will_does_not_undo_a_reconnect() {
    let app = common::spawn_app().await;
    let p = uid("p");
    area(&app, &p, None).await;
    let id = uid("lc");
    device(&app, &id, &p, "presence-password", None).await;
    let state_topic = topic::state(&DeviceId::parse(&id).unwrap());
    let will = |session| {
        LastWill::new(
            &state_topic,
            state_payload(&id, false, session),
            QoS::AtLeastOnce,
            true,
        )
    };

    let dev = connect(&app, &id, "presence-password", Some(will(1)))
        .await
        .unwrap();
    dev.publish(&state_topic, state_payload(&id, true, 1), true).await;
    eventually("online", || async {
        (status(&app, &id).await["online"] == true).then_some(())
    })
    .await;

    // No DISCONNECT: the broker publishes the will.
    dev.kill();
    eventually("offline from the last will", || async {
        (status(&app, &id).await["online"] == false).then_some(())
    })
    .await;

    // Reconnect with session 2, then the stale will of session 1 arrives late.
    let dev2 = connect(&app, &id, "presence-password", Some(will(2)))
        .await
        .unwrap();
    dev2.publish(&state_topic, state_payload(&id, true, 2), true)
        .await;
    eventually("online again", || async {
        let s = status(&app, &id).await;
        (s["online"] == true && s["session"] == 2).then_some(())
    })
    .await;
    dev2.publish(&state_topic, state_payload(&id, false, 1), false)
        .await;
    // Sentinel on the same connection, ingested after the stale will: a heartbeat with a marker.
    let hb = serde_json::json!({"v": 1, "device": id, "at": chrono::Utc::now(), "session": 2, "volume": 80,
        "now_playing": null, "manifest_version": 4242, "cache_bytes": 0, "disk_free_bytes": 0,
        "clock_offset_ms": null, "agent_version": "test", "uptime_s": 1});
    dev2.publish(
        &topic::telemetry(&DeviceId::parse(&id).unwrap()),
        serde_json::to_vec(&hb).unwrap(),
        false,
    )
    .await;
    eventually("the sentinel heartbeat", || async {
        (status(&app, &id).await["manifest_version"] == 4242).then_some(())
    })
    .await;
    let s = status(&app, &id).await;
    assert_eq!(s["online"], true, "{s}");
    assert_eq!(s["session"], 2, "{s}");
}
