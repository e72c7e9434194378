//! Live relay: streams to the WAV sink sample-exact, preemption by and of live sessions,
//! replacement and `live_stop`, the null sink.

use std::time::Duration;

use chrono::Utc;
use nguon_agent::sink::decode_file;
use nguon_agent::{Agent, AgentEvent, AgentEventKind, AgentOptions};
use nguon_device_config::DeviceConfig;
use nguon_protocol::{Command, Event, EventBody, OnPreempt, PlayOutcome, Priority};
use tokio::sync::broadcast;

use crate::common::*;
use crate::env::*;

/// Wait for the first sample of `item` (other events are skipped).
async fn first_sample(rx: &mut broadcast::Receiver<AgentEvent>, item: &str) {
    wait_event(
        rx,
        WAIT,
        |k| matches!(k, AgentEventKind::FirstSample { item_id, .. } if item_id == item),
    )
    .await;
}

/// Collect the outcomes of `items` (in any order).
async fn outcomes(
    rx: &mut broadcast::Receiver<AgentEvent>,
    items: &[&str],
) -> std::collections::HashMap<String, PlayOutcome> {
    let mut out = std::collections::HashMap::new();
    while !items.iter().all(|i| out.contains_key(*i)) {
        let ev = wait_event(rx, WAIT, |k| matches!(k, AgentEventKind::ItemEnded { .. })).await;
        if let AgentEventKind::ItemEnded { item_id, outcome } = ev.kind {
            out.insert(item_id, outcome);
        }
    }
    out
}

