//! `agent-bench`: measures the edge agent on this machine and prints a Markdown section.
//!
//! - start error (first-sample wall time − scheduled time) over 200 items on the WAV sink, with
//!   the agent offline (items come from the stored manifest and the cache, as after a reboot);
//! - RSS of the real `nguon-agent` binary idle and while playing a 10-minute MP3 (WAV sink);
//! - CPU time to decode that MP3 with symphonia vs `ffmpeg -i f.mp3 -f null -`;
//! - release binary size.
//!
//! Run: `cargo run --release -p nguon-agent --bin agent-bench`
//!
//! `agent-bench idle --agents 1000` measures instead the memory per idle agent with N agents in
//! one process, as the fleet simulator runs them ([`idle`]).

#[path = "agent-bench/idle.rs"]
mod idle;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use nguon_agent::store::{AppliedManifest, Store};
use nguon_agent::{Agent, AgentEventKind, AgentOptions};
use nguon_device_config::DeviceConfig;
use nguon_protocol::{Manifest, ManifestItem, MediaRef, OnPreempt, Priority};

const ITEMS: usize = 200;
const SPACING_MS: i64 = 250;

fn sh(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(9)
}

fn config_text(data: &Path, wav: &Path) -> String {
    format!(
        r#"[device]
id = "bench-1"
kind = "loudspeaker"
[mqtt]
url = "mqtt://127.0.0.1:{}"
username = "bench-1"
password = "x"
[server]
base_url = "http://127.0.0.1:9"
public_key = "{}"
[storage]
data_dir = "{}"
cache_max_mb = 1024
[audio]
output = "wav:{}"
"#,
        free_port(),
        nguon_protocol::ServerKey::generate().public_b64(),
        data.display(),
        wav.display()
    )
}

/// Put a file in the cache and a manifest in the store, as a previous run would have left them.
async fn seed(
    data: &Path,
    file: &Path,
    duration_ms: u64,
    starts: &[chrono::DateTime<Utc>],
) -> anyhow::Result<()> {
    let store = Store::open(data)?;
    let sha = nguon_agent::cache::sha256_file(file)?;
    std::fs::copy(file, data.join("cache").join(&sha))?;
    let media = MediaRef {
        sha256: sha.clone(),
        size: std::fs::metadata(file)?.len(),
        url: format!("/media/{sha}"),
        duration_ms,
    };
    let items = starts
        .iter()
        .enumerate()
        .map(|(i, at)| ManifestItem {
            id: format!("bench{i:03}@{}", at.timestamp()),
            schedule_id: "bench".into(),
            title: String::new(),
            starts_at: *at,
            priority: Priority::Normal,
            volume: 100,
            media: vec![sha.clone()],
            repeat: 1,
            on_preempt: OnPreempt::Interrupt,
            play_until: None,
            repetition: None,
            relay: None,
        })
        .collect();
    let now = Utc::now();
    let manifest = Manifest {
        version: 1,
        generated_at: now,
        window_start: now,
        window_end: now + chrono::Duration::days(1),
        items,
        media: vec![media],
        settings: Default::default(),
        cancelled: Vec::new(),
        agent: None,
    };
    store
        .modify(|s| {
            s.manifest = Some(AppliedManifest {
                message_id: uuid::Uuid::new_v4(),
                manifest,
            })
        })
        .await?;
    Ok(())
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn cpu_secs(who: i32) -> f64 {
    // SAFETY: getrusage fills a properly sized out-parameter.
    unsafe {
        let mut r: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut r);
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        t(r.ru_utime) + t(r.ru_stime)
    }
}

async fn start_error(tmp: &Path) -> anyhow::Result<(f64, f64, f64, usize)> {
    let dir = tmp.join("start");
    let data = dir.join("data");
    let wav = dir.join("wav");
    std::fs::create_dir_all(&wav)?;
    let clip = dir.join("clip.wav");
    sh(Command::new("sox")
        .args(["-n", "-r", "22050", "-c", "1", "-b", "16"])
        .arg(&clip)
        .args(["synth", "0.1", "sine", "440"]))?;
    let t0 = Utc::now() + chrono::Duration::seconds(4);
    let starts: Vec<_> = (0..ITEMS as i64)
        .map(|i| t0 + chrono::Duration::milliseconds(i * SPACING_MS))
        .collect();
    seed(&data, &clip, 100, &starts).await?;
    let cfg = DeviceConfig::parse(&config_text(&data, &wav), "bench.toml")?;
    let (tx, mut rx) = tokio::sync::broadcast::channel(4096);
    let agent = Agent::start(
        cfg,
        dir.clone(),
        AgentOptions {
            observer: Some(tx),
            ..Default::default()
        },
    )
    .await?;
    let mut ended = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20 + ITEMS as u64);
    while ended < ITEMS {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(ev)) => {
                if matches!(ev.kind, AgentEventKind::ItemEnded { .. }) {
                    ended += 1;
                }
            }
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            _ => break,
        }
    }
    agent.shutdown().await;
    let mut errs = Vec::new();
    for e in std::fs::read_dir(&wav)?.flatten() {
        if e.path().extension().and_then(|x| x.to_str()) == Some("json") {
            let s: nguon_agent::sink::WavSidecar = serde_json::from_slice(&std::fs::read(e.path())?)?;
            if let Some(f) = s.first_sample_unix_ns {
                errs.push((f - s.scheduled_unix_ns) as f64 / 1e6);
            }
        }
    }
    if errs.is_empty() {
        bail!("no item played");
    }
    errs.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    Ok((
        pct(&errs, 0.5),
        pct(&errs, 0.99),
        *errs.last().expect("non-empty"),
        errs.len(),
    ))
}

