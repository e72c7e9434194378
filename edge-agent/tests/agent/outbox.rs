//! The outbox: events survive SIGKILL and leave only on the server's signed receipt.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use nguon_agent::AgentEventKind;
use nguon_protocol::{Command, Event, EventBody, OnPreempt, PlayOutcome, Priority, ServerKey, topic};

use crate::common::*;
use crate::env::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_survives_sigkill_between_recording_and_puback_and_every_event_arrives() {
    let mut env = Env::new("lc-outbox");
    // The warm-up item is an hour ahead: fetch its media at once rather than spread over 5 minutes.
    set_prefetch_spread(&env.config, 0);
    let src = env.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let tone = tone_wav(&src, "s", 0.5);
    let r = env.media.add(std::fs::read(&tone).unwrap(), 500);
    // First the agent process gets ready: connected, a manifest applied and the media cached
    // (an item an hour ahead makes it fetch the file). Only then are the start times chosen, so a
    // slow process start on a loaded machine cannot push them into the past, where the agent
    // would rightly report them `missed`.
    let later = Utc::now() + chrono::Duration::hours(1);
    let warm = item(
        &format!("warm@{}", later.timestamp()),
        later,
        Priority::Normal,
        &r,
        OnPreempt::Interrupt,
    );
    let mut c = env.client().await;
    let m1 = env.desired(&c, manifest(1, vec![warm], vec![r.clone()])).await;
    let mut agent = env.spawn_process();
    let mut seen = Vec::new();
    c.events_until(&mut seen, WAIT, |s| acked(s, m1)).await;
    let cached = env.data().join("cache").join(&r.sha256);
    until(WAIT, || cached.exists()).await;
    let t0 = Utc::now() + chrono::Duration::seconds(8);
    let items: Vec<_> = (0..3)
        .map(|i| {
            let at = t0 + chrono::Duration::seconds(2 * i);
            item(
                &format!("ob{i}@{}", at.timestamp()),
                at,
                Priority::Normal,
                &r,
                OnPreempt::Interrupt,
            )
        })
        .collect();
    let m2 = env.desired(&c, manifest(2, items.clone(), vec![r.clone()])).await;
    c.events_until(&mut seen, WAIT, |s| acked(s, m2)).await;
    drop(c);
    env.broker.stop();
    // Played offline: the proofs are recorded, and nothing can acknowledge them.
    for it in &items {
        let side = env.wav_dir.join(format!("{}.json", it.id));
        until(WAIT, || side.exists()).await;
    }
    let outbox = env.data().join("outbox");
    until(WAIT, || {
        outbox_records(&outbox)
            .iter()
            .filter(|e| matches!(e.body, EventBody::Play(_)))
            .count()
            == 3
    })
    .await;
    agent.kill().unwrap(); // SIGKILL
    agent.wait().unwrap();
    let recorded: HashSet<uuid::Uuid> = outbox_records(&outbox).iter().map(|e| e.id).collect();
    assert!(recorded.len() >= 3);
    env.broker.restart();
    let mut c = env.client().await;
    let mut agent = env.spawn_process();
    let mut seen = Vec::new();
    c.events_until(&mut seen, WAIT, |s| {
        let got: HashSet<_> = s.iter().map(|e| e.id).collect();
        recorded.is_subset(&got)
    })
    .await;
    for it in &items {
        let p = plays(&seen, &it.id);
        assert!(!p.is_empty(), "{}", it.id);
        assert!(p.iter().all(|p| p.outcome == PlayOutcome::Played), "{p:?}");
    }
    agent.kill().unwrap();
    agent.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_leaves_the_outbox_only_on_the_servers_signed_receipt_and_is_sent_again_until_then() {
    let mut env = Env::new("lc-receipt");
    let (agent, mut rx) = env.start().await;
    wait_event(&mut rx, WAIT, |k| matches!(k, AgentEventKind::Subscribed { .. })).await;
    // A listener that sends no receipts: the broker takes the ack event (PUBACK), nobody confirms it.
    let mut c = TestClient::connect(env.broker.port, &[topic::events(&device(&env.dev))]).await;
    let cmd = env.command(&c, Command::Volume { level: 35 }).await;
    let mut seen = Vec::new();
    c.events_until(&mut seen, WAIT, |s| acked(s, cmd)).await;
    let ack_id = seen
        .iter()
        .find(|e| matches!(&e.body, EventBody::Ack { message_id, .. } if *message_id == cmd))
        .unwrap()
        .id;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(agent.outbox_len(), 1, "a broker PUBACK must not clear the outbox");

    // A receipt signed by another key is refused and changes nothing.
    let receipt_topic = topic::receipt(&device(&env.dev));
    let forged = receipt_message(&device(&env.dev), vec![ack_id]);
    c.publish(
        &receipt_topic,
        ServerKey::generate().sign(&forged).to_bytes(),
        false,
    )
    .await;
    wait_event(
        &mut rx,
        WAIT,
        |k| matches!(k, AgentEventKind::MessageRejected { message_id: Some(id), .. } if *id == forged.id),
    )
    .await;
    // The ack and the report of the rejection both wait for a receipt.
    until(WAIT, || agent.outbox_len() == 2).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(agent.outbox_len(), 2);

    // The broker restarts (as if it had dropped what it held for the server): on reconnect the
    // agent sends every event without a receipt again, the same ids.
    drop(c);
    env.broker.stop();
    wait_event(&mut rx, WAIT, |k| {
        matches!(k, AgentEventKind::Disconnected { .. })
    })
    .await;
    env.broker.restart();
    let mut c = TestClient::connect(env.broker.port, &[topic::events(&device(&env.dev))]).await;
    let mut again = Vec::new();
    c.events_until(&mut again, WAIT, |s| s.iter().any(|e| e.id == ack_id))
        .await;

    // The server's receipt names the events: they leave the outbox, and the agent says so.
    let ids: Vec<uuid::Uuid> = agent_outbox_ids(&env);
    assert!(ids.contains(&ack_id));
    let receipt = receipt_message(&device(&env.dev), ids.clone());
    c.publish(&receipt_topic, env.signer.sign(&receipt), false).await;
    let delivered = wait_event(&mut rx, WAIT, |k| {
        matches!(k, AgentEventKind::EventsDelivered { .. })
    })
    .await;
    let AgentEventKind::EventsDelivered { ids: gone } = delivered.kind else {
        unreachable!()
    };
    assert!(gone.contains(&ack_id));
    until(WAIT, || agent.outbox_len() == 0).await;
    assert!(outbox_records(&env.data().join("outbox")).is_empty());
    agent.shutdown().await;
}

/// The ids of the events in the agent's outbox directory.
fn agent_outbox_ids(env: &Env) -> Vec<uuid::Uuid> {
    outbox_records(&env.data().join("outbox"))
        .iter()
        .map(|e| e.id)
        .collect()
}

/// The events recorded in an outbox directory: the `<uuid>.json` files only. A `.tmp` is a write
/// in progress (or cut short by a crash); the agent deletes it on start, it is not a record.
fn outbox_records(outbox: &std::path::Path) -> Vec<Event> {
    std::fs::read_dir(outbox)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| std::fs::read(p).ok())
        .filter_map(|b| serde_json::from_slice::<Event>(&b).ok())
        .collect()
}
