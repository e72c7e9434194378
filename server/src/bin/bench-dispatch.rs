//! Benchmark of part B's hot paths, against the real application (embedded broker unless
//! `--mqtt-url`, SQLite in a temp dir and, if reachable, a fresh PostgreSQL database):
//!
//! 1. proof-of-play ingest from N devices: signed batches published through the broker into the
//!    running app ("broker" rows), and the same batches fed straight into the ingest pipeline
//!    ("pipeline" rows: parse + verify + store, no MQTT);
//! 2. a province-wide schedule change for 2,000 and 10,000 devices: time until the dispatcher has
//!    computed, recorded and published every manifest with the broker's ack (the batch's second
//!    transaction committed), and until a wildcard subscriber has received all of them.
//!
//! `cargo run --release -p nguon-server --bin bench-dispatch [-- --postgres-url URL --mqtt-url URL]`

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::Utc;
use clap::Parser;
use nguon_protocol::{
    DeviceId, DeviceKey, Event, EventBatch, EventBody, PlayOutcome, Priority, ProofOfPlay, topic,
};
use nguon_server::config::Secret;
use nguon_server::mqtt::link::Incoming;
use nguon_server::{AppState, Application, Settings};
use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, QoS};

#[derive(Parser, Debug)]
struct Args {
    /// Devices sending proof of play.
    #[arg(long, default_value_t = 1000)]
    devices: usize,
    /// Events per device.
    #[arg(long, default_value_t = 100)]
    events: usize,
    /// Events per batch (one MQTT message).
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// Fleet sizes for the dispatch benchmark.
    #[arg(long, value_delimiter = ',', default_value = "2000,10000")]
    fleets: Vec<usize>,
    /// PostgreSQL admin URL; a fresh database is created and dropped. Empty skips PostgreSQL.
    #[arg(
        long,
        env = "NGUON_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
    /// External broker instead of the embedded one.
    #[arg(long, env = "NGUON_BENCH_MQTT_URL")]
    mqtt_url: Option<String>,
    /// Only the dispatch benchmark (e.g. against a Mosquitto whose `max_queued_messages` would
    /// drop an unpaced burst of 2,000 report batches).
    #[arg(long)]
    dispatch_only: bool,
}

