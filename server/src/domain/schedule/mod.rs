//! Schedules as the server reasons about them, with no I/O: a playlist of approved media, a target
//! set (areas with their descendants, and single devices), a priority and a [`Rule`] evaluated in
//! an IANA time zone. Here are the types the API exchanges ([`NewSchedule`], [`Schedule`],
//! [`Created`]), the validation that needs no database ([`validate`]), occurrence expansion
//! ([`Schedule::occurrences`]), the rule's description in words ([`describe`]) and the overlap
//! computation ([`overlap`]). The SQL is in `store::schedules`, the use cases in
//! `services::schedules`.

pub mod describe;
pub mod overlap;
pub mod rule;

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use nguon_protocol::{OnPreempt, Priority, Repetition};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::command::{MAX_WINDOW_SECS, MIN_WINDOW_SECS};
use crate::domain::relay::{self, RelayStream};
use crate::domain::repetition;
use crate::error::{Error, Result};
pub use describe::describe;
pub use rule::{CronRule, Rule, RuleSpec, local_to_utc};

/// Most occurrences one schedule contributes to one evaluation window.
pub const MAX_OCCURRENCES: usize = 2_000;

/// Who a schedule is for.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// Area codes; each includes its descendants.
    #[serde(default)]
    pub areas: Vec<String>,
    /// Device ids.
    #[serde(default)]
    pub devices: Vec<String>,
}

/// `POST /api/v1/schedules` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSchedule {
    /// Human title.
    pub title: String,
    /// Ordered playlist of approved media, by sha256 (a relay's fallback recording; may be
    /// empty for a relay).
    #[serde(default)]
    pub media: Vec<String>,
    /// Target areas and devices.
    pub targets: Targets,
    /// `normal` (default), `priority` or `emergency`.
    #[serde(default)]
    #[schema(value_type = String, example = "normal")]
    pub priority: Priority,
    /// A relay (tiếp sóng): each occurrence plays this external stream for `duration_s`
    /// instead of media (`domain::relay`). Absent: a media schedule.
    #[serde(default)]
    pub relay: Option<RelayStream>,
    /// When it plays.
    pub rule: RuleSpec,
    /// IANA time zone of the rule (default: the server's `time_zone`).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Not before (RFC 3339).
    #[serde(default)]
    pub valid_from: Option<DateTime<Utc>>,
    /// Not after (RFC 3339).
    #[serde(default)]
    pub valid_until: Option<DateTime<Utc>>,
    /// Volume 0–100 (default 80).
    #[serde(default)]
    pub volume: Option<u8>,
    /// Playlist repetitions ≥ 1 (default 1).
    #[serde(default)]
    pub repeat: Option<u32>,
    /// `interrupt` (default) or `resume`.
    #[serde(default)]
    #[schema(value_type = String, example = "interrupt")]
    pub on_preempt: OnPreempt,
    /// Emergency only: each occurrence repeats until its window ends or a stop, as an emergency
    /// play-now does: a preset of Decision 18/2021/QĐ-TTg (`"every_2h"`,
    /// `"twice_5min_then_every_30min"`) or `{"offsets_s": [0, …], "every_s": N}`
    /// (`domain::repetition`). Absent: each occurrence plays once.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub repetition: Option<serde_json::Value>,
    /// Each occurrence's validity window in seconds (10–86400): a device that reaches it late
    /// still plays it until then, and a repetition repeats until then. Default: the server's
    /// late window of the priority (emergency 1800).
    #[serde(default)]
    pub valid_for_s: Option<u32>,
}

