//! Signed agent updates (issue 16, docs/ota.md), the pure part: agent releases (one binary per
//! version and architecture) and their checks (an ELF of the architecture it claims), rollouts
//! (a version for the devices of some areas, a percentage of them picked by a hash of the
//! rollout and device ids, so raising the percentage only adds devices) and what each device's
//! manifest asks it to run ([`desired`]), and a rollout's progress from the devices' reports.

use std::collections::{BTreeMap, HashMap};

use nguon_protocol::{AgentBuild, AgentTarget, Arch};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::domain::manifest::Fleet;
use crate::error::{Error, Result};

/// One agent binary of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Release {
    /// The agent version it reports.
    pub version: String,
    /// `x86_64`, `aarch64` or `armv7`.
    #[schema(value_type = String)]
    pub arch: Arch,
    /// Lowercase hex sha256 of the binary.
    pub sha256: String,
    /// Size in bytes.
    pub size: i64,
    /// Operator's notes.
    pub notes: String,
    /// Unix ms.
    pub created_at: i64,
    /// Who uploaded it.
    pub created_by: String,
    /// Where devices fetch it (`/agent-releases/{sha256}`).
    pub url: String,
}

/// The path devices fetch a binary from.
pub fn binary_path(sha256: &str) -> String {
    format!("/agent-releases/{sha256}")
}

/// The state of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    /// Its devices are asked to run its version.
    Active,
    /// Devices that have not started keep their version; resumed by `active`.
    Paused,
    /// Ended for good: devices keep whatever version they run.
    Cancelled,
}

impl RolloutState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutState::Active => "active",
            RolloutState::Paused => "paused",
            RolloutState::Cancelled => "cancelled",
        }
    }
    /// From the stored name.
    pub fn parse(s: &str) -> RolloutState {
        match s {
            "active" => RolloutState::Active,
            "paused" => RolloutState::Paused,
            _ => RolloutState::Cancelled,
        }
    }
}

/// A rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Rollout {
    /// Id (uuid v7).
    pub id: String,
    /// The version its devices are asked to run.
    pub version: String,
    /// Target areas (with their descendants).
    pub areas: Vec<String>,
    /// Share of the target devices asked, 1–100.
    pub percent: u8,
    /// Minutes the new version has to confirm itself on a device before it rolls back.
    pub confirm_minutes: u32,
    /// `active`, `paused` or `cancelled`.
    pub state: RolloutState,
    /// Unix ms.
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// Unix ms.
    pub updated_at: i64,
}

/// Body of `POST /api/v1/rollouts`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRollout {
    /// The release's version (its builds must include one per architecture the devices need).
    pub release: String,
    /// Target area codes (with their descendants), at least one.
    pub areas: Vec<String>,
    /// Share of the target devices, 1–100.
    pub percent: u8,
    /// Minutes to confirm (default `[ota] confirm_minutes`), 1–1440.
    #[serde(default)]
    pub confirm_minutes: Option<u32>,
}

/// Body of `PATCH /api/v1/rollouts/{id}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutPatch {
    /// A larger share (it may only grow: a device once asked stays asked).
    #[serde(default)]
    pub percent: Option<u8>,
    /// `active`, `paused` or `cancelled` (final).
    #[serde(default)]
    pub state: Option<RolloutState>,
}

fn bad(code: &'static str, m: impl Into<String>) -> Error {
    Error::unprocessable(code, m)
}

/// Check a release's fields: its version, and that the binary is an ELF executable of `arch`.
pub fn check_release(version: &str, arch: Arch, binary: &[u8]) -> Result<()> {
    if !nguon_protocol::ota::valid_version(version) {
        return Err(bad(
            "invalid_version",
            format!(
                "`version`: `{version}` must be 1–64 characters of A–Z a–z 0–9 . _ + - (not starting with .)"
            ),
        ));
    }
    match elf_arch(binary) {
        None => Err(bad(
            "not_an_executable",
            "`binary`: not an ELF executable (upload the agent binary built for the architecture)",
        )),
        Some(Err(machine)) => Err(bad(
            "wrong_arch",
            format!("`binary`: an ELF for machine {machine}, not for `{arch}`"),
        )),
        Some(Ok(found)) if found != arch => Err(bad(
            "wrong_arch",
            format!("`binary`: built for `{found}`, not for `arch` `{arch}`"),
        )),
        Some(Ok(_)) => Ok(()),
    }
}

