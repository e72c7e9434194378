//! Ingest of event batches: idempotent by event uuid, signatures enforced for devices with a key,
//! malformed payloads counted without stopping ingest.

use crate::common;
use crate::dispatch_support;

use chrono::Utc;
use dispatch_support::*;
use nguon_protocol::{
    DeviceId, DeviceKey, Event, EventBatch, EventBody, PlayOutcome, Priority, ProofOfPlay, topic,
};

fn play(id: uuid::Uuid) -> Event {
    let now = Utc::now();
    Event {
        id,
        at: now,
        body: EventBody::Play(ProofOfPlay {
            item_id: "s1@1".into(),
            schedule_id: "s1".into(),
            occurrence_at: now,
            sha256: "ab".repeat(32),
            priority: Priority::Normal,
            started_at: Some(now),
            ended_at: Some(now),
            outcome: PlayOutcome::Played,
            reason: None,
            max_rms_dbfs: None,
            silent: false,
            relay: None,
        }),
    }
}

fn batch(device: &str, events: Vec<Event>) -> EventBatch {
    EventBatch {
        v: 1,
        device: DeviceId::parse(device).unwrap(),
        sent_at: Utc::now(),
        events,
    }
}

async fn plays_of(app: &common::TestApp, id: &str) -> usize {
    common::json(app.get(&format!("/api/v1/plays?device={id}")).await)
        .await
        .1
        .as_array()
        .map_or(0, |a| a.len())
}

/// A server with one device of a new area, registered with a report key and connected to the
/// broker with `password`.
struct KeyedDevice {
    app: common::TestApp,
    id: String,
    key: DeviceKey,
    dev: TestDevice,
    did: DeviceId,
}

async fn keyed_device(password: &str) -> KeyedDevice {
    let app = common::spawn_app().await;
    let p = uid("p");
    area(&app, &p, None).await;
    let id = uid("lc");
    let key = DeviceKey::generate();
    device(&app, &id, &p, password, Some(&key)).await;
    let dev = connect(&app, &id, password, None).await.unwrap();
    let did = DeviceId::parse(&id).unwrap();
    KeyedDevice {
        app,
        id,
        key,
        dev,
        did,
    }
}

#[tokio::test]
async fn the_same_event_uuid_sent_twice_is_stored_once() {
    let app = common::spawn_app().await;
    let p = uid("p");
    area(&app, &p, None).await;
    let id = uid("lc");
    device(&app, &id, &p, "ingest-password", None).await;
    let dev = connect(&app, &id, "ingest-password", None).await.unwrap();
    let t = topic::events(&DeviceId::parse(&id).unwrap());
    let e = play(uuid::Uuid::new_v4());
    dev.publish(&t, batch(&id, vec![e.clone()]).seal(None).to_bytes(), false)
        .await;
    dev.publish(
        &t,
        batch(&id, vec![e.clone(), play(uuid::Uuid::new_v4())])
            .seal(None)
            .to_bytes(),
        false,
    )
    .await;
    eventually("both batches ingested", || async {
        (plays_of(&app, &id).await == 2).then_some(())
    })
    .await;
    eventually("the duplicate counted", || async {
        (metric(&app, "nguon_events_duplicate_total").await >= 1).then_some(())
    })
    .await;
    let rows = common::json(app.get(&format!("/api/v1/plays?device={id}")).await)
        .await
        .1;
    let ids: Vec<_> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.iter().filter(|x| **x == e.id.to_string()).count(), 1);
    assert_eq!(rows[0]["outcome"], "played");
}

#[tokio::test]
async fn reports_signed_with_another_key_or_unsigned_from_a_keyed_device_are_refused_and_counted() {
    let app = common::spawn_app().await;
    let p = uid("p");
    area(&app, &p, None).await;
    let (id, other) = (uid("lc"), uid("lc"));
    let key = DeviceKey::generate();
    let other_key = DeviceKey::generate();
    device(&app, &id, &p, "keyed-password", Some(&key)).await;
    device(&app, &other, &p, "other-password", Some(&other_key)).await;
    let dev = connect(&app, &id, "keyed-password", None).await.unwrap();
    let t = topic::events(&DeviceId::parse(&id).unwrap());
    dev.publish(
        &t,
        batch(&id, vec![play(uuid::Uuid::new_v4())])
            .seal(Some(&other_key))
            .to_bytes(),
        false,
    )
    .await;
    dev.publish(
        &t,
        batch(&id, vec![play(uuid::Uuid::new_v4())]).seal(None).to_bytes(),
        false,
    )
    .await;
    // A batch naming another device than its topic is refused too (not a signature problem).
    dev.publish(
        &t,
        batch(&other, vec![play(uuid::Uuid::new_v4())])
            .seal(Some(&key))
            .to_bytes(),
        false,
    )
    .await;
    dev.publish(&t, b"{not json".to_vec(), false).await;
    let good = play(uuid::Uuid::new_v4());
    dev.publish(
        &t,
        batch(&id, vec![good.clone()]).seal(Some(&key)).to_bytes(),
        false,
    )
    .await;
    eventually("the correctly signed batch stored", || async {
        (plays_of(&app, &id).await == 1).then_some(())
    })
    .await;
    assert_eq!(metric(&app, "nguon_reports_bad_signature_total").await, 2);
    assert!(metric(&app, "nguon_payloads_rejected_total").await >= 4);
    let rows = common::json(app.get(&format!("/api/v1/plays?device={id}")).await)
        .await
        .1;
    assert_eq!(rows[0]["event_id"], good.id.to_string());
}