/// A stored schedule.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Schedule {
    /// Id (uuid).
    pub id: String,
    /// Title.
    pub title: String,
    /// Playlist (a relay's fallback).
    pub media: Vec<String>,
    /// `media` or `relay`.
    pub kind: &'static str,
    /// A relay's stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<RelayStream>,
    /// Targets.
    pub targets: Targets,
    /// Priority.
    #[schema(value_type = String)]
    pub priority: Priority,
    /// Rule.
    pub rule: RuleSpec,
    /// IANA time zone.
    pub time_zone: String,
    /// Not before.
    pub valid_from: Option<DateTime<Utc>>,
    /// Not after.
    pub valid_until: Option<DateTime<Utc>>,
    /// Volume.
    pub volume: u8,
    /// Repetitions.
    pub repeat: u32,
    /// Preemption behaviour.
    #[schema(value_type = String)]
    pub on_preempt: OnPreempt,
    /// The resolved repetition pattern of each occurrence (`{offsets_s, every_s}`), if it
    /// repeats.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub repetition: Option<Repetition>,
    /// Each occurrence's validity window in seconds, if set (else the priority's late window).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_for_s: Option<u32>,
    /// Whether it is dispatched.
    pub enabled: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    #[schema(ignore)]
    /// Validated rule.
    pub(crate) parsed_rule: Option<Rule>,
    #[serde(skip)]
    #[schema(ignore)]
    /// Parsed time zone.
    pub(crate) tz: Option<Tz>,
}

impl Schedule {
    /// Occurrence instants in `[from, to)` inside the validity window.
    pub fn occurrences(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let (Some(rule), Some(tz)) = (&self.parsed_rule, self.tz) else {
            return Vec::new();
        };
        let from = self.valid_from.map_or(from, |v| v.max(from));
        let to = self
            .valid_until
            .map_or(to, |v| (v + Duration::milliseconds(1)).min(to));
        if to <= from {
            return Vec::new();
        }
        rule.occurrences(tz, from, to, MAX_OCCURRENCES)
    }
}

/// One occurrence in UTC and local time.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Occurrence {
    /// UTC instant.
    pub utc: DateTime<Utc>,
    /// The same instant in the schedule's time zone (RFC 3339 with offset).
    pub local: String,
}

/// An overlap at the same priority on the same device.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Overlap {
    /// Device.
    pub device: String,
    /// The other schedule.
    pub schedule_id: String,
    /// Start of this schedule's occurrence (UTC).
    pub at: DateTime<Utc>,
    /// Start of the other schedule's occurrence (UTC).
    pub other_at: DateTime<Utc>,
}

/// Warnings on creation.
#[derive(Debug, Clone, Serialize, ToSchema, Default)]
pub struct Warnings {
    /// The first overlaps found in the look-ahead window.
    pub overlaps: Vec<Overlap>,
    /// How many (device, occurrence pair) overlaps there are in total.
    pub overlap_count: usize,
    /// A relay whose stream could not be reached when it was saved: why. It was accepted;
    /// devices that get no audio play the fallback and raise `relay_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_unreachable: Option<String>,
}

/// The `201` answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Created {
    /// The schedule.
    pub schedule: Schedule,
    /// Next occurrences (up to 10) in the look-ahead window.
    pub next_occurrences: Vec<Occurrence>,
    /// Overlap warnings.
    pub warnings: Warnings,
}

/// An instant as an [`Occurrence`] in `tz`.
pub fn occurrence(tz: Tz, t: DateTime<Utc>) -> Occurrence {
    Occurrence {
        utc: t,
        local: t.with_timezone(&tz).to_rfc3339(),
    }
}

/// The union of two target sets (what a change re-publishes: old and new devices).
pub fn union(a: &Targets, b: &Targets) -> Targets {
    let areas: BTreeSet<String> = a.areas.iter().chain(&b.areas).cloned().collect();
    let devices: BTreeSet<String> = a.devices.iter().chain(&b.devices).cloned().collect();
    Targets {
        areas: areas.into_iter().collect(),
        devices: devices.into_iter().collect(),
    }
}

