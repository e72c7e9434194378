//! The embedded broker's cluster with mutual TLS (issue 14): two `nguon-server` instances on one
//! PostgreSQL database (a fresh database on `NGUON_TEST_DATABASE_URL`, else the machine's), each
//! carrying one node of the cluster (loopback ports 32101–32102 for devices, 32111–32112 between
//! nodes), with certificates from `nguon-provision cluster-certs` (one cluster CA). Two real
//! agents connect only to the follower's node, so every manifest the leader publishes crosses
//! from its node to the other over the TLS gRPC.
//!
//! Attackers: a rogue node (a third `nguon-server`, its own SQLite database holding the same
//! devices, node 3 listing the two real nodes) with a certificate from another CA, which
//! schedules a clip of its own for those devices; and a plain TCP client without any
//! certificate on a real node's cluster port, and a TLS client with a certificate the cluster's own
//! CA signed for a host not in `broker_cluster.nodes`. Then: the legitimate schedule reaches both agents
//! across nodes, the rogue's never does (each agent's manifest holds exactly the legitimate
//! schedule), and both real nodes log and count the refused connections
//! (`nguon_broker_cluster_refused_total`).

use std::time::{Duration, Instant};

use nguon_provision::cluster_certs::{Node, cluster_certs};
use nguon_tests::db::{DEFAULT_POSTGRES, TestDatabase, postgres_from_env};
use nguon_tests::harness::{BrokerChoice, ServerProc, TOKEN};
use nguon_tests::instances::{leader, metric, node_of, readyz};
use nguon_tests::net::eventually;
use nguon_tests::province::{POLL, Province};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Devices' (gate) port of node `i` (0-based) is `MQTT + i`; its cluster gRPC port `GRPC + i`.
const MQTT: u16 = 32101;
const GRPC: u16 = 32111;

fn nodes() -> String {
    (0..3)
        .map(|k| format!("{}@127.0.0.1:{}", k + 1, GRPC + k))
        .collect::<Vec<_>>()
        .join(",")
}

