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
/// (its real session 2 looked stale). Two walls now: the broker's topic ACL drops another
/// device's writes (embedded gate; Mosquitto's acl_file), and state is signed with the device
/// key, so even the device's own password without its key (a stolen config) forges nothing: the
/// forgery is refused (unsigned, or signed with another key), counted, and the restart is seen.
#[tokio::test]
async fn a_forged_offline_state_is_refused_and_the_restart_is_seen() {
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
    let hb = topic::telemetry(&DeviceId::parse(&victim).unwrap());
    let will = |session| {
        LastWill::new(
            &state_topic,
            state_report(&victim, false, session, &vk),
            QoS::AtLeastOnce,
            true,
        )
    };
    let huge = i64::MAX as u64;
    let forgeries = || {
        [
            state_payload(&victim, false, huge),
            state_report(&victim, false, huge, &tk),
        ]
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

    // The attack as reported: the thief's own connection writes the victim's state topic, bare
    // JSON as the old agents sent, then signed with the thief's key (the gate drops them and
    // disconnects the thief; a broker without ACL lets them through to the signature check).
    let attacker = connect(&app, &thief, "thief-password", None).await.unwrap();
    for f in forgeries() {
        attacker.publish(&state_topic, f, true).await;
    }
    // The same forgeries over the victim's own credentials (a stolen password, not the key): the
    // broker lets them through, the signature check does not.
    for f in forgeries() {
        dev.publish(&state_topic, f, true).await;
    }
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
        // Exactly the two over the victim's credentials reached the server (the gate dropped the
        // thief's); on a shared broker other tests count too.
        assert_eq!(metric(&app, "nguon_reports_bad_signature_total").await, 2);
    }

    // The agent stops: its signed will marks session 1 offline.
    dev.kill();
    eventually("offline from the signed will", || async {
        (status(&app, &victim).await["online"] == false).then_some(())
    })
    .await;

    // The agent restarts with session 2: online again (before, session 2 < 2^63−1 was "stale").
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
    let replay = connect(&app, &victim, "victim-password", None).await.unwrap();
    replay
        .publish(&state_topic, state_report(&victim, true, 2, &vk), false)
        .await;
    replay
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
