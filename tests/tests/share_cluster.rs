//! Shared ingest on a real multi-node MQTT cluster (issue 14): three `nguon-server` instances on
//! one PostgreSQL database (a fresh database on `NGUON_TEST_DATABASE_URL`, else the machine's, as
//! the `ha` test), each carrying one node of the embedded broker's cluster (`[broker_cluster]`,
//! rmqtt's broadcast cluster on loopback ports 25101–25103 for devices, 25111–25113 between
//! nodes), with `ha.shared_group`: every instance subscribes to device reports as
//! `$share/nguon/…` on its own node, and the cluster hands each report to one of them. Six real
//! agents each list the three nodes, starting at a different one (two per node).
//!
//! 1. A schedule is committed and the leader is `kill -9`ed at once (its dispatch under way),
//!    taking its broker node with it: a new leader within 10 s, the agents of that node move to
//!    another, and the instance is started again (its node rejoins and pulls the retained
//!    manifests).
//! 2. Another schedule, and a follower's node is `kill -9`ed just before it fires (its agents move
//!    again); it stays dead.
//!
//! Then, counted: each agent played each schedule exactly once (one WAV per schedule, one proof of
//! play per device and schedule, each proof stored once), every agent's outbox is empty (the
//! receipts reached the agents, from whichever instance stored the batch), and more than one
//! instance stored events (the `$share` group spread the ingest across nodes).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use nguon_tests::balancer::Balancer;
use nguon_tests::db::{DEFAULT_POSTGRES, TestDatabase, postgres_from_env};
use nguon_tests::harness::{BrokerChoice, ServerProc, TOKEN};
use nguon_tests::instances::{agents_leave, leader, metric, node_of};
use nguon_tests::net::eventually;
use nguon_tests::province::{POLL, Province};

const NODES: usize = 3;
/// Devices' (gate) port of node `i` is `MQTT + i`; the cluster's gRPC port `GRPC + i`.
const MQTT: u16 = 25101;
const GRPC: u16 = 25111;

fn node_url(i: usize) -> String {
    format!("mqtt://127.0.0.1:{}", MQTT + i as u16)
}

/// The three nodes' URLs starting at node `first`.
fn urls_from(first: usize) -> Vec<String> {
    (0..NODES).map(|k| node_url((first + k) % NODES)).collect()
}

