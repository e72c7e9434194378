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
    let app = common::spawn_app().await;
    let p = uid("p");
    area(&app, &p, None).await;
    let id = uid("lc");
    let key = DeviceKey::generate();
    device(&app, &id, &p, "receipt-password", Some(&key)).await;
    let mut dev = connect(&app, &id, "receipt-password", None).await.unwrap();
    let did = DeviceId::parse(&id).unwrap();
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
