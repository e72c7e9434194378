//! `scale-bench`: the fleet simulator across several processes (issue 14, "Scale"), up to
//! 50,000–100,000 simulated agents on one machine whose hard file limit is 20,000 per process.
//!
//! ```sh
//! cargo build --release -p nguon-tests -p nguon-server --bins
//! target/release/scale-bench run --agents 10000                 # processes and leaves chosen
//! target/release/scale-bench run --agents 50000 --processes 10 --leaves 4 --out /tmp/s50k.md
//! ```
//!
//! One coordinator starts a root Mosquitto and L leaf Mosquittos bridged to it
//! ([`nguon_tests::mosquitto_tree`]; one broker process cannot hold more than ~19,000
//! connections), the release `nguon-server` as a child process on the root (SQLite), registers
//! the province's N devices, and spawns K copies of itself (`scale-bench agents …`), each running
//! N/K real agents (the fleet simulator, null sinks, stores on tmpfs) against one leaf. The children
//! write each agent's stamps (wall clock: every process shares this machine's clock) on stdout
//! ([`wire`]). Measured, in this order:
//!
//! - dispatch of a province-wide change: a schedule on the province (`POST /api/v1/schedules`)
//!   → each agent's receipt of its new manifest on its `desired` topic, and its ack;
//! - emergency play-now on the province, cold (media fetched over HTTP) then warm: API call →
//!   each agent's receipt of the publish (before verification), its ack and first sample;
//! - the same signed bytes published by a plain client on the root → each agent's receipt
//!   (three times);
//! - then the agents stop and K `raw` children connect N plain rumqttc subscribers the same way
//!   (same leaves, same split) and the same bytes are published on the root three times: the raw
//!   fan-out through the same brokers in the same run.
//!
//! Agent processing time is each agent's ack minus its own receipt (with the queueing behind the
//! other agents of its process on the two shared cores); agents' CPU is the children's CPU from
//! `/proc`. The markdown report is printed (and written to `--out`).

#[path = "scale-bench/child.rs"]
mod child;
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
        } => child::run_agents(child::AgentsChild {
            plan,
            from,
            to,
            broker,
            server,
            key,
            data,
            heartbeat,
        }),
        Cmd::Raw {
            broker,
            from,
            to,
            topic,
        } => child::run_raw(broker, from, to, topic),
    }
}

/// Lower the calling thread's scheduling priority (`setpriority` on a thread id is per thread on
/// Linux). A failure only makes the receipt/processing split less sharp, so it is logged.
pub(crate) fn nice_this_thread(nice: i32) {
    // SAFETY: gettid and setpriority take no pointers.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, nice) };
    if rc != 0 {
        eprintln!("setpriority({nice}) failed: {}", std::io::Error::last_os_error());
    }
}
