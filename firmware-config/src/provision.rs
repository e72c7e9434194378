//! Bulk provisioning: plan what a station list means for the output directory (new devices, updated
//! ones, rows that disappeared), generate credentials and keys only for new devices, and write
//! every output. Everything is planned in memory and checked first; files are written only when
//! the whole plan is valid, and only when their content changes, so a re-run with the same input
//! leaves the directory byte-identical.
//!
//! Output directory layout:
//!
//! ```text
//! DIR/state.json                         ids, hashes, public keys, numbering (no secrets)
//! DIR/registry.json                      areas and devices for nguon-server's fleet import
//! DIR/mosquitto/password_file            username:$7$... (0600)
//! DIR/mosquitto/acl_file
//! DIR/devices/<id>/agent.toml            the agent config (no secrets in it)
//! DIR/devices/<id>/nguon-agent.service   the systemd unit
//! DIR/bundles/<id>.tar.gz                install bundle with the device's secrets (0600)
//! DIR/secrets/new-passwords-<time>.csv   passwords and board tokens of new devices (0600)
//! DIR/secrets/server-mqtt-password       the nguon-server MQTT password (0600)
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nguon_protocol::{AreaCode, DeviceId, KeyPair, verifying_key_from_b64};
use sha2::{Digest, Sha256};

use crate::bundle::{self, DeviceSecrets};
use crate::config::{
    AudioSection, DeviceConfig, DeviceKind, DeviceSection, IdentitySection, MqttSection, ServerSection,
    StorageSection, TelemetrySection, parse_broker_url,
};
use crate::credential;
use crate::error::{ProvisionError, Result, RowError};
use crate::mosquitto::{self, BrokerUser};
use crate::registry::{AreaEntry, DeviceEntry, REGISTRY_VERSION, Registry};
use crate::state::{self, CommuneState, DeviceRecord, Settings, State, Status, village_code};
use crate::stations::{self, Communes, Station, StationKey};

/// What `bulk` should do.
#[derive(Debug, Clone, Default)]
pub struct BulkOptions {
    /// The station list (CSV).
    pub stations: PathBuf,
    /// The output directory.
    pub out: PathBuf,
    /// nguon-server base URL (remembered from the last run when absent).
    pub server_url: Option<String>,
    /// Base64 ed25519 public key of the server (remembered when absent).
    pub server_public_key: Option<String>,
    /// Broker URL for devices (default `mqtt://<server host>:1883`, then remembered).
    pub broker_url: Option<String>,
    /// Province area code (remembered).
    pub province_code: Option<String>,
    /// Province name (default: the code; remembered).
    pub province_name: Option<String>,
    /// Communes table `code,name`: restricts codes and gives names.
    pub communes: Option<PathBuf>,
    /// Disable devices whose rows disappeared.
    pub prune: bool,
    /// Write the valid rows even if some are invalid.
    pub skip_invalid: bool,
    /// Draw progress bars on stderr (only when it is a terminal).
    pub show_progress: bool,
}

/// Per-kind counts for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// New devices.
    pub created: usize,
    /// Existing devices whose config or registration changed (includes re-activated ones).
    pub updated: usize,
    /// Existing devices with nothing changed.
    pub unchanged: usize,
    /// Devices whose rows disappeared and that stay active (no `--prune`).
    pub removed: usize,
    /// Devices disabled by this run (`--prune`).
    pub disabled: usize,
    /// Invalid rows (skipped with `--skip-invalid`).
    pub invalid: usize,
}

/// What a bulk run did.
#[derive(Debug, Default)]
pub struct BulkReport {
    /// Counts per kind (`loudspeaker`, `board`, and `unknown` for rows whose kind was unreadable).
    pub counts: BTreeMap<&'static str, Counts>,
    /// Ids of new devices.
    pub created: Vec<String>,
    /// Ids of updated devices.
    pub updated: Vec<String>,
    /// Devices whose rows disappeared, kept active: id and station.
    pub removed: Vec<(String, StationKey)>,
    /// Devices disabled by this run: id and station.
    pub disabled: Vec<(String, StationKey)>,
    /// Invalid rows that were skipped.
    pub invalid: Vec<RowError>,
    /// The secrets file written for new devices, if any.
    pub secrets_file: Option<PathBuf>,
    /// The server MQTT password file, if created by this run.
    pub server_password_file: Option<PathBuf>,
    /// Existing devices whose config changed but whose bundle is gone (not rebuilt).
    pub stale_bundles: Vec<String>,
    /// Number of files written or replaced.
    pub files_written: usize,
}

