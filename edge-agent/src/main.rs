//! The `nguon-agent` command: `run`, `check-config` and `status`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use nguon_agent::{Agent, AgentOptions};
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
    rt.block_on(async {
        let agent = Agent::start(config, config_dir(config_path), AgentOptions::default()).await?;
        tracing::info!("agent started");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("stopping");
        agent.shutdown().await;
        anyhow::Ok(())
    })
}
