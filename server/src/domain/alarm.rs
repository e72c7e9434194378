//! Alarms (issue 12 §6): the conditions the server watches and the alarm an operator
//! acknowledges. Pure rules: [`conditions`] turns what is stored about the devices, their latest
//! proofs of play and the running emergencies into the set of conditions true `now`; the alarm
//! worker (`workers::alarms`) raises an alarm for each condition without an open one and clears
//! the open alarms whose condition is no longer in the set (`store::alarms`).
//!
//! Conditions, one subject each (at most one open alarm per kind and subject, enforced by the
//! database):
//! - `device_offline` (device): offline and not heard from (`last_seen`) for the area's
//!   threshold ([`Thresholds::offline_after_ms`], inherited down the area tree);
//! - `heartbeat_missed` (device): online, but its last heartbeat is older than k × the interval;
//! - `delivery_below_threshold` (command): an emergency play-now issued at least T ago, inside
//!   its window, that fewer than X % of its targets have been reached by (`domain::tracking`);
//! - `playback_failed` (device): its latest decisive proof of play is `failed`;
//! - `silence` (device): its latest measured proof of play was `silent`;
//! - `low_disk` (device): free disk under the threshold share of its total;
//! - `relay_failed` (device): its latest relay play's stream failed ([`relay_conditions`]).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::area::AreaTree;
use crate::error::{Error, Result};

/// What an alarm is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// A device offline longer than its area's threshold.
    DeviceOffline,
    /// An online device that stopped sending heartbeats.
    HeartbeatMissed,
    /// An emergency that too few targets have been reached by.
    DeliveryBelowThreshold,
    /// A device reported a failed play.
    PlaybackFailed,
    /// A device played an item that stayed silent.
    Silence,
    /// A device is short of disk.
    LowDisk,
    /// A citizen's feedback unanswered past its deadline (issue 15).
    FeedbackOverdue,
    /// A relay's stream failed on a device: the fallback played, or nothing (issue 17).
    RelayFailed,
}

impl AlarmKind {
    /// Every kind.
    pub const ALL: [AlarmKind; 8] = [
        AlarmKind::DeviceOffline,
        AlarmKind::HeartbeatMissed,
        AlarmKind::DeliveryBelowThreshold,
        AlarmKind::PlaybackFailed,
        AlarmKind::Silence,
        AlarmKind::LowDisk,
        AlarmKind::FeedbackOverdue,
        AlarmKind::RelayFailed,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmKind::DeviceOffline => "device_offline",
            AlarmKind::HeartbeatMissed => "heartbeat_missed",
            AlarmKind::DeliveryBelowThreshold => "delivery_below_threshold",
            AlarmKind::PlaybackFailed => "playback_failed",
            AlarmKind::Silence => "silence",
            AlarmKind::LowDisk => "low_disk",
            AlarmKind::FeedbackOverdue => "feedback_overdue",
            AlarmKind::RelayFailed => "relay_failed",
        }
    }

    /// Parse a stored or requested name (`field` names it in the 422).
    pub fn parse(s: &str, field: &str) -> Result<AlarmKind> {
        AlarmKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            Error::unprocessable(
                "invalid_kind",
                format!("`{field}`: `{s}` is not one of device_offline, heartbeat_missed, delivery_below_threshold, playback_failed, silence, low_disk, feedback_overdue, relay_failed"),
            )
        })
    }

    /// How serious: an emergency not reaching people, or a speaker that stays silent, is
    /// critical; the rest are warnings.
    pub fn severity(self) -> &'static str {
        match self {
            AlarmKind::DeliveryBelowThreshold | AlarmKind::Silence => "critical",
            _ => "warning",
        }
    }
}

/// Which alarms a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlarmState {
    /// Not cleared and not acknowledged.
    #[default]
    Open,
    /// Acknowledged, not cleared.
    Acked,
    /// Every alarm, cleared ones included.
    All,
}

impl AlarmState {
    /// Parse `?state=` (422 naming `state`).
    pub fn parse(s: Option<&str>) -> Result<AlarmState> {
        match s.unwrap_or("open") {
            "open" | "" => Ok(AlarmState::Open),
            "acked" => Ok(AlarmState::Acked),
            "all" => Ok(AlarmState::All),
            other => Err(Error::unprocessable(
                "invalid_state",
                format!("`state`: `{other}` is not one of open, acked, all"),
            )),
        }
    }
}

/// One alarm as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Alarm {
    /// Id (uuid v7).
    pub id: String,
    /// What kind of condition.
    pub kind: AlarmKind,
    /// `device`, `command` or `area`.
    pub subject_type: String,
    /// The device id, command id or area code.
    pub subject_id: String,
    /// The subject's area.
    pub area: String,
    /// `critical` or `warning`.
    pub severity: String,
    /// What was seen when it was raised.
    pub message: String,
    /// Unix ms.
    pub raised_at: i64,
    /// Unix ms it was acknowledged.
    pub acked_at: Option<i64>,
    /// Who acknowledged it.
    pub acked_by: Option<String>,
    /// Unix ms its condition ended.
    pub cleared_at: Option<i64>,
}

