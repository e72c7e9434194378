//! `bench catch-up`: issue 12's catch-up benchmark. N simulated agents (real agent code, null
//! sinks, one process) are connected through one cuttable proxy to a private Mosquitto; the
//! release `nguon-server` (SQLite) runs as a child process. The proxy is cut (every agent
//! disconnected), an emergency play-now is issued to the province, the agents stay cut off for
//! `--offline-secs`, then the proxy is restored at once. Every agent must play the emergency
//! (`played_late`); measured: restore → each agent's reconnection, and each agent's reconnection →
//! its first sample of the emergency (p50/p99/max), plus the server's tracking counts.
//!
//! ```sh
//! cargo run --release -p nguon-tests --bin bench -- catch-up --agents 1000 --offline-secs 300
//! ```
//!
//! The result replaces the "System: catch-up" section of `docs/benchmarks.md` (`--no-write`: only
//! print it).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use nguon_agent::AgentEventKind;
use nguon_tests::api::{Api, is_online};
use nguon_tests::fleet::{Faults, Fleet, FleetOptions, FleetPlan, SinkChoice};
use nguon_tests::harness::{BrokerChoice, ServerProc};
use nguon_tests::mosquitto::Mosquitto;
use nguon_tests::stats::{Summary, ms};

/// The section of docs/benchmarks.md this benchmark writes.
pub const SECTION: &str = "## System: catch-up after a cut (issue 12)";

async fn online(api: &Api) -> anyhow::Result<usize> {
    Ok(api.devices().await?.iter().filter(|d| is_online(d)).count())
}

