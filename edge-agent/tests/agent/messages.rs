//! Server messages that must not be acted on (unsigned, wrongly signed, expired, replayed), and
//! the ack of an accepted message the player did not take.

use chrono::Utc;
use nguon_agent::{AgentError, AgentEventKind, AgentOptions, Fault};
use nguon_protocol::{Command, EventBody, ServerBody, ServerKey, ServerMessage, topic};

use crate::common::*;
use crate::env::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_wrongly_signed_expired_and_replayed_messages_are_not_acted_on_and_are_reported() {
    let env = Env::new("lc-guard");
    let (agent, mut rx) = env.start().await;
    // Commands are not retained: wait until the broker has acknowledged the subscriptions.
    wait_event(&mut rx, WAIT, |k| matches!(k, AgentEventKind::Subscribed { .. })).await;
    let mut c = env.client().await;
    let t = topic::cmd(&device(&env.dev));
    let good = env
        .signer
        .message(env.aud(), ServerBody::Command(Command::Volume { level: 30 }));
    let good_bytes = env.signer.sign(&good);
    c.publish(&t, good_bytes.clone(), false).await;
    wait_event(
        &mut rx,
        WAIT,
        |k| matches!(k, AgentEventKind::Acked { message_id, ok: true } if *message_id == good.id),
    )
    .await;

    let mut bad_ids = Vec::new();
    // Unsigned.
    let m = env
        .signer
        .message(env.aud(), ServerBody::Command(Command::Volume { level: 99 }));
    let mut s = env.signer.key.sign(&m);
    s.sig = None;
    c.publish(&t, s.to_bytes(), false).await;
    bad_ids.push(m.id);
    // Signed by another key.
    let m = env
        .signer
        .message(env.aud(), ServerBody::Command(Command::Volume { level: 98 }));
    c.publish(&t, ServerKey::generate().sign(&m).to_bytes(), false)
        .await;
    bad_ids.push(m.id);
    // Expired.
    let mut m = env
        .signer
        .message(env.aud(), ServerBody::Command(Command::Volume { level: 97 }));
    m.issued_at = Utc::now() - chrono::Duration::hours(2);
    m.expires_at = Utc::now() - chrono::Duration::hours(1);
    c.publish(&t, env.signer.sign(&m), false).await;
    bad_ids.push(m.id);
    // Replayed: the same bytes again.
    c.publish(&t, good_bytes, false).await;
    bad_ids.push(good.id);
    // Replayed: an old sequence number under a fresh id.
    let m = ServerMessage::new(
        env.aud(),
        good.seq,
        chrono::Duration::hours(1),
        ServerBody::Command(Command::Volume { level: 96 }),
    );
    c.publish(&t, env.signer.sign(&m), false).await;
    bad_ids.push(m.id);

    let mut seen = Vec::new();
    c.events_until(&mut seen, WAIT, |s| {
        s.iter()
            .filter(|e| matches!(e.body, EventBody::Rejected { .. }))
            .count()
            >= 5
    })
    .await;
    let rejected: Vec<(Option<uuid::Uuid>, String)> = seen
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Rejected {
                message_id, reason, ..
            } => Some((*message_id, reason.clone())),
            _ => None,
        })
        .collect();
    for id in &bad_ids {
        assert!(
            rejected.iter().any(|(m, _)| *m == Some(*id)),
            "{id} not reported: {rejected:?}"
        );
    }
    let reasons: Vec<&str> = rejected.iter().map(|(_, r)| r.as_str()).collect();
    assert!(reasons.iter().any(|r| r.contains("not signed")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("signature")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("expired")), "{reasons:?}");
    assert_eq!(
        reasons.iter().filter(|r| r.contains("replayed")).count(),
        2,
        "{reasons:?}"
    );
    assert_eq!(agent.status().volume, 30);
    let acks = seen
        .iter()
        .filter(|e| matches!(e.body, EventBody::Ack { .. }))
        .count();
    assert_eq!(acks, 1);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_command_the_player_did_not_take_is_acked_not_ok_with_the_reason() {
    let env = Env::new("lc-no-player");
    let opts = AgentOptions {
        fault: Some(Fault::PlayerPanics),
        ..Default::default()
    };
    let (mut agent, mut rx) = env.start_with(opts).await;
    match agent.task_ended().await {
        AgentError::TaskEnded { task, how } => {
            assert_eq!(task, "player");
            assert!(how.starts_with("panicked: injected fault"), "{how}");
        }
        other => panic!("unexpected: {other}"),
    }
    wait_event(&mut rx, WAIT, |k| matches!(k, AgentEventKind::Subscribed { .. })).await;
    let mut c = env.client().await;
    let id = env.command(&c, Command::Volume { level: 30 }).await;
    let ev = wait_event(
        &mut rx,
        WAIT,
        |k| matches!(k, AgentEventKind::Acked { message_id, .. } if *message_id == id),
    )
    .await;
    assert!(
        matches!(ev.kind, AgentEventKind::Acked { ok: false, .. }),
        "{ev:?}"
    );
    let mut seen = Vec::new();
    c.events_until(&mut seen, WAIT, |s| acked(s, id)).await;
    let (ok, reason) = seen
        .iter()
        .find_map(|e| match &e.body {
            EventBody::Ack {
                message_id,
                ok,
                reason,
                ..
            } if *message_id == id => Some((*ok, reason.clone())),
            _ => None,
        })
        .unwrap();
    assert!(!ok);
    assert_eq!(
        reason.as_deref(),
        Some("not handed to the player: its task has ended")
    );
    agent.shutdown().await;
}
