//! `province`: a living province in one command.
//!
//! ```sh
//! cargo run --release -p nguon-tests --bin province
//! ```
//!
//! Starts nguon-server in this process on embedded defaults (SQLite in `./data/province`, the
//! embedded broker; if port 8080 or 1883 is taken — Mosquitto often holds 1883 — a free port is
//! used and printed), seeds the demo data (a slice of Lào Cai: 3 communes, 30 loudspeaker clusters,
//! 5 bulletin boards) and runs its 30 loudspeaker clusters with the real agent code, uploads and
//! approves a spoken clip, schedules it for now + 20 s to the whole province, and prints a live
//! status line (online devices, proofs of play) from the API. Ctrl-C stops everything.
//! `NGUON_*` variables still apply (e.g. `NGUON_ADMIN_TOKEN`, `NGUON_HTTP_ADDR`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use nguon_server::{Application, Settings};
use nguon_tests::api::{Api, is_online};
use nguon_tests::fleet::{Fleet, FleetOptions, FleetPlan, SinkChoice};
use nguon_tests::net::port_or_free;

/// The demo province's code (seeded by `nguon-server --demo`).
const PROVINCE: &str = "10";

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    nguon_tests::init_crypto();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    nguon_tests::net::raise_fd_limit();
    let env: Vec<(String, String)> = std::env::vars().collect();
    let has = |k: &str| env.iter().any(|(n, _)| n == k);
    let mut settings = Settings::load(None, env.clone()).context("invalid NGUON_* settings")?;
    if !has("NGUON_DATA_DIR") {
        settings.data_dir = PathBuf::from("./data/province");
    }
    if settings.http_addr.port() != 0 && !has("NGUON_HTTP_ADDR") {
        let p = port_or_free(settings.http_addr.port());
        if p != settings.http_addr.port() {
            println!("port {} is busy; HTTP on {p} instead", settings.http_addr.port());
        }
        settings.http_addr = SocketAddr::from(([127, 0, 0, 1], p));
    }
    if settings.mqtt_url.is_none() && settings.mqtt_addr.port() != 0 {
        let p = port_or_free(settings.mqtt_addr.port());
        if p != settings.mqtt_addr.port() {
            println!(
                "port {} is busy (Mosquitto?); embedded MQTT broker on {p} instead",
                settings.mqtt_addr.port()
            );
        }
        settings.mqtt_addr = SocketAddr::from(([127, 0, 0, 1], p));
    }
    settings.demo = true;
    if settings.admin_token.is_none() {
        // The server prints a generated token only at its first start and keeps just its hash;
        // the province keeps its own token in its data dir so every start can call the API.
        settings.admin_token = Some(province_token(&settings.data_dir)?);
    }
    let data_dir = settings.data_dir.clone();
    let settings_token = settings.admin_token.clone().context("admin token")?;
    let app = Application::build(settings)
        .await
        .context("cannot start nguon-server")?;
    let port = app.http_port();
    let base = format!("http://127.0.0.1:{port}");
    let token = settings_token.expose().to_string();
    let mqtt = match app.mqtt_addr() {
        Some(a) => a,
        None => {
            let url = std::env::var("NGUON_MQTT_URL").unwrap_or_default();
            let b = nguon_provision::config::parse_broker_url(&url).map_err(anyhow::Error::msg)?;
            format!("{}:{}", b.host, b.port).parse()?
        }
    };
    let state = app.state().clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stop_rx.await;
    }));

    println!();
    println!("  nguon province in a box");
    println!("  console / API   {base}   (OpenAPI {base}/api/openapi.json, Swagger {base}/api/docs)");
    println!("  admin token     {token}");
    println!("  MQTT broker     {mqtt}");
    println!("  data            {}", data_dir.display());
    println!("  try:  curl -H 'Authorization: Bearer {token}' {base}/api/v1/devices");
    println!();

    let api = Api::new(&base, &token);
    api.wait_healthy(Duration::from_secs(20)).await?;
    let key = api.server_key().await?;

    // The simulated fleet is the demo province's own stations (3 communes, 30 loudspeaker
    // clusters, 5 boards): the demo seed wrote their MQTT passwords and the loudspeakers'
    // report-signing keys to `demo-credentials.csv`; each loudspeaker runs the real agent code
    // and signs its reports, so the server keeps refusing unsigned ones.
    let speakers = demo_fleet(&state, &api, &data_dir)
        .await
        .context("preparing the demo fleet")?;
    let fleet_dir = data_dir.join("fleet");
    let mut opts = FleetOptions::new(mqtt, &base, &key, &fleet_dir.join("agents"));
    opts.sink = SinkChoice::Wav(fleet_dir.join("wav"));
    opts.heartbeat_secs = 15;
    opts.observe = false;
    let fleet = Fleet::start(&speakers, opts).await?;
    println!(
        "  fleet           {} loudspeaker agents (real agent code, WAV sinks in {}) + 5 boards registered",
        fleet.len(),
        fleet_dir.join("wav").display()
    );

    // Something to hear: a spoken clip, approved and scheduled for now + 20 s.
    let clip = nguon_tests::audio::spoken_clip(
        &fleet_dir.join("media"),
        "chao-mung",
        "Xin chào. Đây là hệ thống thông tin nguồn của tỉnh. Chúc bà con một ngày tốt lành.",
        6.0,
        true,
    );
    // Without espeak-ng/sox/lame (a machine that has only the Rust toolchain), fall back to the
    // demo's approved chime, so a newcomer still hears something.
    let sha = match clip {
        Ok(clip) => api.upload_approved(&clip, "Chào mừng").await,
        Err(e) => {
            println!("  could not make the spoken clip (espeak-ng, sox, lame): {e:#}; using the demo chime");
            demo_clip(&api).await
        }
    };
    match sha {
        Ok(sha) => match schedule_soon(&api, &sha).await {
            Ok(at) => {
                println!("  scheduled       'Chào mừng' at {at} (local) to every commune of {PROVINCE}")
            }
            Err(e) => println!("  could not schedule the welcome clip: {e:#}"),
        },
        Err(e) => println!("  no clip to schedule: {e:#}"),
    }
    println!("  Ctrl-C stops everything.\n");

    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut last = String::new();
    let mut last_print = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                // Print when something changed, and at least every 30 s.
                let line = status_line(&api, fleet.len()).await;
                if line != last || last_print.elapsed() >= Duration::from_secs(30) {
                    println!("{}  {line}", chrono::Local::now().format("%H:%M:%S"));
                    last = line;
                    last_print = std::time::Instant::now();
                }
            }
        }
    }
    println!("stopping the fleet ...");
    fleet.shutdown().await;
    println!("stopping the server ...");
    let _ = stop_tx.send(());
    match tokio::time::timeout(Duration::from_secs(15), server).await {
        Ok(Ok(Ok(()))) => println!("stopped cleanly"),
        Ok(Ok(Err(e))) => println!("server ended with: {e}"),
        Ok(Err(e)) => println!("server task: {e}"),
        Err(_) => println!("server did not stop within 15 s"),
    }
    Ok(())
}

