//! A real broker cluster (issue 14): a three-node NATS cluster with JetStream and MQTT on loopback
//! (`nguon_tests::nats`), one `nguon-server` on a fresh PostgreSQL database whose MQTT link lists
//! the three nodes, and six real agents each listing all three, starting at a different one (two
//! per node). A schedule plays; then the node that two agents (and not the server) are connected
//! to is `kill -9`ed: those agents reconnect to another node, and the next two schedules play on
//! every agent with the node still dead; every proof of play is stored exactly once.
//!
//! NATS has no `$share` shared subscriptions, so the server runs without `ha.shared_group` and
//! one instance ingests (the HA test `ha` runs three instances with `$share` on Mosquitto). Skips,
//! saying why, only when `nats-server` is not installed (.ci/run installs it).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use nguon_tests::db::{DEFAULT_POSTGRES, TestDatabase, postgres_from_env};
use nguon_tests::harness::{AgentProc, BrokerChoice, ServerProc};
use nguon_tests::nats::{self, NODES, NatsCluster};
use nguon_tests::net::eventually;
use nguon_tests::province::Province;

/// The broker URL of agent `a`'s latest connection, from its log.
fn connected_to(a: &AgentProc, urls: &[String]) -> Option<String> {
    let log = a.log();
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("connected to the broker"))?;
    urls.iter().find(|u| line.contains(u.as_str())).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fails on NATS 2.9.10: after kill -9 of one node no schedule played on any agent within 60 s (issue 14, docs/deployment.md); run with --ignored"]
async fn agents_on_a_killed_broker_node_move_to_another_and_keep_playing_exactly_once() {
    if let Err(why) = nats::available() {
        eprintln!("SKIPPED broker_cluster: {why}");
        return;
    }
    nguon_tests::init_crypto();
    let dir = tempfile::Builder::new()
        .prefix("nguon-cluster-")
        .tempdir()
        .unwrap();
    let root = dir.path().to_path_buf();
    let mut cluster = NatsCluster::start(&root.join("nats"))
        .await
        .expect("NATS cluster");
    let urls = cluster.urls_from(0);

    let pg = postgres_from_env().unwrap_or_else(|| DEFAULT_POSTGRES.to_string());
    let db = TestDatabase::fresh_postgres(&pg)
        .await
        .expect("PostgreSQL for the broker cluster test");
    // The server's link lists the nodes from node 0: it stays there, away from the node killed.
    let mut server = ServerProc::prepare_on(
        &root.join("server"),
        BrokerChoice::External(urls.join(",")),
        db,
        &[("NGUON_SERVER_SHUTDOWN_GRACE_SECS", "2")],
    )
    .unwrap();
    server.launch().await.unwrap();
    let mut p = Province::from_server(dir, server, 2, 3).await;
    p.start_agents_on(|i| cluster.urls_from(i % NODES)).await;
    p.wait_online().await;
    for (i, a) in p.agents.iter().enumerate() {
        assert_eq!(
            connected_to(a, &urls),
            Some(cluster.url(i % NODES)),
            "{} starts on the first URL of its list",
            a.device.id
        );
    }
    let everyone = p.ids(|_| true);
    let province = p.province.clone();
    let (_, sha) = p.clip(2.0).await;

    // 1. A schedule plays on every node.
    let (s1, _) = p.schedule_in(&sha, &[province.as_str()], 12).await;
    p.wait_plays(&s1, &everyone, Duration::from_secs(60)).await;

    // 2. Node 1 dies (kill -9) between two schedules. (Killed while a dispatch was under way, a
    // QoS 1 manifest to an agent on a surviving node was lost once in this test: the JetStream
    // stream changing leader; see docs/deployment.md.)
    let victim = 1;
    let moved: BTreeSet<String> = p
        .agents
        .iter()
        .filter(|a| connected_to(a, &urls).as_deref() == Some(cluster.url(victim).as_str()))
        .map(|a| a.device.id.to_string())
        .collect();
    assert_eq!(moved.len(), 2, "two agents on node {victim}");
    let killed = Instant::now();
    cluster.kill9(victim);
    let dead = cluster.url(victim);
    let agents = &p.agents;
    let reconnect = eventually(
        "agents off the killed node",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || {
            let dead = dead.clone();
            let urls = urls.clone();
            async move {
                let stuck: Vec<String> = agents
                    .iter()
                    .filter(|a| connected_to(a, &urls).is_none_or(|u| u == dead))
                    .map(|a| a.device.id.to_string())
                    .collect();
                if stuck.is_empty() {
                    Ok(())
                } else {
                    Err(format!("still on node {victim}: {stuck:?}"))
                }
            }
        },
    )
    .await;
    if let Err(e) = reconnect {
        panic!("{e}\n{}\n--- node 0 ---\n{}", p.logs(), cluster.log_tail(0, 20));
    }
    let took = killed.elapsed();
    eprintln!(
        "kill -9 of broker node {victim}: agents {moved:?} reconnected to another node within {} ms",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(45), "reconnect took {took:?}");
    let (s2, _) = p.schedule_in(&sha, &[province.as_str()], 12).await;
    p.wait_plays(&s2, &everyone, Duration::from_secs(60)).await;

    // 3. And the next occurrence, with the node still dead.
    let (s3, _) = p.schedule_in(&sha, &[province.as_str()], 10).await;
    p.wait_plays(&s3, &everyone, Duration::from_secs(60)).await;

    // Exactly once: give late duplicates (outbox replays, QoS 1 redeliveries) time to show.
    tokio::time::sleep(Duration::from_secs(8)).await;
    for s in [&s1, &s2, &s3] {
        p.one_proof_each(s, &everyone).await;
    }
    for a in &p.agents {
        assert_eq!(
            a.wav_files().len(),
            3,
            "{}: played {:?}",
            a.device.id,
            a.wav_files()
        );
        assert!(
            connected_to(a, &urls).is_some_and(|u| u != dead),
            "{} on a live node",
            a.device.id
        );
    }
}
