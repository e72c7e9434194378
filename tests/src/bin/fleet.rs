//! `fleet`: attach N simulated agents (the real agent library) to a running nguon-server.
//!
//! ```sh
//! cargo run --release -p nguon-tests --bin fleet -- --server http://127.0.0.1:8080 \
//!     --token $T --mqtt 127.0.0.1:1883 --communes 10 --per-commune 100
//! ```
//!
//! It registers the devices through `POST /api/v1/fleet/import` (fresh passwords, PBKDF2 hashes,
//! report keys), starts the agents in batches and prints a status line until Ctrl-C. Faults:
//! `--offline-fraction`/`--offline-at`/`--offline-for`, `--drop-fraction`/`--drop-every`,
//! `--latency-fraction`/`--latency-ms`, `--skew-fraction`/`--skew-ms`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use nguon_agent::AgentEventKind;
use nguon_tests::api::{Api, is_online};
use nguon_tests::fleet::{Faults, Fleet, FleetOptions, FleetPlan, SinkChoice};

/// Run a simulated fleet of real agents against a nguon-server.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// nguon-server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Admin bearer token.
    #[arg(long, env = "NGUON_ADMIN_TOKEN")]
    token: String,
    /// MQTT broker address the agents connect to.
    #[arg(long, default_value = "127.0.0.1:1883")]
    mqtt: SocketAddr,
    /// Province area code (created if absent).
    #[arg(long, default_value = "sim")]
    province: String,
    /// Number of communes.
    #[arg(long, default_value_t = 10)]
    communes: usize,
    /// Loudspeaker clusters per commune.
    #[arg(long, default_value_t = 100)]
    per_commune: usize,
    /// Tag in every device id.
    #[arg(long, default_value = "sim")]
    tag: String,
    /// Write WAV files under this directory instead of discarding audio.
    #[arg(long)]
    wav: Option<PathBuf>,
    /// Agent stores under this directory (default: a temp dir in /dev/shm).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Agents per connection batch.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Heartbeat interval, seconds.
    #[arg(long, default_value_t = 60)]
    heartbeat: u32,
    /// Fraction of agents cut off the network from --offline-at for --offline-for seconds.
    #[arg(long, default_value_t = 0.0)]
    offline_fraction: f64,
    /// Seconds after start the offline window opens.
    #[arg(long, default_value_t = 60)]
    offline_at: u64,
    /// Length of the offline window, seconds.
    #[arg(long, default_value_t = 120)]
    offline_for: u64,
    /// Fraction of agents whose connections are severed every --drop-every seconds.
    #[arg(long, default_value_t = 0.0)]
    drop_fraction: f64,
    /// Seconds between severed connections.
    #[arg(long, default_value_t = 30)]
    drop_every: u64,
    /// Fraction of agents behind added latency.
    #[arg(long, default_value_t = 0.0)]
    latency_fraction: f64,
    /// Added latency per direction, ms.
    #[arg(long, default_value_t = 300)]
    latency_ms: u64,
    /// Fraction of agents whose clock is wrong.
    #[arg(long, default_value_t = 0.0)]
    skew_fraction: f64,
    /// Clock offset of those agents, ms (may be negative).
    #[arg(long, default_value_t = 2000, allow_hyphen_values = true)]
    skew_ms: i64,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    duration: Option<u64>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    nguon_tests::init_crypto();
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let fds = nguon_tests::net::raise_fd_limit();
    let api = Api::new(&args.server, &args.token);
    api.wait_healthy(Duration::from_secs(10)).await?;
    let key = api.server_key().await?;
    let mut plan = FleetPlan::province(&args.tag, &args.province, args.communes, args.per_commune, 0);
    // Fault groups: 1 offline, 2 drops, 3 latency, 4 clock skew (by position, disjoint).
    let n = plan.devices.len();
    let mut groups = vec![Faults::default(); 5];
    groups[1].offline = vec![(
        Duration::from_secs(args.offline_at),
        Duration::from_secs(args.offline_at + args.offline_for),
    )];
    groups[2].drop_every = Some(Duration::from_secs(args.drop_every.max(1)));
    groups[3].latency = Some(Duration::from_millis(args.latency_ms));
    groups[4].clock_offset = chrono::Duration::milliseconds(args.skew_ms);
    let mut next = 0usize;
    for (g, frac) in [
        (1, args.offline_fraction),
        (2, args.drop_fraction),
        (3, args.latency_fraction),
        (4, args.skew_fraction),
    ] {
        let k = ((n as f64) * frac).round() as usize;
        for d in plan.devices.iter_mut().skip(next).take(k) {
            d.group = g;
        }
        next += k;
    }
    println!("registering {n} devices under area {} ...", args.province);
    let summary = api.import_fleet(&plan.registry()).await?;
    println!("import: {summary}");
    let tmp = tempfile::Builder::new().prefix("nguon-fleet-").tempdir_in(
        if std::path::Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        },
    )?;
    let data = args.data.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let mut opts = FleetOptions::new(args.mqtt, &args.server, &key, &data);
    opts.batch = args.batch;
    opts.heartbeat_secs = args.heartbeat;
    opts.groups = groups;
    if let Some(w) = &args.wav {
        opts.sink = SinkChoice::Wav(w.clone());
    }
    println!(
        "starting {n} agents in batches of {} (fd limit {fds}) ...",
        args.batch
    );
    let mut fleet = Fleet::start(&plan, opts).await?;
    println!(
        "{} agents started in {:.1} s; {} connected; RSS {:.0} KiB per agent ({} → {} MiB)",
        fleet.len(),
        fleet.start_time.as_secs_f64(),
        fleet.connected_once(),
        fleet.rss_per_agent_kib(),
        fleet.rss_before_kib / 1024,
        fleet.rss_after_kib / 1024
    );
    let mut events = fleet.events();
    let mut acks = 0usize;
    let mut first_samples = 0usize;
    let mut ended = 0usize;
    let mut errors = 0usize;
    let mut played_items: HashSet<String> = HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let stop = async {
        match args.duration {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            Some(ev) = events.recv() => match ev.event.kind {
                AgentEventKind::Acked { .. } => acks += 1,
                AgentEventKind::FirstSample { item_id, .. } => { first_samples += 1; played_items.insert(item_id); }
                AgentEventKind::ItemEnded { .. } => ended += 1,
                AgentEventKind::MediaError { .. } | AgentEventKind::MessageRejected { .. } => errors += 1,
                _ => {}
            },
            _ = tick.tick() => {
                let online = api.devices().await.map(|d| d.iter().filter(|d| is_online(d)).count()).unwrap_or(0);
                let rss = nguon_tests::stats::proc_sample(0).map(|s| s.rss_kib / 1024).unwrap_or(0);
                println!(
                    "[{:>5.0} s] connected {}/{} (server sees {online} online) · acks {acks} · first samples {first_samples} ({} items) · ended {ended} · errors {errors} · RSS {rss} MiB",
                    fleet.started.elapsed().as_secs_f64(), fleet.connected_now(), n, played_items.len()
                );
            }
        }
    }
    println!("stopping {n} agents ...");
    fleet.shutdown().await;
    Ok(())
}