/// The architecture of an ELF binary: `None` when it is not an ELF, `Err(e_machine)` for a
/// machine no release targets.
pub fn elf_arch(b: &[u8]) -> Option<std::result::Result<Arch, u16>> {
    if b.len() < 20 || &b[..4] != b"\x7fELF" {
        return None;
    }
    let class = b[4];
    let machine = match b[5] {
        2 => u16::from_be_bytes([b[18], b[19]]),
        _ => u16::from_le_bytes([b[18], b[19]]),
    };
    Some(
        Arch::ALL
            .into_iter()
            .find(|a| a.elf() == (machine, class))
            .ok_or(machine),
    )
}

/// Check a new rollout (the release and areas are looked up by the service).
pub fn check_new(n: &NewRollout) -> Result<()> {
    if n.areas.is_empty() {
        return Err(bad("invalid_areas", "`areas`: name at least one area"));
    }
    check_percent(n.percent)?;
    if let Some(m) = n.confirm_minutes {
        check_confirm(m)?;
    }
    Ok(())
}

fn check_percent(p: u8) -> Result<()> {
    if !(1..=100).contains(&p) {
        return Err(bad(
            "invalid_percent",
            format!("`percent`: {p} is not between 1 and 100"),
        ));
    }
    Ok(())
}

/// Check a confirmation delay in minutes.
pub fn check_confirm(m: u32) -> Result<()> {
    if !(1..=1440).contains(&m) {
        return Err(bad(
            "invalid_confirm_minutes",
            format!("`confirm_minutes`: {m} is not between 1 and 1440"),
        ));
    }
    Ok(())
}

/// Apply a patch to a rollout; the rollout as it becomes.
pub fn apply(r: &Rollout, p: &RolloutPatch) -> Result<Rollout> {
    let mut out = r.clone();
    if r.state == RolloutState::Cancelled {
        return Err(Error::Conflict(format!("rollout `{}` is cancelled", r.id)));
    }
    if let Some(pc) = p.percent {
        check_percent(pc)?;
        if pc < r.percent {
            return Err(bad(
                "invalid_percent",
                format!(
                    "`percent`: {pc} is below {}; a rollout's share only grows (pause or cancel it instead)",
                    r.percent
                ),
            ));
        }
        out.percent = pc;
    }
    if let Some(s) = p.state {
        out.state = s;
    }
    Ok(out)
}

/// A device's bucket in a rollout, 0–99: the device is asked when its bucket is below the
/// percentage, so raising the percentage only adds devices.
pub fn bucket(rollout: &str, device: &str) -> u8 {
    let h = Sha256::digest(format!("{rollout}\n{device}").as_bytes());
    let n = u64::from_be_bytes(h[..8].try_into().expect("8 bytes"));
    (n % 100) as u8
}

/// Whether rollout `r` asks device `device` in `area` (the fleet's tree says what lies below
/// the rollout's areas).
pub fn selects(fleet: &Fleet, r: &Rollout, device: &str, area: &str) -> bool {
    let chain = fleet.tree.chain(area);
    r.areas.iter().any(|a| chain.contains(a)) && bucket(&r.id, device) < r.percent
}