/// The schedule as a request body (what the edit form starts from).
pub fn as_request(s: &Schedule) -> NewSchedule {
    NewSchedule {
        title: s.title.clone(),
        media: s.media.clone(),
        targets: s.targets.clone(),
        priority: s.priority,
        rule: s.rule.clone(),
        time_zone: Some(s.time_zone.clone()),
        valid_from: s.valid_from,
        valid_until: s.valid_until,
        volume: Some(s.volume),
        repeat: Some(s.repeat),
        on_preempt: s.on_preempt,
        repetition: s.repetition.as_ref().and_then(|r| serde_json::to_value(r).ok()),
        valid_for_s: s.valid_for_s,
        relay: s.relay.clone(),
    }
}

/// What schedules and play-now commands need to know of a media file.
pub use crate::domain::media::MediaInfo;

/// A request that passed every check that needs no database ([`validate`]).
#[derive(Debug, Clone)]
pub struct Valid {
    /// The trimmed title.
    pub title: String,
    /// The validated rule.
    pub rule: Rule,
    /// The time zone's name.
    pub tz_name: String,
    /// The time zone.
    pub tz: Tz,
    /// Volume 0–100.
    pub volume: u8,
    /// Repetitions 1–100.
    pub repeat: u32,
    /// Target areas, each once, sorted.
    pub areas: BTreeSet<String>,
    /// Target devices, each once, sorted.
    pub devices: BTreeSet<String>,
    /// The repetition pattern (emergency only).
    pub repetition: Option<Repetition>,
    /// Each occurrence's validity window (s), 10–86400.
    pub valid_for_s: Option<u32>,
    /// A relay's stream, checked.
    pub relay: Option<RelayStream>,
}

impl Valid {
    /// The validated targets.
    pub fn targets(&self) -> Targets {
        Targets {
            areas: self.areas.iter().cloned().collect(),
            devices: self.devices.iter().cloned().collect(),
        }
    }
}

/// Validate a schedule request's title, rule, time zone (`default_tz` when it names none),
/// validity, volume, repeat, repetition (as a play-now's: emergency only, intervals of at least
/// `min_every_s`; 422 `invalid_repetition` naming `repetition`), window and that it has targets.
/// The first half of the one validation of creation and edit (API and console);
/// `services::schedules::check` adds what needs the database (targets exist, media approved).
pub fn validate(req: &NewSchedule, default_tz: &str, min_every_s: u32) -> Result<Valid> {
    let title = req.title.trim().to_string();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(Error::bad("invalid_title", "`title` must be 1–200 characters"));
    }
    crate::domain::text::clean_line("title", &title)?;
    let rule = Rule::parse(&req.rule)?;
    let tz_name = req.time_zone.clone().unwrap_or_else(|| default_tz.to_string());
    let tz: Tz = tz_name.parse().map_err(|_| {
        Error::bad(
            "invalid_time_zone",
            format!("`time_zone`: `{tz_name}` is not an IANA time zone"),
        )
    })?;
    if let (Some(a), Some(b)) = (req.valid_from, req.valid_until)
        && b <= a
    {
        return Err(Error::bad(
            "invalid_validity",
            "`valid_until` must be after `valid_from`",
        ));
    }
    let volume = req.volume.unwrap_or(80);
    if volume > 100 {
        return Err(Error::bad("invalid_volume", "`volume` must be 0–100"));
    }
    let repeat = req.repeat.unwrap_or(1);
    if !(1..=100).contains(&repeat) {
        return Err(Error::bad("invalid_repeat", "`repeat` must be 1–100"));
    }
    if req.targets.areas.is_empty() && req.targets.devices.is_empty() {
        return Err(Error::unprocessable(
            "targets_required",
            "`targets` must name at least one area or device",
        ));
    }
    if let Some(w) = req.valid_for_s
        && !(MIN_WINDOW_SECS..=MAX_WINDOW_SECS).contains(&i64::from(w))
    {
        return Err(Error::bad(
            "invalid_validity",
            format!(
                "`valid_for_s`: the validity window must be {MIN_WINDOW_SECS} s to {MAX_WINDOW_SECS} s, not {w} s"
            ),
        ));
    }
    let repetition = req
        .repetition
        .as_ref()
        .map(|r| repetition::resolve(r, req.priority, min_every_s))
        .transpose()?;
    let relay = req.relay.as_ref().map(relay::validate).transpose()?;
    if relay.is_some() && repetition.is_some() {
        return Err(Error::unprocessable(
            "invalid_relay",
            "`relay`: a relay does not repeat (`repetition` must be absent)",
        ));
    }
    Ok(Valid {
        title,
        rule,
        tz_name,
        tz,
        volume,
        repeat,
        areas: req.targets.areas.iter().cloned().collect(),
        devices: req.targets.devices.iter().cloned().collect(),
        repetition,
        valid_for_s: req.valid_for_s,
        relay,
    })
}