/// The receipt on `payload`, opened with the server's key for device `id`: its event ids.
fn receipt_events(app: &common::TestApp, id: &str, payload: &[u8]) -> Vec<uuid::Uuid> {
    let msg = nguon_protocol::ServerMessage::open(
        payload,
        &app.server_key(),
        &nguon_protocol::Audience::Device(DeviceId::parse(id).unwrap()),
        Utc::now(),
        chrono::Duration::seconds(60),
    )
    .expect("a receipt signed by the server for this device");
    match msg.body {
        nguon_protocol::ServerBody::Receipt(r) => r.events,
        other => panic!("not a receipt: {other:?}"),
    }
}

#[tokio::test]
async fn every_stored_batch_is_answered_with_a_signed_receipt_naming_its_events_and_a_refused_one_is_not() {
    let KeyedDevice {
        app,
        id,
        key,
        mut dev,
        did,
    } = keyed_device("receipt-password").await;
    let receipts = topic::receipt(&did);
    dev.subscribe(&receipts).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let t = topic::events(&did);

    // A forged (unsigned) batch from a keyed device: refused, so no receipt may name it.
    let forged = play(uuid::Uuid::new_v4());
    dev.publish(&t, batch(&id, vec![forged.clone()]).seal(None).to_bytes(), false)
        .await;
    // A good batch, then the same events again (a resend after a lost receipt).
    let (a, b) = (play(uuid::Uuid::new_v4()), play(uuid::Uuid::new_v4()));
    let good = batch(&id, vec![a.clone(), b.clone()]).seal(Some(&key)).to_bytes();
    dev.publish(&t, good.clone(), false).await;
    let first = dev.next_on(&receipts, |_| true).await;
    let named = receipt_events(&app, &id, &first.payload);
    assert_eq!(
        named,
        vec![a.id, b.id],
        "the receipt names exactly the stored batch"
    );
    assert_eq!(plays_of(&app, &id).await, 2);

    dev.publish(&t, good, false).await;
    let second = dev.next_on(&receipts, |_| true).await;
    assert_eq!(receipt_events(&app, &id, &second.payload), vec![a.id, b.id]);
    assert_eq!(
        plays_of(&app, &id).await,
        2,
        "a resend is stored once and receipted again"
    );
    assert!(metric(&app, "nguon_reports_bad_signature_total").await >= 1);
}

