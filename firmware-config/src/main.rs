//! `nguon-provision`: check a device config, or provision a province's devices from a station
//! list. Thin wrapper over the library: parse flags, resolve them, call, print, exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use nguon_provision::{BulkOptions, DeviceConfig, bulk};

const BULK_EXAMPLES: &str = "\
Examples:
  # First run for Lào Cai: every device gets an id, password, key, config and bundle.
  nguon-provision bulk stations.csv --out laocai \\
      --province-code 10 --province-name 'Lào Cai' --communes communes.csv \\
      --server-url https://nguon.laocai.gov.vn --server-key-file server.pub \\
      --broker-url mqtts://mqtt.laocai.gov.vn:8883

  # Later runs remember the settings: add rows to the CSV and run again.
  nguon-provision bulk stations.csv --out laocai

  # Rows removed from the CSV are listed; --prune disables them in the broker files and registry.
  nguon-provision bulk stations.csv --out laocai --prune

The CSV header is: commune_code,village,station,kind,lat,lon,audio_output,language
Passwords of new devices are written once to laocai/secrets/new-passwords-<time>.csv (0600).";

/// Provision nguon devices: configs, credentials, keys, install bundles and broker files.
#[derive(Debug, Parser)]
#[command(
    name = "nguon-provision",
    version,
    after_help = "Examples:
  nguon-provision check /etc/nguon/agent.toml
  nguon-provision bulk stations.csv --out laocai --province-code 10 \\
      --server-url https://nguon.laocai.gov.vn --server-key-file server.pub
Run `nguon-provision bulk --help` for the station list format."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a device config file: prints `ok`, or the error naming the file and the key.
    #[command(after_help = "Example:\n  nguon-provision check /etc/nguon/agent.toml")]
    Check {
        /// The agent config (TOML).
        file: PathBuf,
    },
    /// Provision every device of a station list into an output directory (repeatable).
    #[command(after_help = BULK_EXAMPLES)]
    Bulk(Box<BulkArgs>),
    /// Make the embedded broker cluster's CA (first run) and node certificates, for the
    /// server's broker_cluster.tls_cert, tls_key and tls_ca (repeatable: adds nodes).
    #[command(after_help = "Example:
  nguon-provision cluster-certs --out cluster-tls \\
      --node 1@10.0.0.11:5363 --node 2@10.0.0.12:5363 --node 3@10.0.0.13:5363
Node N's machine gets ca.pem, node-N.pem and node-N.key (0600); keep ca.key offline.")]
    ClusterCerts {
        /// Output directory (ca.pem, ca.key, node-<id>.pem, node-<id>.key).
        #[arg(long)]
        out: PathBuf,
        /// A node as in broker_cluster.nodes: `id@host:port` (or `id@host`); its certificate is
        /// valid for that host (IP address or DNS name). Repeat for each node.
        #[arg(long = "node", required = true)]
        nodes: Vec<nguon_provision::cluster_certs::Node>,
    },
}

#[derive(Debug, clap::Args)]
struct BulkArgs {
    /// The station list (UTF-8 CSV).
    stations: PathBuf,
    /// Output directory (keeps state.json between runs).
    #[arg(long)]
    out: PathBuf,
    /// nguon-server base URL (remembered from the last run).
    #[arg(long)]
    server_url: Option<String>,
    /// Base64 ed25519 public key of the server (remembered).
    #[arg(long, conflicts_with = "server_key_file")]
    server_public_key: Option<String>,
    /// File holding the server's base64 public key.
    #[arg(long)]
    server_key_file: Option<PathBuf>,
    /// File holding the nguon-server MQTT user's password (`nguon-server init` writes it);
    /// without it one is generated on the first run into DIR/secrets/server-mqtt-password.
    #[arg(long)]
    server_mqtt_password_file: Option<PathBuf>,
    /// Broker URL for devices (default mqtt://<server host>:1883; remembered). Several, separated by
    /// commas (a broker cluster's nodes): each device gets them all, starting at a different one.
    #[arg(long)]
    broker_url: Option<String>,
    /// Province area code, e.g. 10 (remembered).
    #[arg(long)]
    province_code: Option<String>,
    /// Province name, e.g. "Lào Cai" (remembered).
    #[arg(long)]
    province_name: Option<String>,
    /// Known communes, CSV `code,name`: other codes are errors; names go into the registry.
    #[arg(long)]
    communes: Option<PathBuf>,
    /// Disable devices whose rows were removed (out of the broker files, listed as disabled).
    #[arg(long)]
    prune: bool,
    /// Provision the valid rows and list the invalid ones instead of refusing the whole file.
    #[arg(long)]
    skip_invalid: bool,
}

