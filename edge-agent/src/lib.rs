//! nguon-agent: the edge agent of a commune loudspeaker cluster. It follows the province's
//! signed desired state over MQTT, caches media by sha256, plays the schedule on time (offline
//! too) through a priority queue, and reports every occurrence exactly once through a durable
//! outbox.
//!
//! The library holds no global state: [`Agent::start`] spawns a handful of tasks on the current
//! tokio runtime, so one process can run many agents (the fleet simulator runs 10,000). Binaries
//! install the rustls crypto provider and the tracing subscriber.
#![deny(missing_docs)]

pub mod amp;
pub mod cache;
pub mod chan;
pub mod clock;
pub mod error;
pub mod guard;
pub mod link;
pub mod ota;
pub mod player;
pub mod report;
pub mod sink;
pub mod status;
pub mod store;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nguon_device_config::{AudioOutput, DeviceConfig};
use rumqttc::MqttOptions;
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio::task::{JoinError, JoinSet};

pub use clock::Clock;
pub use error::AgentError;
pub use link::ReceiveHook;
pub use report::{AgentEvent, AgentEventKind};
pub use sink::Sink;
pub use status::LiveStatus;

/// Tuning and hooks for an embedded agent.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Added to the system clock: simulates a device whose clock is wrong.
    pub clock_offset: chrono::Duration,
    /// Receives local events (connected, message verified, first sample...).
    pub observer: Option<broadcast::Sender<AgentEvent>>,
    /// A shared HTTP client (many agents in one process); one is built when `None`.
    pub http: Option<reqwest::Client>,
    /// A scheduled item more than this late is reported `missed` instead of played.
    pub grace: Duration,
    /// How long before its start an item is prepared.
    pub lead: Duration,
    /// Tolerated clock skew for a message's `issued_at`.
    pub skew: Duration,
    /// Replace the configured audio output.
    pub sink: Option<Sink>,
    /// Make a task fail on purpose (tests of the supervision; `None` on a device).
    pub fault: Option<Fault>,
    /// Told when each MQTT publish arrives, before verification (the fleet simulator's delivery
    /// measure; `None` on a device).
    pub on_receive: Option<ReceiveHook>,
    /// Run the MQTT poll task (the socket reads, where `on_receive` is called) on this runtime
    /// instead of the agent's own. The fleet simulator only: on a device one agent has its CPU to
    /// itself, while in the simulator thousands share two cores, and a poll loop waiting behind
    /// other agents' verification and disk writes would charge their CPU to broker delivery.
    /// `None` on a device.
    pub network: Option<tokio::runtime::Handle>,
    /// Install the agent versions manifests ask for (`ota`, docs/ota.md): only the `nguon-agent`
    /// binary, which runs under its launcher; never an embedded agent (`false` by default).
    pub updates: bool,
}

/// A failure injected on purpose, to test what happens when a task of the agent dies. The
/// `nguon-agent` binary takes it from `NGUON_AGENT_FAULT` in debug builds only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The player task panics as soon as it starts (`player-panic`).
    PlayerPanics,
    /// The link task returns as soon as it starts (`link-ends`).
    LinkEnds,
}

impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "player-panic" => Ok(Fault::PlayerPanics),
            "link-ends" => Ok(Fault::LinkEnds),
            _ => Err(format!(
                "`{s}` is not a fault; expected player-panic or link-ends"
            )),
        }
    }
}

impl Default for AgentOptions {
    fn default() -> Self {
        Self {
            clock_offset: chrono::Duration::zero(),
            observer: None,
            http: None,
            grace: Duration::from_secs(5),
            lead: Duration::from_millis(1500),
            skew: Duration::from_secs(120),
            sink: None,
            fault: None,
            on_receive: None,
            network: None,
            updates: false,
        }
    }
}

/// The agent.
pub struct Agent;

/// A running agent.
pub struct AgentHandle {
    shutdown: watch::Sender<bool>,
    /// The player and link tasks, each with its name.
    tasks: JoinSet<&'static str>,
    /// Task ids and names, to name a task that panicked.
    names: Vec<(tokio::task::Id, &'static str)>,
    status: Arc<Mutex<LiveStatus>>,
    store: Arc<store::Store>,
    restart: Arc<Notify>,
}

impl std::fmt::Debug for AgentHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentHandle").finish_non_exhaustive()
    }
}