/// Receive events until the ack of a marker command sent now: everything the agent recorded
/// before it has arrived (events from one publisher on one topic arrive in order).
async fn drain_with_marker(env: &Env, c: &mut TestClient, seen: &mut Vec<Event>) {
    let marker = env.command(c, Command::Sync).await;
    c.events_until(seen, WAIT, |s| acked(s, marker)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_start_relays_a_throttled_mp3_stream_to_the_wav_sink_sample_exact_and_reports_played_once() {
    let env = Env::new("lc-live");
    let src = env.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let wav = speech_wav(
        &src,
        "truc-tiep",
        "Đây là buổi phát thanh trực tiếp của huyện, xin bà con chú ý lắng nghe",
    );
    let mp3 = to_mp3(&wav);
    let r = env.media.add(std::fs::read(&mp3).unwrap(), wav_ms(&wav));
    // About 1.5 × real time at 64 kbit/s: the stream arrives while it plays.
    *env.media.throttle.lock().unwrap() = Some(12_000);
    let (agent, mut rx) = env.start().await;
    wait_event(&mut rx, WAIT, |k| matches!(k, AgentEventKind::Subscribed { .. })).await;
    let mut c = env.client().await;
    let session = "live-1";
    let cmd = env
        .command(
            &c,
            Command::LiveStart {
                url: format!("{}{}", env.media.base_url, r.url),
                session_id: session.into(),
                priority: Priority::Priority,
            },
        )
        .await;
    wait_event(
        &mut rx,
        WAIT,
        |k| matches!(k, AgentEventKind::Acked { message_id, ok: true } if *message_id == cmd),
    )
    .await;
    first_sample(&mut rx, session).await;
    // Telemetry shows the live session while it plays.
    until(WAIT, || {
        agent
            .status()
            .now_playing
            .is_some_and(|n| n.item_id == session && n.sha256.is_empty())
    })
    .await;
    assert_eq!(ended(&mut rx, session).await, PlayOutcome::Played);
    assert!(agent.status().now_playing.is_none());

    let want = decode_file(&mp3).unwrap();
    let (rate, ch, got) = env.wav(session);
    assert_eq!((rate, ch), (want.rate, want.channels));
    assert!(
        got == want.samples,
        "{} samples written, {} decoded",
        got.len(),
        want.samples.len()
    );
    let side = env.sidecar(session);
    assert_eq!(side.outcome, PlayOutcome::Played);
    assert_eq!(side.sha256, "");
    assert_eq!(side.priority, Priority::Priority);
    assert!(side.first_sample_at.is_some());

    let mut seen = Vec::new();
    c.events_until(&mut seen, WAIT, |s| !plays(s, session).is_empty())
        .await;
    drain_with_marker(&env, &mut c, &mut seen).await;
    let p = plays(&seen, session);
    assert_eq!(p.len(), 1, "{p:?}");
    let p = p[0];
    assert_eq!(p.outcome, PlayOutcome::Played);
    assert_eq!(p.schedule_id, "");
    assert_eq!(p.sha256, "");
    assert_eq!(p.priority, Priority::Priority);
    assert!(p.started_at.is_some() && p.ended_at.is_some(), "{p:?}");
    assert!(
        seen.iter()
            .any(|e| matches!(&e.body, EventBody::Ack { message_id, ok: true, .. } if *message_id == cmd))
    );
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_relay_pauses_a_resumable_normal_item_and_an_emergency_interrupts_the_live_relay() {
    let env = Env::new("lc-live-emergency");
    let src = env.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let tone = tone_wav(&src, "nhac", 5.0);
    let alert = speech_wav(&src, "khan", "Khẩn cấp: bão sắp đổ bộ");
    let live = to_mp3(&tone_wav(&src, "live", 30.0));
    let tr = env.media.add(std::fs::read(&tone).unwrap(), 5000);
    let ar = env.media.add(std::fs::read(&alert).unwrap(), wav_ms(&alert));
    let lr = env.media.add(std::fs::read(&live).unwrap(), 30_000);
    let at = Utc::now() + chrono::Duration::seconds(3);
    let normal = item(
        &format!("normal@{}", at.timestamp()),
        at,
        Priority::Normal,
        &tr,
        OnPreempt::Resume,
    );
    let (agent, mut rx) = env.start().await;
    let mut c = env.client().await;
    env.desired(&c, manifest(1, vec![normal.clone()], vec![tr.clone()]))
        .await;
    first_sample(&mut rx, &normal.id).await;
    // The live stream is served at 2 × real time (read when its response starts).
    *env.media.throttle.lock().unwrap() = Some(16_000);
    let session = "live-storm";
    env.command(
        &c,
        Command::LiveStart {
            url: format!("{}{}", env.media.base_url, lr.url),
            session_id: session.into(),
            priority: Priority::Priority,
        },
    )
    .await;
    first_sample(&mut rx, session).await;
    *env.media.throttle.lock().unwrap() = None;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut em = item(
        "emergency-live",
        Utc::now(),
        Priority::Emergency,
        &ar,
        OnPreempt::Interrupt,
    );
    em.schedule_id = String::new();
    env.command(
        &c,
        Command::PlayNow {
            item: em.clone(),
            media: vec![ar.clone()],
        },
    )
    .await;
    let got = outcomes(&mut rx, &[session, &em.id, &normal.id]).await;
    assert_eq!(got[session], PlayOutcome::Interrupted);
    assert_eq!(got[&em.id], PlayOutcome::Played);
    assert_eq!(got[&normal.id], PlayOutcome::Resumed);

    let mut seen = Vec::new();
    c.events_until(&mut seen, WAIT, |s| {
        [session, em.id.as_str(), normal.id.as_str()]
            .iter()
            .all(|i| !plays(s, i).is_empty())
    })
    .await;
    drain_with_marker(&env, &mut c, &mut seen).await;
    let lp = plays(&seen, session);
    assert_eq!(lp.len(), 1, "{lp:?}");
    assert_eq!(lp[0].outcome, PlayOutcome::Interrupted);
    assert!(
        lp[0].reason.as_deref().unwrap_or("").contains("emergency"),
        "{lp:?}"
    );
    assert!(lp[0].started_at.is_some());
    // The live relay wrote a prefix of the stream, the normal item every sample once.
    let (_, _, relayed) = env.wav(session);
    let full = decode_file(&live).unwrap().samples;
    assert!(!relayed.is_empty() && relayed.len() < full.len());
    assert!(relayed[..] == full[..relayed.len()]);
    assert!(env.wav(&normal.id).2 == decode_file(&tone).unwrap().samples);
    assert_eq!(env.sidecar(session).outcome, PlayOutcome::Interrupted);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_start_interrupts_a_normal_item_a_second_live_start_replaces_the_first_and_live_stop_ends_it() {
    let env = Env::new("lc-live-stop");
    let src = env.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let tone = tone_wav(&src, "nhac", 8.0);
    let live = to_mp3(&speech_wav(
        &src,
        "live",
        "Bản tin trực tiếp từ huyện về tình hình mưa lũ, đề nghị bà con theo dõi thường xuyên",
    ));
    let tr = env.media.add(std::fs::read(&tone).unwrap(), 8000);
    let lr = env.media.add(std::fs::read(&live).unwrap(), 5000);
    let url = format!("{}{}", env.media.base_url, lr.url);
    let at = Utc::now() + chrono::Duration::seconds(3);
    let normal = item(
        &format!("normal@{}", at.timestamp()),
        at,
        Priority::Normal,
        &tr,
        OnPreempt::Interrupt,
    );
    let (agent, mut rx) = env.start().await;
    let mut c = env.client().await;
    env.desired(&c, manifest(1, vec![normal.clone()], vec![tr.clone()]))
        .await;
    first_sample(&mut rx, &normal.id).await;
    *env.media.throttle.lock().unwrap() = Some(12_000);
    env.command(
        &c,
        Command::LiveStart {
            url: url.clone(),
            session_id: "live-a".into(),
            priority: Priority::Priority,
        },
    )
    .await;
    first_sample(&mut rx, "live-a").await;
    env.command(
        &c,
        Command::LiveStart {
            url: url.clone(),
            session_id: "live-b".into(),
            priority: Priority::Priority,
        },
    )
    .await;
    first_sample(&mut rx, "live-b").await;
    until(WAIT, || {
        agent.status().now_playing.is_some_and(|n| n.item_id == "live-b")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    // A live_stop naming another session changes nothing.
    env.command(
        &c,
        Command::LiveStop {
            session_id: "live-a".into(),
        },
    )
    .await;
    env.command(
        &c,
        Command::LiveStop {
            session_id: "live-b".into(),
        },
    )
    .await;
    // (The ends of the normal item and of live-a went by while waiting for first samples; their
    // proofs are checked below.)
    assert_eq!(ended(&mut rx, "live-b").await, PlayOutcome::Played);
    until(WAIT, || agent.status().now_playing.is_none()).await;

    // A stream that cannot be opened: accepted, then reported failed with the reason.
    let bad = env
        .command(
            &c,
            Command::LiveStart {
                url: format!("{}/live/nothing-here", env.media.base_url),
                session_id: "live-404".into(),
                priority: Priority::Priority,
            },
        )
        .await;
    assert_eq!(ended(&mut rx, "live-404").await, PlayOutcome::Failed);

    let mut seen = Vec::new();
    c.events_until(&mut seen, WAIT, |s| {
        [normal.id.as_str(), "live-a", "live-b", "live-404"]
            .iter()
            .all(|i| !plays(s, i).is_empty())
    })
    .await;
    drain_with_marker(&env, &mut c, &mut seen).await;
    let one = |id: &str| {
        let p = plays(&seen, id);
        assert_eq!(p.len(), 1, "{id}: {p:?}");
        p[0].clone()
    };
    let n = one(&normal.id);
    assert_eq!(n.outcome, PlayOutcome::Interrupted);
    assert!(
        n.reason.as_deref().unwrap_or("").contains("live session live-a"),
        "{n:?}"
    );
    let a = one("live-a");
    assert_eq!(a.outcome, PlayOutcome::Interrupted);
    assert!(
        a.reason
            .as_deref()
            .unwrap_or("")
            .contains("replaced by live session live-b"),
        "{a:?}"
    );
    let b = one("live-b");
    assert_eq!(b.outcome, PlayOutcome::Played);
    assert!(b.started_at.is_some() && b.ended_at.is_some());
    let f = one("live-404");
    assert_eq!(f.outcome, PlayOutcome::Failed);
    assert!(f.reason.as_deref().unwrap_or("").contains("404"), "{f:?}");
    assert!(f.started_at.is_none());
    assert!(acked(&seen, bad));
    // live-b was stopped midway: what it wrote is a prefix of the stream.
    let (_, _, relayed) = env.wav("live-b");
    let full = decode_file(&live).unwrap().samples;
    assert!(!relayed.is_empty() && relayed.len() < full.len());
    assert!(relayed[..] == full[..relayed.len()]);
    assert_eq!(env.sidecar("live-b").outcome, PlayOutcome::Played);
    assert_eq!(env.sidecar("live-a").outcome, PlayOutcome::Interrupted);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_null_sink_a_live_session_fetches_nothing_and_lasts_until_live_stop() {
    let env = Env::new("lc-live-null");
    let (tx, mut rx) = broadcast::channel(1024);
    let opts = AgentOptions {
        observer: Some(tx),
        sink: Some(nguon_agent::Sink::Null),
        ..Default::default()
    };
    let cfg = DeviceConfig::load(&env.config).unwrap();
    let agent = Agent::start(cfg, env.tmp.path().to_path_buf(), opts)
        .await
        .unwrap();
    wait_event(&mut rx, WAIT, |k| matches!(k, AgentEventKind::Subscribed { .. })).await;
    let c = env.client().await;
    env.command(
        &c,
        Command::LiveStart {
            url: "/live/sim".into(),
            session_id: "live-sim".into(),
            priority: Priority::Priority,
        },
    )
    .await;
    first_sample(&mut rx, "live-sim").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.command(
        &c,
        Command::LiveStop {
            session_id: "live-sim".into(),
        },
    )
    .await;
    assert_eq!(ended(&mut rx, "live-sim").await, PlayOutcome::Played);
    assert!(env.media.hits.lock().unwrap().is_empty());
    agent.shutdown().await;
}