/// A condition true now: the alarm to raise unless one is open for `(kind, subject)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// Kind.
    pub kind: AlarmKind,
    /// `device`, `command` or `area`.
    pub subject_type: &'static str,
    /// Id of the subject.
    pub subject_id: String,
    /// Area of the subject.
    pub area: String,
    /// What is seen.
    pub message: String,
}

impl Condition {
    /// `(kind, subject_type, subject_id)`: what the open alarm is unique on.
    pub fn key(&self) -> (AlarmKind, String, String) {
        (self.kind, self.subject_type.to_string(), self.subject_id.clone())
    }
}

/// What is stored about one enabled device.
#[derive(Debug, Clone, Default)]
pub struct DeviceFacts {
    /// Id.
    pub id: String,
    /// Area.
    pub area: String,
    /// Online now.
    pub online: bool,
    /// Server time of its last message, unix ms.
    pub last_seen: Option<i64>,
    /// Server time of its last heartbeat, unix ms.
    pub last_heartbeat: Option<i64>,
    /// Free bytes of its data disk.
    pub disk_free: Option<i64>,
    /// Total bytes of its data disk.
    pub disk_total: Option<i64>,
}

/// A device's latest proof of play of one sort.
#[derive(Debug, Clone, Default)]
pub struct PlayFacts {
    /// Device.
    pub device_id: String,
    /// Its area.
    pub area: String,
    /// The item.
    pub item_id: String,
    /// Stored outcome (`failed`, `played`, ...).
    pub outcome: String,
    /// Why, if the device said.
    pub reason: Option<String>,
    /// The item stayed under the silence threshold.
    pub silent: bool,
    /// Loudest 1-second RMS, dBFS.
    pub max_rms_dbfs: Option<i64>,
    /// A relay play whose stream failed.
    pub relay_failed: bool,
}

/// An emergency inside its window and past the delivery delay, with its tracking counts.
#[derive(Debug, Clone, Default)]
pub struct EmergencyFacts {
    /// Command id.
    pub command_id: String,
    /// Target area (or the target device's area).
    pub area: String,
    /// Targets resolved at issue.
    pub targets: u64,
    /// Targets reached (delivered or further).
    pub reached: u64,
}

/// The thresholds, from `[alarms]` and the per-area settings.
#[derive(Debug, Clone, Default)]
pub struct Thresholds {
    /// Default offline threshold, ms.
    pub offline_after_ms: i64,
    /// Areas with their own offline threshold (ms), inherited by their descendants.
    pub area_offline_ms: HashMap<String, i64>,
    /// Heartbeat age that is missed (k × interval), ms.
    pub heartbeat_ms: i64,
    /// Share of targets an emergency must reach, percent.
    pub delivery_pct: u64,
    /// Free share under which the disk is low, percent.
    pub low_disk_pct: i64,
}

impl Thresholds {
    /// The offline threshold of `area`: its own, else its nearest ancestor's, else the default.
    pub fn offline_ms(&self, tree: &AreaTree, area: &str) -> i64 {
        tree.chain(area)
            .iter()
            .find_map(|a| self.area_offline_ms.get(a).copied())
            .unwrap_or(self.offline_after_ms)
    }
}

