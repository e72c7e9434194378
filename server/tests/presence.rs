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

/// Issue 11, item 5: with another device's broker credentials, a forged `online: false` with
/// session 2^63−1 on a device's `state` topic kept that device offline after its agent restarted
/// (its real session 2 looked stale). State is now signed with the device key: the forgery is
/// refused (unsigned, or signed with the thief's key), counted, and the restart is seen.
#[tokio::test]
async fn a_forged_offline_state_from_another_devices_credentials_is_refused_and_the_restart_is_seen() {
    let app = common::spawn_app_with(|s| s.allow_unsigned_devices = false).await;
    let p = uid("p");
    area(&app, &p, None).await;
    let (victim, thief) = (uid("lc"), uid("lc"));
    let (vk, tk) = (
        nguon_protocol::DeviceKey::generate(),
        nguon_protocol::DeviceKey::generate(),
    );
    device(&app, &victim, &p, "victim-password", Some(&vk)).await;
    device(&app, &thief, &p, "thief-password", Some(&tk)).await;
    let state_topic = topic::state(&DeviceId::parse(&victim).unwrap());
    let will = |session| {
        LastWill::new(
            &state_topic,
            state_report(&victim, false, session, &vk),
            QoS::AtLeastOnce,
            true,
        )
    };

    let dev = connect(&app, &victim, "victim-password", Some(will(1)))
        .await
        .unwrap();
    dev.publish(&state_topic, state_report(&victim, true, 1, &vk), true)
        .await;
    eventually("online", || async {
        (status(&app, &victim).await["online"] == true).then_some(())
    })
    .await;

    // The attack: the thief's own connection writes the victim's state topic (the embedded broker
    // has no topic ACL; with one the broker drops it first). Bare JSON as the old agents sent,
    // then the same forgery signed with the thief's key.
    let attacker = connect(&app, &thief, "thief-password", None).await.unwrap();
    let huge = i64::MAX as u64;
    attacker
        .publish(&state_topic, state_payload(&victim, false, huge), true)
        .await;
    attacker
        .publish(&state_topic, state_report(&victim, false, huge, &tk), true)
        .await;
    // A sentinel from the victim after them, ingested after the forgeries.
    let hb = topic::telemetry(&DeviceId::parse(&victim).unwrap());
    dev.publish(&hb, heartbeat_report(&victim, 1, 4243, &vk), false)
        .await;
    eventually("the sentinel heartbeat", || async {
        (status(&app, &victim).await["manifest_version"] == 4243).then_some(())
    })
    .await;
    let s = status(&app, &victim).await;
    assert_eq!(
        (s["online"].clone(), s["session"].clone()),
        (true.into(), 1.into()),
        "{s}"
    );
    if !app.external_mqtt {
        // On a shared broker other tests count too, and an ACL may have dropped the forgeries.
        assert_eq!(metric(&app, "nguon_reports_bad_signature_total").await, 2);
    }

    // The agent restarts: its will marks session 1 offline, session 2 comes online.
    dev.kill();
    eventually("offline from the signed will", || async {
        (status(&app, &victim).await["online"] == false).then_some(())
    })
    .await;
    let dev2 = connect(&app, &victim, "victim-password", Some(will(2)))
        .await
        .unwrap();
    dev2.publish(&state_topic, state_report(&victim, true, 2, &vk), true)
        .await;
    eventually("online again after the restart", || async {
        let s = status(&app, &victim).await;
        (s["online"] == true && s["session"] == 2).then_some(())
    })
    .await;

    // A replay of session 2's genuine `online` after its will cannot bring it back online.
    dev2.kill();
    eventually("offline again", || async {
        (status(&app, &victim).await["online"] == false).then_some(())
    })
    .await;
    attacker
        .publish(&state_topic, state_report(&victim, true, 2, &vk), false)
        .await;
    attacker
        .publish(&hb, heartbeat_report(&victim, 2, 4244, &vk), false)
        .await;
    eventually("the replayed heartbeat", || async {
        (status(&app, &victim).await["manifest_version"] == 4244).then_some(())
    })
    .await;
    assert_eq!(
        status(&app, &victim).await["online"],
        false,
        "a replayed online does not undo the will"
    );
}
