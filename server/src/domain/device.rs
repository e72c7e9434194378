//! Devices: loudspeaker clusters and bulletin boards, each in one area, with an MQTT credential
//! hash (`$7$`), an optional report-signing public key, and live status (written by ingest).
//!
//! The record ([`Device`]), the bodies that create ([`NewDevice`]) and change ([`DevicePatch`])
//! one, and every check that needs no database: id, kind, position, volume, public key, password
//! (the users' strength rule, `domain::user::check_password`) and password hash, what a patch
//! stores, and the validation of a `nguon-provision` registry file ([`validate_registry`]) given
//! which areas are stored.

use std::collections::HashSet;

use nguon_protocol::DeviceId;
use nguon_provision::registry::{DeviceEntry, REGISTRY_VERSION, Registry};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::area::{AreaFields, AreaTree, parent_cycles};
use crate::domain::user::check_password;
use crate::error::{Error, Result};

/// A device with its live status.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Device {
    /// Device id, e.g. `lc-08003-01`.
    pub id: String,
    /// `loudspeaker` or `board`.
    pub kind: String,
    /// Area code.
    pub area: String,
    /// Display name.
    pub name: String,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// Whether the device receives schedules.
    pub enabled: bool,
    /// Whether an MQTT credential hash is stored.
    pub has_credential: bool,
    /// Base64 ed25519 key that signs the device's reports.
    pub public_key: Option<String>,
    /// Preferred language variant (e.g. `vi`, `hmn`).
    pub language: Option<String>,
    /// Default volume 0–100 pushed to the device; null keeps the device's own.
    pub volume: Option<i64>,
    /// Last known presence (false when never seen).
    pub online: bool,
    /// Connection session counter of the last state message.
    pub session: Option<i64>,
    /// Unix ms of the last message of any kind.
    pub last_seen: Option<i64>,
    /// Unix ms of the last heartbeat.
    pub last_heartbeat: Option<i64>,
    /// Version of the last manifest the device reported applied.
    pub manifest_version: Option<i64>,
    /// What is playing now (from the last heartbeat).
    #[schema(value_type = Option<Object>)]
    pub now_playing: Option<serde_json::Value>,
    /// Free bytes on the file system of the agent's data directory (from the last heartbeat).
    pub disk_free_bytes: Option<i64>,
    /// Size of that file system (null for agents that do not report it).
    pub disk_total_bytes: Option<i64>,
    /// The broker the device is connected to, from its last heartbeat (`mqtt://host:port`; a
    /// broker cluster's node): null until a heartbeat names one.
    pub broker: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

impl Device {
    /// The device as the audit log keeps it on an update: the record without its live status
    /// (the credential is only the `has_credential` flag, never a secret).
    pub fn audit_json(&self) -> Option<serde_json::Value> {
        let mut v = serde_json::to_value(self).ok()?;
        if let Some(o) = v.as_object_mut() {
            for k in [
                "online",
                "session",
                "last_seen",
                "last_heartbeat",
                "manifest_version",
                "now_playing",
                "disk_free_bytes",
                "disk_total_bytes",
                "broker",
            ] {
                o.remove(k);
            }
        }
        Some(v)
    }
}

/// Body of `POST /api/v1/devices`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    /// Device id (`[A-Za-z0-9._-]`, at most 64).
    pub id: String,
    /// `loudspeaker` or `board`.
    pub kind: String,
    /// Existing area code.
    pub area: String,
    /// Display name (defaults to the id).
    #[serde(default)]
    pub name: Option<String>,
    /// Latitude (−90..90).
    #[serde(default)]
    pub lat: Option<f64>,
    /// Longitude (−180..180).
    #[serde(default)]
    pub lon: Option<f64>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// MQTT password in clear; stored only as a `$7$` hash.
    #[serde(default)]
    pub password: Option<String>,
    /// Or an already computed `$7$` hash.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Base64 ed25519 public key that signs reports.
    #[serde(default)]
    pub public_key: Option<String>,
    /// Language variant.
    #[serde(default)]
    pub language: Option<String>,
    /// Default volume 0–100.
    #[serde(default)]
    pub volume: Option<i64>,
}

