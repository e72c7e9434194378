//! When media is fetched (issue 14): a later item's media spread over `media.prefetch_spread_secs`
//! across a fleet, an emergency's and a play-now's at once, a 503 tried again with backoff and a
//! 404 not. Assertions are on the instants the agents planned and on the order of what the media
//! server saw, never on how fast anything went.

use std::time::Duration;

use chrono::{DateTime, Utc};
use nguon_agent::{AgentEvent, AgentEventKind, AgentHandle};
use nguon_protocol::{Audience, Command, OnPreempt, PlayOutcome, Priority, ServerBody, topic};
use tokio::sync::broadcast;

use crate::common::*;
use crate::env::*;

/// The planned fetch of a file, from an agent's observer: (start, delay after the manifest, urgent).
async fn planned(rx: &mut broadcast::Receiver<AgentEvent>, sha: &str) -> (DateTime<Utc>, Duration, bool) {
    let ev = wait_event(
        rx,
        WAIT,
        |k| matches!(k, AgentEventKind::MediaFetchPlanned { sha256, .. } if sha256 == sha),
    )
    .await;
    match ev.kind {
        AgentEventKind::MediaFetchPlanned {
            start, delay, urgent, ..
        } => (start, delay, urgent),
        _ => unreachable!(),
    }
}

