//! `scale-bench`: the fleet simulator across several processes (issue 14, "Scale"), up to
//! 50,000–100,000 simulated agents on one machine whose hard file limit is 20,000 per process.
//!
//! ```sh
//! cargo build --release -p nguon-tests -p nguon-server --bins
//! target/release/scale-bench run --agents 10000                 # processes and leaves chosen
//! target/release/scale-bench run --agents 50000 --processes 10 --leaves 4 --out /tmp/s50k.md
//! target/release/scale-bench run --agents 100000 \
//!     --database-url postgres://postgres@127.0.0.1:5432/postgres \
//!     --measure emergency-cold,replay,emergency-warm,dispatch,raw --memory-guard-gib 1.5
//! ```
//!
//! One coordinator starts a root Mosquitto and L leaf Mosquittos bridged to it
//! ([`nguon_tests::mosquitto_tree`]; one broker process cannot hold more than ~19,000
//! connections), the release `nguon-server` as a child process on the root (SQLite, or a fresh
//! PostgreSQL database on the server of `--database-url`, dropped at the end), registers the
//! province's N devices, and spawns K copies of itself (`scale-bench agents …`), each running N/K
//! real agents (the fleet simulator, null sinks, stores on tmpfs) against one leaf. The children
//! write each agent's stamps (wall clock: every process shares this machine's clock) on stdout
//! ([`wire`]). Measured in the order of `--measure` ([`measure::Measure`]; by default the
//! emergencies first):
//!
//! - `emergency-cold`, `emergency-warm`: emergency play-now on the province, the clip not yet
//!   fetched, then cached: API call → each agent's receipt of the publish (before verification),
//!   its ack and first sample;
//! - `replay`: the same signed bytes published by a plain client on the root → each agent's
//!   receipt (three times);
//! - `dispatch`: a province-wide change, a schedule on the province (`POST /api/v1/schedules`)
//!   → each agent's receipt of its new manifest on its `desired` topic, and its ack;
//! - `raw` (last): the agents stop and K `raw` children connect N plain rumqttc subscribers the
//!   same way (same leaves, same split) and the same bytes are published on the root three times:
//!   the raw fan-out through the same brokers in the same run.
//!
//! Agent processing time is each agent's ack minus its own receipt (with the queueing behind the
//! other agents of its process on the two shared cores); agents' CPU is the children's CPU from
//! `/proc`. The agents' processing threads run at nice 10 by default (`--processing`; `idle` for
//! `SCHED_IDLE`, measured in docs/benchmarks.md: no better receipt at 10,000, far slower start-up
//! and processing), so that the simulation's verification and writes slow the brokers' fan-out
//! and the poll loops that stamp receipt as little as possible. A memory guard ([`guard`]) stops the agents and writes the
//! report of what was measured when `MemAvailable` falls under `--memory-guard-gib`. The
//! markdown report is printed (and written to `--out`).

#[path = "scale-bench/child.rs"]
mod child;
#[path = "scale-bench/guard.rs"]
mod guard;
#[path = "scale-bench/measure.rs"]
mod measure;
#[path = "scale-bench/report.rs"]
mod report;
#[path = "scale-bench/run.rs"]
mod run;
#[path = "scale-bench/wire.rs"]
mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The fleet simulator across several processes, with the raw fan-out baseline.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Coordinate a run: brokers, server, K agent processes, then K raw processes.
    Run(run::RunArgs),
    /// (child) Run devices `from..to` of a plan file against one broker.
    Agents {
        /// The plan file (one device a line, written by the coordinator).
        #[arg(long)]
        plan: PathBuf,
        /// First device (index in the plan).
        #[arg(long)]
        from: usize,
        /// One past the last device.
        #[arg(long)]
        to: usize,
        /// The leaf broker.
        #[arg(long)]
        broker: SocketAddr,
        /// nguon-server base URL.
        #[arg(long)]
        server: String,
        /// The server's public key (base64).
        #[arg(long)]
        key: String,
        /// The agents' stores go under this directory.
        #[arg(long)]
        data: PathBuf,
        /// Heartbeat interval, seconds.
        #[arg(long, default_value_t = 300)]
        heartbeat: u32,
        /// How the agents' processing threads are scheduled.
        #[arg(long, value_enum, default_value_t = Processing::Nice)]
        processing: Processing,
    },
    /// (child) Plain subscribers `from..to` on one topic of one broker.
    Raw {
        /// The leaf broker.
        #[arg(long)]
        broker: SocketAddr,
        /// First subscriber's index.
        #[arg(long)]
        from: usize,
        /// One past the last.
        #[arg(long)]
        to: usize,
        /// The topic to subscribe to (QoS 1).
        #[arg(long)]
        topic: String,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "error".into()),
        )
        .init();
    nguon_tests::init_crypto();
    match Args::parse().cmd {
        Cmd::Run(a) => run::main(a),
        Cmd::Agents {
            plan,
            from,
            to,
            broker,
            server,
            key,
            data,
            heartbeat,
            processing,
        } => child::run_agents(child::AgentsChild {
            plan,
            from,
            to,
            broker,
            server,
            key,
            data,
            heartbeat,
            processing,
        }),
        Cmd::Raw {
            broker,
            from,
            to,
            topic,
        } => child::run_raw(broker, from, to, topic),
    }
}

/// How the agents' processing threads are scheduled beside their MQTT poll loops (which stamp
/// the receipt and run at normal priority): thousands of simulated agents verify and write on
/// the two cores the brokers fan out on, where a device has a CPU of its own.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processing {
    /// `SCHED_IDLE`: runs only on CPU time nothing else at normal priority wants.
    Idle,
    /// Nice 10 (`setpriority` on each thread).
    Nice,
    /// Normal priority, like everything else.
    Normal,
}

impl Processing {
    /// The option's value (`idle`, `nice`, `normal`).
    pub fn name(self) -> &'static str {
        match self {
            Processing::Idle => "idle",
            Processing::Nice => "nice",
            Processing::Normal => "normal",
        }
    }

    /// Apply to the calling thread (Linux schedules threads one by one). A failure only makes the
    /// receipt/processing split less sharp, so it is logged.
    pub fn apply_to_this_thread(self) {
        // SAFETY: gettid and setpriority take no pointers; sched_setscheduler reads `param`,
        // which lives across the call.
        let rc = unsafe {
            let tid = libc::gettid();
            match self {
                Processing::Idle => {
                    let param = libc::sched_param { sched_priority: 0 };
                    libc::sched_setscheduler(tid, libc::SCHED_IDLE, &param)
                }
                Processing::Nice => libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10),
                Processing::Normal => 0,
            }
        };
        if rc != 0 {
            eprintln!(
                "cannot schedule a processing thread as {}: {}",
                self.name(),
                std::io::Error::last_os_error()
            );
        }
    }
}