/// Body of `PATCH /api/v1/devices/{id}`; absent fields are unchanged.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevicePatch {
    /// New display name.
    pub name: Option<String>,
    /// Move to another (existing) area.
    pub area: Option<String>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// Default volume 0–100.
    pub volume: Option<i64>,
    /// Language variant.
    pub language: Option<String>,
    /// New MQTT password (stored hashed).
    pub password: Option<String>,
    /// New report-signing public key (base64).
    pub public_key: Option<String>,
}

/// Result of `POST /api/v1/fleet/import`.
#[derive(Debug, Default, Serialize, ToSchema, PartialEq, Eq)]
pub struct FleetImportSummary {
    /// Areas inserted.
    pub areas_created: u64,
    /// Areas changed.
    pub areas_updated: u64,
    /// Devices inserted.
    pub created: u64,
    /// Devices changed.
    pub updated: u64,
    /// Devices identical to the stored ones.
    pub unchanged: u64,
    /// Devices switched from enabled to disabled.
    pub disabled: u64,
    /// Areas whose languages the file set or changed (`areas[].languages`).
    pub area_languages_set: u64,
}

// ---------------------------------------------------------------------------------------------
// Checks

/// A device id, or a 400 `invalid_id` naming it.
pub fn parse_id(id: &str) -> Result<DeviceId> {
    DeviceId::parse(id).map_err(|e| Error::bad("invalid_id", format!("device id `{id}`: {e}")))
}

/// 400 `invalid_kind` unless `loudspeaker` or `board`.
pub fn check_kind(kind: &str) -> Result<()> {
    match kind {
        "loudspeaker" | "board" => Ok(()),
        k => Err(Error::bad(
            "invalid_kind",
            format!("kind `{k}` must be `loudspeaker` or `board`"),
        )),
    }
}

/// 400 `invalid_position` for a latitude outside −90..90 or a longitude outside −180..180.
pub fn check_position(lat: Option<f64>, lon: Option<f64>) -> Result<()> {
    if let Some(l) = lat
        && !(-90.0..=90.0).contains(&l)
    {
        return Err(Error::bad(
            "invalid_position",
            format!("lat {l} is outside −90..90"),
        ));
    }
    if let Some(l) = lon
        && !(-180.0..=180.0).contains(&l)
    {
        return Err(Error::bad(
            "invalid_position",
            format!("lon {l} is outside −180..180"),
        ));
    }
    Ok(())
}

/// 400 `invalid_volume` outside 0..100.
pub fn check_volume(v: Option<i64>) -> Result<()> {
    match v {
        Some(v) if !(0..=100).contains(&v) => Err(Error::bad(
            "invalid_volume",
            format!("volume {v} is outside 0..100"),
        )),
        _ => Ok(()),
    }
}

/// 400 `invalid_public_key` unless base64 of an ed25519 public key.
pub fn check_public_key(k: &str) -> Result<()> {
    nguon_protocol::verifying_key_from_b64(k)
        .map(|_| ())
        .map_err(|e| Error::bad("invalid_public_key", format!("public_key: {e}")))
}

/// 400 `invalid_password_hash` unless a `$7$` PBKDF2-SHA512 hash.
pub fn check_hash(h: &str) -> Result<()> {
    if h.starts_with("$7$") && h.split('$').count() == 5 {
        Ok(())
    } else {
        Err(Error::bad(
            "invalid_password_hash",
            "password_hash must be a `$7$` PBKDF2-SHA512 hash",
        ))
    }
}

/// 422 `unknown_area` for an area that is not stored.
pub fn require_area(code: &str, stored: bool) -> Result<()> {
    if stored {
        Ok(())
    } else {
        Err(Error::unprocessable(
            "unknown_area",
            format!("area `{code}` does not exist"),
        ))
    }
}