async fn ready(rx: &mut broadcast::Receiver<AgentEvent>, sha: &str) {
    wait_event(
        rx,
        WAIT,
        |k| matches!(k, AgentEventKind::MediaReady { sha256 } if sha256 == sha),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_agents_fetch_a_later_items_media_spread_over_the_window_each_no_earlier_than_planned() {
    init();
    let tmp = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start();
    let media = MediaServer::start();
    let signer = Signer::new();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let r = media.add(std::fs::read(tone_wav(&src, "t", 0.5)).unwrap(), 500);
    let mut agents: Vec<(String, AgentHandle, broadcast::Receiver<AgentEvent>)> = Vec::new();
    for i in 0..20 {
        let dev = format!("lc-spread-{i:02}");
        let dir = tmp.path().join(&dev);
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = write_config(
            &dir,
            &dev,
            &broker.url(),
            &media.base_url,
            &signer.key.public_b64(),
            "null",
        );
        set_prefetch_spread(&cfg, 10);
        let (h, rx) = start_observed(&cfg, dir).await;
        agents.push((dev, h, rx));
    }
    // One province-wide change: the same item, two minutes ahead, to every agent.
    let at = Utc::now() + chrono::Duration::minutes(2);
    let it = item("spread", at, Priority::Normal, &r, OnPreempt::Interrupt);
    let c = TestClient::connect(broker.port, &[]).await;
    for (dev, _, _) in &agents {
        let aud = Audience::Device(device(dev));
        let msg = signer.message(
            aud,
            ServerBody::Desired(manifest(1, vec![it.clone()], vec![r.clone()])),
        );
        c.publish(&topic::desired(&device(dev)), signer.sign(&msg), true)
            .await;
    }
    let (mut starts, mut delays) = (Vec::new(), Vec::new());
    for (dev, _, rx) in &mut agents {
        let (start, delay, urgent) = planned(rx, &r.sha256).await;
        // Within the window: the spread (10 s) is shorter than half the time to preparation.
        assert!(!urgent && delay <= Duration::from_secs(10), "{dev}: {delay:?}");
        starts.push(start);
        delays.push(delay);
    }
    for (_, _, rx) in &mut agents {
        ready(rx, &r.sha256).await;
    }
    delays.sort();
    assert!(
        delays[19] - delays[0] > Duration::from_secs(1),
        "20 uniform draws over 10 s should not fall within 1 s: {delays:?}"
    );
    starts.sort();
    // Each agent asked once, and no earlier than it planned: sorted, the k-th request came no
    // earlier than the k-th planned start (5 ms for the clock's rounding).
    let mut arrivals: Vec<DateTime<Utc>> = media.hits_for(&r.sha256).iter().map(|h| h.at).collect();
    assert_eq!(arrivals.len(), 20, "{arrivals:?}");
    arrivals.sort();
    for (k, (a, s)) in arrivals.iter().zip(&starts).enumerate() {
        assert!(
            *a >= *s - chrono::Duration::milliseconds(5),
            "request {k} came at {a}, before the planned {s}"
        );
    }
    for (_, h, _) in agents {
        h.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergencys_media_is_fetched_at_once_and_a_play_now_plays_even_with_an_hour_of_spread() {
    let env = Env::new("lc-urgent");
    set_prefetch_spread(&env.config, 3600);
    let src = env.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let normal = env
        .media
        .add(std::fs::read(tone_wav(&src, "n", 0.5)).unwrap(), 500);
    let urgent = env
        .media
        .add(std::fs::read(tone_wav(&src, "e", 0.6)).unwrap(), 600);
    let now_media = env
        .media
        .add(std::fs::read(tone_wav(&src, "p", 0.7)).unwrap(), 700);
    let at = Utc::now() + chrono::Duration::hours(3);
    let n = item(
        "later-normal",
        at,
        Priority::Normal,
        &normal,
        OnPreempt::Interrupt,
    );
    let e = item(
        "later-emergency",
        at,
        Priority::Emergency,
        &urgent,
        OnPreempt::Interrupt,
    );
    let (agent, mut rx) = env.start().await;
    let c = env.client().await;
    env.desired(&c, manifest(1, vec![n, e], vec![normal.clone(), urgent.clone()]))
        .await;
    let (_, delay, is_urgent) = planned(&mut rx, &urgent.sha256).await;
    assert!(is_urgent && delay.is_zero(), "emergency: {delay:?}");
    let (normal_start, delay, is_urgent) = planned(&mut rx, &normal.sha256).await;
    assert!(
        !is_urgent && delay <= Duration::from_secs(3600),
        "normal: {delay:?}"
    );
    ready(&mut rx, &urgent.sha256).await;

    // A play-now emergency is fetched when it is prepared, at once, and plays.
    let mut play = item(
        "now-e",
        Utc::now(),
        Priority::Emergency,
        &now_media,
        OnPreempt::Interrupt,
    );
    play.schedule_id = String::new();
    env.command(
        &c,
        Command::PlayNow {
            item: play,
            media: vec![now_media.clone()],
        },
    )
    .await;
    assert_eq!(ended(&mut rx, "now-e").await, PlayOutcome::Played);
    assert_eq!(env.media.hits_for(&now_media.sha256).len(), 1);
    // The normal item's file waits for its instant (drawn in the hour): if that is still ahead,
    // nothing asked for it yet.
    if normal_start > Utc::now() {
        assert!(env.media.hits_for(&normal.sha256).is_empty());
    }
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_is_tried_again_with_backoff_and_the_item_plays_a_404_is_not_tried_again() {
    let env = Env::new("lc-retry");
    set_prefetch_spread(&env.config, 0);
    let src = env.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let r = env
        .media
        .add(std::fs::read(tone_wav(&src, "t", 0.5)).unwrap(), 500);
    env.media.unavailable.lock().unwrap().insert(r.sha256.clone(), 2);
    let mut missing = r.clone();
    missing.sha256 = "ab".repeat(32);
    missing.url = format!("/media/{}", missing.sha256);
    let at = Utc::now() + chrono::Duration::seconds(8);
    let ok = item("after-503", at, Priority::Normal, &r, OnPreempt::Interrupt);
    let gone = item(
        "after-404",
        at + chrono::Duration::seconds(2),
        Priority::Normal,
        &missing,
        OnPreempt::Interrupt,
    );
    let (agent, mut rx) = env.start().await;
    let c = env.client().await;
    env.desired(
        &c,
        manifest(
            1,
            vec![ok.clone(), gone.clone()],
            vec![r.clone(), missing.clone()],
        ),
    )
    .await;
    // Two 503s, then the file: three requests, and no media error reported for it.
    let mut errors = Vec::new();
    let mut outcomes = Vec::new();
    while outcomes.len() < 2 {
        let ev = wait_event(&mut rx, WAIT, |k| {
            matches!(
                k,
                AgentEventKind::MediaError { .. } | AgentEventKind::ItemEnded { .. }
            )
        })
        .await;
        match ev.kind {
            AgentEventKind::MediaError { sha256, reason } => errors.push((sha256, reason)),
            AgentEventKind::ItemEnded { item_id, outcome } => outcomes.push((item_id, outcome)),
            _ => unreachable!(),
        }
    }
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        outcomes,
        [
            ("after-404".to_string(), PlayOutcome::Failed),
            ("after-503".to_string(), PlayOutcome::Played)
        ]
    );
    assert_eq!(env.media.hits_for(&r.sha256).len(), 3);
    assert!(errors.iter().all(|(sha, _)| *sha == missing.sha256), "{errors:?}");
    // The 404: once by the prefetch, once by the preparation, each reported, never retried.
    assert_eq!(env.media.hits_for(&missing.sha256).len(), 2);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors.iter().all(|(_, reason)| reason.contains("HTTP 404")),
        "{errors:?}"
    );
    agent.shutdown().await;
}