/// Run it with `n` agents cut off for `offline_secs`; returns the report's Markdown.
pub async fn run(n: usize, offline_secs: u64) -> anyhow::Result<String> {
    let dir = super::shm_dir("nguon-catchup-")?;
    let mut broker = Mosquitto::start(&dir.path().join("mosquitto")).await?;
    let server = ServerProc::start_with(
        dir.path(),
        BrokerChoice::External(broker.url()),
        &[("RUST_LOG", "warn,rumqttc=error")],
    )
    .await?;
    let api = server.api.clone();
    let key = api.server_key().await?;
    let province = format!("c{}", nguon_tests::net::random_suffix());
    let mut plan = FleetPlan::province("c", &province, n.div_ceil(100), 100.min(n), 0);
    for d in &mut plan.devices {
        d.group = 1;
    }
    super::register(&api, &plan).await?;
    let clip = nguon_tests::audio::tone_clip(&dir.path().join("media"), "siren", 1.0)?;
    let sha = api.upload_approved(&clip, "Cảnh báo khẩn cấp").await?;
    let mut opts = FleetOptions::new(broker.addr(), api.base(), &key, &dir.path().join("agents"));
    opts.sink = SinkChoice::Null;
    opts.groups = vec![
        Faults::default(),
        Faults {
            proxied: true,
            ..Faults::default()
        },
    ];
    let mut fleet = Fleet::start(&plan, opts).await?;
    nguon_tests::net::eventually(
        "every agent online",
        Duration::from_secs(300),
        Duration::from_millis(500),
        || async {
            let o = online(&api).await.map_err(|e| e.to_string())?;
            if o >= n {
                Ok(())
            } else {
                Err(format!("{o}/{n} online"))
            }
        },
    )
    .await?;
    let proxy = fleet.proxy(1).context("the fleet's proxy")?;
    let mut events = fleet.events();

    // Cut everyone off; the server must see them offline before the emergency.
    proxy.cut();
    nguon_tests::net::eventually(
        "every agent offline",
        Duration::from_secs(180),
        Duration::from_millis(500),
        || async {
            let o = online(&api).await.map_err(|e| e.to_string())?;
            if o == 0 {
                Ok(())
            } else {
                Err(format!("{o} still online"))
            }
        },
    )
    .await?;
    let issued = api.emergency(&province, &sha, "Cảnh báo lũ quét").await?;
    let item = issued
        .get("command_id")
        .and_then(|v| v.as_str())
        .context("command_id")?
        .to_string();
    println!("emergency {item} issued to {n} agents, all cut off; waiting {offline_secs} s");
    tokio::time::sleep(Duration::from_secs(offline_secs)).await;
    while events.try_recv().is_ok() {}

    let loadavg = nguon_tests::stats::load_average();
    let restored = Instant::now();
    proxy.restore();
    let mut connected: HashMap<usize, Instant> = HashMap::new();
    let mut first: HashMap<usize, Duration> = HashMap::new();
    let mut late: usize = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    while first.len() < n || late < n {
        let Ok(Some(ev)) = tokio::time::timeout_at(deadline, events.recv()).await else {
            break;
        };
        match ev.event.kind {
            AgentEventKind::Connected { .. } => {
                connected.entry(ev.device).or_insert(ev.seen);
            }
            AgentEventKind::FirstSample { item_id, .. } if item_id == item => {
                if let Some(c) = connected.get(&ev.device) {
                    first.entry(ev.device).or_insert(ev.seen - *c);
                }
            }
            AgentEventKind::ItemEnded { item_id, outcome }
                if item_id == item && outcome == nguon_protocol::PlayOutcome::PlayedLate =>
            {
                late += 1;
            }
            _ => {}
        }
    }
    let reconnect: Vec<Duration> = connected.values().map(|t| *t - restored).collect();
    let first: Vec<Duration> = first.into_values().collect();
    // The server's tracking once the proofs are in.
    let tracking = nguon_tests::net::eventually(
        "the tracking to count every proof",
        Duration::from_secs(120),
        Duration::from_millis(1000),
        || async {
            let c = api
                .get(&format!("/api/v1/commands/{item}"))
                .await
                .map_err(|e| e.to_string())?;
            let t = c.get("tracking").cloned().unwrap_or_default();
            let done = t.pointer("/counts/played_late").and_then(|v| v.as_u64()) == Some(late as u64);
            if done {
                Ok(t)
            } else {
                Err(format!("{}", t.get("counts").cloned().unwrap_or_default()))
            }
        },
    )
    .await
    .unwrap_or_default();
    fleet.shutdown().await;
    broker.stop();
    let (r, f) = (Summary::of(&reconnect), Summary::of(&first));
    let counts = tracking.get("counts").cloned().unwrap_or_default();
    let goal = if f.p99 < Duration::from_secs(2) && f.n == n {
        format!("Goal reconnection → first sample p99 < 2 s: met ({}).", ms(f.p99))
    } else {
        format!(
            "Goal reconnection → first sample p99 < 2 s: **missed** ({}, {} of {n} agents).",
            ms(f.p99),
            f.n
        )
    };
    Ok(format!(
        "### Catch-up: {n} agents cut off for {offline_secs} s while an emergency is issued\n\n\
         Every agent behind one TCP proxy (private Mosquitto, SQLite, null sinks); the proxy is cut (open \
         connections severed, new ones refused at the TCP level), the server sees every agent offline, the \
         emergency (1 s clip, not cached) is issued to the province, {offline_secs} s later the proxy is restored \
         at once. While refused, the agents retry with waits of 0.5 s doubling to 10 s \
         (`mqtt.reconnect_max_unreachable_secs`), jittered in [½·b, b], so the restore → reconnection spread is \
         that backoff's; reconnection → first sample is what catch-up costs (retained manifest, verification, \
         media fetch, start). Load average (1, 5, 15 min) at the restore: {loadavg}.\n\n\
         | | p50 | p99 | max | n |\n|---|---|---|---|---|\n\
         | restore → reconnected | {} | {} | {} | {} |\n\
         | reconnected → first sample of the emergency | {} | {} | {} | {} |\n\n\
         Played the emergency: {} of {n} (`played_late` proofs observed: {late}). Server tracking counts: `{counts}`.\n\n\
         {goal} Restore → reconnected is bounded by the 10 s ceiling (before it, 60 s: p50 23.0 s, p99 53.4 s).\n",
        ms(r.p50),
        ms(r.p99),
        ms(r.max),
        r.n,
        ms(f.p50),
        ms(f.p99),
        ms(f.max),
        f.n,
        f.n,
    ))
}