/// The demo's loudspeakers as a fleet plan, each with the report key the demo seed registered
/// (`demo-credentials.csv`: `device_id,password,signing_key`). A station seeded by an older
/// version has no key there: it gets a fresh one, registered through the import API (an upsert).
async fn demo_fleet(
    state: &nguon_server::AppState,
    api: &Api,
    data_dir: &std::path::Path,
) -> anyhow::Result<FleetPlan> {
    let csv = std::fs::read_to_string(data_dir.join("demo-credentials.csv"))
        .context("the demo seed writes demo-credentials.csv")?;
    let mut devices = Vec::new();
    let mut unkeyed = Vec::new();
    for line in csv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let mut cols = line.split(',');
        let (Some(id), Some(password)) = (cols.next(), cols.next()) else {
            anyhow::bail!("bad line in demo-credentials.csv: {line}");
        };
        let d = nguon_server::store::devices::get(&state.store, id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("demo device {id} is not registered"))?;
        if d.kind != "loudspeaker" {
            continue;
        }
        let seeded = cols.next().filter(|k| !k.trim().is_empty());
        let key = match seeded {
            Some(k) => nguon_protocol::KeyPair::from_b64(k)
                .map_err(|e| anyhow::anyhow!("the key of {id} in demo-credentials.csv: {e}"))?,
            None => {
                let key = nguon_protocol::KeyPair::generate();
                unkeyed.push(nguon_provision::DeviceEntry {
                    id: d.id.clone(),
                    kind: d.kind.clone(),
                    area: d.area.clone(),
                    name: d.name.clone(),
                    lat: d.lat,
                    lon: d.lon,
                    password_hash: nguon_provision::credential::hash_password(password),
                    public_key: Some(key.public_b64()),
                    language: d.language.clone(),
                    board_token_hash: None,
                });
                key
            }
        };
        let areas = nguon_server::store::devices::device_areas(&state.store, id).await?;
        devices.push(nguon_tests::fleet::SimDevice {
            id: nguon_protocol::DeviceId::parse(id)?,
            kind: nguon_provision::DeviceKind::Loudspeaker,
            area: nguon_protocol::AreaCode::parse(d.area.clone())?,
            areas: areas
                .into_iter()
                .map(nguon_protocol::AreaCode::parse)
                .collect::<Result<_, _>>()?,
            password: password.to_string(),
            key,
            group: 0,
        });
    }
    if !unkeyed.is_empty() {
        api.import_fleet(&nguon_provision::Registry {
            version: nguon_provision::registry::REGISTRY_VERSION,
            areas: Vec::new(),
            devices: unkeyed,
            disabled: Vec::new(),
        })
        .await
        .context("registering report keys for stations seeded without one")?;
    }
    Ok(FleetPlan {
        areas: Vec::new(),
        devices,
    })
}