/// The MQTT credential a request asks to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential<'a> {
    /// None (the device cannot log in until one is set).
    None,
    /// A password in clear, to hash.
    Password(&'a str),
    /// An already computed `$7$` hash.
    Hash(&'a str),
}

/// A device creation checked as far as no database is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedNewDevice<'a> {
    /// The id.
    pub id: DeviceId,
    /// The display name (the id when none or blank).
    pub name: String,
    /// The credential to store.
    pub credential: Credential<'a>,
}

impl NewDevice {
    /// The checks that need no database, in the order the API reports them: id, kind,
    /// position, volume, public key, then the credential (`password` or `password_hash`, not
    /// both).
    pub fn validate(&self) -> Result<CheckedNewDevice<'_>> {
        let id = parse_id(self.id.trim())?;
        check_kind(&self.kind)?;
        check_position(self.lat, self.lon)?;
        check_volume(self.volume)?;
        if let Some(k) = &self.public_key {
            check_public_key(k)?;
        }
        let credential = match (&self.password, &self.password_hash) {
            (Some(_), Some(_)) => {
                return Err(Error::bad(
                    "invalid_field",
                    "give `password` or `password_hash`, not both",
                ));
            }
            (Some(p), None) => {
                check_password(p)?;
                Credential::Password(p)
            }
            (None, Some(h)) => {
                check_hash(h)?;
                Credential::Hash(h)
            }
            (None, None) => Credential::None,
        };
        let name = self
            .name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| id.to_string());
        Ok(CheckedNewDevice { id, name, credential })
    }
}

/// What an update stores: every field of the record (the credential hash only when it changes).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceUpdate {
    /// Display name.
    pub name: String,
    /// Area code.
    pub area: String,
    /// Enabled.
    pub enabled: bool,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// Default volume.
    pub volume: Option<i64>,
    /// Language variant.
    pub language: Option<String>,
    /// A new credential hash (`None`: keep the stored one).
    pub credential_hash: Option<String>,
    /// Report-signing public key.
    pub public_key: Option<String>,
}

impl DevicePatch {
    /// The checks that need no database, in the order the API reports them: position, volume,
    /// public key, the new area (`area_stored`: whether it is stored), name length, password.
    pub fn validate(&self, area_stored: bool) -> Result<()> {
        check_position(self.lat, self.lon)?;
        check_volume(self.volume)?;
        if let Some(k) = &self.public_key {
            check_public_key(k)?;
        }
        if let Some(a) = &self.area {
            require_area(a, area_stored)?;
        }
        if let Some(n) = &self.name
            && n.chars().count() > 200
        {
            return Err(Error::bad(
                "invalid_field",
                "`name` must be at most 200 characters",
            ));
        }
        if let Some(pw) = &self.password {
            check_password(pw)?;
        }
        Ok(())
    }

    /// The record `d` becomes: each field given replaces the stored one (a blank name keeps
    /// it); `credential_hash` is the hash of a new password, if any.
    pub fn apply(&self, d: &Device, credential_hash: Option<String>) -> DeviceUpdate {
        DeviceUpdate {
            name: self
                .name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or(d.name.clone()),
            area: self.area.clone().unwrap_or(d.area.clone()),
            enabled: self.enabled.unwrap_or(d.enabled),
            lat: self.lat.or(d.lat),
            lon: self.lon.or(d.lon),
            volume: self.volume.or(d.volume),
            language: self.language.clone().or(d.language.clone()),
            credential_hash,
            public_key: self.public_key.clone().or(d.public_key.clone()),
        }
    }

    /// Whether the patch touches a field only an admin may change (volume, language, password,
    /// key).
    pub fn has_admin_fields(&self) -> bool {
        self.volume.is_some()
            || self.language.is_some()
            || self.password.is_some()
            || self.public_key.is_some()
    }
}

// ---------------------------------------------------------------------------------------------
// Registry import