impl BulkArgs {
    fn resolve(self) -> anyhow::Result<BulkOptions> {
        let server_public_key = match (self.server_public_key, self.server_key_file) {
            (Some(k), _) => Some(k),
            (None, Some(f)) => Some(
                std::fs::read_to_string(&f)
                    .with_context(|| format!("--server-key-file {}", f.display()))?
                    .trim()
                    .to_string(),
            ),
            (None, None) => None,
        };
        let server_mqtt_password = match &self.server_mqtt_password_file {
            Some(f) => {
                let text = std::fs::read_to_string(f)
                    .with_context(|| format!("--server-mqtt-password-file {}", f.display()))?;
                let pw = text.lines().next().unwrap_or("").trim().to_string();
                anyhow::ensure!(
                    !pw.is_empty() && !pw.contains(char::is_whitespace),
                    "--server-mqtt-password-file {}: the first line must be the password",
                    f.display()
                );
                Some(pw)
            }
            None => None,
        };
        Ok(BulkOptions {
            server_mqtt_password,
            stations: self.stations,
            out: self.out,
            server_url: self.server_url,
            server_public_key,
            broker_url: self.broker_url,
            province_code: self.province_code,
            province_name: self.province_name,
            communes: self.communes,
            prune: self.prune,
            skip_invalid: self.skip_invalid,
            show_progress: true,
        })
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check { file } => match DeviceConfig::load(&file) {
            Ok(_) => {
                println!("ok");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::ClusterCerts { out, nodes } => {
            use nguon_provision::cluster_certs::{Made, cluster_certs};
            for m in cluster_certs(&out, &nodes)? {
                match m {
                    Made::Created(p) => println!("written: {}", p.display()),
                    Made::Kept(p) => println!("kept: {}", p.display()),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bulk(args) => {
            let server_password_file = args.server_mqtt_password_file.clone();
            let opts = (*args).resolve()?;
            let report = bulk(&opts)?;
            for e in &report.invalid {
                println!("skipped {e}");
            }
            for (id, k) in &report.removed {
                println!(
                    "removed from the list (still active; --prune disables): {id} ({} / {} / {})",
                    k.commune_code, k.village, k.station
                );
            }
            for (id, k) in &report.disabled {
                println!(
                    "disabled: {id} ({} / {} / {})",
                    k.commune_code, k.village, k.station
                );
            }
            for id in &report.stale_bundles {
                println!(
                    "warning: {id}: config changed but bundles/{id}.tar.gz is gone; \
                     install devices/{id}/agent.toml on the device by hand"
                );
            }
            print!("{}", report.table());
            if let Some(p) = &report.secrets_file {
                println!(
                    "passwords of new devices: {} (0600; hand out, then delete)",
                    p.display()
                );
            }
            if let Some(p) = &report.server_password_file {
                println!("nguon-server MQTT password: {} (0600)", p.display());
            } else if let Some(f) = &server_password_file {
                println!("nguon-server MQTT password: from {}", f.display());
            }
            println!(
                "{} file(s) written in {}",
                report.files_written,
                opts.out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