fn minutes(ms: i64) -> String {
    let s = ms / 1000;
    if s >= 120 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

/// The `relay_failed` conditions: each device whose latest relay play (`latest`) failed.
pub fn relay_conditions(latest: &[PlayFacts]) -> Vec<Condition> {
    latest
        .iter()
        .filter(|p| p.relay_failed)
        .map(|p| Condition {
            kind: AlarmKind::RelayFailed,
            subject_type: "device",
            subject_id: p.device_id.clone(),
            area: p.area.clone(),
            message: format!(
                "relay {} failed: {}",
                p.item_id,
                p.reason.as_deref().unwrap_or("the stream gave no audio")
            ),
        })
        .collect()
}

/// Every condition true at `now` (unix ms).
pub fn conditions(
    now: i64,
    tree: &AreaTree,
    th: &Thresholds,
    devices: &[DeviceFacts],
    decisive: &[PlayFacts],
    measured: &[PlayFacts],
    emergencies: &[EmergencyFacts],
) -> Vec<Condition> {
    let mut out = Vec::new();
    let device = |kind, d: &str, area: &str, message: String| Condition {
        kind,
        subject_type: "device",
        subject_id: d.to_string(),
        area: area.to_string(),
        message,
    };
    for d in devices {
        if !d.online
            && let Some(seen) = d.last_seen
        {
            let limit = th.offline_ms(tree, &d.area);
            if now - seen >= limit {
                out.push(device(
                    AlarmKind::DeviceOffline,
                    &d.id,
                    &d.area,
                    format!(
                        "offline, last heard {} ago (threshold {})",
                        minutes(now - seen),
                        minutes(limit)
                    ),
                ));
            }
        }
        if d.online
            && let Some(h) = d.last_heartbeat
            && now - h > th.heartbeat_ms
        {
            out.push(device(
                AlarmKind::HeartbeatMissed,
                &d.id,
                &d.area,
                format!(
                    "online but no heartbeat for {} (allowed {})",
                    minutes(now - h),
                    minutes(th.heartbeat_ms)
                ),
            ));
        }
        // Only agents that report their disk's size are judged (older ones send free bytes only).
        if let (Some(free), Some(total)) = (d.disk_free, d.disk_total)
            && total > 0
            && free.saturating_mul(100) < total.saturating_mul(th.low_disk_pct)
        {
            out.push(device(
                AlarmKind::LowDisk,
                &d.id,
                &d.area,
                format!("{} MiB free of {} MiB", free >> 20, total >> 20),
            ));
        }
    }
    for p in decisive.iter().filter(|p| p.outcome == "failed") {
        let why = p.reason.as_deref().unwrap_or("no reason given");
        out.push(device(
            AlarmKind::PlaybackFailed,
            &p.device_id,
            &p.area,
            format!("playing {} failed: {why}", p.item_id),
        ));
    }
    for p in measured.iter().filter(|p| p.silent) {
        let level = p
            .max_rms_dbfs
            .map(|l| format!(" (loudest {l} dBFS)"))
            .unwrap_or_default();
        out.push(device(
            AlarmKind::Silence,
            &p.device_id,
            &p.area,
            format!("{} stayed silent for its whole length{level}", p.item_id),
        ));
    }
    for e in emergencies {
        if e.targets > 0 && e.reached * 100 < th.delivery_pct * e.targets {
            out.push(Condition {
                kind: AlarmKind::DeliveryBelowThreshold,
                subject_type: "command",
                subject_id: e.command_id.clone(),
                area: e.area.clone(),
                message: format!(
                    "emergency reached {} of {} targets (under {} %)",
                    e.reached, e.targets, th.delivery_pct
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn th() -> Thresholds {
        Thresholds {
            offline_after_ms: 600_000,
            area_offline_ms: HashMap::from([("district".to_string(), 60_000)]),
            heartbeat_ms: 180_000,
            delivery_pct: 95,
            low_disk_pct: 10,
        }
    }

    #[test]
    fn each_condition_holds_only_past_its_threshold_and_area_settings_are_inherited() {
        let tree = AreaTree::new([
            ("prov".to_string(), None),
            ("district".to_string(), Some("prov".to_string())),
            ("commune".to_string(), Some("district".to_string())),
        ]);
        let dev = |id: &str, area: &str| DeviceFacts {
            id: id.into(),
            area: area.into(),
            ..DeviceFacts::default()
        };
        let devices = vec![
            // Offline 2 min: over the commune's inherited 1 min, under the province's 10 min.
            DeviceFacts {
                last_seen: Some(NOW - 120_000),
                ..dev("a", "commune")
            },
            DeviceFacts {
                last_seen: Some(NOW - 120_000),
                ..dev("b", "prov")
            },
            DeviceFacts {
                online: true,
                last_heartbeat: Some(NOW - 181_000),
                ..dev("c", "prov")
            },
            DeviceFacts {
                online: true,
                last_heartbeat: Some(NOW - 179_000),
                ..dev("d", "prov")
            },
            DeviceFacts {
                online: true,
                disk_free: Some(5),
                disk_total: Some(100),
                ..dev("e", "prov")
            },
            DeviceFacts {
                online: true,
                disk_free: Some(0),
                ..dev("f", "prov")
            },
            DeviceFacts {
                online: true,
                disk_free: Some(20),
                disk_total: Some(100),
                ..dev("g", "prov")
            },
        ];
        let play = |d: &str, outcome: &str, silent: bool| PlayFacts {
            device_id: d.into(),
            area: "prov".into(),
            item_id: "i".into(),
            outcome: outcome.into(),
            silent,
            ..PlayFacts::default()
        };
        let em = |id: &str, reached| EmergencyFacts {
            command_id: id.into(),
            area: "prov".into(),
            targets: 20,
            reached,
        };
        let got: Vec<(&str, String)> = conditions(
            NOW,
            &tree,
            &th(),
            &devices,
            &[play("h", "failed", false), play("i", "played", false)],
            &[play("j", "played", true), play("k", "played", false)],
            &[em("low", 18), em("ok", 19)],
        )
        .iter()
        .map(|c| (c.kind.as_str(), c.subject_id.clone()))
        .collect();
        let want: Vec<(&str, String)> = [
            ("device_offline", "a"),
            ("heartbeat_missed", "c"),
            ("low_disk", "e"),
            ("playback_failed", "h"),
            ("silence", "j"),
            ("delivery_below_threshold", "low"),
        ]
        .iter()
        .map(|(k, s)| (*k, s.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn bad_filters_are_named() {
        assert!(
            AlarmState::parse(Some("closed"))
                .unwrap_err()
                .to_string()
                .contains("`state`")
        );
        assert!(
            AlarmKind::parse("fire", "kind")
                .unwrap_err()
                .to_string()
                .contains("`kind`")
        );
        assert_eq!(AlarmState::parse(None).unwrap(), AlarmState::Open);
    }
}