/// Each instance's warnings but the refusals (for a failure's message).
fn warnings(servers: &[ServerProc]) -> String {
    let mut out = String::new();
    for (i, s) in servers.iter().enumerate() {
        out.push_str(&format!("--- node {} ---\n", i + 1));
        for l in s.log().lines().filter(|l| {
            (l.contains("WARN")
                || l.to_lowercase().contains("grpc")
                || l.contains("cluster")
                || l.contains("listening"))
                && !l.contains("refused a connection")
        }) {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// Node `i + 1` of the cluster, its TLS files from `certs`.
fn node(
    root: &std::path::Path,
    i: u16,
    db: TestDatabase,
    certs: &std::path::Path,
    extra: &[(&str, &str)],
) -> ServerProc {
    let dir = root.join(format!("node-{i}"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |f: String| certs.join(f).display().to_string();
    let mut env: Vec<(String, String)> = vec![
        ("NGUON_BROKER_CLUSTER_NODE_ID".into(), (i + 1).to_string()),
        (
            "NGUON_BROKER_CLUSTER_LISTEN".into(),
            format!("127.0.0.1:{}", GRPC + i),
        ),
        (
            "NGUON_BROKER_CLUSTER_TLS_CERT".into(),
            file(format!("node-{}.pem", i + 1)),
        ),
        (
            "NGUON_BROKER_CLUSTER_TLS_KEY".into(),
            file(format!("node-{}.key", i + 1)),
        ),
        ("NGUON_BROKER_CLUSTER_TLS_CA".into(), file("ca.pem".into())),
        ("NGUON_SERVER_SHUTDOWN_GRACE_SECS".into(), "2".into()),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    ServerProc::prepare_on(&dir, BrokerChoice::Embedded(MQTT + i), db, &env).unwrap()
}

/// Wait until `server`'s log has the cluster port's refusal of the client at `peer` (and `reason`,
/// if given); fail with the log's tail otherwise.
async fn refusal_logged(server: &ServerProc, what: &str, peer: &str, reason: Option<&str>) {
    eventually(what, Duration::from_secs(15), POLL, || {
        let seen = server.log().lines().any(|l| {
            l.contains("refused a connection to the cluster port")
                && l.contains(peer)
                && reason.is_none_or(|r| l.contains(r))
        });
        async move {
            if seen {
                Ok(())
            } else {
                Err("not logged".to_string())
            }
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", server.log_tail(30)));
}

/// A TLS client presenting `node-9.pem` (the cluster CA's, for `outsider.invalid`) to the cluster
/// port on `port`: its local address, and what it got after the handshake (`Err`: refused).
fn outsider_handshake(certs: &std::path::Path, port: u16) -> (String, std::io::Result<Vec<u8>>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use std::io::{Read, Write};
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(certs.join("ca.pem")).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certs.join("node-9.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(certs.join("node-9.key")).unwrap();
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let me = tcp.local_addr().unwrap().to_string();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    // TLS 1.3: the client's handshake ends before the server has checked its certificate; the
    // server's verdict comes with the first read.
    let answer = tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").and_then(|()| {
        let mut buf = vec![0u8; 64];
        let n = tls.read(&mut buf)?;
        buf.truncate(n);
        if n == 0 {
            Err(std::io::Error::other("closed without an alert"))
        } else {
            Ok(buf)
        }
    });
    (me, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_carries_manifests_across_nodes_and_refuses_a_node_of_another_ca() {
    nguon_tests::init_crypto();
    let started = Instant::now();
    let dir = tempfile::Builder::new().prefix("nguon-ctls-").tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let node_spec = |i: u16| -> Node { format!("{}@127.0.0.1:{}", i + 1, GRPC + i).parse().unwrap() };
    let good = root.join("cluster-ca");
    cluster_certs(&good, &[node_spec(0), node_spec(1)]).expect("cluster certificates");
    let rogue_ca = root.join("rogue-ca");
    cluster_certs(&rogue_ca, &[node_spec(2)]).expect("rogue certificates");

    let pg = postgres_from_env().unwrap_or_else(|| DEFAULT_POSTGRES.to_string());
    let db = TestDatabase::fresh_postgres(&pg)
        .await
        .expect("PostgreSQL for the cluster TLS test");
    let db_url = db.url().unwrap().to_string();
    let data = root.join("server-data");
    let all = nodes();
    let two = &all[..all.rfind(',').unwrap()];
    let shared = [
        ("NGUON_DATA_DIR", data.to_str().unwrap()),
        ("NGUON_BROKER_CLUSTER_NODES", two),
        ("NGUON_HA_LEASE_TTL_SECS", "5"),
    ];
    let mut servers = vec![
        node(
            &root,
            0,
            db,
            &good,
            &[&shared[..], &[("NGUON_HA_INSTANCE_ID", "node-0")]].concat(),
        ),
        node(
            &root,
            1,
            TestDatabase::shared(&db_url),
            &good,
            &[&shared[..], &[("NGUON_HA_INSTANCE_ID", "node-1")]].concat(),
        ),
    ];
    // The first migrates the fresh database, its only peer down; the second starts once it serves.
    let t = Instant::now();
    servers[0].launch().await.expect("node 1");
    let port = servers[0].http_port;
    eventually("node 1 ready", Duration::from_secs(60), POLL, || async move {
        match readyz(port).await {
            Some((200, _)) => Ok(()),
            r => Err(format!("{r:?}")),
        }
    })
    .await
    .unwrap();
    eprintln!(
        "node 1 (TLS, its peer down) ready {} ms after start",
        t.elapsed().as_millis()
    );
    let t = Instant::now();
    servers[1].launch().await.expect("node 2");
    eprintln!(
        "node 2 (TLS, its peer up) healthy {} ms after start",
        t.elapsed().as_millis()
    );
    for s in &servers {
        assert!(
            s.log().contains("gRPC between nodes with mutual TLS"),
            "a node with tls_* runs its cluster gRPC with TLS:\n{}",
            s.log_tail(20)
        );
    }
    let (lead, _) = leader(&servers, Duration::from_secs(15)).await;
    let other = 1 - lead;

    // The province through the leader's API; its two agents only on the other node.
    let mut front = ServerProc::prepare_on(
        &root.join("front"),
        BrokerChoice::Embedded(MQTT + other as u16),
        TestDatabase::shared(&db_url),
        &[],
    )
    .unwrap();
    front.api = nguon_tests::api::Api::new(format!("http://127.0.0.1:{}", servers[lead].http_port), TOKEN);
    let mut p = Province::from_server(dir, front, 1, 2).await;
    let url = format!("mqtt://127.0.0.1:{}", MQTT + other as u16);
    p.start_agents_on(|_| vec![url.clone()], "").await;
    p.wait_online().await;
    for a in &p.agents {
        assert_eq!(
            node_of(a, std::slice::from_ref(&url)),
            Some(0),
            "{} is on node {}",
            a.device.id,
            other + 1
        );
    }
    let (clip, sha) = p.clip(1.0).await;
    let province = p.province.clone();

    // The rogue node: another CA, its own database with the same devices, node 3 of "the" cluster.
    let mut rogue = node(
        &root,
        2,
        TestDatabase::fresh().await.expect("rogue database"),
        &rogue_ca,
        &[("NGUON_BROKER_CLUSTER_NODES", &all)],
    );
    rogue.launch().await.expect("rogue node");
    rogue
        .api
        .import_fleet(&p.plan.registry())
        .await
        .expect("rogue fleet");
    let rogue_sha = rogue
        .api
        .upload_approved(&clip, "Giả mạo")
        .await
        .expect("rogue clip");
    let (local, _) = nguon_tests::province::local_in(120);
    rogue
        .api
        .schedule_once("Giả mạo", &rogue_sha, &[province.as_str()], &local, "normal")
        .await
        .expect("rogue schedule");
    let rogue_port = rogue.http_port;
    eventually(
        "the rogue published its manifests",
        Duration::from_secs(30),
        POLL,
        || async move {
            match metric(rogue_port, "nguon_manifests_published_total").await {
                Some(n) if n >= 2 => Ok(()),
                n => Err(format!("{n:?}")),
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rogue.log_tail(30)));

    // A client without any certificate on a real node's cluster port (a gRPC connection preface):
    // closed with at most a TLS alert (a plain HTTP/2 server would answer a SETTINGS frame).
    let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", GRPC + other as u16))
        .await
        .unwrap();
    let me = plain.local_addr().unwrap().to_string();
    let _ = plain.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), plain.read_to_end(&mut answer)).await;
    assert!(
        answer.is_empty() || answer[0] == 0x15,
        "a client without a certificate got an answer that is not a TLS alert: {answer:?}"
    );
    let log_of_other = &servers[other];
    refusal_logged(log_of_other, "the plain client's refusal logged", &me, None).await;

    // A client with a certificate of the cluster's own CA, but for a host not in `nodes`: refused
    // at the handshake too (`nodes` is the allow-list), logged with that reason.
    let outsider = Node {
        id: 9,
        host: "outsider.invalid".into(),
    };
    cluster_certs(&good, &[outsider]).expect("a certificate of the same CA for another host");
    let (me, answer) = tokio::task::spawn_blocking({
        let good = good.clone();
        let port = GRPC + other as u16;
        move || outsider_handshake(&good, port)
    })
    .await
    .unwrap();
    assert!(
        answer.is_err(),
        "a certificate for a host outside `nodes` was served: {answer:?}"
    );
    refusal_logged(
        log_of_other,
        "the outsider's refusal logged",
        &me,
        Some("none of the hosts in broker_cluster.nodes"),
    )
    .await;

    // A command through the leader (published on its node) acked by an agent on the other node:
    // sent again every 3 s while unanswered, as a node started before its peer has its circuit
    // to it open for 5 s after its first calls failed (docs/deployment.md).
    let dev = p.agents[0].device.id.to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut tries = 0;
    loop {
        tries += 1;
        let issued = p
            .api()
            .post(
                &format!("/api/v1/devices/{dev}/commands"),
                &serde_json::json!({"action": "sync"}),
            )
            .await
            .expect("sync issued");
        let id = issued["command_id"].as_str().expect("command id").to_string();
        let api = p.api().clone();
        let acked = eventually("the sync acked", Duration::from_secs(3), POLL, || {
            let (api, id, dev) = (api.clone(), id.clone(), dev.clone());
            async move {
                let c = api
                    .get(&format!("/api/v1/commands/{id}"))
                    .await
                    .map_err(|e| e.to_string())?;
                let state = c
                    .pointer("/tracking/targets")
                    .and_then(|t| t.as_array())
                    .and_then(|ts| ts.iter().find(|t| t["device_id"] == dev.as_str()))
                    .and_then(|t| t["state"].as_str().map(str::to_string));
                if state.as_deref() == Some("delivered") {
                    Ok(())
                } else {
                    Err(format!("{state:?}"))
                }
            }
        })
        .await;
        if acked.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no command from node {} reached the agent on node {} ({tries} tries)\n{}",
            lead + 1,
            other + 1,
            warnings(&servers)
        );
    }
    eprintln!(
        "a command crossed from node {} to node {} at try {tries}",
        lead + 1,
        other + 1
    );

    // The legitimate schedule crosses from the leader's node to the agents' node.
    let (s1, _) = p.schedule_in(&sha, &[province.as_str()], 120).await;
    let agents = &p.agents;
    eventually(
        "the schedule on every agent",
        Duration::from_secs(30),
        POLL,
        || {
            let missing: Vec<String> = agents
                .iter()
                .filter(|a| !a.stored_schedule_ids().contains(&s1))
                .map(|a| a.device.id.to_string())
                .collect();
            async move {
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(format!("missing on {missing:?}"))
                }
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", p.logs(), warnings(&servers)));
    for a in agents {
        assert_eq!(
            a.stored_schedule_ids(),
            vec![s1.clone()],
            "{} holds the legitimate schedule and nothing from the rogue node",
            a.device.id
        );
        assert!(
            !a.log().contains("server message rejected"),
            "{} got a message it had to reject:\n{}",
            a.device.id,
            a.log_tail(20)
        );
    }

    // Both real nodes refused the rogue (and the agent's node the plain client), logged and counted.
    for s in &servers {
        let port = s.http_port;
        let refused = eventually("refusals counted", Duration::from_secs(30), POLL, || async move {
            match metric(port, "nguon_broker_cluster_refused_total").await {
                Some(n) if n >= 1 => Ok(n),
                n => Err(format!("{n:?}")),
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", s.log_tail(30)));
        assert!(
            s.log().contains("refused a connection to the cluster port"),
            "the refusal is logged:\n{}",
            s.log_tail(30)
        );
        eprintln!("instance on {port}: {refused} connection(s) refused");
    }
    assert!(
        rogue.log().contains("gRPC call duplex transfer failure"),
        "the rogue node failed to reach its \"peers\":\n{}",
        rogue.log_tail(30)
    );
    eprintln!("cluster_tls done in {} s", started.elapsed().as_secs());
}