/// The new, enabled schedule `id` of a validated request, created at `now` (unix ms).
pub fn draft(id: String, v: Valid, req: &NewSchedule, now: DateTime<Utc>) -> Schedule {
    Schedule {
        id,
        targets: v.targets(),
        title: v.title,
        media: req.media.clone(),
        kind: if v.relay.is_some() { "relay" } else { "media" },
        relay: v.relay,
        priority: req.priority,
        rule: v.rule.spec(),
        time_zone: v.tz_name,
        valid_from: req.valid_from,
        valid_until: req.valid_until,
        volume: v.volume,
        repeat: v.repeat,
        on_preempt: req.on_preempt,
        repetition: v.repetition,
        valid_for_s: v.valid_for_s,
        enabled: true,
        created_at: now,
        updated_at: now,
        parsed_rule: Some(v.rule),
        tz: Some(v.tz),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> NewSchedule {
        serde_json::from_value(serde_json::json!({
            "title": "  Bản tin sáng ", "media": ["m"], "targets": {"areas": ["b", "a", "a"]},
            "rule": {"kind": "cron", "cron": "30 6 * * *"}
        }))
        .unwrap()
    }

    #[test]
    fn a_valid_request_gets_defaults_and_sorted_targets() {
        let v = validate(&req(), "Asia/Ho_Chi_Minh", 60).unwrap();
        assert_eq!(v.title, "Bản tin sáng");
        assert_eq!((v.volume, v.repeat), (80, 1));
        assert_eq!(v.tz, chrono_tz::Asia::Ho_Chi_Minh);
        assert_eq!(v.targets().areas, ["a", "b"]);
        let s = draft("id".into(), v, &req(), DateTime::UNIX_EPOCH);
        assert!(s.enabled);
        assert_eq!(as_request(&s).time_zone.as_deref(), Some("Asia/Ho_Chi_Minh"));
    }

    #[test]
    fn each_bad_value_is_refused_with_its_code() {
        type Change = fn(&mut NewSchedule);
        let cases: [(Change, &str); 6] = [
            (|r| r.title = " ".into(), "invalid_title"),
            (|r| r.time_zone = Some("Mars/Olympus".into()), "invalid_time_zone"),
            (|r| r.volume = Some(101), "invalid_volume"),
            (|r| r.repeat = Some(0), "invalid_repeat"),
            (|r| r.targets = Targets::default(), "targets_required"),
            (
                |r| {
                    r.valid_from = Some(DateTime::UNIX_EPOCH + Duration::hours(1));
                    r.valid_until = Some(DateTime::UNIX_EPOCH);
                },
                "invalid_validity",
            ),
        ];
        for (change, code) in cases {
            let mut r = req();
            change(&mut r);
            match validate(&r, "Asia/Ho_Chi_Minh", 60) {
                Err(Error::BadRequest { code: c, .. } | Error::Unprocessable { code: c, .. }) => {
                    assert_eq!(c, code)
                }
                other => panic!("{code}: {other:?}"),
            }
        }
    }
}