impl AgentHandle {
    /// Stop every task (a graceful MQTT disconnect that publishes offline) and wait for them.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
    }

    /// Wait until one of the agent's tasks (player or link) ends, which it only does on
    /// [`AgentHandle::shutdown`] unless something went wrong: which task, and how. The others keep
    /// running; the caller decides (the `nguon-agent` binary shuts down and exits non-zero, so
    /// systemd restarts it). Pending forever once every task has ended.
    pub async fn task_ended(&mut self) -> AgentError {
        let Some(ended) = self.tasks.join_next_with_id().await else {
            return std::future::pending().await;
        };
        let (task, how) = match ended {
            Ok((_, task)) => (task, "ended".to_string()),
            Err(e) => (self.task_name(&e), how_it_failed(e)),
        };
        AgentError::TaskEnded { task, how }
    }

    fn task_name(&self, e: &JoinError) -> &'static str {
        self.names
            .iter()
            .find(|(id, _)| *id == e.id())
            .map_or("unknown", |(_, name)| *name)
    }
    /// Notified once a new agent version is installed: the process should exit with
    /// [`ota::EXIT_RESTART`] so that systemd starts it (never without `AgentOptions::updates`).
    pub fn restart_signal(&self) -> Arc<Notify> {
        self.restart.clone()
    }

    /// Current status.
    pub fn status(&self) -> LiveStatus {
        self.status.lock().expect("status").clone()
    }
    /// Events waiting in the outbox.
    pub fn outbox_len(&self) -> usize {
        self.store.outbox_len()
    }
}

/// How a task that did not return ended: its panic message, or cancelled.
fn how_it_failed(e: JoinError) -> String {
    if !e.is_panic() {
        return "was cancelled".into();
    }
    let p = e.into_panic();
    let msg = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    format!("panicked: {msg}")
}

/// How long the HTTP client keeps an idle connection to the server: long enough to reuse it for
/// the next file of a fetch, short enough that a fleet that has fetched its media holds no
/// connections (each is a file descriptor of the server's).
pub const HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The agent's HTTP client (media, live streams, the clock estimate, updates): connect timeout
/// 15 s, read timeout 60 s, at most one idle connection per host, closed after
/// [`HTTP_IDLE_TIMEOUT`]. Needs the rustls crypto provider installed.
pub fn http_client() -> Result<reqwest::Client, AgentError> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        return Err(AgentError::Setup(
            "no rustls crypto provider installed; call \
             rustls::crypto::ring::default_provider().install_default() first"
                .into(),
        ));
    }
    Ok(reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(1)
        .pool_idle_timeout(HTTP_IDLE_TIMEOUT)
        .build()?)
}

/// The sink a configuration asks for.
pub fn sink_for(output: &AudioOutput) -> Sink {
    match output {
        AudioOutput::Alsa(d) => Sink::Speaker(d.clone()),
        AudioOutput::Wav(p) => Sink::Wav(p.clone()),
        AudioOutput::Null => Sink::Null,
    }
}

