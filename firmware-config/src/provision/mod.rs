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
//! DIR/mosquitto/nguon.conf               listener settings: limits, files above
//! DIR/devices/<id>/agent.toml            the agent config (no secrets in it)
//! DIR/devices/<id>/nguon-agent.service   the systemd unit
//! DIR/devices/<id>/nguon-kiosk*          a board's kiosk: user units and scripts (crate::kiosk)
//! DIR/bundles/<id>.tar.gz                install bundle with the device's secrets (0600)
//! DIR/secrets/new-passwords-<time>.csv   passwords and board tokens of new devices (0600)
//! DIR/secrets/server-mqtt-password       the nguon-server MQTT password (0600)
//! ```

mod device;
mod layout;
mod outputs;
mod progress;
mod settings;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use nguon_protocol::{DeviceId, KeyPair};

use crate::bundle::{self, DeviceSecrets};
use crate::config::DeviceKind;
use crate::credential;
use crate::error::{ProvisionError, Result, RowError};
use crate::mosquitto::{self, BrokerUser};
use crate::state::{self, DeviceRecord, State, Status};
use crate::stations::{self, Communes, Station, StationKey};

pub use device::{board_token_hash, device_config};
pub use layout::{Layout, write_if_changed};
pub use outputs::registry_of;

use device::{Fresh, areas_of, generate};
use layout::{Output, read_or_empty, secrets_file_path, write_new};
use outputs::secrets_csv;
use progress::{bar, par_map};
use settings::{resolve_settings, setting};
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
    /// The nguon-server MQTT user's password (`nguon-server init`'s `mqtt-password`); none: one is
    /// generated on the first run into `secrets/server-mqtt-password`.
    pub server_mqtt_password: Option<String>,
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

/// Provision devices from a station list into `opts.out`.
pub fn bulk(opts: &BulkOptions) -> Result<BulkReport> {
    let layout = Layout {
        root: opts.out.clone(),
    };
    let mut report = BulkReport::default();

    // 1. Read and check every input before touching the output directory.
    // `--communes` is remembered: without it, the table of the last run that gave one applies.
    let old_state = State::load(&layout.state())?;
    let given: Option<Communes> = opts
        .communes
        .as_deref()
        .map(stations::read_communes)
        .transpose()?;
    let remembered = old_state.as_ref().and_then(|s| s.commune_table.clone());
    let from_state = given.is_none() && remembered.is_some();
    let communes = given.or(remembered);
    let mut parsed = stations::read_stations(&opts.stations, communes.as_ref())?;
    if from_state {
        for e in &mut parsed.errors {
            if e.reason.contains("not in the communes list") {
                e.reason = e.reason.replace(
                    "not in the communes list",
                    "not in the communes list (remembered in state.json from an earlier --communes; \
                     give --communes with the new code to add it)",
                );
            }
        }
    }
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
    state.commune_table = communes.clone();

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
    // The server's password: given (`nguon-server init` made it), else generated once.
    let server_password = match &opts.server_mqtt_password {
        Some(pw) => {
            let known = state.server_mqtt_password_hash.as_deref();
            if !known.is_some_and(|h| credential::verify_password(pw, h)) {
                state.server_mqtt_password_hash = Some(credential::hash_password(pw));
            }
            None
        }
        None => state.server_mqtt_password_hash.is_none().then(|| {
            let pw = credential::generate_password();
            state.server_mqtt_password_hash = Some(credential::hash_password(&pw));
            pw
        }),
    };

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
        // A board's kiosk files (no secrets) sit beside its config, so a board provisioned before
        // the kiosk existed gets its bundle rebuilt with it.
        let kiosk: Vec<(PathBuf, String, u32)> = if rec.kind == DeviceKind::Board {
            crate::kiosk::files(id)
                .into_iter()
                .map(|(name, text, mode)| (dir.join(name), text, mode))
                .collect()
        } else {
            Vec::new()
        };
        let changed = read_or_empty(&cfg_path) != toml.as_bytes()
            || read_or_empty(&unit_path) != unit.as_bytes()
            || kiosk
                .iter()
                .any(|(p, text, _)| read_or_empty(p) != text.as_bytes());
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
                bytes: bundle::build(id, &toml, &unit, &s, &settings.server_url),
                mode: 0o600,
            });
        }
        for (path, text, mode) in kiosk {
            outs.push(Output {
                path,
                bytes: text.into_bytes(),
                mode,
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
    let mosquitto_dir = layout.root.join("mosquitto");
    let mosquitto_dir =
        std::path::absolute(&mosquitto_dir).map_err(|e| ProvisionError::io(&mosquitto_dir, e))?;
    files.push(Output {
        path: layout.mosquitto_conf(),
        bytes: mosquitto::conf(&mosquitto_dir, listener_port(&settings.broker_url)).into_bytes(),
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

/// The port of the generated Mosquitto listener: the devices' (first) `mqtt://` port, else 1883.
fn listener_port(broker_url: &str) -> u16 {
    crate::config::parse_broker_url(broker_url.split(',').next().unwrap_or("").trim())
        .ok()
        .filter(|b| !b.tls)
        .map_or(1883, |b| b.port)
}