impl BulkReport {
    /// The summary table, one line per kind plus a total.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<12} {:>8} {:>8} {:>9} {:>8} {:>8} {:>8}\n",
            "kind", "created", "updated", "unchanged", "removed", "disabled", "invalid"
        );
        let mut total = Counts::default();
        for (kind, c) in &self.counts {
            out.push_str(&format!(
                "{:<12} {:>8} {:>8} {:>9} {:>8} {:>8} {:>8}\n",
                kind, c.created, c.updated, c.unchanged, c.removed, c.disabled, c.invalid
            ));
            total.created += c.created;
            total.updated += c.updated;
            total.unchanged += c.unchanged;
            total.removed += c.removed;
            total.disabled += c.disabled;
            total.invalid += c.invalid;
        }
        out.push_str(&format!(
            "{:<12} {:>8} {:>8} {:>9} {:>8} {:>8} {:>8}\n",
            "total",
            total.created,
            total.updated,
            total.unchanged,
            total.removed,
            total.disabled,
            total.invalid
        ));
        out
    }

    fn count(&mut self, kind: Option<DeviceKind>) -> &mut Counts {
        self.counts
            .entry(kind.map(DeviceKind::as_str).unwrap_or("unknown"))
            .or_default()
    }
}

/// Paths inside the output directory.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The output directory.
    pub root: PathBuf,
}

impl Layout {
    /// `DIR/state.json`
    pub fn state(&self) -> PathBuf {
        self.root.join("state.json")
    }
    /// `DIR/registry.json`
    pub fn registry(&self) -> PathBuf {
        self.root.join("registry.json")
    }
    /// `DIR/mosquitto/password_file`
    pub fn password_file(&self) -> PathBuf {
        self.root.join("mosquitto").join("password_file")
    }
    /// `DIR/mosquitto/acl_file`
    pub fn acl_file(&self) -> PathBuf {
        self.root.join("mosquitto").join("acl_file")
    }
    /// `DIR/devices/<id>`
    pub fn device_dir(&self, id: &str) -> PathBuf {
        self.root.join("devices").join(id)
    }
    /// `DIR/bundles/<id>.tar.gz`
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.root.join("bundles").join(format!("{id}.tar.gz"))
    }
    /// `DIR/secrets`
    pub fn secrets_dir(&self) -> PathBuf {
        self.root.join("secrets")
    }
    /// `DIR/secrets/server-mqtt-password`
    pub fn server_password(&self) -> PathBuf {
        self.secrets_dir().join("server-mqtt-password")
    }
}

fn setting(option: &'static str, message: impl Into<String>) -> ProvisionError {
    ProvisionError::Setting {
        option,
        message: message.into(),
    }
}