/// What each enabled device of the fleet is asked to run: the newest active rollout that
/// selects it and has builds, with every build signed by `sign(version, arch, sha256)`.
/// `rollouts` may come in any order; `builds` are the releases by version.
pub fn desired(
    fleet: &Fleet,
    rollouts: &[Rollout],
    builds: &HashMap<String, Vec<Release>>,
    public_url: &str,
    sign: impl Fn(&str, Arch, &str) -> String,
) -> HashMap<String, AgentTarget> {
    let mut active: Vec<&Rollout> = rollouts
        .iter()
        .filter(|r| r.state == RolloutState::Active && builds.contains_key(&r.version))
        .collect();
    active.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
    let targets: Vec<AgentTarget> = active
        .iter()
        .map(|r| AgentTarget {
            rollout: r.id.clone(),
            version: r.version.clone(),
            confirm_s: r.confirm_minutes.saturating_mul(60),
            builds: builds[&r.version]
                .iter()
                .map(|b| AgentBuild {
                    arch: b.arch,
                    url: format!("{public_url}{}", binary_path(&b.sha256)),
                    sha256: b.sha256.clone(),
                    size: b.size.max(0) as u64,
                    signature: sign(&b.version, b.arch, &b.sha256),
                })
                .collect(),
        })
        .collect();
    let mut out = HashMap::new();
    for d in fleet.devices.iter().filter(|d| d.enabled) {
        if let Some(i) = active.iter().position(|r| selects(fleet, r, &d.id, &d.area)) {
            out.insert(d.id.clone(), targets[i].clone());
        }
    }
    out
}

/// The content hash of a manifest with its agent target: unchanged without one (so manifests
/// keep their hash and version when no rollout concerns them).
pub fn hash_with(hash: String, agent: Option<&AgentTarget>) -> String {
    match agent {
        None => hash,
        Some(t) => {
            let mut h = Sha256::new();
            h.update(hash.as_bytes());
            h.update(serde_json::to_vec(t).unwrap_or_default());
            hex::encode(h.finalize())
        }
    }
}

/// An upper bound of the bytes an agent target adds to a signed manifest (its JSON, escaped
/// inside the envelope's payload string).
pub fn signed_size(t: &AgentTarget) -> usize {
    serde_json::to_string(t).map_or(0, |s| s.len() * 2 + 32)
}

/// One device of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DeviceProgress {
    /// The device.
    pub device: String,
    /// Its area.
    pub area: String,
    /// Its last reported step (`downloading` … `confirmed`, `rolled_back`, `failed`), or
    /// `pending` before its first report.
    pub state: String,
    /// Why, for `failed` and `rolled_back`.
    pub reason: Option<String>,
    /// When it reported the step (unix ms).
    pub at: Option<i64>,
    /// The agent version of its last heartbeat.
    pub agent_version: Option<String>,
}

/// A rollout with its devices.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RolloutProgress {
    /// The rollout.
    pub rollout: Rollout,
    /// Devices by state (`pending` included).
    pub counts: BTreeMap<String, usize>,
    /// The devices asked (or that reported), by id.
    pub devices: Vec<DeviceProgress>,
}

/// A device's last update report: state, reason, unix ms.
pub type Report = (String, Option<String>, i64);

