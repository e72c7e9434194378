//! The fleet simulator: many real agents (`nguon_agent::Agent`, the same code as the device
//! binary) in one process on one tokio runtime, each with its own MQTT connection, credentials,
//! report key and store, with null or WAV sinks. Agents start in batches (Mosquitto's listen
//! backlog is 100, the connect rate of the embedded broker is bounded) and can be given faults per group:
//! offline windows and dropped connections (through a cuttable [`Proxy`]), added latency, and a
//! clock offset.
//!
//! A [`FleetPlan`] describes the province (areas and devices with fresh passwords and keys) and
//! produces the [`Registry`] the server imports; [`Fleet::start`] runs it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nguon_agent::{Agent, AgentEvent, AgentEventKind, AgentHandle, AgentOptions, ReceiveHook, Sink};
use nguon_protocol::topic::Topic;
use nguon_protocol::{AreaCode, DeviceId, KeyPair};
use nguon_provision::config::{
    AudioSection, DeviceSection, IdentitySection, MqttSection, ServerSection, StorageSection,
    TelemetrySection,
};
use nguon_provision::{AreaEntry, DeviceConfig, DeviceEntry, DeviceKind, Registry};
use tokio::sync::{broadcast, mpsc};

use crate::proxy::Proxy;

/// One simulated device.
#[derive(Debug, Clone)]
pub struct SimDevice {
    /// Device id.
    pub id: DeviceId,
    /// Loudspeaker cluster or board.
    pub kind: DeviceKind,
    /// The area it belongs to (a commune).
    pub area: AreaCode,
    /// The areas whose command topics it follows: its own and every ancestor.
    pub areas: Vec<AreaCode>,
    /// Its MQTT password (the registry holds only the hash).
    pub password: String,
    /// Its report-signing key.
    pub key: KeyPair,
    /// Index of its fault group in [`FleetOptions::groups`] (0 = no faults by default).
    pub group: usize,
}

/// A province to simulate: areas (parents first) and devices.
#[derive(Debug, Clone)]
pub struct FleetPlan {
    /// Areas, parents before children.
    pub areas: Vec<AreaEntry>,
    /// Devices.
    pub devices: Vec<SimDevice>,
}

impl FleetPlan {
    /// A province `province` with `communes` communes (`{province}{NN}` codes), each with
    /// `loudspeakers` loudspeaker clusters; plus `boards` bulletin boards spread over the communes.
    /// `tag` goes into every device id (unique ids when tests share a broker).
    pub fn province(
        tag: &str,
        province: &str,
        communes: usize,
        loudspeakers: usize,
        boards: usize,
    ) -> FleetPlan {
        let mut areas = vec![AreaEntry {
            code: province.to_string(),
            name: format!("Tỉnh mô phỏng {province}"),
            parent: None,
            level: "province".into(),
            languages: Vec::new(),
        }];
        let commune_codes: Vec<String> = (1..=communes).map(|c| format!("{province}{c:03}")).collect();
        for (i, code) in commune_codes.iter().enumerate() {
            areas.push(AreaEntry {
                code: code.clone(),
                name: format!("Xã mô phỏng {}", i + 1),
                parent: Some(province.to_string()),
                level: "commune".into(),
                languages: Vec::new(),
            });
        }
        let mut devices = Vec::with_capacity(communes * loudspeakers + boards);
        let prov = AreaCode::parse(province).expect("province code");
        for code in &commune_codes {
            let commune = AreaCode::parse(code.as_str()).expect("commune code");
            for n in 1..=loudspeakers {
                devices.push(SimDevice {
                    id: DeviceId::parse(format!("lc-{tag}-{code}-{n:04}")).expect("device id"),
                    kind: DeviceKind::Loudspeaker,
                    area: commune.clone(),
                    areas: vec![prov.clone(), commune.clone()],
                    password: nguon_provision::credential::generate_password(),
                    key: KeyPair::generate(),
                    group: 0,
                });
            }
        }
        for b in 0..boards {
            let code = &commune_codes[b % commune_codes.len().max(1)];
            let commune = AreaCode::parse(code.as_str()).expect("commune code");
            devices.push(SimDevice {
                id: DeviceId::parse(format!("bb-{tag}-{code}-{b:03}")).expect("device id"),
                kind: DeviceKind::Board,
                area: commune.clone(),
                areas: vec![prov.clone(), commune],
                password: nguon_provision::credential::generate_password(),
                key: KeyPair::generate(),
                group: 0,
            });
        }
        FleetPlan { areas, devices }
    }