/// The sha256 of an approved clip already in the library (the demo seeds one).
async fn demo_clip(api: &Api) -> anyhow::Result<String> {
    let media = nguon_tests::api::list(api.get("/api/v1/media").await?);
    media
        .iter()
        .find(|m| m.get("status").and_then(|s| s.as_str()) == Some("approved"))
        .and_then(|m| m.get("sha256").and_then(|s| s.as_str()).map(str::to_string))
        .ok_or_else(|| anyhow::anyhow!("the library has no approved clip"))
}

async fn schedule_soon(api: &Api, sha: &str) -> anyhow::Result<String> {
    let tz: chrono_tz::Tz = "Asia/Ho_Chi_Minh"
        .parse()
        .map_err(|_| anyhow::anyhow!("time zone"))?;
    let at = (chrono::Utc::now() + chrono::Duration::seconds(20))
        .with_timezone(&tz)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    api.schedule_once("Chào mừng", sha, &[PROVINCE], &at, "normal")
        .await?;
    Ok(at)
}

async fn status_line(api: &Api, agents: usize) -> String {
    let devices = match api.devices().await {
        Ok(d) => d,
        Err(e) => return format!("status: {e}"),
    };
    let online = devices.iter().filter(|d| is_online(d)).count();
    let plays = api.plays("").await.map(|p| p.len()).unwrap_or(0);
    let playing = devices
        .iter()
        .filter(|d| d.get("now_playing").is_some_and(|n| !n.is_null()))
        .count();
    format!(
        "online {online}/{} devices ({agents} simulated agents) · playing {playing} · proofs of play {plays}",
        devices.len()
    )
}

/// The province's admin token: `<data_dir>/admin-token` (0600), made at the first start.
fn province_token(data_dir: &std::path::Path) -> anyhow::Result<nguon_server::config::Secret> {
    let path = data_dir.join("admin-token");
    if let Ok(t) = std::fs::read_to_string(&path)
        && !t.trim().is_empty()
    {
        return Ok(nguon_server::config::Secret::new(t.trim()));
    }
    std::fs::create_dir_all(data_dir)?;
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("random: {e}"))?;
    let token = hex::encode(b);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    opts.open(&path)?.write_all(token.as_bytes())?;
    Ok(nguon_server::config::Secret::new(token))
}