/// The progress of `r`: every device it selects now, plus any that reported (one selected by a
/// share later lowered cannot be, but a paused or cancelled rollout keeps its reports).
pub fn progress(
    fleet: &Fleet,
    r: &Rollout,
    reports: &HashMap<String, Report>,
    versions: &HashMap<String, String>,
) -> RolloutProgress {
    let mut devices = Vec::new();
    let mut counts = BTreeMap::new();
    for d in &fleet.devices {
        let report = reports.get(&d.id);
        if report.is_none() && !(d.enabled && selects(fleet, r, &d.id, &d.area)) {
            continue;
        }
        let (state, reason, at) = match report {
            Some((s, why, at)) => (s.clone(), why.clone(), Some(*at)),
            None => ("pending".to_string(), None, None),
        };
        *counts.entry(state.clone()).or_insert(0) += 1;
        devices.push(DeviceProgress {
            device: d.id.clone(),
            area: d.area.clone(),
            state,
            reason,
            at,
            agent_version: versions.get(&d.id).cloned(),
        });
    }
    RolloutProgress {
        rollout: r.clone(),
        counts,
        devices,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::area::AreaTree;
    use crate::domain::manifest::FleetDevice;

    fn fleet(n: usize) -> Fleet {
        let tree = AreaTree::new([
            ("10".to_string(), None),
            ("10001".to_string(), Some("10".to_string())),
            ("20".to_string(), None),
        ]);
        let devices = (0..n)
            .map(|i| FleetDevice {
                id: format!("d{i:04}"),
                area: if i % 2 == 0 { "10001" } else { "20" }.into(),
                enabled: true,
                volume: None,
            })
            .collect();
        Fleet::new(devices, tree)
    }

    fn rollout(id: &str, percent: u8, at: i64) -> Rollout {
        Rollout {
            id: id.into(),
            version: "2.0".into(),
            areas: vec!["10".into()],
            percent,
            confirm_minutes: 10,
            state: RolloutState::Active,
            created_at: at,
            created_by: "admin".into(),
            updated_at: at,
        }
    }

    fn builds() -> HashMap<String, Vec<Release>> {
        let rel = |arch| Release {
            version: "2.0".into(),
            arch,
            sha256: format!("{arch}"),
            size: 10,
            notes: String::new(),
            created_at: 0,
            created_by: "admin".into(),
            url: String::new(),
        };
        HashMap::from([("2.0".to_string(), vec![rel(Arch::X86_64), rel(Arch::Armv7)])])
    }

    #[test]
    fn a_rollout_asks_a_share_of_its_areas_and_raising_the_share_only_adds_devices() {
        let f = fleet(2000);
        let sign = |v: &str, a: Arch, s: &str| format!("{v}/{a}/{s}");
        let at = |p| desired(&f, &[rollout("r1", p, 1)], &builds(), "http://s", sign);
        let (p10, p50, p100) = (at(10), at(50), at(100));
        // Only the area below `10` (1000 devices), about the share asked.
        assert_eq!(p100.len(), 1000);
        assert!((60..=140).contains(&p10.len()), "{}", p10.len());
        assert!((420..=580).contains(&p50.len()), "{}", p50.len());
        assert!(p10.keys().all(|d| p50.contains_key(d)));
        let t = &p10.values().next().unwrap();
        assert_eq!(t.confirm_s, 600);
        assert_eq!(
            t.build_for(Arch::Armv7).unwrap().url,
            "http://s/agent-releases/armv7"
        );
        assert_eq!(t.build_for(Arch::Armv7).unwrap().signature, "2.0/armv7/armv7");
        // The newest active rollout wins; paused ones ask nothing.
        let mut newer = rollout("r2", 100, 2);
        newer.version = "2.0".into();
        let both = desired(&f, &[rollout("r1", 100, 1), newer.clone()], &builds(), "", sign);
        assert!(both.values().all(|t| t.rollout == "r2"));
        newer.state = RolloutState::Paused;
        let paused = desired(&f, &[newer], &builds(), "", sign);
        assert!(paused.is_empty());
        assert_eq!(hash_with("h".into(), None), "h");
        assert_ne!(hash_with("h".into(), Some(t)), "h");
    }

    #[test]
    fn a_binary_must_be_an_elf_of_the_arch_it_claims() {
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[18] = 62;
        assert_eq!(check_release("1.0", Arch::X86_64, &elf).ok(), Some(()));
        let e = check_release("1.0", Arch::Aarch64, &elf).unwrap_err().to_string();
        assert!(e.contains("x86_64") && e.contains("aarch64"), "{e}");
        assert!(check_release("1.0", Arch::X86_64, b"#!/bin/sh\n").is_err());
        assert!(check_release("../1", Arch::X86_64, &elf).is_err());
        let r = rollout("r", 20, 0);
        assert!(
            apply(
                &r,
                &RolloutPatch {
                    percent: Some(10),
                    state: None
                }
            )
            .is_err()
        );
        assert_eq!(
            apply(
                &r,
                &RolloutPatch {
                    percent: Some(30),
                    state: None
                }
            )
            .unwrap()
            .percent,
            30
        );
    }
}