/// Merge command-line options over the remembered settings and check them.
fn resolve_settings(opts: &BulkOptions, old: Option<&Settings>) -> Result<Settings> {
    let pick = |new: &Option<String>, old: Option<&String>| -> Option<String> {
        new.clone().or_else(|| old.filter(|s| !s.is_empty()).cloned())
    };
    let province_code = pick(&opts.province_code, old.map(|s| &s.province_code)).ok_or_else(|| {
        setting(
            "--province-code",
            "required on the first run (e.g. 10 for Lào Cai)",
        )
    })?;
    AreaCode::parse(province_code.clone()).map_err(|e| setting("--province-code", e.to_string()))?;
    if province_code.len() != 2 || !province_code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(setting(
            "--province-code",
            format!("`{province_code}` is not a 2-digit province code"),
        ));
    }
    let province_name =
        pick(&opts.province_name, old.map(|s| &s.province_name)).unwrap_or_else(|| province_code.clone());
    let server_url = pick(&opts.server_url, old.map(|s| &s.server_url)).ok_or_else(|| {
        setting(
            "--server-url",
            "required on the first run (e.g. https://nguon.laocai.gov.vn)",
        )
    })?;
    let host = server_url
        .strip_prefix("https://")
        .or_else(|| server_url.strip_prefix("http://"))
        .map(|r| r.split(['/', ':']).next().unwrap_or(""))
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            setting(
                "--server-url",
                format!("`{server_url}` is not an http:// or https:// URL"),
            )
        })?
        .to_string();
    let server_public_key =
        pick(&opts.server_public_key, old.map(|s| &s.server_public_key)).ok_or_else(|| {
            setting(
                "--server-public-key",
                "required on the first run (the server's GET /api/v1/keys/server, or --server-key-file)",
            )
        })?;
    verifying_key_from_b64(&server_public_key).map_err(|e| {
        setting(
            "--server-public-key",
            format!("not a base64 ed25519 public key ({e})"),
        )
    })?;
    let broker_url =
        pick(&opts.broker_url, old.map(|s| &s.broker_url)).unwrap_or_else(|| format!("mqtt://{host}:1883"));
    parse_broker_url(&broker_url).map_err(|m| setting("--broker-url", m))?;
    Ok(Settings {
        province_code,
        province_name,
        server_url,
        server_public_key: server_public_key.trim().to_string(),
        broker_url,
    })
}

/// A new device's freshly generated material.
struct Fresh {
    secrets: DeviceSecrets,
    password_hash: String,
    public_key: String,
    board_token_hash: Option<String>,
}

fn generate(kind: DeviceKind) -> Fresh {
    let password = credential::generate_password();
    let password_hash = credential::hash_password(&password);
    let key = KeyPair::generate();
    let board_token = (kind == DeviceKind::Board).then(|| {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b).expect("operating system random generator");
        hex::encode(b)
    });
    let board_token_hash = board_token.as_deref().map(board_token_hash);
    Fresh {
        secrets: DeviceSecrets {
            password,
            signing_key: key.secret_b64(),
            board_token,
        },
        password_hash,
        public_key: key.public_b64(),
        board_token_hash,
    }
}

/// Lowercase hex sha256 of a board token (what the registry and the server keep).
pub fn board_token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Run `f` over `items` on every core, keeping order.
fn par_map<T: Sync, R: Send>(items: &[T], bar: &ProgressBar, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if items.is_empty() {
        return Vec::new();
    }
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| {
                let f = &f;
                s.spawn(move || {
                    c.iter()
                        .map(|t| {
                            let r = f(t);
                            bar.inc(1);
                            r
                        })
                        .collect::<Vec<R>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker thread"))
            .collect()
    })
}

fn bar(show: bool, len: usize, msg: &'static str) -> ProgressBar {
    use std::io::IsTerminal;
    if !show || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    b.set_style(
        ProgressStyle::with_template("{msg:<22} [{bar:40}] {pos}/{len} ({elapsed})")
            .expect("template")
            .progress_chars("=> "),
    );
    b.set_message(msg);
    b
}

/// The agent configuration for a device.
pub fn device_config(
    id: &str,
    rec: &DeviceRecord,
    areas: Vec<String>,
    settings: &Settings,
) -> Result<DeviceConfig> {
    let bad = |m: String| setting("station list", format!("device {id}: {m}"));
    let cfg = DeviceConfig {
        device: DeviceSection {
            id: DeviceId::parse(id).map_err(|e| bad(e.to_string()))?,
            kind: rec.kind,
            areas: areas
                .into_iter()
                .map(AreaCode::parse)
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| bad(e.to_string()))?,
            time_zone: "Asia/Ho_Chi_Minh".into(),
        },
        mqtt: MqttSection {
            url: settings.broker_url.clone(),
            username: id.to_string(),
            password: None,
            password_file: Some(bundle::PASSWORD_FILE.into()),
            ca_file: None,
            keep_alive_secs: 30,
        },
        server: ServerSection {
            base_url: settings.server_url.clone(),
            public_key: settings.server_public_key.clone(),
        },
        identity: IdentitySection {
            signing_key_file: Some(bundle::KEY_FILE.into()),
        },
        storage: StorageSection {
            data_dir: bundle::DEVICE_DATA_DIR.into(),
            cache_max_mb: 2048,
        },
        audio: AudioSection {
            output: rec.audio_output.clone(),
            default_volume: 80,
        },
        quiet_hours: None,
        telemetry: TelemetrySection::default(),
    };
    cfg.validate().map_err(|(k, m)| bad(format!("{k}: {m}")))?;
    Ok(cfg)
}