struct Running {
    state: AppState,
    mqtt: (String, u16),
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

async fn start(db: Option<String>, mqtt_url: Option<String>) -> Result<Running> {
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let settings = Settings {
        http_addr: "127.0.0.1:0".parse()?,
        mqtt_addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        data_dir: dir.path().join("data"),
        admin_token: Some(Secret::new("bench-token")),
        database_url: db.map(Secret::new),
        mqtt_url: mqtt_url.clone().map(Secret::new),
        dispatch_debounce_ms: 0,
        ..Settings::default()
    };
    let app = Application::build(settings).await.context("build app")?;
    let mqtt = match (app.mqtt_addr(), &mqtt_url) {
        (Some(a), _) => (a.ip().to_string(), a.port()),
        (None, Some(u)) => {
            let hp = u
                .trim_start_matches("mqtt://")
                .rsplit('@')
                .next()
                .unwrap_or_default()
                .to_string();
            let (h, p) = hp.rsplit_once(':').unwrap_or((&hp, "1883"));
            (h.to_string(), p.parse().unwrap_or(1883))
        }
        _ => anyhow::bail!("no broker"),
    };
    let state = app.state().clone();
    let task = tokio::spawn(async move {
        let _ = app.run_until_stopped(std::future::pending()).await;
    });
    Ok(Running {
        state,
        mqtt,
        _dir: dir,
        task,
    })
}

/// Areas (one province, `communes` communes) and `n` devices written straight to the registry.
async fn fleet(
    state: &AppState,
    tag: &str,
    communes: usize,
    n: usize,
    keys: Option<&[DeviceKey]>,
) -> Result<Vec<String>> {
    let now = Utc::now().timestamp_millis();
    let pool = &state.store.pool;
    sqlx::query("INSERT INTO areas (code, name, parent, level, created_at, updated_at) VALUES ($1, $1, NULL, 'province', $2, $2)")
        .bind(tag.to_string())
        .bind(now)
        .execute(pool)
        .await?;
    for c in 0..communes {
        sqlx::query("INSERT INTO areas (code, name, parent, level, created_at, updated_at) VALUES ($1, $1, $2, 'commune', $3, $3)")
            .bind(format!("{tag}-{c}"))
            .bind(tag.to_string())
            .bind(now)
            .execute(pool)
            .await?;
    }
    let ids: Vec<String> = (0..n).map(|i| format!("{tag}-d{i:05}")).collect();
    let mut tx = pool.begin().await?;
    for (ci, chunk) in ids.chunks(500).enumerate() {
        let mut sql = String::from(
            "INSERT INTO devices (id, kind, area, name, enabled, public_key, created_at, updated_at) VALUES ",
        );
        for j in 0..chunk.len() {
            let b = j * 6;
            if j > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, 'loudspeaker', ${}, ${}, 1, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6
            ));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (j, id) in chunk.iter().enumerate() {
            let i = ci * 500 + j;
            let pk = keys.map(|k| k[i].public_b64());
            q = q
                .bind(id.clone())
                .bind(format!("{tag}-{}", i % communes))
                .bind(id.clone())
                .bind(pk)
                .bind(now)
                .bind(now);
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(ids)
}

/// A device login for the benchmark's own MQTT clients (embedded broker).
async fn login(state: &AppState, id: &str, area: &str) -> Result<()> {
    let now = Utc::now().timestamp_millis();
    sqlx::query(
        "INSERT INTO devices (id, kind, area, name, enabled, credential_hash, created_at, updated_at) \
         VALUES ($1, 'loudspeaker', $2, $1, 1, $3, $4, $4)",
    )
    .bind(id.to_string())
    .bind(area.to_string())
    .bind(nguon_provision::credential::hash_password("bench-password"))
    .bind(now)
    .execute(&state.store.pool)
    .await?;
    Ok(())
}

async fn client(mqtt: &(String, u16), id: &str) -> Result<(AsyncClient, rumqttc::EventLoop)> {
    let mut o = MqttOptions::new(id, mqtt.0.clone(), mqtt.1);
    o.set_credentials(id, "bench-password")
        .set_keep_alive(Duration::from_secs(30))
        .set_inflight(500)
        .set_max_packet_size(16 << 20, 16 << 20);
    let (c, mut el) = AsyncClient::new(o, 20_000);
    loop {
        match tokio::time::timeout(Duration::from_secs(10), el.poll()).await? {
            Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => break,
            Ok(_) => {}
            Err(e) => anyhow::bail!("{id}: {e}"),
        }
    }
    Ok((c, el))
}

fn batches(ids: &[String], keys: &[DeviceKey], events: usize, per: usize) -> Vec<Incoming> {
    let now = Utc::now();
    let mut out = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let did = DeviceId::parse(id.clone()).expect("id");
        let mut left = events;
        while left > 0 {
            let n = left.min(per);
            left -= n;
            let evs = (0..n)
                .map(|k| Event {
                    id: uuid::Uuid::new_v4(),
                    at: now,
                    body: EventBody::Play(ProofOfPlay {
                        item_id: format!("sched@{}", 1_800_000_000 + k),
                        schedule_id: "sched".into(),
                        occurrence_at: now,
                        sha256: "ab".repeat(32),
                        priority: Priority::Normal,
                        started_at: Some(now),
                        ended_at: Some(now),
                        outcome: PlayOutcome::Played,
                        reason: None,
                        max_rms_dbfs: None,
                        silent: false,
                        relay: None,
                    }),
                })
                .collect();
            let b = EventBatch {
                v: 1,
                device: did.clone(),
                sent_at: now,
                events: evs,
            };
            out.push(Incoming {
                topic: topic::events(&did),
                payload: b.seal(Some(&keys[i])).to_bytes().into(),
                retain: false,
            });
        }
    }
    out
}

async fn wait_stored(state: &AppState, target: u64, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while state.metrics.events_stored.load(Ordering::Relaxed) < target {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {target} stored",
            state.metrics.events_stored.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

async fn bench_ingest(args: &Args, backend: &str, db: Option<String>) -> Result<()> {
    let run = start(db, args.mqtt_url.clone()).await?;
    let tag = format!("bi{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let keys: Vec<DeviceKey> = (0..args.devices).map(|_| DeviceKey::generate()).collect();
    let ids = fleet(&run.state, &tag, 10, args.devices, Some(&keys)).await?;
    let total = (args.devices * args.events) as u64;

    // 1. Through the broker: 8 publisher connections share the device topics.
    let msgs = batches(&ids, &keys, args.events, args.batch);
    let mut pubs = Vec::new();
    for p in 0..8 {
        let id = format!("{tag}-pub{p}");
        login(&run.state, &id, &tag).await?;
        let (c, mut el) = client(&run.mqtt, &id).await?;
        tokio::spawn(async move { while el.poll().await.is_ok() {} });
        pubs.push(c);
    }
    let base = run.state.metrics.events_stored.load(Ordering::Relaxed);
    let t = Instant::now();
    for (i, m) in msgs.iter().enumerate() {
        pubs[i % pubs.len()]
            .publish(m.topic.clone(), QoS::AtLeastOnce, false, m.payload.to_vec())
            .await?;
    }
    wait_stored(&run.state, base + total, Duration::from_secs(300)).await?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "ingest {backend:<10} broker   {} devices × {} events ({} per batch, signed): {:>8.0} events/s ({:.2} s)",
        args.devices,
        args.events,
        args.batch,
        total as f64 / secs,
        secs
    );

    // 2. The pipeline alone (same work, no MQTT), fresh event ids.
    let msgs = batches(&ids, &keys, args.events, args.batch);
    let mut ingest =
        nguon_server::workers::ingest::Ingest::new(run.state.store.clone(), run.state.metrics.clone(), false);
    let t = Instant::now();
    let mut stored = 0;
    for chunk in msgs.chunks(400) {
        stored += ingest.process(chunk.to_vec()).await?.stored;
    }
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(stored == total, "pipeline stored {stored} of {total}");
    println!(
        "ingest {backend:<10} pipeline {} devices × {} events ({} per batch, signed): {:>8.0} events/s ({:.2} s)",
        args.devices,
        args.events,
        args.batch,
        total as f64 / secs,
        secs
    );
    run.task.abort();
    Ok(())
}

async fn bench_dispatch(args: &Args, backend: &str, db: Option<String>, n: usize) -> Result<()> {
    let run = start(db, args.mqtt_url.clone()).await?;
    let tag = format!("bd{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let ids = fleet(&run.state, &tag, (n / 20).max(1), n, None).await?;
    let observer = format!("{tag}-observer");
    login(&run.state, &observer, &format!("{tag}-0")).await?;
    let (obs, mut el) = client(&run.mqtt, &observer).await?;
    obs.subscribe("nguon/v1/d/+/desired", QoS::AtLeastOnce).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                    let _ = tx.send(p.topic.clone());
                }
                Ok(MqttEvent::Incoming(Packet::SubAck(_))) => {
                    let _ = tx.send(String::new());
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    while rx.recv().await.context("observer")? != String::new() {}
    let now = Utc::now().timestamp_millis();
    let mut sha = [0u8; 32];
    getrandom::fill(&mut sha)?;
    let sha = hex::encode(sha);
    sqlx::query(
        "INSERT INTO media (sha256, filename, title, size, container, codec, sample_rate, channels, duration_ms, status, \
         status_note, created_at, updated_at) VALUES ($1, 'a.mp3', 'a', 1000000, 'mp3', 'mp3', 44100, 2, 60000, 'approved', NULL, $2, $2)",
    )
    .bind(sha.clone())
    .bind(now)
    .execute(&run.state.store.pool)
    .await?;
    let req: nguon_server::domain::schedule::NewSchedule = serde_json::from_value(serde_json::json!({
        "title": "Toàn tỉnh", "media": [sha], "targets": {"areas": [tag]},
        "rule": {"kind": "cron", "cron": "30 6,11,17 * * *"}
    }))?;
    let want: HashSet<String> = ids
        .iter()
        .map(|i| topic::desired(&DeviceId::parse(i.clone()).unwrap()))
        .collect();
    let published0 = run.state.metrics.manifests_published.load(Ordering::Relaxed);
    let t = Instant::now();
    let admin = nguon_server::domain::scope::Caller::admin_token();
    nguon_server::services::schedules::create(&run.state, &admin, req).await?;
    // Confirmed: every manifest computed, recorded, acknowledged by the broker and stamped.
    while run.state.metrics.manifests_published.load(Ordering::Relaxed) < published0 + n as u64 {
        anyhow::ensure!(t.elapsed() < Duration::from_secs(600), "dispatcher too slow");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let confirmed = t.elapsed().as_secs_f64();
    let mut got = HashSet::new();
    while got.len() < want.len() {
        let topic = tokio::time::timeout(Duration::from_secs(600), rx.recv())
            .await?
            .context("observer ended")?;
        if want.contains(&topic) {
            got.insert(topic);
        }
    }
    let received = t.elapsed().as_secs_f64();
    println!(
        "dispatch {backend:<10} {n:>6} devices, province-wide change: computed+recorded+confirmed {confirmed:>6.2} s, all received by a wildcard subscriber {received:>6.2} s"
    );
    run.task.abort();
    Ok(())
}

async fn postgres_db(admin: &str) -> Option<(String, String)> {
    use sqlx::Connection;
    if admin.is_empty() {
        return None;
    }
    let name = format!("nguon_bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let mut c = sqlx::AnyConnection::connect(admin).await.ok()?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut c)
        .await
        .ok()?;
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_string())?;
    Some((format!("{base}/{name}"), name))
}

async fn drop_db(admin: &str, name: &str) {
    use sqlx::Connection;
    if let Ok(mut c) = sqlx::AnyConnection::connect(admin).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut c)
        .await;
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "error".into()),
        )
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    sqlx::any::install_default_drivers();
    let args = Args::parse();
    println!(
        "bench-dispatch: {} cores, broker {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        args.mqtt_url
            .as_deref()
            .unwrap_or("embedded broker (rmqtt behind the gate)")
    );
    if !args.dispatch_only {
        bench_ingest(&args, "sqlite", None).await?;
    }
    for &n in &args.fleets {
        bench_dispatch(&args, "sqlite", None, n).await?;
    }
    if let Some((url, name)) = postgres_db(&args.postgres_url).await {
        if !args.dispatch_only {
            let r = bench_ingest(&args, "postgres", Some(url.clone())).await;
            drop_db(&args.postgres_url, &name).await;
            r?;
        } else {
            drop_db(&args.postgres_url, &name).await;
        }
        for &n in &args.fleets {
            let Some((url, name)) = postgres_db(&args.postgres_url).await else {
                break;
            };
            let r = bench_dispatch(&args, "postgres", Some(url), n).await;
            drop_db(&args.postgres_url, &name).await;
            r?;
        }
    } else {
        println!("(PostgreSQL not reachable at {}; skipped)", args.postgres_url);
    }
    Ok(())
}
