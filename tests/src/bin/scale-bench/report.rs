//! The markdown report of `scale-bench run`: one table of latencies from the API call (or the
//! plain publish) with the raw fan-out of the same bytes through the same brokers, the ratios
//! against issue 14's goals, and where the machine's resources went.

use std::time::Duration;

use nguon_tests::stats::{Summary, ms};

use crate::measure::Measure;

/// One measurement with the agents.
#[derive(Debug)]
pub struct Phase {
    /// Which.
    pub kind: Measure,
    /// What was measured.
    pub label: String,
    /// How long the API call took to answer.
    pub answered: Duration,
    /// API call → each agent's receipt (before verification).
    pub receipt: Vec<Duration>,
    /// API call → each agent's ack.
    pub ack: Vec<Duration>,
    /// Per agent, ack − its own receipt.
    pub processing: Vec<Duration>,
    /// API call → first sample (emergencies).
    pub first: Vec<Duration>,
    /// Load average when the call was made.
    pub load: String,
    /// CPU seconds of the agent processes, the brokers, the server over the measurement.
    pub cpu: [f64; 3],
    /// Wall time of the measurement.
    pub wall: Duration,
    /// Whether every agent had every stamp before the wait ended.
    pub complete: bool,
}

impl Phase {
    /// A one-line summary for the console.
    pub fn line(&self) -> String {
        format!(
            "{}: answered {} · receipt {} · ack {} · processing {} · first {} · cpu agents/brokers/server {:.1}/{:.1}/{:.1} s over {:.1} s · load {}",
            self.label,
            ms(self.answered),
            Summary::of(&self.receipt),
            Summary::of(&self.ack),
            Summary::of(&self.processing),
            Summary::of(&self.first),
            self.cpu[0],
            self.cpu[1],
            self.cpu[2],
            self.wall.as_secs_f64(),
            self.load
        )
    }
}

/// Everything a run measured.
#[derive(Debug, Default)]
pub struct Figures {
    /// Agents.
    pub n: usize,
    /// Agent processes.
    pub processes: usize,
    /// Leaf brokers.
    pub leaves: usize,
    /// Registration (`POST /api/v1/fleet/import` in chunks of 1,000).
    pub register: Duration,
    /// From spawning the agent processes until every one was ready.
    pub connect: Duration,
    /// Agents subscribed when their process was ready.
    pub subscribed: usize,
    /// `nguon_devices_online` at the end of the wait.
    pub online: i64,
    /// How long after the processes were ready.
    pub online_after: Duration,
    /// Whether every outbox drained after start-up.
    pub settled: bool,
    /// RSS of the agent processes, the brokers, the server (KiB), once connected.
    pub agents_rss_kib: u64,
    /// RSS of the brokers (KiB).
    pub brokers_rss_kib: u64,
    /// RSS of the server (KiB).
    pub server_rss_kib: u64,
    /// `MemAvailable` once connected (KiB).
    pub mem_available_kib: u64,
    /// Load average once connected.
    pub load_connected: String,
    /// The server's database (`SQLite`, `PostgreSQL`).
    pub database: String,
    /// How the agents' processing threads were scheduled (`--processing`).
    pub processing: String,
    /// The measurements asked for, in order (`--measure`).
    pub measures: String,
    /// The measurements with the agents, in the order taken.
    pub phases: Vec<Phase>,
    /// Bytes of the area command.
    pub payload: usize,
    /// Load average before the replays.
    pub load_replay: String,
    /// Plain publish of the same bytes → agent receipt, three rounds.
    pub replays: Vec<Summary>,
    /// Raw subscribers connected and subscribed in.
    pub raw_connect: Duration,
    /// Raw subscribers subscribed.
    pub raw_subscribed: usize,
    /// Load average before the raw rounds.
    pub load_raw: String,
    /// Raw fan-out of the same bytes, three rounds.
    pub raw: Vec<Summary>,
    /// Why the run stopped before every measurement was taken (the memory guard).
    pub stopped: Option<String>,
    /// The memory guard's limit and the lowest `MemAvailable` seen (KiB).
    pub guard_kib: (u64, u64),
}

const GIB: f64 = 1024.0 * 1024.0;

/// The median round by p99.
fn median(v: &[Summary]) -> Summary {
    let mut v = v.to_vec();
    v.sort_by_key(|s| s.p99);
    v.get(v.len() / 2).copied().unwrap_or(Summary::of(&[]))
}

fn row(label: &str, s: Summary) -> String {
    format!(
        "| {label} | {} | {} | {} | {} |\n",
        ms(s.p50),
        ms(s.p99),
        ms(s.max),
        s.n
    )
}

