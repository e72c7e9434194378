//! Several server instances (issue 14): readiness that names what is down, one SQLite file for one
//! instance, and three `nguon-server` processes on one PostgreSQL database (a fresh database per
//! test on `NGUON_TEST_DATABASE_URL`, else the machine's) behind a TCP load balancer, with a
//! private Mosquitto (shared subscriptions) and real agents. The leader is `kill -9`ed during a
//! dispatch and during a schedule's firing, and the three are rolled with SIGTERM while agents
//! play. A spy on the broker records every desired manifest published.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nguon_protocol::{ServerBody, ServerMessage, Signed};
use nguon_tests::balancer::Balancer;
use nguon_tests::db::{DEFAULT_POSTGRES, TestDatabase, postgres_from_env};
use nguon_tests::harness::{BrokerChoice, ServerProc, TOKEN};
use nguon_tests::instances::{leader, readyz};
use nguon_tests::mosquitto::Mosquitto;
use nguon_tests::net::eventually;
use nguon_tests::province::{POLL, Province};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_the_link_that_is_down_and_one_sqlite_file_serves_one_instance() {
    nguon_tests::init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let mut mosquitto = Mosquitto::start(&dir.path().join("mosquitto")).await.unwrap();
    let server = ServerProc::prepare_on(
        &dir.path().join("a"),
        BrokerChoice::External(mosquitto.url()),
        TestDatabase::shared(&format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("shared/nguon.db").display()
        )),
        &[("NGUON_DATA_DIR", dir.path().join("shared").to_str().unwrap())],
    );
    let mut server = server.unwrap();
    server.launch().await.unwrap();
    let port = server.http_port;
    let ready = eventually("ready as leader", Duration::from_secs(15), POLL, || async {
        match readyz(port).await {
            Some((200, b)) if b["role"] == "leader" => Ok(b),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .unwrap();
    assert_eq!(ready["database"], "ok");
    assert_eq!(ready["mqtt"], "ok");

    // The broker goes away: not ready, naming the MQTT link; /healthz (liveness) stays 200.
    mosquitto.stop();
    let down = eventually("503 naming mqtt", Duration::from_secs(30), POLL, || async {
        match readyz(port).await {
            Some((503, b)) if b["mqtt"] == "down" => Ok(b),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .unwrap();
    assert_eq!(down["database"], "ok", "{down}");
    assert!(
        server.api.healthy().await,
        "liveness does not depend on the broker"
    );
    mosquitto.restart().await.unwrap();
    eventually("ready again", Duration::from_secs(60), POLL, || async {
        match readyz(port).await {
            Some((200, b)) if b["mqtt"] == "ok" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .unwrap();

    // A second instance on the same SQLite file refuses to start, saying why.
    let second = ServerProc::prepare_on(
        &dir.path().join("b"),
        BrokerChoice::External(mosquitto.url()),
        TestDatabase::shared("unused"),
        &[("NGUON_DATA_DIR", dir.path().join("shared").to_str().unwrap())],
    )
    .unwrap();
    let mut cmd = second.command().unwrap();
    cmd.env_remove("NGUON_DATABASE_URL");
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "the second instance started: {text}");
    assert!(
        text.contains("another nguon-server already uses the SQLite database"),
        "{text}"
    );
    assert!(readyz(port).await.is_some_and(|(s, _)| s == 200));

    // SIGTERM: a graceful stop, within the grace, releasing the lease.
    let started = Instant::now();
    let status = server
        .stop_status(libc::SIGTERM, Duration::from_secs(20))
        .expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    let log = std::fs::read_to_string(dir.path().join("a/server.0.log")).unwrap();
    assert!(log.contains("leader lease released"), "{log}");
    assert!(log.contains("mqtt link") || log.contains("stopped"), "{log}");
    eprintln!("SIGTERM → exit: {} ms", started.elapsed().as_millis());
}

/// Every desired manifest the broker delivers: device → (seq, version, schedule ids, arrival).
type Seen = Arc<Mutex<BTreeMap<String, Vec<(u64, u64, BTreeSet<String>, Instant)>>>>;

/// Subscribe to every device's desired topic (QoS 0: each delivery once) and record them.
async fn spy(broker: SocketAddr) -> (Seen, tokio::task::JoinHandle<()>) {
    let mut opts = MqttOptions::new(
        format!("ha-spy-{}", nguon_tests::net::random_suffix()),
        broker.ip().to_string(),
        broker.port(),
    );
    opts.set_keep_alive(Duration::from_secs(10))
        .set_max_packet_size(8 << 20, 8 << 20);
    let (client, mut events) = AsyncClient::new(opts, 100);
    client
        .subscribe("nguon/v1/d/+/desired", QoS::AtMostOnce)
        .await
        .unwrap();
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let task = tokio::spawn(async move {
        let _client = client;
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let Some(msg) = Signed::from_bytes(&p.payload)
                        .ok()
                        .and_then(|s| s.parse_payload::<ServerMessage>().ok())
                    else {
                        continue;
                    };
                    let ServerBody::Desired(m) = msg.body else {
                        continue;
                    };
                    let device = p.topic.split('/').nth(3).unwrap_or_default().to_string();
                    let ids = m.items.iter().map(|i| i.schedule_id.clone()).collect();
                    s.lock().unwrap().entry(device).or_default().push((
                        msg.seq,
                        m.version,
                        ids,
                        Instant::now(),
                    ));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    (seen, task)
}

/// Per device: no manifest arrives numbered below one already delivered, one version is one
/// content, and the manifests naming `schedule` carry exactly one version (the change's).
fn one_version_per_change(seen: &Seen, devices: &BTreeSet<String>, schedule: &str) {
    let seen = seen.lock().unwrap();
    for d in devices {
        let msgs = seen.get(d).unwrap_or_else(|| panic!("no manifest seen for {d}"));
        let mut last = 0;
        let mut contents: BTreeMap<u64, &BTreeSet<String>> = BTreeMap::new();
        for (seq, version, ids, _) in msgs {
            assert!(*seq >= last, "{d}: seq {seq} delivered after {last}: {msgs:?}");
            last = *seq;
            let c = contents.entry(*version).or_insert(ids);
            assert_eq!(*c, ids, "{d}: version {version} published with two contents");
        }
        let with: BTreeSet<u64> = msgs
            .iter()
            .filter(|(_, _, ids, _)| ids.contains(schedule))
            .map(|(_, v, _, _)| *v)
            .collect();
        assert_eq!(
            with.len(),
            1,
            "{d}: versions naming {schedule}: {with:?} ({msgs:?})"
        );
    }
}

/// Start instance `i` of three sharing `db_url`, `data` and the balancer's public URL.
async fn instance(
    root: &std::path::Path,
    i: usize,
    mqtt: &str,
    db: TestDatabase,
    data: &str,
    lb: &str,
) -> ServerProc {
    let id = format!("ha-{i}");
    let mut s = ServerProc::prepare_on(
        &root.join(&id),
        BrokerChoice::External(mqtt.to_string()),
        db,
        &[
            ("NGUON_DATA_DIR", data),
            ("NGUON_PUBLIC_URL", lb),
            ("NGUON_HA_SHARED_GROUP", "nguon"),
            ("NGUON_HA_INSTANCE_ID", &id),
            ("NGUON_HA_LEASE_TTL_SECS", "5"),
            ("NGUON_SERVER_SHUTDOWN_GRACE_SECS", "5"),
        ],
    )
    .unwrap();
    std::fs::create_dir_all(root.join(&id)).unwrap();
    s.launch().await.unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_postgres_fail_over_and_roll_without_loss_or_repeat() {
    nguon_tests::init_crypto();
    let dir = tempfile::Builder::new().prefix("nguon-ha-").tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let mosquitto = Mosquitto::start(&root.join("mosquitto")).await.unwrap();
    let lb = Balancer::start().await.unwrap();
    let pg = postgres_from_env().unwrap_or_else(|| DEFAULT_POSTGRES.to_string());
    let db = TestDatabase::fresh_postgres(&pg)
        .await
        .expect("PostgreSQL for the HA test");
    let db_url = db.url().unwrap().to_string();
    let data = root.join("server-data");
    let data = data.to_str().unwrap();
    let first = instance(&root, 0, &mosquitto.url(), db, data, &lb.url()).await;
    let mut servers = vec![first];
    for i in 1..3 {
        let s = instance(
            &root,
            i,
            &mosquitto.url(),
            TestDatabase::shared(&db_url),
            data,
            &lb.url(),
        )
        .await;
        servers.push(s);
    }
    lb.set_upstreams(
        servers
            .iter()
            .map(|s| SocketAddr::from(([127, 0, 0, 1], s.http_port)))
            .collect(),
    );
    let (lead, _) = leader(&servers, Duration::from_secs(15)).await;
    assert_eq!(lead, 0, "the first instance took the free lease");

    // The province through the balancer: its `server` is a handle on the balancer, never started.
    let mut front = ServerProc::prepare_on(
        &root.join("balancer"),
        BrokerChoice::External(mosquitto.url()),
        TestDatabase::shared(&db_url),
        &[],
    )
    .unwrap();
    front.api = nguon_tests::api::Api::new(lb.url(), TOKEN);
    let mut p = Province::from_server(dir, front, 2, 2).await;
    let (seen, _spy) = spy(mosquitto.addr()).await;
    p.start_agents(|_| None).await;
    p.wait_online().await;
    let (_, sha) = p.clip(2.0).await;
    let everyone = p.ids(|_| true);
    let province = p.province.clone();

    // 1. kill -9 the leader right after a change is committed (its dispatch is under way).
    let (lead, _) = leader(&servers, Duration::from_secs(10)).await;
    let (s1, _) = p.schedule_in(&sha, &[province.as_str()], 25).await;
    let killed = Instant::now();
    servers[lead].kill9();
    let (next, took) = leader(&servers, Duration::from_secs(10)).await;
    let _ = took;
    eprintln!(
        "failover after kill -9 during a dispatch: instance {lead} → {next} in {} ms",
        killed.elapsed().as_millis()
    );
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "new leader after {:?}",
        killed.elapsed()
    );
    servers[lead].launch().await.unwrap();
    let plays = p.wait_plays(&s1, &everyone, Duration::from_secs(60)).await;

    // 2. kill -9 the leader as the schedule fires on the agents.
    let (lead, _) = leader(&servers, Duration::from_secs(10)).await;
    let (s2, at) = p.schedule_in(&sha, &[province.as_str()], 12).await;
    let until = (at - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(until.saturating_sub(Duration::from_millis(300))).await;
    let killed = Instant::now();
    servers[lead].kill9();
    let (_, _) = leader(&servers, Duration::from_secs(10)).await;
    let failover2 = killed.elapsed();
    eprintln!(
        "failover after kill -9 during a firing: {} ms",
        failover2.as_millis()
    );
    assert!(failover2 < Duration::from_secs(10));
    servers[lead].launch().await.unwrap();
    let plays2 = p.wait_plays(&s2, &everyone, Duration::from_secs(60)).await;

    // 3. Roll the three with SIGTERM while agents play (a schedule fires mid-roll).
    let (s3, _) = p.schedule_in(&sha, &[province.as_str()], 15).await;
    let mut handovers = Vec::new();
    for i in 0..servers.len() {
        let was_leader = readyz(servers[i].http_port)
            .await
            .is_some_and(|(_, b)| b["role"] == "leader");
        let t = Instant::now();
        let status = servers[i].stop_status(libc::SIGTERM, Duration::from_secs(15));
        assert!(
            status.is_some_and(|s| s.success()),
            "instance {i} after SIGTERM: {status:?}"
        );
        let stopped = t.elapsed();
        let (_, _) = leader(&servers, Duration::from_secs(10)).await;
        handovers.push((i, was_leader, stopped, t.elapsed()));
        servers[i].launch().await.unwrap();
    }
    eprintln!("rolling restart (instance, was leader, SIGTERM→exit, SIGTERM→leader): {handovers:?}");
    for (i, was_leader, _, to_leader) in &handovers {
        if *was_leader {
            assert!(
                *to_leader < Duration::from_secs(4),
                "instance {i} released its lease at SIGTERM, a follower should take it at its next poll: {to_leader:?}"
            );
        }
    }
    let plays3 = p.wait_plays(&s3, &everyone, Duration::from_secs(60)).await;

    // Nothing lost, nothing twice: give late duplicates time to show, then count.
    tokio::time::sleep(Duration::from_secs(8)).await;
    for (s, first) in [(&s1, plays), (&s2, plays2), (&s3, plays3)] {
        let all = p.one_proof_each(s, &everyone).await;
        assert_eq!(all.len(), first.len(), "schedule {s}: proofs after settling");
        one_version_per_change(&seen, &everyone, s);
    }
    for a in &p.agents {
        assert_eq!(
            a.wav_files().len(),
            3,
            "{}: played {:?}",
            a.device.id,
            a.wav_files()
        );
    }
    drop(servers);
}
