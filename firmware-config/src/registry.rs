//! The registration file `nguon-provision bulk` writes and nguon-server imports
//! (`POST /api/v1/fleet/import` or `nguon-server import FILE`): areas to create or update and
//! devices with their credential hash and report-signing public key. Import is idempotent:
//! areas and devices are upserted by code and id; devices listed in `disabled` are disabled.

use serde::{Deserialize, Serialize};

/// Registration file format version.
pub const REGISTRY_VERSION: u32 = 1;

/// The whole file (`registry.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// [`REGISTRY_VERSION`].
    pub version: u32,
    /// Areas, parents before children.
    pub areas: Vec<AreaEntry>,
    /// Devices.
    pub devices: Vec<DeviceEntry>,
    /// Device ids to disable (rows removed from the station list, with `--prune`).
    #[serde(default)]
    pub disabled: Vec<String>,
}

/// One administrative unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AreaEntry {
    /// Official code (province `10`, commune `08003`, village codes are made up as `08003-01`).
    pub code: String,
    /// Display name (Vietnamese).
    pub name: String,
    /// Parent area code; `None` for the root (province).
    #[serde(default)]
    pub parent: Option<String>,
    /// `province`, `commune`, `village` (free text; any depth is allowed).
    pub level: String,
    /// Languages the area receives, preferred first (`PUT /api/v1/areas/{code}/languages`); from
    /// the station list's `language` column. Empty: the import leaves the area's list as it is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub languages: Vec<String>,
}

/// One device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceEntry {
    /// Device id.
    pub id: String,
    /// `loudspeaker` or `board`.
    pub kind: String,
    /// Area code the device belongs to.
    pub area: String,
    /// Display name.
    pub name: String,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// `$7$` PBKDF2-SHA512 hash of the MQTT password ([`crate::credential`]).
    pub password_hash: String,
    /// Base64 ed25519 public key that signs this device's reports.
    pub public_key: Option<String>,
    /// Language variant the device's area prefers (e.g. `vi`, `hmn`), if any.
    #[serde(default)]
    pub language: Option<String>,
    /// Lowercase hex sha256 of the bearer token for board pages (boards only).
    #[serde(default)]
    pub board_token_hash: Option<String>,
}
