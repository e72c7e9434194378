//! Media mirrors (issue 14, "the storm"): `media.mirrors` are asked before the server, a fleet
//! spreads over them by device id, and a failing one (refusing connections, or serving bytes that
//! are not the address's) hands over to the next within the same attempt, the server last. What
//! is asserted is which server saw which request and what played, never how fast.

use chrono::Utc;
use nguon_agent::{AgentEvent, AgentEventKind, AgentHandle};
use nguon_protocol::{Audience, Command, OnPreempt, PlayOutcome, Priority, ServerBody, topic};
use tokio::sync::broadcast;

use crate::common::*;
use crate::env::*;

/// A play-now emergency of `m`, played to its end.
async fn play_now(
    env: &Env,
    c: &TestClient,
    rx: &mut broadcast::Receiver<AgentEvent>,
    id: &str,
    m: &nguon_protocol::MediaRef,
) {
    let mut play = item(id, Utc::now(), Priority::Emergency, m, OnPreempt::Interrupt);
    play.schedule_id = String::new();
    env.command(
        c,
        Command::PlayNow {
            item: play,
            media: vec![m.clone()],
        },
    )
    .await;
    assert_eq!(ended(rx, id).await, PlayOutcome::Played, "{id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_mirror_and_a_lying_mirror_hand_over_to_the_server_and_the_emergency_plays() {
    let env = Env::new("lc-mirror");
    let src = env.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let clip = env
        .media
        .add(std::fs::read(tone_wav(&src, "e", 0.5)).unwrap(), 500);
    let next = env
        .media
        .add(std::fs::read(tone_wav(&src, "f", 0.6)).unwrap(), 600);
    // A mirror that serves other bytes at the clip's address, and one where nothing listens.
    let liar = MediaServer::start();
    let other = std::fs::read(tone_wav(&src, "x", 0.45)).unwrap();
    liar.put(&clip.url, other.clone());
    liar.put(&next.url, other);
    let dead = format!("http://127.0.0.1:{}", free_port());
    set_mirrors(&env.config, &[&dead, &liar.base_url]);
    let (agent, mut rx) = env.start().await;
    wait_event(&mut rx, WAIT, |k| matches!(k, AgentEventKind::Subscribed { .. })).await;
    let c = env.client().await;
    play_now(&env, &c, &mut rx, "now-1", &clip).await;
    // Whichever mirror this device starts at, both were asked once, then the server.
    assert_eq!(liar.hits_for(&clip.sha256).len(), 1);
    assert_eq!(env.media.hits_for(&clip.sha256).len(), 1);
    let cached = env.data().join("cache").join(&clip.sha256);
    assert_eq!(nguon_agent::cache::sha256_file(&cached).unwrap(), clip.sha256);
    // The next file goes first to the source that worked.
    play_now(&env, &c, &mut rx, "now-2", &next).await;
    assert_eq!(env.media.hits_for(&next.sha256).len(), 1);
    assert!(liar.hits_for(&next.sha256).is_empty());
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_with_two_mirrors_spreads_over_them_and_leaves_the_server_alone() {
    init();
    let tmp = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start();
    let origin = MediaServer::start();
    let mirrors = [MediaServer::start(), MediaServer::start()];
    let signer = Signer::new();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let bytes = std::fs::read(tone_wav(&src, "t", 0.5)).unwrap();
    let r = origin.add(bytes.clone(), 500);
    for m in &mirrors {
        m.add(bytes.clone(), 500);
    }
    let bases: Vec<&str> = mirrors.iter().map(|m| m.base_url.as_str()).collect();
    let mut agents: Vec<(AgentHandle, broadcast::Receiver<AgentEvent>)> = Vec::new();
    let c = TestClient::connect(broker.port, &[]).await;
    for i in 0..6 {
        let dev = format!("lc-cdn-{i}");
        let dir = tmp.path().join(&dev);
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = write_config(
            &dir,
            &dev,
            &broker.url(),
            &origin.base_url,
            &signer.key.public_b64(),
            "null",
        );
        set_mirrors(&cfg, &bases);
        let (h, rx) = start_observed(&cfg, dir).await;
        // An emergency later on: its media is fetched at once.
        let later = item(
            "e",
            Utc::now() + chrono::Duration::hours(1),
            Priority::Emergency,
            &r,
            OnPreempt::Interrupt,
        );
        let msg = signer.message(
            Audience::Device(device(&dev)),
            ServerBody::Desired(manifest(1, vec![later], vec![r.clone()])),
        );
        c.publish(&topic::desired(&device(&dev)), signer.sign(&msg), true)
            .await;
        agents.push((h, rx));
    }
    for (_, rx) in &mut agents {
        wait_event(
            rx,
            WAIT,
            |k| matches!(k, AgentEventKind::MediaReady { sha256 } if *sha256 == r.sha256),
        )
        .await;
    }
    let per_mirror: Vec<usize> = mirrors.iter().map(|m| m.hits_for(&r.sha256).len()).collect();
    assert_eq!(per_mirror.iter().sum::<usize>(), 6, "{per_mirror:?}");
    assert!(
        per_mirror.iter().all(|n| *n > 0),
        "every mirror takes part: {per_mirror:?}"
    );
    assert!(origin.hits_for(&r.sha256).is_empty());
    for (h, _) in agents {
        h.shutdown().await;
    }
}
