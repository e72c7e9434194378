//! `bench live`: issue 17's live broadcast figures. The release `nguon-server` (embedded broker)
//! as a child process, N simulated agents (real agent code) with WAV sinks in this process. A
//! microphone (`nguon_tests::live::Microphone`) opens a session for the province and speaks in
//! real time over the WebSocket: 16 kHz silence with a 200 ms 1 kHz burst every second. Figures:
//!
//! - talk → loudspeaker on: from the WebSocket connection (which sends `live_start`) to each
//!   agent's first sample (its observer event);
//! - mouth → speaker: each burst's send instant to its onset in each agent's WAV, found to the
//!   sample (sidecar first sample + offset / rate; `nguon_tests::live::played_onsets`);
//! - the stream's bitrate (`stream_bytes` of the session over its duration);
//! - server CPU per listener: `/proc/<server pid>` CPU over a window with the N agents only, then
//!   over the same window with L extra plain HTTP listeners of `GET /live/{id}`.
//!
//! ```sh
//! cargo run --release -p nguon-tests --bin bench -- live --agents 2 --secs 30 --listeners 200
//! ```

use std::time::{Duration, Instant};

use futures::StreamExt;
use nguon_agent::AgentEventKind;
use nguon_tests::fleet::{Fleet, FleetOptions, FleetPlan, SinkChoice};
use nguon_tests::harness::{BrokerChoice, ServerProc};
use nguon_tests::live::{Microphone, latencies, open, played_onsets};
use nguon_tests::stats::{ms, proc_sample, ticks_per_second};
use serde_json::json;

/// The section of docs/benchmarks.md this benchmark writes.
pub const SECTION: &str = "## System: live broadcast (issue 17)";

fn pct(v: &[Duration], p: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    if v.is_empty() {
        return Duration::ZERO;
    }
    v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]
}

/// Run it; returns the report's Markdown.
pub async fn run(n: usize, secs: u64, listeners: usize) -> anyhow::Result<String> {
    println!("== live broadcast to {n} agents, {listeners} extra listeners");
    let dir = super::shm_dir("nguon-live-")?;
    let server = ServerProc::start_with(
        dir.path(),
        BrokerChoice::Embedded(nguon_tests::net::free_port()),
        &[("RUST_LOG", "warn")],
    )
    .await?;
    let api = server.api.clone();
    let key = api.server_key().await?;
    let province = format!("l{}", nguon_tests::net::random_suffix());
    let plan = FleetPlan::province("l", &province, n.div_ceil(50), 50.min(n), 0);
    super::register(&api, &plan).await?;
    let mut opts = FleetOptions::new(server.broker.addr(), api.base(), &key, &dir.path().join("agents"));
    let wav_root = dir.path().join("wav");
    opts.sink = SinkChoice::Wav(wav_root.clone());
    let mut fleet = Fleet::start(&plan, opts).await?;
    super::wait_online(&api, n, Duration::from_secs(120)).await?;
    let mut events = fleet.events();

    let id = open(&api, json!({"areas": [province], "title": "bench"})).await?;
    let connect = Instant::now();
    let mut mic = Microphone::connect(&api, &id).await?;
    let pid = server.pid();
    let half = (secs / 2).max(4) as f32;
    // First half: the agents only.
    let a0 = proc_sample(pid)?;
    let t0 = Instant::now();
    let mut sent = mic.bursts(half, Duration::from_secs(1)).await?;
    let base_cpu = cpu_secs(a0, proc_sample(pid)?) / t0.elapsed().as_secs_f64();
    // Second half: L more listeners reading the stream as fast as it comes.
    let url = format!("{}/live/{id}", api.base());
    let client = reqwest::Client::new();
    let mut readers = Vec::new();
    for _ in 0..listeners {
        let r = client.get(&url).send().await?;
        anyhow::ensure!(r.status().is_success(), "listener: {}", r.status());
        readers.push(tokio::spawn(async move {
            let mut s = r.bytes_stream();
            let mut n = 0usize;
            while let Some(Ok(b)) = s.next().await {
                n += b.len();
            }
            n
        }));
    }
    let a1 = proc_sample(pid)?;
    let t1 = Instant::now();
    sent.extend(mic.bursts(half, Duration::from_secs(1)).await?);
    let with_cpu = cpu_secs(a1, proc_sample(pid)?) / t1.elapsed().as_secs_f64();
    mic.stop().await?;
    let mut listened = 0usize;
    for r in readers {
        listened += r.await.unwrap_or(0);
    }

    let mut on = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if let AgentEventKind::FirstSample { item_id, .. } = &ev.event.kind
            && *item_id == id
        {
            on.push(ev.seen.saturating_duration_since(connect));
        }
    }
    let mut lat = Vec::new();
    for d in &plan.devices {
        let w = wav_root.join(d.id.as_str());
        match played_onsets(&w, &id, 0.1) {
            Ok(onsets) => lat.extend(latencies(&sent, &onsets)),
            Err(e) => println!("{}: {e:#}", d.id),
        }
    }
    let session = api.get(&format!("/api/v1/live/{id}")).await?;
    fleet.shutdown().await;
    drop(server);
    let s = &session["session"];
    let bytes = s["stream_bytes"].as_i64().unwrap_or(0) as f64;
    let started = s["started_at"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    let ended = s["ended_at"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    let dur = match (started, ended) {
        (Some(a), Some(b)) => (b - a).num_milliseconds() as f64 / 1000.0,
        _ => 0.0,
    };
    let kbps = if dur > 0.0 {
        bytes * 8.0 / dur / 1000.0
    } else {
        0.0
    };
    let per_listener = if listeners > 0 {
        (with_cpu - base_cpu) / listeners as f64 * 100.0
    } else {
        0.0
    };
    anyhow::ensure!(!lat.is_empty(), "no burst found in any WAV");
    Ok(format!(
        "### Live broadcast to {n} agents (WAV sinks, embedded broker), {listeners} extra listeners\n\n\
         | figure | p50 | p95 | max | n |\n|---|---|---|---|---|\n\
         | mouth → speaker (burst sent → its onset in the WAV, to the sample) | {} | {} | {} | {} |\n\
         | talk → loudspeaker on (WebSocket connected → first sample) | {} | {} | {} | {} |\n\n\
         Stream: {kbps:.1} kb/s measured ({bytes:.0} bytes over {dur:.1} s; MP3 48 kb/s CBR, 24 kHz mono). \
         Server CPU: {:.2} % of a core with the {n} agents listening, {:.2} % with {listeners} more \
         listeners: {per_listener:.4} % of a core per listener ({} bytes read by them). Bursts sent: {}.\n",
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.95)),
        ms(pct(&lat, 1.0)),
        lat.len(),
        ms(pct(&on, 0.5)),
        ms(pct(&on, 0.95)),
        ms(pct(&on, 1.0)),
        on.len(),
        base_cpu * 100.0,
        with_cpu * 100.0,
        listened,
        sent.len(),
    ))
}

fn cpu_secs(a: nguon_tests::stats::ProcSample, b: nguon_tests::stats::ProcSample) -> f64 {
    b.cpu_ticks.saturating_sub(a.cpu_ticks) as f64 / ticks_per_second() as f64
}