fn areas_of(
    settings: &Settings,
    communes: &BTreeMap<String, CommuneState>,
    rec: &DeviceRecord,
) -> Vec<String> {
    let n = communes
        .get(&rec.commune_code)
        .and_then(|c| c.villages.get(&rec.village))
        .copied()
        .expect("every device's village is numbered");
    vec![
        settings.province_code.clone(),
        rec.commune_code.clone(),
        village_code(&rec.commune_code, n),
    ]
}

/// A file to write: path, bytes, mode.
struct Output {
    path: PathBuf,
    bytes: Vec<u8>,
    mode: u32,
}

fn read_or_empty(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

/// Write `bytes` to `path` through a temporary file and a rename, unless it already holds them.
/// Returns whether the file was written.
pub fn write_if_changed(path: &Path, bytes: &[u8], mode: u32) -> Result<bool> {
    if let Ok(meta) = std::fs::metadata(path)
        && meta.len() == bytes.len() as u64
        && meta.permissions().mode() & 0o777 == mode
        && std::fs::read(path).map(|b| b == bytes).unwrap_or(false)
    {
        return Ok(false);
    }
    let dir = path.parent().expect("output paths have a parent");
    std::fs::create_dir_all(dir).map_err(|e| ProvisionError::io(dir, e))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().expect("file name").to_string_lossy()
    ));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| ProvisionError::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| ProvisionError::io(&tmp, e))?;
    // The umask may have narrowed the mode; set it exactly.
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| ProvisionError::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| ProvisionError::io(path, e))?;
    Ok(true)
}

/// Create a new file with `mode` (fails if it exists).
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    f.write_all(bytes)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.sync_all()
}

