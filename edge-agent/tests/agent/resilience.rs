//! Playing and downloading through failures: the broker down for a whole slot, a download killed
//! with SIGKILL and resumed, a damaged cache file fetched again.

use chrono::Utc;
use nguon_agent::AgentEventKind;
use nguon_agent::sink::decode_file;
use nguon_protocol::{Command, EventBody, OnPreempt, PlayOutcome, Priority, topic};

use crate::common::*;
use crate::env::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_broker_down_for_the_whole_slot_the_item_plays_from_cache_and_its_proof_arrives_once_afterwards()
 {
    let mut env = Env::new("lc-offline");
    let src = env.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let tone = tone_wav(&src, "t", 1.0);
    let r = env.media.add(std::fs::read(&tone).unwrap(), 1000);
    let at = Utc::now() + chrono::Duration::seconds(6);
    let it = item(
        &format!("off@{}", at.timestamp()),
        at,
        Priority::Normal,
        &r,
        OnPreempt::Interrupt,
    );
    let (agent, mut rx) = env.start().await;
    let c = env.client().await;
    env.desired(&c, manifest(1, vec![it.clone()], vec![r.clone()]))
        .await;
    wait_event(
        &mut rx,
        WAIT,
        |k| matches!(k, AgentEventKind::MediaReady { sha256 } if *sha256 == r.sha256),
    )
    .await;
    drop(c);
    env.broker.stop();
    wait_event(&mut rx, WAIT, |k| {
        matches!(k, AgentEventKind::Disconnected { .. })
    })
    .await;
    assert_eq!(ended(&mut rx, &it.id).await, PlayOutcome::Played);
    assert!(agent.outbox_len() >= 1);
    env.broker.restart();
    let mut c = env.client().await;
    let mut seen = Vec::new();
    c.events_until(&mut seen, WAIT, |s| !plays(s, &it.id).is_empty())
        .await;
    until(WAIT, || agent.outbox_len() == 0).await;
    // A marker after everything: events from one publisher on one topic arrive in order.
    let marker = env.command(&c, Command::Volume { level: 70 }).await;
    c.events_until(&mut seen, WAIT, |s| {
        s.iter()
            .any(|e| matches!(&e.body, EventBody::Ack { message_id, .. } if *message_id == marker))
    })
    .await;
    let p = plays(&seen, &it.id);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].outcome, PlayOutcome::Played);
    assert!(p[0].started_at.is_some());
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_killed_with_sigkill_resumes_with_a_range_request_after_restart_and_is_verified() {
    let env = Env::new("lc-resume-dl");
    // The item is an hour ahead: fetch its media at once rather than spread over 5 minutes.
    set_prefetch_spread(&env.config, 0);
    let src = env.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let tone = tone_wav(&src, "long", 20.0);
    let bytes = std::fs::read(&tone).unwrap();
    let r = env.media.add(bytes.clone(), 20_000);
    *env.media.throttle.lock().unwrap() = Some(200_000);
    let at = Utc::now() + chrono::Duration::hours(1);
    let it = item(
        &format!("dl@{}", at.timestamp()),
        at,
        Priority::Normal,
        &r,
        OnPreempt::Interrupt,
    );
    let c = env.client().await;
    env.desired(&c, manifest(1, vec![it], vec![r.clone()])).await;
    let mut agent = env.spawn_process();
    let part = env.data().join("cache").join(format!("{}.part", r.sha256));
    until(WAIT, || {
        std::fs::metadata(&part)
            .map(|m| m.len() > 100_000)
            .unwrap_or(false)
    })
    .await;
    agent.kill().unwrap(); // SIGKILL
    agent.wait().unwrap();
    let before = std::fs::metadata(&part).unwrap().len();
    assert!(before < r.size);
    *env.media.throttle.lock().unwrap() = None;
    let mut agent = env.spawn_process();
    let done = env.data().join("cache").join(&r.sha256);
    until(WAIT, || done.exists()).await;
    agent.kill().unwrap();
    agent.wait().unwrap();
    assert_eq!(std::fs::read(&done).unwrap(), bytes);
    assert!(!part.exists());
    let hits = env.media.hits_for(&r.sha256);
    assert!(
        hits.iter()
            .any(|h| h.range_start.is_some_and(|s| s > 0 && s <= before)),
        "{hits:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_file_with_one_flipped_byte_is_detected_fetched_again_and_never_played() {
    let env = Env::new("lc-flip");
    let src = env.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let wav = speech_wav(&src, "a", "Xin chào bà con");
    let bytes = std::fs::read(&wav).unwrap();
    let r = env.media.add(bytes.clone(), wav_ms(&wav));
    let mut bad = bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    std::fs::create_dir_all(env.data().join("cache")).unwrap();
    std::fs::write(env.data().join("cache").join(&r.sha256), &bad).unwrap();
    let at = Utc::now() + chrono::Duration::seconds(3);
    let it = item(
        &format!("flip@{}", at.timestamp()),
        at,
        Priority::Normal,
        &r,
        OnPreempt::Interrupt,
    );
    let (agent, mut rx) = env.start().await;
    let c = env.client().await;
    env.desired(&c, manifest(1, vec![it.clone()], vec![r.clone()]))
        .await;
    wait_event(
        &mut rx,
        WAIT,
        |k| matches!(k, AgentEventKind::MediaError { sha256, .. } if *sha256 == r.sha256),
    )
    .await;
    assert_eq!(ended(&mut rx, &it.id).await, PlayOutcome::Played);
    assert!(!env.media.hits_for(&r.sha256).is_empty());
    assert_eq!(
        std::fs::read(env.data().join("cache").join(&r.sha256)).unwrap(),
        bytes
    );
    assert!(env.wav(&it.id).2 == decode_file(&wav).unwrap().samples);
    agent.shutdown().await;
}

/// Issue 11, "limits everywhere": a 5 MiB retained message on `desired` (over the agent's 4 MiB
/// packet limit, which the MQTT client cannot skip) made every agent reconnect about three times a
/// second (~100 times in 40 s). Garbage is now dropped on a live connection, and a message too
/// large to read is retried with growing waits; a valid manifest published afterwards still plays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_dropped_on_a_live_connection_and_an_oversized_retained_message_costs_few_reconnects() {
    let env = Env::new("lc-oversized");
    let (agent, mut rx) = env.start().await;
    wait_event(&mut rx, WAIT, |k| matches!(k, AgentEventKind::Subscribed { .. })).await;
    let mut c = env.client().await;
    let did = device(&env.dev);

    // Garbage on each of its topics: rejected, and the connection stays up.
    for t in [topic::cmd(&did), topic::desired(&did), topic::receipt(&did)] {
        c.publish(&t, b"\x00\xffnot json at all".to_vec(), false).await;
    }
    for _ in 0..3 {
        wait_event(&mut rx, WAIT, |k| {
            matches!(k, AgentEventKind::MessageRejected { .. })
        })
        .await;
    }
    // A flood of it: every message is dropped, but at most 20 a minute become `rejected` events,
    // so the outbox (and the disk) does not fill with reports of garbage.
    for i in 0..200u32 {
        c.publish(&topic::cmd(&did), format!("garbage {i}").into_bytes(), false)
            .await;
    }
    let marker = env.command(&c, Command::Volume { level: 55 }).await;
    let mut seen = Vec::new();
    c.events_until(&mut seen, WAIT, |s| {
        s.iter()
            .any(|e| matches!(&e.body, EventBody::Ack { message_id, .. } if *message_id == marker))
    })
    .await;
    let rejected = seen
        .iter()
        .filter(|e| matches!(e.body, EventBody::Rejected { .. }))
        .count();
    assert!(
        (3..=20).contains(&rejected),
        "{rejected} rejected events reported for 203 bad messages"
    );
    assert!(agent.status().connected, "the flood cost no reconnect");

    // Over the packet limit, retained: delivered again on every subscribe.
    publish_large(env.broker.port, &topic::desired(&did), vec![b'x'; 5 << 20]).await;
    let window = std::time::Duration::from_secs(20);
    let start = std::time::Instant::now();
    let mut connects = 0u32;
    while start.elapsed() < window {
        match tokio::time::timeout(window.saturating_sub(start.elapsed()), rx.recv()).await {
            Ok(Ok(ev)) => {
                if matches!(ev.kind, AgentEventKind::Connected { .. }) {
                    connects += 1;
                }
            }
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            _ => break,
        }
    }
    eprintln!("in {window:?} with a 5 MiB retained message on desired: {connects} reconnects");
    // Doubling waits from 0.25–0.5 s: at most 7 reconnects fit in 20 s; about 57 before.
    assert!(connects >= 1, "the agent kept trying");
    assert!(
        connects <= 8,
        "{connects} reconnects in {window:?}: the backoff did not grow"
    );

    // The operator replaces it with a valid manifest: the agent takes it and plays it.
    let src = env.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let r = env
        .media
        .add(std::fs::read(tone_wav(&src, "t", 0.5)).unwrap(), 500);
    let at = Utc::now() + chrono::Duration::seconds(60);
    let it = item(
        &format!("after@{}", at.timestamp()),
        at,
        Priority::Normal,
        &r,
        OnPreempt::Interrupt,
    );
    env.desired(&c, manifest(7, vec![it.clone()], vec![r.clone()]))
        .await;
    let long = std::time::Duration::from_secs(120);
    wait_event(
        &mut rx,
        long,
        |k| matches!(k, AgentEventKind::MediaReady { sha256 } if *sha256 == r.sha256),
    )
    .await;
    let ev = wait_event(
        &mut rx,
        long,
        |k| matches!(k, AgentEventKind::ItemEnded { item_id, .. } if *item_id == it.id),
    )
    .await;
    assert!(
        matches!(
            ev.kind,
            AgentEventKind::ItemEnded {
                outcome: PlayOutcome::Played,
                ..
            }
        ),
        "{ev:?}"
    );
    agent.shutdown().await;
}

