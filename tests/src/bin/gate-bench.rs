//! The embedded broker's cost: started as nguon-server starts it (rmqtt on an internal port, the
//! gate on a public one), N device clients connecting and subscribing to their area's command
//! topic and their own `desired` topic (where the server has retained one message per device
//! beforehand), then one message published to all of them; through the gate and directly to the
//! engine's internal port (logging in there with the gate's own per-start password, so the engine's
//! own ACL hooks still apply), alternately in the same run. Prints, per round and as medians: the
//! time until the last SUBACK, until the last client received its retained message, and from the
//! one publish until the last client received it.
//!
//! `cargo run --release -p nguon-tests --bin gate-bench -- --clients 1000 --rounds 5`

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use nguon_protocol::{AreaCode, DeviceId, topic};
use nguon_server::mqtt::broker::{self, INTERNAL_USER};
use nguon_server::{Settings, Store};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeFilter};
use tokio::sync::mpsc;

#[derive(Parser)]
struct Args {
    /// Device clients per round.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Rounds per path (alternating gate / direct).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Clients connecting at once.
    #[arg(long, default_value_t = 100)]
    batch: usize,
}

const AREA: &str = "bench-area";

/// What one round measured.
struct Round {
    /// Start → last SUBACK.
    connected: Duration,
    /// Start → last client's own retained message received.
    retained: Duration,
    /// Publish → last client received it.
    one_to_all: Duration,
}

/// Retain one message on each device's `desired` topic (as the server's internal user), waiting
/// for every PUBACK.
async fn retain_all(internal: SocketAddr, password: &str, ids: &[String]) -> anyhow::Result<()> {
    let mut o = MqttOptions::new("gb-retainer", internal.ip().to_string(), internal.port());
    o.set_credentials(INTERNAL_USER, password).set_inflight(500);
    let (c, mut el) = AsyncClient::new(o, 1000);
    let topics: Vec<String> = ids
        .iter()
        .map(|id| Ok(topic::desired(&DeviceId::parse(id)?)))
        .collect::<anyhow::Result<_>>()?;
    let feeder = tokio::spawn(async move {
        for t in topics {
            if c.publish(t, QoS::AtLeastOnce, true, vec![b'm'; 512])
                .await
                .is_err()
            {
                break;
            }
        }
        c
    });
    let mut acked = 0;
    while acked < ids.len() {
        match tokio::time::timeout(Duration::from_secs(60), el.poll()).await {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acked += 1,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => anyhow::bail!("retaining: {e}"),
            Err(_) => anyhow::bail!("retaining: no progress within 60 s ({acked} acked)"),
        }
    }
    drop(feeder.await?);
    Ok(())
}