/// Provision devices from a station list into `opts.out`.
pub fn bulk(opts: &BulkOptions) -> Result<BulkReport> {
    let layout = Layout {
        root: opts.out.clone(),
    };
    let mut report = BulkReport::default();

    // 1. Read and check every input before touching the output directory.
    let communes: Option<Communes> = opts
        .communes
        .as_deref()
        .map(stations::read_communes)
        .transpose()?;
    let parsed = stations::read_stations(&opts.stations, communes.as_ref())?;
    let old_state = State::load(&layout.state())?;
    let settings = resolve_settings(opts, old_state.as_ref().map(|s| &s.settings))?;
    let mut state = old_state.clone().unwrap_or_else(|| State {
        version: state::STATE_VERSION,
        ..State::default()
    });
    if let Some(old) = &old_state
        && old.settings.province_code != settings.province_code
    {
        return Err(setting(
            "--province-code",
            format!(
                "{} was provisioned for province {}; use a new output directory for another province",
                layout.root.display(),
                old.settings.province_code
            ),
        ));
    }
    state.settings = settings.clone();

    let by_key: HashMap<StationKey, String> = state
        .devices
        .iter()
        .map(|(id, d)| (d.key(), id.clone()))
        .collect();
    let mut errors = parsed.errors;
    let mut rows: Vec<Station> = Vec::with_capacity(parsed.stations.len());
    for st in parsed.stations {
        if let Some(id) = by_key.get(&st.key())
            && state.devices[id].kind != st.kind
        {
            errors.push(RowError {
                line: st.line,
                reason: format!(
                    "station `{}` was provisioned as {} ({id}); its kind cannot change \
                     (remove the row, run with --prune, then add it under a new station name)",
                    st.station,
                    state.devices[id].kind.as_str()
                ),
                kind: Some(st.kind),
            });
            continue;
        }
        rows.push(st);
    }
    errors.sort_by_key(|e| e.line);
    if !errors.is_empty() && !opts.skip_invalid {
        return Err(ProvisionError::InvalidRows {
            file: opts.stations.clone(),
            errors,
        });
    }
    for e in &errors {
        report.count(e.kind).invalid += 1;
    }
    report.invalid = errors;

    // 2. Plan: match rows to devices, number new villages and devices.
    if let Some(table) = &communes {
        for (code, c) in state.communes.iter_mut() {
            if let Some(name) = table.get(code) {
                c.name = Some(name.clone());
            }
        }
    }
    let mut seen: HashSet<String> = HashSet::new();
    let mut new_rows: Vec<(String, Station)> = Vec::new();
    for st in rows {
        let commune = state.communes.entry(st.commune_code.clone()).or_default();
        if let Some(name) = communes.as_ref().and_then(|t| t.get(&st.commune_code)) {
            commune.name = Some(name.clone());
        }
        commune.village_number(&st.village);
        if let Some(id) = by_key.get(&st.key()) {
            let d = state.devices.get_mut(id).expect("indexed");
            d.lat = st.lat;
            d.lon = st.lon;
            d.audio_output = st.audio_output.clone();
            d.language = st.language.clone();
            d.status = Status::Active;
            seen.insert(id.clone());
        } else {
            let prefix = state::id_prefix(st.kind);
            let n = commune.next_device(prefix);
            let id = format!("{prefix}-{}-{n:04}", st.commune_code);
            DeviceId::parse(id.clone()).map_err(|e| setting("station list", e.to_string()))?;
            new_rows.push((id, st));
        }
    }
    for (id, d) in state.devices.iter_mut() {
        if d.status == Status::Active && !seen.contains(id) {
            if opts.prune {
                d.status = Status::Disabled;
                report.count(Some(d.kind)).disabled += 1;
                report.disabled.push((id.clone(), d.key()));
            } else {
                report.count(Some(d.kind)).removed += 1;
                report.removed.push((id.clone(), d.key()));
            }
        }
    }

    // 3. Credentials and keys for new devices only.
    let gen_bar = bar(opts.show_progress, new_rows.len(), "credentials and keys");
    let fresh: Vec<Fresh> = par_map(&new_rows, &gen_bar, |(_, st)| generate(st.kind));
    gen_bar.finish_and_clear();
    let mut new_secrets: Vec<(String, DeviceSecrets)> = Vec::with_capacity(new_rows.len());
    for ((id, st), f) in new_rows.iter().zip(fresh) {
        state.devices.insert(
            id.clone(),
            DeviceRecord {
                kind: st.kind,
                commune_code: st.commune_code.clone(),
                village: st.village.clone(),
                station: st.station.clone(),
                lat: st.lat,
                lon: st.lon,
                audio_output: st.audio_output.clone(),
                language: st.language.clone(),
                password_hash: f.password_hash,
                public_key: f.public_key,
                board_token_hash: f.board_token_hash,
                status: Status::Active,
            },
        );
        report.count(Some(st.kind)).created += 1;
        report.created.push(id.clone());
        new_secrets.push((id.clone(), f.secrets));
    }
    let server_password = state.server_mqtt_password_hash.is_none().then(|| {
        let pw = credential::generate_password();
        state.server_mqtt_password_hash = Some(credential::hash_password(&pw));
        pw
    });

    // 4. Derived files: configs, units, bundles, broker files, registry.
    let active: Vec<(&String, &DeviceRecord)> = state
        .devices
        .iter()
        .filter(|(_, d)| d.status == Status::Active)
        .collect();
    let new_ids: HashMap<&str, &DeviceSecrets> = new_secrets.iter().map(|(id, s)| (id.as_str(), s)).collect();
    let cfg_bar = bar(opts.show_progress, active.len(), "configs and bundles");
    let per_device: Vec<Result<(Vec<Output>, bool, bool)>> = par_map(&active, &cfg_bar, |(id, rec)| {
        let areas = areas_of(&settings, &state.communes, rec);
        let toml = device_config(id, rec, areas, &settings)?.to_toml();
        let unit = bundle::systemd_unit(id);
        let dir = layout.device_dir(id);
        let cfg_path = dir.join(bundle::CONFIG_FILE);
        let unit_path = dir.join(bundle::UNIT_FILE);
        let bundle_path = layout.bundle(id);
        let mut outs = Vec::new();
        let changed =
            read_or_empty(&cfg_path) != toml.as_bytes() || read_or_empty(&unit_path) != unit.as_bytes();
        let mut stale = false;
        let secrets = if let Some(s) = new_ids.get(id.as_str()) {
            Some((*s).clone())
        } else if changed && !bundle_path.exists() {
            // Bundles may have been handed out and deleted; the config in DIR/devices is still
            // updated, and the report lists the device so the operator can update it by hand.
            stale = true;
            None
        } else if changed {
            // An existing device whose config changed: rebuild its bundle from its own secrets,
            // after checking they are the ones registered.
            let s = bundle::read_secrets(&bundle_path)?;
            let public = KeyPair::from_b64(&s.signing_key)
                .map(|k| k.public_b64())
                .unwrap_or_default();
            if public != rec.public_key || !credential::verify_password(&s.password, &rec.password_hash) {
                return Err(ProvisionError::Bundle {
                    path: bundle_path,
                    message: format!("does not hold the credentials registered for {id} in state.json"),
                });
            }
            Some(s)
        } else {
            None
        };
        if let Some(s) = secrets {
            outs.push(Output {
                path: bundle_path,
                bytes: bundle::build(id, &toml, &unit, &s),
                mode: 0o600,
            });
        }
        outs.push(Output {
            path: cfg_path,
            bytes: toml.into_bytes(),
            mode: 0o644,
        });
        outs.push(Output {
            path: unit_path,
            bytes: unit.into_bytes(),
            mode: 0o644,
        });
        Ok((outs, changed, stale))
    });
    cfg_bar.finish_and_clear();
    let mut bundles: Vec<Output> = Vec::new();
    let mut files: Vec<Output> = Vec::new();
    for ((id, rec), r) in active.iter().zip(per_device) {
        let (outs, changed, stale) = r?;
        if stale {
            report.stale_bundles.push((*id).clone());
        }
        let is_new = new_ids.contains_key(id.as_str());
        let was_disabled = old_state
            .as_ref()
            .and_then(|s| s.devices.get(*id))
            .is_some_and(|d| d.status == Status::Disabled);
        let record_changed = old_state
            .as_ref()
            .and_then(|s| s.devices.get(*id))
            .is_some_and(|d| d != *rec);
        if !is_new {
            if changed || was_disabled || record_changed {
                report.count(Some(rec.kind)).updated += 1;
                report.updated.push((*id).clone());
            } else if seen.contains(*id) {
                report.count(Some(rec.kind)).unchanged += 1;
            }
        }
        for o in outs {
            if o.path.extension().is_some_and(|e| e == "gz") {
                bundles.push(o);
            } else {
                files.push(o);
            }
        }
    }

    let area_lists: Vec<Vec<String>> = active
        .iter()
        .map(|(_, rec)| areas_of(&settings, &state.communes, rec))
        .collect();
    let users: Vec<BrokerUser<'_>> = active
        .iter()
        .zip(&area_lists)
        .map(|((id, rec), areas)| BrokerUser {
            username: id.as_str(),
            password_hash: rec.password_hash.as_str(),
            areas: areas.iter().map(String::as_str).collect(),
        })
        .collect();
    let server_hash = state.server_mqtt_password_hash.clone().expect("set above");
    files.push(Output {
        path: layout.password_file(),
        bytes: mosquitto::password_file(&server_hash, &users).into_bytes(),
        mode: 0o600,
    });
    files.push(Output {
        path: layout.acl_file(),
        bytes: mosquitto::acl_file(&users).into_bytes(),
        mode: 0o644,
    });
    let registry = registry_of(&state);
    let mut registry_json = serde_json::to_string_pretty(&registry).expect("registry serialises");
    registry_json.push('\n');
    files.push(Output {
        path: layout.registry(),
        bytes: registry_json.into_bytes(),
        mode: 0o644,
    });

    // 5. Write: secrets first (bundles, the new-passwords file), then the state file that
    // records them, then everything derived from the state.
    for d in ["bundles", "secrets", "devices", "mosquitto"] {
        let p = layout.root.join(d);
        std::fs::create_dir_all(&p).map_err(|e| ProvisionError::io(&p, e))?;
    }
    std::fs::set_permissions(layout.secrets_dir(), std::fs::Permissions::from_mode(0o700))
        .map_err(|e| ProvisionError::io(layout.secrets_dir(), e))?;
    std::fs::set_permissions(
        layout.root.join("bundles"),
        std::fs::Permissions::from_mode(0o700),
    )
    .map_err(|e| ProvisionError::io(layout.root.join("bundles"), e))?;
    let write_bar = bar(opts.show_progress, bundles.len() + files.len(), "writing files");
    let written: Vec<Result<bool>> = par_map(&bundles, &write_bar, |o| {
        write_if_changed(&o.path, &o.bytes, o.mode)
    });
    for w in written {
        report.files_written += usize::from(w?);
    }
    if !new_secrets.is_empty() {
        let path = secrets_file_path(&layout);
        write_new(&path, &secrets_csv(&new_secrets, &state), 0o600)
            .map_err(|e| ProvisionError::io(&path, e))?;
        report.files_written += 1;
        report.secrets_file = Some(path);
    }
    if let Some(pw) = server_password {
        let path = layout.server_password();
        write_if_changed(&path, format!("{pw}\n").as_bytes(), 0o600)?;
        report.files_written += 1;
        report.server_password_file = Some(path);
    }
    if write_if_changed(&layout.state(), state.to_json().as_bytes(), 0o600)? {
        report.files_written += 1;
    }
    let written: Vec<Result<bool>> = par_map(&files, &write_bar, |o| {
        write_if_changed(&o.path, &o.bytes, o.mode)
    });
    for w in written {
        report.files_written += usize::from(w?);
    }
    write_bar.finish_and_clear();
    Ok(report)
}