fn agent_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("nguon-agent");
    if !bin.exists() {
        eprintln!("building the release nguon-agent binary…");
        sh(Command::new(env!("CARGO")).args([
            "build",
            "--release",
            "-p",
            "nguon-agent",
            "--bin",
            "nguon-agent",
        ]))?;
    }
    Ok(bin)
}

async fn rss(tmp: &Path, mp3: &Path) -> anyhow::Result<(u64, u64)> {
    let dir = tmp.join("rss");
    let data = dir.join("data");
    let wav = dir.join("wav");
    std::fs::create_dir_all(&wav)?;
    let at = Utc::now() + chrono::Duration::seconds(10);
    seed(&data, mp3, 600_000, &[at]).await?;
    let cfg = dir.join("agent.toml");
    std::fs::write(&cfg, config_text(&data, &wav))?;
    let mut child = Command::new(agent_binary()?)
        .arg("run")
        .arg("--config")
        .arg(&cfg)
        .env("RUST_LOG", "warn")
        .spawn()?;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let idle = rss_kib(child.id()).unwrap_or(0);
    let until = Instant::now() + Duration::from_secs(25);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut playing = 0;
    while Instant::now() < until {
        playing = playing.max(rss_kib(child.id()).unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let wav_file = std::fs::read_dir(&wav)?
        .flatten()
        .any(|e| e.path().extension().and_then(|x| x.to_str()) == Some("wav"));
    if !wav_file {
        bail!("the 10-minute item did not start");
    }
    Ok((idle, playing))
}

/// Measure the edge agent.
#[derive(clap::Parser, Debug)]
struct Args {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(clap::Subcommand, Debug)]
enum Cmd {
    /// Memory per idle agent, N agents in this process (as in the fleet simulator).
    Idle {
        /// Number of agents.
        #[arg(long, default_value_t = 1000)]
        agents: usize,
        /// Port of the private Mosquitto.
        #[arg(long, default_value_t = 31510)]
        port: u16,
        /// Give each agent an observer channel of this many slots and a task reading it.
        #[arg(long)]
        observer: Option<usize>,
    },
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Some(Cmd::Idle {
        agents,
        port,
        observer,
    }) = <Args as clap::Parser>::parse().cmd
    {
        return idle::run(agents, port, observer).await;
    }
    let tmp = tempfile_dir()?;
    eprintln!("making a 10-minute MP3…");
    let long_wav = tmp.join("long.wav");
    sh(Command::new("sox")
        .args(["-n", "-r", "44100", "-c", "2", "-b", "16"])
        .arg(&long_wav)
        .args(["synth", "600", "sine", "300-3000"]))?;
    let mp3 = tmp.join("long.mp3");
    sh(Command::new("lame")
        .args(["--quiet", "-b", "128"])
        .arg(&long_wav)
        .arg(&mp3))?;
    std::fs::remove_file(&long_wav)?;

    eprintln!("decode CPU: symphonia vs ffmpeg…");
    let c0 = cpu_secs(libc::RUSAGE_SELF);
    let d = nguon_agent::sink::decode_file(&mp3)?;
    let ours = cpu_secs(libc::RUSAGE_SELF) - c0;
    let frames = d.samples.len() / d.channels.max(1) as usize;
    drop(d);
    let f0 = cpu_secs(libc::RUSAGE_CHILDREN);
    sh(Command::new("ffmpeg")
        .args(["-v", "quiet", "-i"])
        .arg(&mp3)
        .args(["-f", "null", "-"]))?;
    let ff = cpu_secs(libc::RUSAGE_CHILDREN) - f0;

    eprintln!("RSS of the agent process…");
    let (idle, playing) = rss(&tmp, &mp3).await?;

    eprintln!(
        "start error over {ITEMS} items (about {} s)…",
        4 + ITEMS as i64 * SPACING_MS / 1000
    );
    let (p50, p99, max, n) = start_error(&tmp).await?;

    let size = std::fs::metadata(agent_binary()?)?.len();
    let _ = std::fs::remove_dir_all(&tmp);
    println!("## Edge agent\n");
    println!(
        "Command: `cargo run --release -p nguon-agent --bin agent-bench` (machine: 2 cores, loopback, no broker needed).\n"
    );
    println!("| measure | result | target |\n|---|---|---|");
    println!(
        "| start error p50 / p99 / max, {n} items, WAV sink | {p50:.3} / {p99:.3} / {max:.3} ms | p99 < 5 ms |"
    );
    println!(
        "| RSS idle (nguon-agent process) | {:.1} MiB | < 15 MB |",
        idle as f64 / 1024.0
    );
    println!(
        "| RSS while playing a 10-minute MP3 (WAV sink) | {:.1} MiB | < 30 MB |",
        playing as f64 / 1024.0
    );
    println!("| decode CPU, 10-minute 128 kb/s stereo MP3 ({frames} frames): symphonia | {ours:.2} s | — |");
    println!("| same file, `ffmpeg -i f.mp3 -f null -` | {ff:.2} s | baseline |");
    println!(
        "| release binary size (stripped, thin LTO) | {:.1} MiB | — |",
        size as f64 / 1048576.0
    );
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let p = std::env::temp_dir().join(format!("nguon-agent-bench-{}", std::process::id()));
    std::fs::create_dir_all(&p)?;
    Ok(p)
}