/// The stored registration fields of a device, compared with a registry entry on import.
#[derive(Debug, Clone, PartialEq)]
pub struct Registered {
    /// Kind.
    pub kind: String,
    /// Area.
    pub area: String,
    /// Name.
    pub name: String,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// Credential hash.
    pub credential_hash: Option<String>,
    /// Public key.
    pub public_key: Option<String>,
    /// Language.
    pub language: Option<String>,
    /// Board token hash.
    pub board_token_hash: Option<String>,
}

impl Registered {
    /// Whether the entry would change nothing.
    pub fn matches(&self, d: &DeviceEntry) -> bool {
        self.kind == d.kind
            && self.area == d.area
            && self.name == d.name
            && self.lat == d.lat
            && self.lon == d.lon
            && self.credential_hash.as_deref() == Some(d.password_hash.as_str())
            && self.public_key == d.public_key
            && self.language == d.language
            && self.board_token_hash == d.board_token_hash
    }
}

/// Validate a registry file completely, every problem listed in one 422 `invalid_registry`.
/// `stored` is the stored area tree: a parent or a device's area must be stored or in the file,
/// and no area may end up below itself ([`parent_cycles`], the rule of a PATCH).
pub fn validate_registry(r: &Registry, stored: &AreaTree) -> Result<()> {
    let stored_area = |a: &str| stored.contains(a);
    let mut problems: Vec<String> = Vec::new();
    if r.version != REGISTRY_VERSION {
        problems.push(format!(
            "version {} is not supported (expected {})",
            r.version, REGISTRY_VERSION
        ));
    }
    let mut file_areas: HashSet<&str> = HashSet::new();
    for (i, a) in r.areas.iter().enumerate() {
        if let Err(e) = nguon_protocol::AreaCode::parse(a.code.clone()) {
            problems.push(format!("areas[{i}]: {e}"));
        }
        if a.name.trim().is_empty() || a.level.trim().is_empty() {
            problems.push(format!(
                "areas[{i}] `{}`: name and level must not be empty",
                a.code
            ));
        }
        if !file_areas.insert(&a.code) {
            problems.push(format!("areas[{i}]: `{}` listed twice", a.code));
        }
        let mut seen: HashSet<&str> = HashSet::new();
        for l in &a.languages {
            if !crate::domain::bulletin::valid_language(l) || !seen.insert(l) {
                problems.push(format!(
                    "areas[{i}] `{}`: language `{l}` is invalid or repeated",
                    a.code
                ));
            }
        }
    }
    for (i, a) in r.areas.iter().enumerate() {
        if let Some(p) = &a.parent
            && !file_areas.contains(p.as_str())
            && !stored_area(p)
        {
            problems.push(format!(
                "areas[{i}] `{}`: parent `{p}` is neither stored nor in the file",
                a.code
            ));
        }
    }
    // No area may end up below itself (the rule of a PATCH and of the CSV import).
    let rows: Vec<AreaFields> = r
        .areas
        .iter()
        .map(|a| AreaFields {
            code: a.code.clone(),
            name: a.name.clone(),
            parent: a.parent.clone(),
            level: a.level.clone(),
        })
        .collect();
    for (i, e) in parent_cycles(stored, &rows) {
        problems.push(format!("areas[{i}] `{}`: {e}", rows[i].code));
    }
    let mut ids: HashSet<&str> = HashSet::new();
    for (i, d) in r.devices.iter().enumerate() {
        let mut check = |res: Result<()>| {
            if let Err(e) = res {
                problems.push(format!("devices[{i}] `{}`: {e}", d.id));
            }
        };
        check(parse_id(&d.id).map(|_| ()));
        check(check_kind(&d.kind));
        check(check_position(d.lat, d.lon));
        check(check_hash(&d.password_hash));
        if let Some(k) = &d.public_key {
            check(check_public_key(k));
        }
        if !ids.insert(&d.id) {
            problems.push(format!("devices[{i}]: `{}` listed twice", d.id));
        }
        if !file_areas.contains(d.area.as_str()) && !stored_area(&d.area) {
            problems.push(format!(
                "devices[{i}] `{}`: area `{}` is neither stored nor in the file",
                d.id, d.area
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::unprocessable("invalid_registry", problems.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use nguon_provision::registry::AreaEntry;

    use super::*;

    fn code_of(e: Error) -> String {
        match e {
            Error::BadRequest { code, .. } | Error::Unprocessable { code, .. } => code.to_string(),
            other => format!("{other:?}"),
        }
    }

    const HASH: &str = "$7$101$c2FsdA==$aGFzaA==";

    fn new_device() -> NewDevice {
        NewDevice {
            id: " lc-1 ".into(),
            kind: "loudspeaker".into(),
            area: "08003".into(),
            name: Some("  ".into()),
            lat: Some(22.3),
            lon: Some(103.8),
            enabled: None,
            password: None,
            password_hash: None,
            public_key: None,
            language: None,
            volume: Some(70),
        }
    }

    #[test]
    fn a_new_device_is_checked_field_by_field_in_the_api_order() {
        let ok = new_device();
        let c = ok.validate().unwrap();
        assert_eq!(
            (c.id.as_str(), c.name.as_str(), &c.credential),
            ("lc-1", "lc-1", &Credential::None)
        );
        let refused = |f: &dyn Fn(&mut NewDevice)| {
            let mut d = new_device();
            f(&mut d);
            code_of(d.validate().unwrap_err())
        };
        assert_eq!(refused(&|d| d.id = "a b".into()), "invalid_id");
        assert_eq!(refused(&|d| d.kind = "siren".into()), "invalid_kind");
        assert_eq!(refused(&|d| d.lat = Some(91.0)), "invalid_position");
        assert_eq!(refused(&|d| d.lon = Some(-180.5)), "invalid_position");
        assert_eq!(refused(&|d| d.volume = Some(101)), "invalid_volume");
        assert_eq!(
            refused(&|d| d.public_key = Some("not a key".into())),
            "invalid_public_key"
        );
        assert_eq!(refused(&|d| d.password = Some("short".into())), "weak_password");
        assert_eq!(
            refused(&|d| d.password_hash = Some("plain".into())),
            "invalid_password_hash"
        );
        assert_eq!(
            refused(&|d| {
                d.password = Some("long enough password".into());
                d.password_hash = Some(HASH.into());
            }),
            "invalid_field"
        );
        // The first problem wins.
        assert_eq!(
            refused(&|d| {
                d.kind = "x".into();
                d.volume = Some(-1);
            }),
            "invalid_kind"
        );
        let mut pw = new_device();
        pw.password = Some("long enough password".into());
        assert_eq!(
            pw.validate().unwrap().credential,
            Credential::Password("long enough password")
        );
        let mut h = new_device();
        h.password_hash = Some(HASH.into());
        assert_eq!(h.validate().unwrap().credential, Credential::Hash(HASH));
    }

    fn device() -> Device {
        Device {
            id: "lc-1".into(),
            kind: "loudspeaker".into(),
            area: "08003".into(),
            name: "Loa".into(),
            lat: Some(1.0),
            lon: None,
            enabled: true,
            has_credential: true,
            public_key: None,
            language: Some("vi".into()),
            volume: None,
            online: true,
            session: Some(3),
            last_seen: Some(5),
            last_heartbeat: None,
            manifest_version: Some(2),
            now_playing: None,
            disk_free_bytes: Some(1 << 30),
            disk_total_bytes: None,
            broker: None,
            created_at: 1,
            updated_at: 2,
        }
    }

    #[test]
    fn a_patch_replaces_the_given_fields_and_keeps_the_rest() {
        let p = DevicePatch {
            name: Some(" ".into()),
            area: Some("08020".into()),
            enabled: Some(false),
            volume: Some(70),
            ..DevicePatch::default()
        };
        assert!(p.validate(true).is_ok());
        assert_eq!(code_of(p.validate(false).unwrap_err()), "unknown_area");
        let u = p.apply(&device(), None);
        assert_eq!(
            u,
            DeviceUpdate {
                name: "Loa".into(),
                area: "08020".into(),
                enabled: false,
                lat: Some(1.0),
                lon: None,
                volume: Some(70),
                language: Some("vi".into()),
                credential_hash: None,
                public_key: None,
            }
        );
        assert!(p.has_admin_fields());
        let long = DevicePatch {
            name: Some("x".repeat(201)),
            ..DevicePatch::default()
        };
        assert_eq!(code_of(long.validate(true).unwrap_err()), "invalid_field");
        assert!(!long.has_admin_fields());
        let weak = DevicePatch {
            password: Some("1234567".into()),
            ..DevicePatch::default()
        };
        assert_eq!(code_of(weak.validate(true).unwrap_err()), "weak_password");
        // The users' rule: long enough is not enough for a well-known password.
        let known = DevicePatch {
            password: Some("Password 1234".into()),
            ..DevicePatch::default()
        };
        assert_eq!(code_of(known.validate(true).unwrap_err()), "weak_password");
    }

    #[test]
    fn the_audit_copy_of_a_device_has_no_live_status() {
        let v = device().audit_json().unwrap();
        for gone in [
            "online",
            "session",
            "last_seen",
            "last_heartbeat",
            "manifest_version",
            "now_playing",
            "disk_free_bytes",
            "disk_total_bytes",
        ] {
            assert!(v.get(gone).is_none(), "{gone}");
        }
        assert_eq!(v["has_credential"], true);
        assert_eq!(v["area"], "08003");
    }

    fn entry(id: &str, area: &str) -> DeviceEntry {
        DeviceEntry {
            id: id.into(),
            kind: "loudspeaker".into(),
            area: area.into(),
            name: "Loa".into(),
            lat: None,
            lon: None,
            password_hash: HASH.into(),
            public_key: None,
            language: None,
            board_token_hash: None,
        }
    }

    #[test]
    fn a_registry_lists_every_problem_and_accepts_stored_or_listed_areas() {
        let area = |code: &str, parent: Option<&str>| AreaEntry {
            code: code.into(),
            name: "A".into(),
            parent: parent.map(str::to_string),
            level: "commune".into(),
            languages: Vec::new(),
        };
        let good = Registry {
            version: REGISTRY_VERSION,
            areas: vec![area("c1", Some("stored"))],
            devices: vec![entry("d1", "c1"), entry("d2", "stored")],
            disabled: vec![],
        };
        assert!(validate_registry(&good, &AreaTree::new([("stored".to_string(), None)])).is_ok());
        let mut bad = good.clone();
        bad.version = 9;
        bad.areas.push(area("c1", Some("nowhere")));
        bad.devices.push(entry("d1", "elsewhere"));
        bad.devices[0].kind = "siren".into();
        let Err(Error::Unprocessable { code, message }) =
            validate_registry(&bad, &AreaTree::new([("stored".to_string(), None)]))
        else {
            panic!("refused");
        };
        assert_eq!(code, "invalid_registry");
        for part in [
            "version 9 is not supported",
            "areas[1]: `c1` listed twice",
            "areas[1] `c1`: parent `nowhere` is neither stored nor in the file",
            "devices[0] `d1`: kind `siren`",
            "devices[2]: `d1` listed twice",
            "devices[2] `d1`: area `elsewhere` is neither stored nor in the file",
        ] {
            assert!(message.contains(part), "{part} in {message}");
        }
    }

    #[test]
    fn a_registered_device_matches_an_identical_entry_only() {
        let e = entry("d1", "c1");
        let r = Registered {
            kind: e.kind.clone(),
            area: e.area.clone(),
            name: e.name.clone(),
            lat: None,
            lon: None,
            credential_hash: Some(HASH.into()),
            public_key: None,
            language: None,
            board_token_hash: None,
        };
        assert!(r.matches(&e));
        let mut moved = e.clone();
        moved.area = "c2".into();
        assert!(!r.matches(&moved));
        let no_hash = Registered {
            credential_hash: None,
            ..r
        };
        assert!(!no_hash.matches(&e));
    }
}