/// Connect `n` clients to `addr` (device i logs in with `password(i)`), subscribe each to the area
/// topic and its own `desired` topic; returns the time until every SUBACK, until every client
/// received its retained message, and until every one received the message published by
/// `publisher`.
async fn round(
    addr: SocketAddr,
    n: usize,
    batch: usize,
    password: &(dyn Fn(usize) -> String + Sync),
    publisher: &AsyncClient,
    run: &str,
) -> anyhow::Result<Round> {
    let area_topic = topic::area_cmd(&AreaCode::parse(AREA)?);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
    let (got_tx, mut got_rx) = mpsc::unbounded_channel::<Instant>();
    let (kept_tx, mut kept_rx) = mpsc::unbounded_channel::<Instant>();
    let mut clients = Vec::with_capacity(n);
    let mut tasks = Vec::with_capacity(n);
    let started = Instant::now();
    for start in (0..n).step_by(batch.max(1)) {
        for i in start..(start + batch).min(n) {
            let id = format!("{run}-{i:05}");
            let mut o = MqttOptions::new(&id, addr.ip().to_string(), addr.port());
            o.set_credentials(&id, password(i))
                .set_keep_alive(Duration::from_secs(60))
                .set_clean_session(true);
            let (c, mut el) = AsyncClient::new(o, 16);
            let (ready, got, t, client) = (ready_tx.clone(), got_tx.clone(), area_topic.clone(), c.clone());
            let kept = kept_tx.clone();
            let own = topic::desired(&DeviceId::parse(&id)?);
            let run = run.to_string();
            tasks.push(tokio::spawn(async move {
                loop {
                    match el.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            let filters = [
                                SubscribeFilter::new(t.clone(), QoS::AtLeastOnce),
                                SubscribeFilter::new(own.clone(), QoS::AtLeastOnce),
                            ];
                            let _ = client.subscribe_many(filters).await;
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) if p.topic == own => {
                            let _ = kept.send(Instant::now());
                        }
                        Ok(Event::Incoming(Packet::SubAck(_))) => {
                            let _ = ready.send(());
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) if p.payload.as_ref() == run.as_bytes() => {
                            let _ = got.send(Instant::now());
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
            }));
            clients.push(c);
        }
        // Let the batch in before the next (listen backlogs are small).
        let want = (start + batch).min(n) - start;
        for _ in 0..want {
            tokio::time::timeout(Duration::from_secs(60), ready_rx.recv())
                .await
                .context("SUBACK within 60 s")?;
        }
    }
    let connected = started.elapsed();
    let mut last_kept = started;
    for _ in 0..n {
        let t = tokio::time::timeout(Duration::from_secs(120), kept_rx.recv())
            .await
            .context("every client receives its retained message within 120 s")?
            .context("channel")?;
        last_kept = last_kept.max(t);
    }
    let sent = Instant::now();
    publisher
        .publish(&area_topic, QoS::AtLeastOnce, false, run.as_bytes().to_vec())
        .await?;
    let mut last = sent;
    for _ in 0..n {
        let t = tokio::time::timeout(Duration::from_secs(60), got_rx.recv())
            .await
            .context("every client receives within 60 s")?
            .context("channel")?;
        last = last.max(t);
    }
    for c in &clients {
        let _ = c.try_disconnect();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for t in tasks {
        t.abort();
    }
    Ok(Round {
        connected,
        retained: last_kept - started,
        one_to_all: last - sent,
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    nguon_tests::net::raise_fd_limit();
    let dir = tempfile::tempdir()?;
    let settings = Settings {
        mqtt_addr: "127.0.0.1:0".parse()?,
        data_dir: dir.path().to_path_buf(),
        mqtt_max_connections: args.clients * 3 + 100,
        mqtt_max_connections_per_ip: args.clients * 3 + 100,
        ..Settings::default()
    };
    let store = Store::connect(&settings.database_url()).await?;
    let now = chrono::Utc::now().timestamp_millis();
    sqlx::query("INSERT INTO areas (code, name, parent, level, created_at, updated_at) VALUES ($1, $1, NULL, 'province', $2, $2)")
        .bind(AREA)
        .bind(now)
        .execute(&store.pool)
        .await?;
    // One PBKDF2 hash shared by every device keeps the set-up short; the gate verifies each
    // (user, password) once, as in production.
    let hash = nguon_provision::credential::hash_password("bench-password");
    // Fresh client ids in every round (a reused id would take over a closing session).
    // Direct clients are registered devices too: the engine's ACL hooks check their topics.
    let ids: Vec<String> = (0..args.rounds)
        .flat_map(|r| ["g", "d"].map(|p| format!("{p}{r}")))
        .flat_map(|run| (0..args.clients).map(move |i| format!("{run}-{i:05}")))
        .collect();
    for chunk in ids.chunks(200) {
        let mut tx = store.pool.begin().await?;
        for id in chunk {
            sqlx::query(
                "INSERT INTO devices (id, kind, area, name, enabled, credential_hash, created_at, updated_at) \
                 VALUES ($1, 'loudspeaker', $2, $1, 1, $3, $4, $4)",
            )
            .bind(id.clone())
            .bind(AREA)
            .bind(hash.clone())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
    }
    let b = broker::start(&settings, &store).await?;
    let gate = b.listen_addr().context("gate address")?;
    let internal = b.internal_addr().context("internal address")?;
    let gate_pw = b
        .credentials()
        .context("credentials")?
        .gate_password()
        .to_string();
    let mut o = MqttOptions::new("gb-publisher", internal.ip().to_string(), internal.port());
    o.set_credentials(INTERNAL_USER, b.internal_password().unwrap_or_default());
    let (publisher, mut el) = AsyncClient::new(o, 64);
    tokio::spawn(async move {
        loop {
            if el.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let via_gate = |_: usize| "bench-password".to_string();
    let gate_pw = Arc::new(gate_pw);
    let direct = {
        let p = gate_pw.clone();
        move |_: usize| p.to_string()
    };
    let server_pw = b.internal_password().unwrap_or_default().to_string();
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load().trim());
    let (mut gate_rounds, mut direct_rounds) = (Vec::new(), Vec::new());
    for r in 0..args.rounds {
        for (run, addr, pw, out) in [
            (
                format!("g{r}"),
                gate,
                &via_gate as &(dyn Fn(usize) -> String + Sync),
                &mut gate_rounds,
            ),
            (format!("d{r}"), internal, &direct, &mut direct_rounds),
        ] {
            let mine: Vec<String> = ids
                .iter()
                .filter(|i| i.starts_with(&format!("{run}-")))
                .cloned()
                .collect();
            retain_all(internal, &server_pw, &mine).await?;
            let x = round(addr, args.clients, args.batch, pw, &publisher, &run).await?;
            println!(
                "round {r} {:6}: connect+subscribe {:?}, own retained message {:?}, one publish to all {:?}",
                if run.starts_with('g') { "gate" } else { "direct" },
                x.connected,
                x.retained,
                x.one_to_all
            );
            out.push(x);
        }
    }
    println!("load average at end: {}", load().trim());
    for (name, v) in [("gate", &gate_rounds), ("direct", &direct_rounds)] {
        println!(
            "median over {} rounds, {} clients, {name}: connect+subscribe {:?}, own retained message {:?}, one publish to all {:?}",
            args.rounds,
            args.clients,
            median(v.iter().map(|x| x.connected).collect()),
            median(v.iter().map(|x| x.retained).collect()),
            median(v.iter().map(|x| x.one_to_all).collect()),
        );
    }
    Ok(())
}