/// The report.
pub fn markdown(f: &Figures) -> String {
    let n = f.n;
    let replay = median(&f.replays);
    let raw = median(&f.raw);
    let raw_p99 = raw.p99.as_secs_f64().max(1e-9);
    let mut out = format!(
        "### {n} agents in {} processes, root + {} leaf Mosquittos ({})\n\n\
         Agents' processing threads: {}. Measured in this order: {}. Memory guard {:.2} GiB (lowest MemAvailable \
         seen {:.2} GiB).{}\n\n\
         Registered in {:.1} s; the agent processes were all ready (every agent started, {} subscribed) {:.1} s after \
         they were spawned; the server counted {} online {:.1} s later{}. Once connected: agent processes RSS {:.0} MiB \
         ({:.0} KiB per agent), brokers {:.0} MiB, server {:.0} MiB, MemAvailable {:.1} GiB; load average {}. \
         Emergency payload {} bytes.\n\n\
         | from the API call (or the publish) → | p50 | p99 | max | n |\n|---|---|---|---|---|\n",
        f.processes,
        f.leaves,
        f.database,
        f.processing,
        f.measures,
        f.guard_kib.0 as f64 / GIB,
        f.guard_kib.1 as f64 / GIB,
        f.stopped
            .as_ref()
            .map(|s| format!(" **{s}**"))
            .unwrap_or_default(),
        f.register.as_secs_f64(),
        f.subscribed,
        f.connect.as_secs_f64(),
        f.online,
        f.online_after.as_secs_f64(),
        if f.settled {
            ""
        } else {
            " (outboxes not drained within 120 s)"
        },
        f.agents_rss_kib as f64 / 1024.0,
        f.agents_rss_kib as f64 / n.max(1) as f64,
        f.brokers_rss_kib as f64 / 1024.0,
        f.server_rss_kib as f64 / 1024.0,
        f.mem_available_kib as f64 / GIB,
        f.load_connected,
        f.payload,
    );
    for p in &f.phases {
        let what = if p.first.is_empty() {
            "its manifest"
        } else {
            "the publish"
        };
        out += &row(
            &format!("{}: **agent receipt** of {what} (before verification)", p.label),
            Summary::of(&p.receipt),
        );
        out += &row(&format!("{}: ack", p.label), Summary::of(&p.ack));
        out += &row(
            &format!("{}: **agent processing** (ack − own receipt)", p.label),
            Summary::of(&p.processing),
        );
        if !p.first.is_empty() {
            out += &row(&format!("{}: first sample", p.label), Summary::of(&p.first));
        }
    }
    if !f.replays.is_empty() {
        out += &row(
            "the same signed bytes published by a plain client on the root → **agent receipt** (median of 3 by p99)",
            replay,
        );
    }
    if !f.raw.is_empty() {
        out += &row(
            &format!(
                "**raw fan-out**: the same bytes → {n} plain rumqttc subscribers, same leaves and split (median of 3 by p99)"
            ),
            raw,
        );
    }
    // From the API call: the warm emergency if measured (the media path out of the way), else
    // the cold one.
    let api = f
        .phases
        .iter()
        .find(|p| p.kind == Measure::EmergencyWarm)
        .or_else(|| f.phases.iter().find(|p| p.kind == Measure::EmergencyCold))
        .map(|p| (p.label.as_str(), Summary::of(&p.receipt)));
    let ratio = |s: Summary| {
        if f.raw.is_empty() || s.n == 0 {
            "– (not measured)".to_string()
        } else {
            format!("**{:.2}×**", s.p99.as_secs_f64() / raw_p99)
        }
    };
    out += &format!(
        "\nDelivery p99 / raw p99: {} for the same bytes from a plain publisher; {} from the API call ({}: the \
         server's check, signature, record and publish added). Goals: ≤ 1.5× raw; < 2 s at 100,000. \
         Rounds: plain publish p99 {}; raw p99 {} (load {} before the replays, {} before the raw rounds; raw \
         subscribers ready in {:.1} s, {} subscribed).\n\n",
        ratio(if f.replays.is_empty() {
            Summary::of(&[])
        } else {
            replay
        }),
        api.map(|(_, s)| ratio(s))
            .unwrap_or_else(|| "– (no emergency measured)".into()),
        api.map(|(l, _)| l).unwrap_or("–"),
        f.replays.iter().map(|s| ms(s.p99)).collect::<Vec<_>>().join(", "),
        f.raw.iter().map(|s| ms(s.p99)).collect::<Vec<_>>().join(", "),
        f.load_replay,
        f.load_raw,
        f.raw_connect.as_secs_f64(),
        f.raw_subscribed,
    );
    for p in &f.phases {
        out += &format!(
            "{}: API answered in {}; CPU over {:.1} s: agent processes {:.1} s ({:.2} ms per agent), brokers {:.1} s, \
             server {:.1} s; load average {} when sent{}.\n",
            p.label,
            ms(p.answered),
            p.wall.as_secs_f64(),
            p.cpu[0],
            p.cpu[0] * 1000.0 / n.max(1) as f64,
            p.cpu[1],
            p.cpu[2],
            p.load,
            if p.complete {
                ""
            } else {
                "; not every agent had every stamp within the wait"
            }
        );
    }
    out
}