/// Issue 11, item 9: one proof of play with a NUL byte used to fail the whole ingest transaction
/// on PostgreSQL, losing every device's events, states and heartbeats of the burst. Now that
/// event alone is refused (counted) and everything else of the burst is stored.
#[tokio::test]
async fn a_nul_byte_in_one_proof_of_play_costs_only_that_event_not_the_burst() {
    use nguon_server::mqtt::link::Incoming;
    use nguon_server::store::Backend;
    use nguon_server::store::ingest::{Burst, Play, write};
    use nguon_server::workers::ingest::Ingest;

    let app = common::spawn_app().await;
    let store = app.state().store.clone();
    let p = uid("p");
    area(&app, &p, None).await;
    let ids: Vec<String> = (0..3).map(|_| uid("lc")).collect();
    let keys: Vec<DeviceKey> = ids.iter().map(|_| DeviceKey::generate()).collect();
    for (id, k) in ids.iter().zip(&keys) {
        device(&app, id, &p, "nul-password", Some(k)).await;
    }
    let poisoned = |id: uuid::Uuid| {
        let mut e = play(id);
        if let EventBody::Play(p) = &mut e.body {
            p.item_id = "s1@1\u{0}".into();
        }
        e
    };

    // The attack as it was: a burst holding the NUL play is refused by PostgreSQL as a whole.
    let bad = poisoned(uuid::Uuid::new_v4());
    let EventBody::Play(bad_play) = bad.body.clone() else {
        unreachable!()
    };
    let EventBody::Play(good_play) = play(uuid::Uuid::new_v4()).body else {
        unreachable!()
    };
    let raw = Burst {
        plays: vec![
            Play {
                id: uuid::Uuid::new_v4().to_string(),
                device: ids[1].clone(),
                play: good_play,
            },
            Play {
                id: bad.id.to_string(),
                device: ids[0].clone(),
                play: bad_play,
            },
        ],
        ..Burst::default()
    };
    if store.backend == Backend::Postgres {
        assert!(
            write(&store, &raw, 0).await.is_err(),
            "PostgreSQL refuses a NUL byte in text: the whole transaction fails"
        );
        assert_eq!(
            plays_of(&app, &ids[1]).await,
            0,
            "…and the good play of the other device with it"
        );
    }

    // One burst: device 0 sends the NUL play among two good ones; devices 1 and 2 send good plays,
    // a state and a heartbeat.
    let msg = |topic: String, payload: Vec<u8>| Incoming {
        topic,
        payload: payload.into(),
        retain: false,
    };
    let dev = |i: usize| DeviceId::parse(&ids[i]).unwrap();
    let bad = poisoned(uuid::Uuid::new_v4());
    let mut msgs = vec![msg(
        topic::events(&dev(0)),
        batch(
            &ids[0],
            vec![
                play(uuid::Uuid::new_v4()),
                bad.clone(),
                play(uuid::Uuid::new_v4()),
            ],
        )
        .seal(Some(&keys[0]))
        .to_bytes(),
    )];
    for i in 1..3 {
        msgs.push(msg(
            topic::events(&dev(i)),
            batch(
                &ids[i],
                vec![play(uuid::Uuid::new_v4()), play(uuid::Uuid::new_v4())],
            )
            .seal(Some(&keys[i]))
            .to_bytes(),
        ));
        msgs.push(msg(
            topic::state(&dev(i)),
            state_report(&ids[i], true, 1, &keys[i]),
        ));
        msgs.push(msg(
            topic::telemetry(&dev(i)),
            heartbeat_report(&ids[i], 1, 7001, &keys[i]),
        ));
    }
    let mut ingest = Ingest::new(store.clone(), app.state().metrics.clone(), false);
    let r = ingest.process(msgs).await.expect("the burst is stored");
    assert_eq!(r.stored, 6, "every good play of every device: {r:?}");
    assert_eq!(r.rejected, 1, "the NUL play alone: {r:?}");
    assert_eq!(plays_of(&app, &ids[0]).await, 2);
    for id in &ids[1..] {
        assert_eq!(plays_of(&app, id).await, 2);
        let s = common::json(app.get(&format!("/api/v1/devices/{id}")).await)
            .await
            .1;
        assert_eq!(s["online"], true, "the state of the burst is stored: {s}");
        assert_eq!(
            s["manifest_version"], 7001,
            "the heartbeat of the burst is stored: {s}"
        );
    }
    assert!(
        r.receipts[&dev(0)].contains(&bad.id),
        "the refused event is receipted too, so the device does not send it forever"
    );
    assert!(metric(&app, "nguon_payloads_rejected_total").await >= 1);
}

/// Issue 11, item 5: a device registered without a key could have proofs of play stored in its
/// name by anyone on the broker. By default they are refused (counted); `allow_unsigned_devices`
/// accepts them, and the console shows a warning while it does.
#[tokio::test]
async fn unsigned_proofs_of_a_device_without_a_key_are_refused_by_default_and_accepted_only_when_allowed() {
    for allow in [false, true] {
        let app = common::spawn_app_with(|s| s.allow_unsigned_devices = allow).await;
        let p = uid("p");
        area(&app, &p, None).await;
        let id = uid("lc");
        device(&app, &id, &p, "unkeyed-password", None).await;
        let dev = connect(&app, &id, "unkeyed-password", None).await.unwrap();
        let did = DeviceId::parse(&id).unwrap();
        dev.publish(
            &topic::events(&did),
            batch(&id, vec![play(uuid::Uuid::new_v4())]).seal(None).to_bytes(),
            false,
        )
        .await;
        if allow {
            eventually("the unsigned play stored", || async {
                (plays_of(&app, &id).await == 1).then_some(())
            })
            .await;
        } else {
            eventually("the unsigned play refused and counted", || async {
                (metric(&app, "nguon_reports_unkeyed_total").await >= 1).then_some(())
            })
            .await;
            assert_eq!(plays_of(&app, &id).await, 0);
        }
        // The console says so on the devices page and the overview, only while allowed.
        let admin = app.unique("adm");
        crate::console_support::user(&app, &admin, "admin", &[], "admin-password-0123").await;
        let c = crate::console_support::client();
        let cookie = crate::console_support::login(&app, &c, &admin, "admin-password-0123")
            .await
            .cookie;
        for page in ["/console/devices", "/console"] {
            let html = c
                .get(app.url(page))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(html.contains("<h1"), "{page} is the page, not a redirect: {html}");
            assert_eq!(html.contains("unsigned-devices-warning"), allow, "{page}");
        }
    }
}