    /// Loudspeaker clusters only (boards are not audio agents).
    pub fn loudspeakers(&self) -> impl Iterator<Item = &SimDevice> {
        self.devices.iter().filter(|d| d.kind == DeviceKind::Loudspeaker)
    }

    /// The registration file for `POST /api/v1/fleet/import`: areas, and devices with the
    /// PBKDF2 hash of their password and their report public key. Hashing runs on every core.
    pub fn registry(&self) -> Registry {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let chunk = self.devices.len().div_ceil(threads).max(1);
        let mut hashes: Vec<String> = Vec::with_capacity(self.devices.len());
        std::thread::scope(|s| {
            let parts: Vec<_> = self
                .devices
                .chunks(chunk)
                .map(|c| {
                    s.spawn(move || {
                        c.iter()
                            .map(|d| nguon_provision::credential::hash_password(&d.password))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for p in parts {
                hashes.extend(p.join().expect("hash thread"));
            }
        });
        Registry {
            version: nguon_provision::registry::REGISTRY_VERSION,
            areas: self.areas.clone(),
            devices: self
                .devices
                .iter()
                .zip(hashes)
                .map(|(d, h)| DeviceEntry {
                    id: d.id.to_string(),
                    kind: d.kind.as_str().into(),
                    area: d.area.to_string(),
                    name: d.id.to_string(),
                    lat: None,
                    lon: None,
                    password_hash: h,
                    public_key: Some(d.key.public_b64()),
                    language: None,
                    board_token_hash: None,
                })
                .collect(),
            disabled: Vec::new(),
        }
    }
}

/// Faults of one group of agents.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Added to the agents' clock (simulates a wrong device clock).
    pub clock_offset: chrono::Duration,
    /// Added latency per forwarded chunk, each direction (through a proxy).
    pub latency: Option<Duration>,
    /// Windows, relative to the fleet's start, during which the network is cut.
    pub offline: Vec<(Duration, Duration)>,
    /// Sever every connection of the group this often (they reconnect with backoff).
    pub drop_every: Option<Duration>,
    /// Through a proxy the caller cuts and restores ([`Fleet::proxy`]), with no fault of its own.
    pub proxied: bool,
}

impl Faults {
    fn needs_proxy(&self) -> bool {
        self.proxied || self.latency.is_some() || !self.offline.is_empty() || self.drop_every.is_some()
    }
}

/// Where an agent's audio goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkChoice {
    /// Discard (the player still keeps time and reports).
    Null,
    /// One WAV directory per device under this directory (`<dir>/<device id>/`).
    Wav(PathBuf),
}

/// How to run a fleet.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// The broker (embedded or Mosquitto).
    pub broker: SocketAddr,
    /// nguon-server base URL (media, clock).
    pub base_url: String,
    /// Server public key (base64).
    pub server_key: String,
    /// Where each agent's store lives (`<dir>/<device id>/`); tmpfs (`/dev/shm`) for large fleets.
    pub data_root: PathBuf,
    /// Audio output.
    pub sink: SinkChoice,
    /// Agents started per batch.
    pub batch: usize,
    /// Wait for each batch to connect before the next (up to this long).
    pub batch_timeout: Duration,
    /// Heartbeat interval (5–3600 s).
    pub heartbeat_secs: u32,
    /// MQTT keep-alive.
    pub keep_alive_secs: u16,
    /// Fault groups; a device's `group` indexes this (missing index = no faults).
    pub groups: Vec<Faults>,
    /// Also forward every agent event to [`Fleet::events`] (benchmarks, tests).
    pub observe: bool,
    /// Longest reconnect wait while the broker is unreachable (`mqtt.reconnect_max_unreachable_secs`).
    pub reconnect_max_unreachable_secs: u16,
    /// Told (device index, instant) whenever an agent's link reads a publish on an area command
    /// topic, before verifying it (the agent's [`nguon_agent::ReceiveHook`]): broker delivery
    /// measured apart from the agent's work.
    pub area_receipts: Option<mpsc::UnboundedSender<(usize, Instant)>>,
    /// Told (device index, instant) whenever an agent's link reads a publish on its own `desired`
    /// topic (a manifest), before verifying it: dispatch measured apart from the agent's work.
    pub desired_receipts: Option<mpsc::UnboundedSender<(usize, Instant)>>,
    /// The runtime for the agents' MQTT poll loops (`AgentOptions::network`): set by the
    /// emergency bench so that delivery is not charged with the other agents' processing.
    pub network: Option<tokio::runtime::Handle>,
    /// Slots of each agent's observer channel (a tokio broadcast channel allocates them all when
    /// it is created, so this is memory per simulated agent).
    pub observer_capacity: usize,
}

impl FleetOptions {
    /// Defaults: null sinks, batches of 100, 60 s heartbeats, no faults, observed.
    pub fn new(broker: SocketAddr, base_url: &str, server_key: &str, data_root: &Path) -> FleetOptions {
        FleetOptions {
            broker,
            base_url: base_url.to_string(),
            server_key: server_key.to_string(),
            data_root: data_root.to_path_buf(),
            sink: SinkChoice::Null,
            batch: 100,
            batch_timeout: Duration::from_secs(30),
            heartbeat_secs: 60,
            keep_alive_secs: 60,
            groups: Vec::new(),
            observe: true,
            reconnect_max_unreachable_secs: nguon_provision::config::default_reconnect_max_unreachable(),
            area_receipts: None,
            desired_receipts: None,
            network: None,
            observer_capacity: 256,
        }
    }
}

/// An agent event with the index of the device (in [`FleetPlan::devices`]) and when this process
/// saw it.
#[derive(Debug, Clone)]
pub struct FleetEvent {
    /// Index into the plan's devices.
    pub device: usize,
    /// The event (its `at` is the agent's clock, offset included).
    pub event: AgentEvent,
    /// When the forwarder received it.
    pub seen: Instant,
}

/// A running fleet.
pub struct Fleet {
    handles: Vec<Option<AgentHandle>>,
    /// Devices, in plan order.
    pub devices: Vec<SimDevice>,
    proxies: Vec<Option<Arc<Proxy>>>,
    fault_tasks: Vec<tokio::task::JoinHandle<()>>,
    forwarders: Vec<tokio::task::JoinHandle<()>>,
    events: Option<mpsc::UnboundedReceiver<FleetEvent>>,
    connected: Arc<AtomicUsize>,
    /// When the fleet began starting.
    pub started: Instant,
    /// How long starting (and connecting) every batch took.
    pub start_time: Duration,
    /// RSS of this process before the agents started (KiB).
    pub rss_before_kib: u64,
    /// RSS of this process once all agents were connected (KiB).
    pub rss_after_kib: u64,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("agents", &self.handles.len())
            .finish_non_exhaustive()
    }
}

