//! The `nguon-agent` command: `run`, `check-config` and `status`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use nguon_agent::{Agent, AgentOptions, Fault};
use nguon_device_config::DeviceConfig;

/// nguon edge agent for commune loudspeaker clusters.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the agent.
    Run {
        /// Configuration file (relative paths inside it resolve against its directory).
        #[arg(long, env = "NGUON_AGENT_CONFIG")]
        config: PathBuf,
    },
    /// Validate a configuration file; prints the problem and exits non-zero if there is one.
    CheckConfig {
        /// Configuration file.
        file: PathBuf,
    },
    /// Print the local state: cache contents, next items, outbox length, last contact.
    Status {
        /// Configuration file.
        #[arg(long, env = "NGUON_AGENT_CONFIG")]
        config: PathBuf,
    },
}

fn config_dir(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    abs.parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::CheckConfig { file } => match DeviceConfig::load(&file) {
            Ok(c) => {
                println!(
                    "{}: ok (device {}, output {})",
                    file.display(),
                    c.device.id,
                    c.audio.output
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Cmd::Status { config } => match DeviceConfig::load(&config) {
            Ok(c) => {
                let dir = config_dir(&config).join(&c.storage.data_dir);
                print!("{}", nguon_agent::status::render(&dir, chrono::Utc::now()));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Cmd::Run { config } => match run(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("nguon-agent: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run(config_path: &Path) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = DeviceConfig::load(config_path)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let opts = AgentOptions {
        fault: fault_from_env()?,
        ..AgentOptions::default()
    };
    rt.block_on(async {
        let mut agent = Agent::start(config, config_dir(config_path), opts).await?;
        tracing::info!("agent started");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let died = tokio::select! {
            _ = tokio::signal::ctrl_c() => None,
            _ = term.recv() => None,
            e = agent.task_ended() => Some(e),
        };
        match died {
            None => {
                tracing::info!("stopping");
                agent.shutdown().await;
                anyhow::Ok(())
            }
            Some(e) => {
                // Without it the agent would look alive to systemd while it no longer plays or
                // no longer listens: stop, exit non-zero, and let systemd restart it.
                tracing::error!(error = %e, "a task of the agent died; stopping");
                agent.shutdown().await;
                Err(anyhow::Error::new(e))
            }
        }
    })
}

/// `NGUON_AGENT_FAULT` (`player-panic`, `link-ends`): a task fails on purpose, for the tests of
/// the supervision. Only debug builds read it.
#[cfg(debug_assertions)]
fn fault_from_env() -> anyhow::Result<Option<Fault>> {
    match std::env::var("NGUON_AGENT_FAULT") {
        Ok(v) => Ok(Some(v.parse().map_err(anyhow::Error::msg)?)),
        Err(_) => Ok(None),
    }
}

/// Release builds never inject faults.
#[cfg(not(debug_assertions))]
fn fault_from_env() -> anyhow::Result<Option<Fault>> {
    Ok(None)
}
