//! A real broker cluster (issue 14): a three-node NATS cluster with JetStream and MQTT on loopback
//! (`nguon_tests::nats`), one `nguon-server` (SQLite, or PostgreSQL with
//! `NGUON_TEST_DATABASE_URL`) whose MQTT link lists the three nodes, and six real agents each
//! listing all three, starting at a different one (two per node). A schedule is committed and, while
//! its manifests are being dispatched, the node two agents (and not the server) are connected to is
//! `kill -9`ed: those agents reconnect to another node, that schedule and the next one play on
//! every agent with the node still dead, and every proof of play is stored exactly once.
//!
//! Agents and server subscribe with QoS 0 (`mqtt.subscribe_qos`, `ha.subscribe_qos`): NATS's QoS 1
//! subscriptions are JetStream consumers that stop delivering when their node dies while the
//! connection stays up, and a device reconnecting with the same client id waited ~23 s for its
//! dead consumer to be deleted (docs/deployment.md). Nothing rests on the broker keeping a
//! message: heartbeats carry the manifest version held and the server sends a newer one again.
//!
//! NATS has no `$share` shared subscriptions, so the server runs without `ha.shared_group` (the
//! HA test `ha` runs three instances with `$share` on Mosquitto). Skips, saying why, only when
//! `nats-server` is not installed (.ci/run installs it).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use nguon_tests::db::TestDatabase;
use nguon_tests::harness::{BrokerChoice, ServerProc};
use nguon_tests::instances::{agents_leave, node_of};
use nguon_tests::nats::{self, NODES, NatsCluster};
use nguon_tests::province::Province;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

    let db = TestDatabase::fresh().await.expect("database");
    // The server's link lists the nodes from node 0: it stays there, away from the node killed.
    let mut server = ServerProc::prepare_on(
        &root.join("server"),
        BrokerChoice::External(urls.join(",")),
        db,
        &[
            ("NGUON_SERVER_SHUTDOWN_GRACE_SECS", "2"),
            ("NGUON_HA_SUBSCRIBE_QOS", "0"),
        ],
    )
    .unwrap();
    server.launch().await.unwrap();
    let mut p = Province::from_server(dir, server, 2, 3).await;
    p.start_agents_on(|i| cluster.urls_from(i % NODES), "subscribe_qos = 0")
        .await;
    p.wait_online().await;
    for (i, a) in p.agents.iter().enumerate() {
        assert_eq!(
            node_of(a, &urls),
            Some(i % NODES),
            "{} starts on the first URL of its list",
            a.device.id
        );
    }
    let everyone = p.ids(|_| true);
    let province = p.province.clone();
    let (_, sha) = p.clip(2.0).await;

    // 1. A schedule is committed and node 1 dies (kill -9) while its manifests are dispatched.
    let victim = 1;
    let moved: BTreeSet<String> = p
        .agents
        .iter()
        .filter(|a| node_of(a, &urls) == Some(victim))
        .map(|a| a.device.id.to_string())
        .collect();
    assert_eq!(moved.len(), 2, "two agents on node {victim}");
    let (s1, _) = p.schedule_in(&sha, &[province.as_str()], 14).await;
    let killed = Instant::now();
    cluster.kill9(victim);
    if let Err(e) = agents_leave(&p.agents, &urls, victim).await {
        panic!("{e}\n{}\n--- node 0 ---\n{}", p.logs(), cluster.log_tail(0, 20));
    }
    let took = killed.elapsed();
    eprintln!(
        "kill -9 of broker node {victim}: agents {moved:?} reconnected to another node within {} ms",
        took.as_millis()
    );

    // 2. The next schedule, with the node still dead.
    let (s2, _) = p.schedule_in(&sha, &[province.as_str()], 10).await;
    p.wait_plays(&s1, &everyone, Duration::from_secs(60)).await;
    eprintln!(
        "the schedule dispatched at the kill played on every agent ({} ms after the kill)",
        killed.elapsed().as_millis()
    );
    p.wait_plays(&s2, &everyone, Duration::from_secs(60)).await;
    eprintln!(
        "the next schedule played on every agent ({} ms after the kill)",
        killed.elapsed().as_millis()
    );

    // Exactly once: give late duplicates (outbox replays, redeliveries) time to show.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for s in [&s1, &s2] {
        p.one_proof_each(s, &everyone).await;
    }
    for a in &p.agents {
        assert_eq!(
            a.wav_files().len(),
            2,
            "{}: played {:?}",
            a.device.id,
            a.wav_files()
        );
        assert!(
            node_of(a, &urls).is_some_and(|n| n != victim),
            "{} on a live node",
            a.device.id
        );
    }
}