fn config_for(d: &SimDevice, opts: &FleetOptions, mqtt: SocketAddr, wav: Option<&Path>) -> DeviceConfig {
    DeviceConfig {
        device: DeviceSection {
            id: d.id.clone(),
            kind: d.kind,
            areas: d.areas.clone(),
            time_zone: "Asia/Ho_Chi_Minh".into(),
        },
        mqtt: MqttSection {
            url: Some(format!("mqtt://{mqtt}")),
            urls: Vec::new(),
            username: d.id.to_string(),
            password: Some(d.password.clone()),
            password_file: None,
            ca_file: None,
            keep_alive_secs: opts.keep_alive_secs,
            reconnect_max_unreachable_secs: opts.reconnect_max_unreachable_secs,
            subscribe_qos: nguon_provision::config::default_subscribe_qos(),
        },
        server: ServerSection {
            base_url: opts.base_url.clone(),
            public_key: opts.server_key.clone(),
        },
        identity: IdentitySection {
            signing_key_file: Some(PathBuf::from("device.key")),
        },
        storage: StorageSection {
            data_dir: PathBuf::from("data"),
            cache_max_mb: 64,
        },
        audio: AudioSection {
            output: match wav {
                Some(p) => format!("wav:{}", p.display()),
                None => "null".into(),
            },
            default_volume: 80,
            silence_dbfs: -50,
            channels: 2,
            sample_rate: None,
        },
        quiet_hours: None,
        telemetry: TelemetrySection {
            heartbeat_secs: opts.heartbeat_secs,
        },
        amplifier: None,
        media: nguon_provision::config::MediaSection::default(),
    }
}