impl Agent {
    /// Open the store and start the agent's tasks on the current runtime. `config_dir` resolves
    /// relative paths in the configuration (the password and key files).
    pub async fn start(
        config: DeviceConfig,
        config_dir: PathBuf,
        opts: AgentOptions,
    ) -> Result<AgentHandle, AgentError> {
        let password = config.mqtt_password(&config_dir)?;
        let device_key = config.signing_key(&config_dir)?;
        let server_key = nguon_protocol::verifying_key_from_b64(&config.server.public_key)
            .map_err(|e| AgentError::Setup(format!("server.public_key: {e}")))?;
        let tz: chrono_tz::Tz = config
            .device
            .time_zone
            .parse()
            .map_err(|_| AgentError::Setup("device.time_zone".into()))?;
        let data_dir = config_dir.join(&config.storage.data_dir);
        let store = store::Store::open(&data_dir)?;
        let clock = Clock::new(opts.clock_offset);
        let http = match opts.http {
            Some(h) => h,
            None => http_client()?,
        };
        let reporter = Arc::new(report::Reporter::new(store.clone(), clock, opts.observer.clone()));
        let cache = Arc::new(cache::Cache::new(
            data_dir.join("cache"),
            config.storage.cache_max_mb * 1024 * 1024,
            config.server.base_url.clone(),
            config
                .media
                .media_bases(config.device.id.as_str(), &config.server.base_url),
            http.clone(),
            reporter.clone(),
        ));
        let status = Arc::new(Mutex::new(LiveStatus {
            volume: store.read(|s| s.volume).unwrap_or(config.audio.default_volume),
            session: store.read(|s| s.session),
            last_contact: store.read(|s| s.last_contact),
            ..Default::default()
        }));
        let amp = config
            .amplifier
            .as_ref()
            .map(amp::Relay::open)
            .transpose()?
            .map(Arc::new);
        let sync = Arc::new(Notify::new());
        let (shutdown, shutdown_rx) = watch::channel(false);
        // Boxed inputs: the channel's first block is 32 pointers, not 32 manifests (`chan`).
        let (player_tx, player_rx) = mpsc::channel(64);

        // One options template per broker (the nodes of a cluster): the link tries them in turn.
        let mut brokers = Vec::new();
        for broker in config.brokers() {
            let mut mqtt = MqttOptions::new(config.device.id.to_string(), broker.host.clone(), broker.port);
            mqtt.set_credentials(config.mqtt.username.clone(), password.clone());
            mqtt.set_keep_alive(Duration::from_secs(config.mqtt.keep_alive_secs as u64));
            mqtt.set_clean_session(true);
            // The broker's largest packet (a manifest): anything larger cannot be read, and costs a
            // reconnect with a growing wait (see `link`).
            mqtt.set_max_packet_size(nguon_protocol::acl::MAX_PACKET, 1 << 20);
            // The link keeps at most 4 event batches and the presence unacknowledged: 32 slots
            // for them rather than rumqttc's 100, which it allocates up front (64 bytes each).
            mqtt.set_inflight(32);
            if broker.tls {
                let ca_file =
                    config.mqtt.ca_file.as_ref().ok_or_else(|| {
                        AgentError::Setup("mqtts:// needs mqtt.ca_file in this build".into())
                    })?;
                let ca_path = config_dir.join(ca_file);
                let ca = std::fs::read(&ca_path).map_err(|e| AgentError::io(ca_path, e))?;
                mqtt.set_transport(rumqttc::Transport::tls(ca, None, None));
            }
            brokers.push(link::BrokerTarget {
                url: broker.to_string(),
                mqtt,
            });
        }

        let restart = Arc::new(Notify::new());
        let updater = if opts.updates {
            let u = Arc::new(ota::Updater::new(
                &data_dir,
                server_key,
                http.clone(),
                config.server.base_url.clone(),
                reporter.clone(),
                restart.clone(),
            ));
            u.send_pending().await;
            Some(u)
        } else {
            None
        };
        let player = player::Player::new(player::PlayerCtx {
            clock,
            sink: opts
                .sink
                .clone()
                .unwrap_or_else(|| sink_for(&config.audio_output())),
            format: sink::Format {
                rate: config.audio.sample_rate,
                channels: config.audio.channels,
            },
            cache: cache.clone(),
            reporter: reporter.clone(),
            store: store.clone(),
            status: status.clone(),
            sync: sync.clone(),
            tz,
            quiet: config.quiet_hours(),
            grace: chrono::Duration::from_std(opts.grace).unwrap_or_default(),
            lead: opts.lead,
            prefetch_spread: Duration::from_secs(config.media.prefetch_spread_secs.into()),
            silence_dbfs: config.audio.silence_dbfs as f32,
            amp,
        });
        let link_ctx = link::LinkCtx {
            device: config.device.id.clone(),
            areas: config.device.areas.clone(),
            brokers,
            server_key,
            device_key,
            skew: chrono::Duration::from_std(opts.skew).unwrap_or_default(),
            store: store.clone(),
            reporter,
            cache,
            clock,
            status: status.clone(),
            player: player_tx,
            sync,
            http,
            base_url: config.server.base_url.clone(),
            heartbeat: Duration::from_secs(config.telemetry.heartbeat_secs as u64),
            started: std::time::Instant::now(),
            unreachable_max: Duration::from_secs(config.mqtt.reconnect_max_unreachable_secs as u64),
            subscribe_qos: if config.mqtt.subscribe_qos == 0 {
                rumqttc::QoS::AtMostOnce
            } else {
                rumqttc::QoS::AtLeastOnce
            },
            on_receive: opts.on_receive.clone(),
            network: opts.network.clone(),
            updater: updater.clone(),
        };
        let fault = opts.fault;
        let mut tasks = JoinSet::new();
        let player_shutdown = shutdown_rx.clone();
        let player_task = tasks.spawn(async move {
            if fault == Some(Fault::PlayerPanics) {
                panic!("injected fault: the player task panics");
            }
            player.run(player_rx, player_shutdown).await;
            "player"
        });
        let link_task = tasks.spawn(async move {
            if fault != Some(Fault::LinkEnds) {
                link::run(link_ctx, shutdown_rx).await;
            }
            "link"
        });
        Ok(AgentHandle {
            shutdown,
            names: vec![(player_task.id(), "player"), (link_task.id(), "link")],
            tasks,
            status,
            store,
            restart,
        })
    }
}