fn secrets_file_path(layout: &Layout) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let mut path = layout.secrets_dir().join(format!("new-passwords-{stamp}.csv"));
    let mut n = 1;
    while path.exists() {
        n += 1;
        path = layout
            .secrets_dir()
            .join(format!("new-passwords-{stamp}-{n}.csv"));
    }
    path
}

fn secrets_csv(new: &[(String, DeviceSecrets)], state: &State) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "device_id",
        "kind",
        "commune_code",
        "village",
        "station",
        "mqtt_username",
        "mqtt_password",
        "board_token",
    ]);
    for (id, s) in new {
        let d = &state.devices[id];
        let _ = w.write_record([
            id.as_str(),
            d.kind.as_str(),
            &d.commune_code,
            &d.village,
            &d.station,
            id.as_str(),
            &s.password,
            s.board_token.as_deref().unwrap_or(""),
        ]);
    }
    w.into_inner().expect("writing to memory")
}

/// The registration file for a state: areas parents first, active devices, disabled ids.
pub fn registry_of(state: &State) -> Registry {
    let s = &state.settings;
    let mut areas = vec![AreaEntry {
        code: s.province_code.clone(),
        name: s.province_name.clone(),
        parent: None,
        level: "province".into(),
    }];
    for (code, c) in &state.communes {
        areas.push(AreaEntry {
            code: code.clone(),
            name: c.name.clone().unwrap_or_else(|| code.clone()),
            parent: Some(s.province_code.clone()),
            level: "commune".into(),
        });
    }
    for (code, c) in &state.communes {
        let mut villages: Vec<(&String, &u32)> = c.villages.iter().collect();
        villages.sort_by_key(|(_, n)| **n);
        for (name, n) in villages {
            areas.push(AreaEntry {
                code: village_code(code, *n),
                name: name.clone(),
                parent: Some(code.clone()),
                level: "village".into(),
            });
        }
    }
    let mut devices = Vec::new();
    let mut disabled = Vec::new();
    for (id, d) in &state.devices {
        if d.status == Status::Disabled {
            disabled.push(id.clone());
            continue;
        }
        let n = state.communes[&d.commune_code].villages[&d.village];
        devices.push(DeviceEntry {
            id: id.clone(),
            kind: d.kind.as_str().into(),
            area: village_code(&d.commune_code, n),
            name: d.station.clone(),
            lat: d.lat,
            lon: d.lon,
            password_hash: d.password_hash.clone(),
            public_key: Some(d.public_key.clone()),
            language: d.language.clone(),
            board_token_hash: d.board_token_hash.clone(),
        });
    }
    Registry {
        version: REGISTRY_VERSION,
        areas,
        devices,
        disabled,
    }
}