/// Start `s` (files in `dir`); on failure, panic with its latest log without the backtrace.
async fn launch(s: &mut ServerProc, dir: &std::path::Path) {
    if let Err(e) = s.launch().await {
        let mut logs: Vec<_> = std::fs::read_dir(dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        logs.retain(|p| p.extension().is_some_and(|x| x == "log"));
        logs.sort();
        let log = logs
            .last()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        let head: Vec<&str> = log.lines().filter(|l| !l.starts_with(' ')).take(40).collect();
        panic!("{e}\n--- log, without backtrace ---\n{}", head.join("\n"));
    }
}

/// Prepare instance `i`: the embedded broker as node `i + 1` of three, shared ingest group `nguon`.
fn instance(root: &std::path::Path, i: usize, db: TestDatabase, data: &str, lb: &str) -> ServerProc {
    let id = format!("node-{i}");
    let nodes: Vec<String> = (0..NODES)
        .map(|k| format!("{}@127.0.0.1:{}", k + 1, GRPC + k as u16))
        .collect();
    let s = ServerProc::prepare_on(
        &root.join(&id),
        BrokerChoice::Embedded(MQTT + i as u16),
        db,
        &[
            ("NGUON_DATA_DIR", data),
            ("NGUON_PUBLIC_URL", lb),
            ("NGUON_BROKER_CLUSTER_NODE_ID", &(i + 1).to_string()),
            (
                "NGUON_BROKER_CLUSTER_LISTEN",
                &format!("127.0.0.1:{}", GRPC + i as u16),
            ),
            ("NGUON_BROKER_CLUSTER_NODES", &nodes.join(",")),
            ("NGUON_HA_SHARED_GROUP", "nguon"),
            ("NGUON_HA_INSTANCE_ID", &id),
            ("NGUON_HA_LEASE_TTL_SECS", "5"),
            ("NGUON_SERVER_SHUTDOWN_GRACE_SECS", "2"),
        ],
    )
    .unwrap();
    std::fs::create_dir_all(root.join(&id)).unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_ingest_on_a_three_node_broker_cluster_through_kills() {
    nguon_tests::init_crypto();
    let started = Instant::now();
    let dir = tempfile::Builder::new().prefix("nguon-share-").tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let lb = Balancer::start().await.unwrap();
    let pg = postgres_from_env().unwrap_or_else(|| DEFAULT_POSTGRES.to_string());
    let db = TestDatabase::fresh_postgres(&pg)
        .await
        .expect("PostgreSQL for the shared-ingest cluster test");
    let db_url = db.url().unwrap().to_string();
    let data = root.join("server-data");
    let data = data.to_str().unwrap();
    let mut servers = vec![instance(&root, 0, db, data, &lb.url())];
    for i in 1..NODES {
        servers.push(instance(&root, i, TestDatabase::shared(&db_url), data, &lb.url()));
    }
    // Started together, as a cluster's machines boot (a node's first CONNECT waits for its peers
    // to answer), the others once the first has migrated the fresh database.
    let dirs: Vec<_> = (0..NODES).map(|i| root.join(format!("node-{i}"))).collect();
    let (first, others) = servers.split_at_mut(1);
    let rest = async {
        let log = dirs[0].join("server.0.log");
        eventually("node 0 joined", Duration::from_secs(60), POLL, || {
            let log = log.clone();
            async move {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.contains("joined its cluster") {
                    Ok(())
                } else {
                    Err("not yet".to_string())
                }
            }
        })
        .await
        .unwrap();
        futures::future::join_all(others.iter_mut().zip(&dirs[1..]).map(|(s, d)| launch(s, d))).await;
    };
    tokio::join!(launch(&mut first[0], &dirs[0]), rest);
    lb.set_upstreams(
        servers
            .iter()
            .map(|s| SocketAddr::from(([127, 0, 0, 1], s.http_port)))
            .collect(),
    );
    leader(&servers, Duration::from_secs(15)).await;

    // The province through the balancer: its `server` is a handle on it, never started.
    let mut front = ServerProc::prepare_on(
        &root.join("balancer"),
        BrokerChoice::Embedded(MQTT),
        TestDatabase::shared(&db_url),
        &[],
    )
    .unwrap();
    front.api = nguon_tests::api::Api::new(lb.url(), TOKEN);
    let mut p = Province::from_server(dir, front, 2, 3).await;
    p.start_agents_on(urls_from, "").await;
    p.wait_online().await;
    let all_nodes = urls_from(0);
    for (i, a) in p.agents.iter().enumerate() {
        assert_eq!(
            node_of(a, &all_nodes),
            Some(i % NODES),
            "{} starts on its first URL",
            a.device.id
        );
    }
    let (_, sha) = p.clip(2.0).await;
    let everyone = p.ids(|_| true);
    let province = p.province.clone();

    // 1. kill -9 the leader (and its broker node) right after a change is committed.
    let (lead, _) = leader(&servers, Duration::from_secs(10)).await;
    let (s1, _) = p.schedule_in(&sha, &[province.as_str()], 16).await;
    let killed = Instant::now();
    servers[lead].kill9();
    let (next, moved) = tokio::join!(
        async {
            let (next, _) = leader(&servers, Duration::from_secs(10)).await;
            (next, killed.elapsed())
        },
        agents_leave(&p.agents, &all_nodes, lead)
    );
    let (next, failover) = next;
    let moved = moved.unwrap_or_else(|e| panic!("{e}\n{}", p.logs()));
    eprintln!(
        "kill -9 of the leader (instance and node {lead}) during a dispatch: instance {next} leads after {} ms, \
         the agents of node {lead} are on other nodes after {} ms",
        failover.as_millis(),
        moved.as_millis()
    );
    assert!(
        failover < Duration::from_secs(10),
        "new leader after {failover:?}"
    );
    launch(&mut servers[lead], &root.join(format!("node-{lead}"))).await;

    // 2. Another change; a follower's node is kill -9ed just before it fires, and stays dead.
    let victim = (0..NODES)
        .find(|i| *i != next && *i != lead)
        .expect("a third instance");
    let (s2, at) = p.schedule_in(&sha, &[province.as_str()], 10).await;
    let until = (at - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(until.saturating_sub(Duration::from_millis(500))).await;
    servers[victim].kill9();
    let moved = agents_leave(&p.agents, &all_nodes, victim)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", p.logs()));
    eprintln!(
        "kill -9 of follower node {victim} as a schedule fires: its agents moved within {} ms",
        moved.as_millis()
    );

    let plays1 = p.wait_plays(&s1, &everyone, Duration::from_secs(45)).await;
    let plays2 = p.wait_plays(&s2, &everyone, Duration::from_secs(45)).await;

    // Receipts reach the agents: every outbox drains (events are sent until a receipt names them).
    let agents = &p.agents;
    let drained = eventually(
        "every outbox empty",
        Duration::from_secs(30),
        POLL,
        || async move {
            let left: Vec<(String, usize)> = agents
                .iter()
                .map(|a| (a.device.id.to_string(), a.outbox_len()))
                .filter(|(_, n)| *n > 0)
                .collect();
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("events without a receipt: {left:?}"))
            }
        },
    )
    .await;
    if let Err(e) = drained {
        panic!("{e}\n{}", p.logs());
    }

    // Nothing twice: give late duplicates a moment, then count.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (s, first) in [(&s1, plays1), (&s2, plays2)] {
        let all = p.one_proof_each(s, &everyone).await;
        assert_eq!(all.len(), first.len(), "schedule {s}: proofs after settling");
    }
    for a in &p.agents {
        assert_eq!(
            a.wav_files().len(),
            2,
            "{}: played {:?}",
            a.device.id,
            a.wav_files()
        );
    }

    // The group spread the ingest: more than one running instance stored events.
    let mut stored = Vec::new();
    for (i, s) in servers.iter().enumerate().filter(|(_, s)| s.is_running()) {
        stored.push((
            i,
            metric(s.http_port, "nguon_events_stored_total")
                .await
                .unwrap_or(0),
        ));
    }
    eprintln!("events stored per running instance (since its start): {stored:?}");
    assert!(
        stored.iter().filter(|(_, n)| *n > 0).count() >= 2,
        "one instance took all the reports: {stored:?}"
    );
    let on: BTreeSet<usize> = p.agents.iter().filter_map(|a| node_of(a, &all_nodes)).collect();
    assert!(
        !on.contains(&victim),
        "an agent is still on the dead node: {on:?}"
    );
    eprintln!("share_cluster: {} s in all", started.elapsed().as_secs());
    drop(servers);
}