/// Issue 12 §6: what the silence and low-disk alarms read. A proof of play carries the loudness
/// the agent measured and whether the item stayed silent; a heartbeat the data disk's free and
/// total bytes. Both are stored and shown (`GET /api/v1/plays`, `GET /api/v1/devices/{id}`).
#[tokio::test]
async fn a_silent_play_and_the_disk_space_of_a_heartbeat_are_stored_and_shown() {
    let KeyedDevice {
        app,
        id,
        key,
        dev,
        did,
    } = keyed_device("measure-password").await;
    let mut silent = play(uuid::Uuid::new_v4());
    let mut loud = play(uuid::Uuid::new_v4());
    if let (EventBody::Play(s), EventBody::Play(l)) = (&mut silent.body, &mut loud.body) {
        (s.item_id, s.max_rms_dbfs, s.silent) = ("quiet@1".into(), Some(-97), true);
        (l.item_id, l.max_rms_dbfs) = ("loud@1".into(), Some(-14));
    }
    dev.publish(
        &topic::events(&did),
        batch(&id, vec![silent, loud]).seal(Some(&key)).to_bytes(),
        false,
    )
    .await;
    let mut hb = heartbeat(&id, 0, 7);
    hb.disk_free_bytes = 150 << 20;
    hb.disk_total_bytes = Some(4 << 30);
    dev.publish(&topic::telemetry(&did), hb.seal(Some(&key)).to_bytes(), false)
        .await;
    eventually("both plays and the heartbeat stored", || async {
        let d = common::json(app.get(&format!("/api/v1/devices/{id}")).await)
            .await
            .1;
        (plays_of(&app, &id).await == 2 && d["manifest_version"] == 7).then_some(d)
    })
    .await;
    let rows = common::json(app.get(&format!("/api/v1/plays?device={id}")).await)
        .await
        .1;
    let by = |item: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["item_id"] == item)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        (
            by("quiet@1")["max_rms_dbfs"].clone(),
            by("quiet@1")["silent"].clone()
        ),
        (serde_json::json!(-97), serde_json::json!(true))
    );
    assert_eq!(
        (
            by("loud@1")["max_rms_dbfs"].clone(),
            by("loud@1")["silent"].clone()
        ),
        (serde_json::json!(-14), serde_json::json!(false))
    );
    let d = common::json(app.get(&format!("/api/v1/devices/{id}")).await)
        .await
        .1;
    assert_eq!(d["disk_free_bytes"], 150 << 20, "{d}");
    assert_eq!(d["disk_total_bytes"], 4_i64 << 30, "{d}");
}

/// Issue 14: the broker a device's heartbeat names (the broker cluster's node its agent is on) is
/// stored as its last broker, replaced by the next heartbeat's, and shown in the API device record
/// and on the console's device page.
#[tokio::test]
async fn the_broker_of_the_last_heartbeat_is_the_devices_broker_in_the_api_and_the_console() {
    let KeyedDevice {
        app,
        id,
        key,
        dev,
        did,
    } = keyed_device("broker-password").await;
    let record = || async {
        common::json(app.get(&format!("/api/v1/devices/{id}")).await)
            .await
            .1
    };
    assert!(record().await["broker"].is_null(), "no heartbeat yet");
    for (marker, node) in [(3, "mqtt://10.0.0.11:1883"), (4, "mqtt://10.0.0.12:1883")] {
        let mut hb = heartbeat(&id, 0, marker);
        hb.broker = Some(node.into());
        dev.publish(&topic::telemetry(&did), hb.seal(Some(&key)).to_bytes(), false)
            .await;
        let d = eventually("the heartbeat stored", || async {
            let d = record().await;
            (d["manifest_version"] == marker).then_some(d)
        })
        .await;
        assert_eq!(d["broker"], node, "{d}");
    }
    let admin = app.unique("adm");
    crate::console_support::user(&app, &admin, "admin", &[], "admin-password-0123").await;
    let c = crate::console_support::client();
    let cookie = crate::console_support::login(&app, &c, &admin, "admin-password-0123")
        .await
        .cookie;
    let html = crate::console_support::page(&c, &app, &cookie, &format!("/console/devices/{id}"))
        .await
        .replace("&#x2f;", "/");
    let at = html
        .find("id=\"device-broker\"")
        .expect("the broker on the device page");
    assert!(
        html[at..].starts_with("id=\"device-broker\"><code>mqtt://10.0.0.12:1883</code>"),
        "{}",
        &html[at..at + 200]
    );
    assert!(html.contains("Máy chủ MQTT đang kết nối"), "Vietnamese label");
}