impl Fleet {
    /// Start every device of `plan` in batches; returns once each batch connected (or its
    /// timeout passed: stragglers keep retrying on their own).
    pub async fn start(plan: &FleetPlan, opts: FleetOptions) -> anyhow::Result<Fleet> {
        crate::net::raise_fd_limit();
        let started = Instant::now();
        let rss_before_kib = crate::stats::proc_sample(0).map(|s| s.rss_kib).unwrap_or(0);
        // One proxy per faulty group.
        let mut proxies = Vec::new();
        let mut fault_tasks = Vec::new();
        for g in &opts.groups {
            if g.needs_proxy() {
                let p = Arc::new(Proxy::start(opts.broker).await?);
                if let Some(l) = g.latency {
                    p.set_latency(l);
                }
                fault_tasks.push(tokio::spawn(drive_faults(p.clone(), g.clone(), started)));
                proxies.push(Some(p));
            } else {
                proxies.push(None);
            }
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(64)
            .pool_idle_timeout(nguon_agent::HTTP_IDLE_TIMEOUT)
            .build()?;
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let connected = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::with_capacity(plan.devices.len());
        let mut forwarders = Vec::with_capacity(plan.devices.len());
        let batch = opts.batch.max(1);
        for (b, chunk) in plan.devices.chunks(batch).enumerate() {
            let target = connected.load(Ordering::SeqCst) + chunk.len();
            for (j, d) in chunk.iter().enumerate() {
                let idx = b * batch + j;
                let dir = opts.data_root.join(d.id.as_str());
                std::fs::create_dir_all(&dir)?;
                std::fs::write(dir.join("device.key"), d.key.secret_b64())?;
                let faults = opts.groups.get(d.group).cloned().unwrap_or_default();
                let mqtt = match proxies.get(d.group).and_then(|p| p.as_ref()) {
                    Some(p) => p.addr(),
                    None => opts.broker,
                };
                let wav = match &opts.sink {
                    SinkChoice::Wav(root) => Some(root.join(d.id.as_str())),
                    SinkChoice::Null => None,
                };
                if let Some(w) = &wav {
                    std::fs::create_dir_all(w)?;
                }
                let config = config_for(d, &opts, mqtt, wav.as_deref());
                let (obs_tx, mut obs_rx) = broadcast::channel::<AgentEvent>(opts.observer_capacity.max(1));
                let fwd_tx = ev_tx.clone();
                let conn = connected.clone();
                let observe = opts.observe;
                forwarders.push(tokio::spawn(async move {
                    let mut first = true;
                    loop {
                        match obs_rx.recv().await {
                            Ok(event) => {
                                // Ready = subscribed: commands are not retained, so a connected but
                                // not yet subscribed agent would miss them.
                                if first && matches!(event.kind, AgentEventKind::Subscribed { .. }) {
                                    first = false;
                                    conn.fetch_add(1, Ordering::SeqCst);
                                }
                                if observe {
                                    let _ = fwd_tx.send(FleetEvent {
                                        device: idx,
                                        event,
                                        seen: Instant::now(),
                                    });
                                }
                            }
                            Err(broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(broadcast::error::RecvError::Closed) => break,
                        }
                    }
                }));
                let aopts = AgentOptions {
                    clock_offset: faults.clock_offset,
                    observer: Some(obs_tx),
                    http: Some(http.clone()),
                    sink: Some(match &wav {
                        Some(w) => Sink::Wav(w.clone()),
                        None => Sink::Null,
                    }),
                    on_receive: receive_hook(idx, &opts),
                    network: opts.network.clone(),
                    ..AgentOptions::default()
                };
                let h = Agent::start(config, dir, aopts)
                    .await
                    .map_err(|e| anyhow::anyhow!("agent {}: {e}", d.id))?;
                handles.push(Some(h));
            }
            let deadline = Instant::now() + opts.batch_timeout;
            while connected.load(Ordering::SeqCst) < target && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let start_time = started.elapsed();
        let rss_after_kib = crate::stats::proc_sample(0).map(|s| s.rss_kib).unwrap_or(0);
        Ok(Fleet {
            handles,
            devices: plan.devices.clone(),
            proxies,
            fault_tasks,
            forwarders,
            events: Some(ev_rx),
            connected,
            started,
            start_time,
            rss_before_kib,
            rss_after_kib,
        })
    }

    /// Number of agents.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether the fleet is empty.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Agents that connected at least once.
    pub fn connected_once(&self) -> usize {
        self.connected.load(Ordering::SeqCst)
    }

    /// Agents connected now (from their live status).
    pub fn connected_now(&self) -> usize {
        self.handles
            .iter()
            .flatten()
            .filter(|h| h.status().connected)
            .count()
    }

    /// Events waiting in every agent's outbox (not yet receipted by the server).
    pub fn outbox_total(&self) -> usize {
        self.handles.iter().flatten().map(|h| h.outbox_len()).sum()
    }

    /// The event stream (taken once).
    pub fn events(&mut self) -> mpsc::UnboundedReceiver<FleetEvent> {
        self.events.take().expect("Fleet::events taken twice")
    }

    /// The proxy of a fault group, to cut or slow it by hand.
    pub fn proxy(&self, group: usize) -> Option<Arc<Proxy>> {
        self.proxies.get(group).cloned().flatten()
    }

    /// The handle of device `i`.
    pub fn handle(&self, i: usize) -> Option<&AgentHandle> {
        self.handles.get(i).and_then(|h| h.as_ref())
    }

    /// RSS per agent (KiB), from the process RSS before and after starting.
    pub fn rss_per_agent_kib(&self) -> f64 {
        if self.handles.is_empty() {
            return 0.0;
        }
        self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64 / self.handles.len() as f64
    }

    /// Stop every agent (graceful MQTT disconnect), a batch at a time.
    pub async fn shutdown(mut self) {
        let handles: Vec<AgentHandle> = self.handles.iter_mut().filter_map(Option::take).collect();
        let mut it = handles.into_iter();
        loop {
            let batch: Vec<AgentHandle> = it.by_ref().take(500).collect();
            if batch.is_empty() {
                break;
            }
            futures::future::join_all(batch.into_iter().map(|h| h.shutdown())).await;
        }
        for t in self.fault_tasks.drain(..) {
            t.abort();
        }
        for t in self.forwarders.drain(..) {
            t.abort();
        }
    }
}

/// The receive hook of device `idx`, when the options ask for receipts.
fn receive_hook(idx: usize, opts: &FleetOptions) -> Option<ReceiveHook> {
    if opts.area_receipts.is_none() && opts.desired_receipts.is_none() {
        return None;
    }
    let (area, desired) = (opts.area_receipts.clone(), opts.desired_receipts.clone());
    Some(ReceiveHook::new(move |topic: &str, at: Instant| {
        let tx = match Topic::parse(topic) {
            Some(Topic::AreaCmd(_)) => &area,
            Some(Topic::Desired(_)) => &desired,
            _ => return,
        };
        if let Some(tx) = tx {
            let _ = tx.send((idx, at));
        }
    }))
}

async fn drive_faults(proxy: Arc<Proxy>, faults: Faults, t0: Instant) {
    let mut offline = faults.offline.clone();
    offline.sort();
    let windows = async {
        for (from, to) in offline {
            tokio::time::sleep_until((t0 + from).into()).await;
            proxy.cut();
            tokio::time::sleep_until((t0 + to).into()).await;
            proxy.restore();
        }
    };
    let drops = async {
        let Some(every) = faults.drop_every else {
            return std::future::pending::<()>().await;
        };
        let mut tick = tokio::time::interval_at((t0 + every).into(), every);
        loop {
            tick.tick().await;
            if !proxy.is_cut() {
                proxy.cut();
                proxy.restore();
            }
        }
    };
    tokio::join!(windows, drops);
}
