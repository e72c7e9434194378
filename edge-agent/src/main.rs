//! The `nguon-agent` command: `run`, `check-config` and `status`. `run` is also the launcher of
//! the agent versions installed by signed updates (`nguon_agent::ota`, docs/ota.md): it execs the
//! `current` one, or rolls a version on trial back, before anything else.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use nguon_agent::{Agent, AgentOptions, Fault};
use nguon_device_config::DeviceConfig;

/// nguon edge agent for commune loudspeaker clusters.
#[derive(Parser)]
#[command(version = nguon_agent::ota::version(), about)]
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
            Ok(code) => code,
            Err(e) => {
                eprintln!("nguon-agent: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = DeviceConfig::load(config_path)?;
    let data_dir = config_dir(config_path).join(&config.storage.data_dir);
    // The launcher: returns only when this binary is the one to run.
    nguon_agent::ota::launch(&data_dir);
    if let Some(trial) = nguon_agent::ota::own_trial(&data_dir) {
        tracing::info!(version = %trial.version, deadline = %trial.deadline, "on trial: confirming once the server is reached");
        nguon_agent::ota::watch_trial(&data_dir, trial);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let opts = AgentOptions {
        fault: fault_from_env()?,
        updates: true,
        ..AgentOptions::default()
    };
    rt.block_on(async {
        let mut agent = Agent::start(config, config_dir(config_path), opts).await?;
        tracing::info!(version = nguon_agent::ota::version(), "agent started");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut restart = false;
        let restart_signal = agent.restart_signal();
        let died = tokio::select! {
            _ = tokio::signal::ctrl_c() => None,
            _ = term.recv() => None,
            _ = restart_signal.notified() => {
                restart = true;
                None
            }
            e = agent.task_ended() => Some(e),
        };
        match died {
            None if restart => {
                // systemd (Restart=) starts the launcher again, which runs the new version.
                tracing::info!("new agent version installed; exiting to restart into it");
                agent.shutdown().await;
                anyhow::Ok(ExitCode::from(nguon_agent::ota::EXIT_RESTART))
            }
            None => {
                tracing::info!("stopping");
                agent.shutdown().await;
                anyhow::Ok(ExitCode::SUCCESS)
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
