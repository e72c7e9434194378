//! `DIR/state.json`: what `nguon-provision bulk` remembers between runs so that a re-run with the
//! same station list changes nothing. It holds device ids, credential hashes and public keys (never
//! a password or a private key), village numbering, id counters and the settings of the last run.
//! Every map is ordered, so the file is byte-identical when nothing changed.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::DeviceKind;
use crate::error::{ProvisionError, Result};
use crate::stations::StationKey;

/// State file format version.
pub const STATE_VERSION: u32 = 1;

/// The whole state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// Settings of the last run; command-line options override them.
    pub settings: Settings,
    /// `$7$` hash of the `nguon-server` MQTT user's password.
    #[serde(default)]
    pub server_mqtt_password_hash: Option<String>,
    /// Communes by code.
    #[serde(default)]
    pub communes: BTreeMap<String, CommuneState>,
    /// The communes table (`code → name`) of the last run that gave `--communes`: later runs
    /// without the option check commune codes against it, so an unknown code stays an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commune_table: Option<BTreeMap<String, String>>,
    /// Devices by id.
    #[serde(default)]
    pub devices: BTreeMap<String, DeviceRecord>,
}

/// Settings that go into every device's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Province area code (e.g. `10`).
    pub province_code: String,
    /// Province name (e.g. `Lào Cai`).
    pub province_name: String,
    /// nguon-server base URL.
    pub server_url: String,
    /// Base64 ed25519 public key of the server.
    pub server_public_key: String,
    /// Broker URL the devices connect to.
    pub broker_url: String,
}

/// One commune.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CommuneState {
    /// Name from the communes table, once one was given.
    #[serde(default)]
    pub name: Option<String>,
    /// Village name → number (`{commune}-{nn}`); numbers are never reused.
    #[serde(default)]
    pub villages: BTreeMap<String, u32>,
    /// Id prefix (`lc`, `bb`) → last sequence number used; ids are never reused.
    #[serde(default)]
    pub last_device: BTreeMap<String, u32>,
}

impl CommuneState {
    /// The village's number, assigning the next one to a village seen for the first time.
    pub fn village_number(&mut self, village: &str) -> u32 {
        if let Some(n) = self.villages.get(village) {
            return *n;
        }
        let n = self.villages.values().max().copied().unwrap_or(0) + 1;
        self.villages.insert(village.to_string(), n);
        n
    }

    /// The next device sequence number for an id prefix.
    pub fn next_device(&mut self, prefix: &str) -> u32 {
        let n = self.last_device.entry(prefix.to_string()).or_insert(0);
        *n += 1;
        *n
    }
}

/// Village area code: `{commune}-{nn}`.
pub fn village_code(commune: &str, number: u32) -> String {
    format!("{commune}-{number:02}")
}

/// Whether a device is registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// In the broker files and registered.
    Active,
    /// Removed from the station list and pruned: out of the broker files, listed as disabled.
    Disabled,
}

/// One device as provisioned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRecord {
    /// Kind.
    pub kind: DeviceKind,
    /// Commune code.
    pub commune_code: String,
    /// Village name.
    pub village: String,
    /// Station name.
    pub station: String,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// Audio output.
    pub audio_output: String,
    /// Language.
    pub language: Option<String>,
    /// `$7$` hash of the MQTT password.
    pub password_hash: String,
    /// Base64 ed25519 public key.
    pub public_key: String,
    /// Hex sha256 of the board token (boards).
    pub board_token_hash: Option<String>,
    /// Active or disabled.
    pub status: Status,
}

impl DeviceRecord {
    /// The station identity.
    pub fn key(&self) -> StationKey {
        StationKey {
            commune_code: self.commune_code.clone(),
            village: self.village.clone(),
            station: self.station.clone(),
        }
    }
}

/// Id prefix for a kind: `lc` (loa cụm) or `bb` (bảng tin).
pub fn id_prefix(kind: DeviceKind) -> &'static str {
    match kind {
        DeviceKind::Loudspeaker => "lc",
        DeviceKind::Board => "bb",
    }
}

impl State {
    /// Load `path`, or an empty state if it does not exist.
    pub fn load(path: &Path) -> Result<Option<State>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ProvisionError::io(path, e)),
        };
        let de = &mut serde_json::Deserializer::from_str(&text);
        let state: State = serde_path_to_error::deserialize(de).map_err(|e| ProvisionError::State {
            path: path.to_path_buf(),
            message: format!("`{}`: {}", e.path(), e.inner()),
        })?;
        if state.version != STATE_VERSION {
            return Err(ProvisionError::State {
                path: path.to_path_buf(),
                message: format!(
                    "version {} is not supported (expected {STATE_VERSION})",
                    state.version
                ),
            });
        }
        Ok(Some(state))
    }

    /// The file text (pretty JSON, trailing newline).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("state serialises");
        s.push('\n');
        s
    }
}
