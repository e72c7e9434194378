//! nguon-server binary: parse flags, load settings, run until Ctrl-C or SIGTERM; or run an
//! offline subcommand (`init`, `backup`, `restore`, `media loudness-backfill`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use nguon_server::{Application, Settings};

/// nguon provincial source-information server.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// TOML settings file (also `NGUON_CONFIG`); `NGUON_*` variables override it. `init` writes it
    /// when it does not exist.
    #[arg(long, env = "NGUON_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Seed a small demo province (a few Lào Cai communes, stations, a clip, a daily schedule).
    #[arg(long)]
    demo: bool,
    #[command(subcommand)]
    command: Option<Cmd>,
}

/// What to do instead of serving (docs/operations.md, "Set up a province", "Backup and restore").
#[derive(clap::Subcommand, Debug)]
enum Cmd {
    /// Before the first start, offline: create the signing key (`server.key`, never overwritten)
    /// and `server.pub`, the server's MQTT password for an external broker and the settings file
    /// (`--config`, default `<data_dir>/nguon.toml`). Run it again: it changes nothing.
    Init,
    /// Back up the database (SQLite: a consistent copy while the server runs; PostgreSQL:
    /// pg_dump), the signing key and the media into DIR (new or empty), with a manifest.
    Backup {
        /// Directory to write.
        dir: PathBuf,
    },
    /// Restore a backup into the configured data directory and database, which must be fresh.
    /// Refuses a damaged backup (naming the file) or one from a newer schema.
    Restore {
        /// Directory of a backup.
        dir: PathBuf,
    },
    /// Media library maintenance.
    Media {
        #[command(subcommand)]
        command: MediaCmd,
    },
}

/// `nguon-server media …`.
#[derive(clap::Subcommand, Debug)]
enum MediaCmd {
    /// Measure and normalise the loudness of stored files that have none (stored before uploads
    /// were measured): each gets its rendition, a loudness row, an audit entry and a dispatch so
    /// devices fetch the rendition. Safe while the server runs; run again, it skips what is done.
    LoudnessBackfill {
        /// At most this many files (oldest first); all when absent.
        #[arg(long)]
        limit: Option<usize>,
    },
}

// jemalloc: glibc malloc's RSS grew without bound across reconnect storms on the embedded broker;
// jemalloc's stayed flat (docs/benchmarks.md, "Embedded broker candidates").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .finish();
    tracing::subscriber::set_global_default(subscriber).context("tracing subscriber")?;
    // rmqtt (the embedded broker's engine) logs with `log`: into tracing, its routine warnings
    // at debug.
    nguon_server::mqtt::engine::install_log_bridge().context("log bridge")?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    if let Some(Cmd::Init) = cli.command {
        // The settings file init is to write may not exist yet.
        let file = cli.config.as_deref().filter(|p| p.exists());
        let settings = Settings::load(file, std::env::vars()).context("invalid settings")?;
        return init(&settings, cli.config.as_deref());
    }
    let mut settings = Settings::load(cli.config.as_deref(), std::env::vars()).context("invalid settings")?;
    if let Some(cmd) = cli.command {
        return offline(cmd, &settings).await;
    }
    settings.demo |= cli.demo;
    let app = Application::build(settings)
        .await
        .context("cannot start nguon-server")?;
    let generated = app.generated_admin_token().map(str::to_string);
    println!("nguon-server listening on http://127.0.0.1:{}", app.http_port());
    if let Some(a) = app.mqtt_addr() {
        println!("embedded MQTT broker on {a}");
    }
    if let Some(token) = generated {
        println!(
            "admin token (shown this once, only its hash is stored; it is also the password of the console user `admin`): {token}"
        );
    }
    // Ctrl-C or SIGTERM (systemd's stop) ends the server gracefully.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    app.run_until_stopped(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    })
    .await?;
    Ok(())
}

async fn offline(cmd: Cmd, settings: &Settings) -> anyhow::Result<()> {
    use nguon_server::services::backup;
    let started = std::time::Instant::now();
    if let Cmd::Media {
        command: MediaCmd::LoudnessBackfill { limit },
    } = cmd
    {
        use nguon_server::services::media::backfill;
        let store = nguon_server::store::Store::connect(&settings.database_url())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let s = backfill::loudness_backfill(&store, &settings.data_dir, limit)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!(
            "loudness backfill: {} files without loudness, {} normalised, {} played as they are, {} not measurable, {} ms",
            s.found,
            s.normalised,
            s.as_is,
            s.failed,
            started.elapsed().as_millis()
        );
        return Ok(());
    }
    let (what, dir, s) = match cmd {
        Cmd::Backup { dir } => (
            "backup written to",
            dir.clone(),
            backup::backup(settings, &dir).await,
        ),
        Cmd::Init => unreachable!("init runs before the settings are loaded"),
        Cmd::Media { .. } => unreachable!("handled above"),
        Cmd::Restore { dir } => (
            "restored from",
            dir.clone(),
            backup::restore(settings, &dir).await,
        ),
    };
    let s = s.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "{what} {}: {:?} database at migration {}, {} files, {} bytes, {} ms",
        dir.display(),
        s.database,
        s.schema_version,
        s.files,
        s.bytes,
        started.elapsed().as_millis()
    );
    Ok(())
}

/// `nguon-server init`: report each file and what to do next.
fn init(settings: &Settings, config: Option<&std::path::Path>) -> anyhow::Result<()> {
    use nguon_server::mqtt::bootstrap::{self, Action};
    let r = bootstrap::init(settings, config).map_err(|e| anyhow::anyhow!("init: {e}"))?;
    for s in &r.steps {
        let what = match s.action {
            Action::Created => "created",
            Action::Kept => "kept",
            Action::Rewritten => "rewritten",
            Action::KeptDiffers => "kept (differs from these settings; init never rewrites it)",
        };
        println!("{:<14} {} {what}", s.what, s.path.display());
    }
    let (pubkey, password, file) = (
        r.path(bootstrap::PUBLIC_KEY).display(),
        r.path(bootstrap::MQTT_PASSWORD).display(),
        r.path(bootstrap::SETTINGS).display(),
    );
    println!("server public key: {}", r.public_key);
    println!(
        "provisioning: nguon-provision bulk ... --server-key-file {pubkey} --server-mqtt-password-file {password}\n  \
         (its mosquitto/password_file then lets the server in as user nguon-server; without \
         nguon-provision: mosquitto_passwd -b <password_file> nguon-server \"$(cat {password})\")"
    );
    println!("start: nguon-server --config {file}");
    if r.changed() {
        println!("init done");
    } else {
        println!("nothing to do: everything was already in place, nothing was changed");
    }
    Ok(())
}