/// Publish `payload` retained at QoS 1 with a client whose packet limit allows it (the test
/// client's is the agent's 4 MiB); returns once the broker acknowledged it.
async fn publish_large(port: u16, topic_name: &str, payload: Vec<u8>) {
    let mut o = rumqttc::MqttOptions::new(format!("big-{}", uuid::Uuid::new_v4()), "127.0.0.1", port);
    o.set_max_packet_size(16 << 20, 16 << 20);
    let (client, mut el) = rumqttc::AsyncClient::new(o, 10);
    client
        .publish(topic_name, rumqttc::QoS::AtLeastOnce, true, payload)
        .await
        .unwrap();
    tokio::time::timeout(WAIT, async {
        loop {
            match el.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => break,
                Ok(_) => {}
                Err(e) => panic!("large publish: {e}"),
            }
        }
    })
    .await
    .expect("the broker acknowledged the large message");
}

/// Issue 12, catch-up: while no broker listens (connection refused) the reconnect waits stay
/// within `mqtt.reconnect_max_unreachable_secs`, so a restored network is used within seconds;
/// a port that accepts and closes at once (a session that breaks, as in issue 11) still gets the
/// long growing waits. Counted over the same window, both agents side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_waits_stay_under_the_cap_while_nothing_listens_and_grow_when_the_broker_breaks_sessions() {
    // A port nothing listens on: bound, then released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    // A port that accepts every connection and closes it at once, counting them.
    let breaker = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let breaker_port = breaker.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let acc = accepted.clone();
    let breaker_task = tokio::spawn(async move {
        while let Ok((s, _)) = breaker.accept().await {
            acc.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(s);
        }
    });

    let point = |env: &Env, port: u16| {
        let text = std::fs::read_to_string(&env.config)
            .unwrap()
            .replace(&env.broker.url(), &format!("mqtt://127.0.0.1:{port}"));
        let text = text.replace(
            "keep_alive_secs = 5",
            "keep_alive_secs = 5\nreconnect_max_unreachable_secs = 1",
        );
        assert!(text.contains(&format!("127.0.0.1:{port}")));
        std::fs::write(&env.config, text).unwrap();
    };
    let refused_env = Env::new("lc-refused");
    point(&refused_env, closed_port);
    let broken_env = Env::new("lc-broken");
    point(&broken_env, breaker_port);
    let (refused, mut rx) = refused_env.start().await;
    let (broken, _rx2) = broken_env.start().await;

    let window = std::time::Duration::from_secs(20);
    let start = std::time::Instant::now();
    let mut attempts = 0u32;
    while start.elapsed() < window {
        match tokio::time::timeout(window.saturating_sub(start.elapsed()), rx.recv()).await {
            Ok(Ok(ev)) => {
                if matches!(ev.kind, AgentEventKind::Disconnected { .. }) {
                    attempts += 1;
                }
                assert!(
                    !matches!(ev.kind, AgentEventKind::Connected { .. }),
                    "nothing listens there"
                );
            }
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            _ => break,
        }
    }
    let breaks = accepted.load(std::sync::atomic::Ordering::SeqCst);
    eprintln!(
        "in {window:?} with a 1 s cap: {attempts} attempts against a closed port, \
         {breaks} against a port that accepts and closes"
    );
    // Waits of at most 1 s after the second attempt: about 20 attempts fit in 20 s. Without the
    // cap (0.25–0.5 s doubling to 60 s) at most 7 would.
    assert!(
        attempts >= 10,
        "{attempts} attempts in {window:?}: the waits were not capped at 1 s"
    );
    // Doubling waits from 0.25–0.5 s: at most 7 fit in 20 s; a capped backoff would give ~20.
    assert!(breaks >= 2, "the agent kept trying");
    assert!(
        breaks <= 8,
        "{breaks} attempts in {window:?} against a broker that breaks sessions: the backoff did not grow"
    );
    refused.shutdown().await;
    broken.shutdown().await;
    breaker_task.abort();
}
