//! Commune autonomy (Circular 39, issue 16; docs/autonomy.md), with no I/O. A commune (xã) whose
//! setting is on ([`Setting`]) decides on the province content that reaches it from above (a
//! schedule targeting one of its ancestors):
//!
//! - **normal** content needs the commune's acceptance (tiếp nhận): accept, decline (with a
//!   reason) or choose another slot; until then it is not in the commune's devices' manifests. If
//!   nobody answers `[autonomy] answer_lead_s` (default 5 min) before its first occurrence, the
//!   commune's [`Unanswered`] policy decides (default: it plays) and the outcome is recorded;
//! - **priority** content whose occurrences overlap the commune's own item (every target inside
//!   the commune) asks the commune which plays first; until it answers, the province item plays
//!   first and the commune's item follows it;
//! - **emergency** content is never asked about: it plays at once.
//!
//! [`needed`] lists the questions the current schedules raise, [`plan`] turns the stored answers
//! into what each commune's manifests lose, move or reorder, and [`apply`] (in `apply.rs`) does
//! that to the computed manifests.

pub mod apply;
pub mod report;

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use nguon_protocol::Priority;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use apply::apply;

use crate::domain::manifest::Fleet;
use crate::domain::schedule::Schedule;
use crate::error::{Error, Result};

/// What happens to normal province content a commune never answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unanswered {
    /// It plays as the province scheduled it (coi như đồng ý: the default).
    #[default]
    Play,
    /// It does not play in the commune.
    Skip,
}

impl Unanswered {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Unanswered::Play => "play",
            Unanswered::Skip => "skip",
        }
    }

    /// Parse a stored name (anything else is the default).
    pub fn parse(s: &str) -> Unanswered {
        if s == "skip" {
            Unanswered::Skip
        } else {
            Unanswered::Play
        }
    }
}

/// A commune's autonomy setting (absent: off).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Setting {
    /// Area code of the commune.
    pub area: String,
    /// Whether the commune decides on province content reaching it (default off).
    pub enabled: bool,
    /// What happens to normal content it does not answer in time.
    pub unanswered: Unanswered,
    /// Unix ms it was last turned on: content created or changed before then plays as before.
    pub enabled_since: i64,
    /// Unix ms of the last change.
    pub updated_at: i64,
    /// Who changed it last.
    pub updated_by: String,
}

/// Body of `PUT /api/v1/areas/{code}/autonomy`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingIn {
    /// Turn the commune's decisions on or off.
    pub enabled: bool,
    /// `play` (default) or `skip`.
    #[serde(default)]
    pub unanswered: Option<Unanswered>,
}

/// What a question is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Normal province content awaiting the commune's acceptance.
    Acceptance,
    /// Priority province content clashing with the commune's own item: which plays first.
    Order,
}

impl Kind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Acceptance => "acceptance",
            Kind::Order => "order",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Kind {
        if s == "order" {
            Kind::Order
        } else {
            Kind::Acceptance
        }
    }
}

/// Where a question stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Not answered yet (chờ xã tiếp nhận).
    Pending,
    /// Accepted: plays as scheduled.
    Accepted,
    /// Declined: never reaches the commune's devices.
    Declined,
    /// Moved to another slot in this commune.
    Reslotted,
    /// Nobody answered in time: `outcome` says whether it played.
    Unanswered,
    /// An order question answered (`first`).
    Ordered,
}

impl State {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Accepted => "accepted",
            State::Declined => "declined",
            State::Reslotted => "reslotted",
            State::Unanswered => "unanswered",
            State::Ordered => "ordered",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> State {
        match s {
            "accepted" => State::Accepted,
            "declined" => State::Declined,
            "reslotted" => State::Reslotted,
            "unanswered" => State::Unanswered,
            "ordered" => State::Ordered,
            _ => State::Pending,
        }
    }
}

/// Which of two clashing items plays first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum First {
    /// The province's priority item (the default until the commune answers).
    #[default]
    Province,
    /// The commune's own item.
    Commune,
}

impl First {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            First::Province => "province",
            First::Commune => "commune",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> First {
        if s == "commune" {
            First::Commune
        } else {
            First::Province
        }
    }
}

/// A question put to a commune, and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Request {
    /// Id (uuid).
    pub id: String,
    /// The commune's area code.
    pub area: String,
    /// `acceptance` or `order`.
    pub kind: Kind,
    /// The province schedule.
    pub schedule_id: String,
    /// Its title.
    pub title: String,
    /// Order questions: the commune's own schedule it clashes with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_id: Option<String>,
    /// Its title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_title: Option<String>,
    /// The first occurrence concerned (UTC): the first one after the question was asked; for an
    /// order question the first that clashes.
    pub first_at: Option<DateTime<Utc>>,
    /// Where it stands.
    pub state: State,
    /// A re-slotted item's new start (UTC) in this commune.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot_at: Option<DateTime<Utc>>,
    /// Why it was declined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// An order question's answer (absent: the default, `province`, applies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first: Option<First>,
    /// An unanswered question: `played` or `skipped`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// When it was asked.
    pub asked_at: DateTime<Utc>,
    /// When it was answered (or found unanswered).
    pub answered_at: Option<DateTime<Utc>>,
    /// Who answered (`system` for an unanswered question).
    pub answered_by: Option<String>,
    /// The schedule revision asked about (unix ms of its last change; an order question: the
    /// later of the two).
    #[serde(skip)]
    #[schema(ignore)]
    pub revision: i64,
}

/// What a commune answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Tiếp nhận.
    Accept,
    /// Từ chối (with a reason).
    Decline,
    /// Chọn giờ khác (`slot_at`).
    Reslot,
    /// Order question: `first` plays first.
    Order,
}

/// Body of `POST /api/v1/autonomy/requests/{id}/answer`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// `accept`, `decline`, `reslot` (acceptance questions) or `order` (order questions).
    pub decision: Decision,
    /// Decline: why (required).
    #[serde(default)]
    pub reason: Option<String>,
    /// Reslot: the new start (RFC 3339, in the future).
    #[serde(default)]
    pub slot_at: Option<DateTime<Utc>>,
    /// Order: which plays first.
    #[serde(default)]
    pub first: Option<First>,
}

/// Longest decline reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// The question `r` answered with `a` at `now` (422 naming what is wrong).
pub fn answered(r: &Request, a: &Answer, by: &str, now: DateTime<Utc>) -> Result<Request> {
    let bad =
        |code: &'static str, m: &str| -> Result<Request> { Err(Error::unprocessable(code, m.to_string())) };
    let mut out = Request {
        state: State::Pending,
        slot_at: None,
        reason: None,
        first: None,
        outcome: None,
        answered_at: Some(now),
        answered_by: Some(by.to_string()),
        ..r.clone()
    };
    match (r.kind, a.decision) {
        (Kind::Acceptance, Decision::Accept) => out.state = State::Accepted,
        (Kind::Acceptance, Decision::Decline) => {
            let reason = a.reason.as_deref().map(str::trim).unwrap_or("");
            if reason.is_empty() {
                return bad("reason_required", "`reason`: say why the commune declines");
            }
            if reason.chars().count() > MAX_REASON_CHARS {
                return bad("reason_too_long", "`reason`: at most 500 characters");
            }
            out.state = State::Declined;
            out.reason = Some(reason.to_string());
        }
        (Kind::Acceptance, Decision::Reslot) => {
            let Some(slot) = a.slot_at else {
                return bad("slot_required", "`slot_at`: choose the new start");
            };
            if slot <= now {
                return bad("slot_in_past", "`slot_at` must be in the future");
            }
            if r.first_at.is_none() {
                return bad(
                    "no_occurrence",
                    "the item has no occurrence in the look-ahead window to move",
                );
            }
            out.state = State::Reslotted;
            out.slot_at = Some(slot);
        }
        (Kind::Order, Decision::Order) => {
            let Some(first) = a.first else {
                return bad("first_required", "`first`: `province` or `commune`");
            };
            out.state = State::Ordered;
            out.first = Some(first);
        }
        (Kind::Acceptance, Decision::Order) => {
            return bad(
                "wrong_decision",
                "an acceptance question takes accept, decline or reslot",
            );
        }
        (Kind::Order, _) => {
            return bad("wrong_decision", "an order question takes `order` with `first`");
        }
    }
    Ok(out)
}

/// A question the current schedules raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needed {
    /// The commune.
    pub area: String,
    /// What about.
    pub kind: Kind,
    /// The province schedule.
    pub schedule_id: String,
    /// Order questions: the commune's own schedule ("" for acceptance).
    pub other_id: String,
    /// The revision asked about (unix ms).
    pub revision: i64,
    /// The first occurrence concerned (unix ms), if one is in the window.
    pub first_at: Option<i64>,
}

impl Needed {
    /// Its key: commune, kind, schedule, other schedule.
    pub fn key(&self) -> (String, Kind, String, String) {
        (
            self.area.clone(),
            self.kind,
            self.schedule_id.clone(),
            self.other_id.clone(),
        )
    }
}

/// Whether `s` reaches the commune `area` from above: one of its target areas is a strict
/// ancestor of the commune.
pub fn from_above(fleet: &Fleet, s: &Schedule, area: &str) -> bool {
    s.targets
        .areas
        .iter()
        .any(|a| a != area && fleet.tree.is_within(area, a))
}

/// Whether `s` is the commune's own: it has targets and every one is inside the commune.
pub fn own(fleet: &Fleet, device_area: &HashMap<&str, &str>, s: &Schedule, area: &str) -> bool {
    (!s.targets.areas.is_empty() || !s.targets.devices.is_empty())
        && s.targets.areas.iter().all(|a| fleet.tree.is_within(a, area))
        && s.targets.devices.iter().all(|d| {
            device_area
                .get(d.as_str())
                .is_some_and(|a| fleet.tree.is_within(a, area))
        })
}

/// The questions the enabled `schedules` raise for the enabled communes of `settings` in the
/// window `[now, now + lookahead)`: an acceptance question per normal schedule from above changed
/// since the commune turned its setting on, an order question per (priority schedule from
/// above, the commune's own non-emergency schedule) whose occurrences overlap. `dur_ms` is one
/// occurrence's length.
pub fn needed(
    fleet: &Fleet,
    settings: &[Setting],
    schedules: &[Schedule],
    dur_ms: &dyn Fn(&Schedule) -> i64,
    now: DateTime<Utc>,
    lookahead: Duration,
) -> Vec<Needed> {
    let device_area: HashMap<&str, &str> = fleet
        .devices
        .iter()
        .map(|d| (d.id.as_str(), d.area.as_str()))
        .collect();
    let end = now + lookahead;
    let mut out = Vec::new();
    for c in settings.iter().filter(|c| c.enabled) {
        let above: Vec<&Schedule> = schedules
            .iter()
            .filter(|s| s.enabled && from_above(fleet, s, &c.area))
            .collect();
        if above.is_empty() {
            continue;
        }
        let mine: Vec<&Schedule> = schedules
            .iter()
            .filter(|o| {
                o.enabled && o.priority != Priority::Emergency && own(fleet, &device_area, o, &c.area)
            })
            .collect();
        for s in above {
            let rev = s.updated_at.timestamp_millis();
            match s.priority {
                Priority::Normal if rev >= c.enabled_since => out.push(Needed {
                    area: c.area.clone(),
                    kind: Kind::Acceptance,
                    schedule_id: s.id.clone(),
                    other_id: String::new(),
                    revision: rev,
                    first_at: s.occurrences(now, end).first().map(|t| t.timestamp_millis()),
                }),
                Priority::Priority => {
                    let ds = Duration::milliseconds(dur_ms(s).max(1));
                    let starts = s.occurrences(now - ds, end);
                    for o in &mine {
                        let d_o = Duration::milliseconds(dur_ms(o).max(1));
                        let theirs = o.occurrences(now - d_o, end);
                        if let Some(t) = first_clash(&starts, ds, &theirs, d_o) {
                            out.push(Needed {
                                area: c.area.clone(),
                                kind: Kind::Order,
                                schedule_id: s.id.clone(),
                                other_id: o.id.clone(),
                                revision: rev.max(o.updated_at.timestamp_millis()),
                                first_at: Some(t.timestamp_millis()),
                            });
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// The first start of `a` (each lasting `da`) whose interval overlaps one of `b` (each lasting
/// `db`); both sorted.
pub fn first_clash(
    a: &[DateTime<Utc>],
    da: Duration,
    b: &[DateTime<Utc>],
    db: Duration,
) -> Option<DateTime<Utc>> {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] < b[j] + db && b[j] < a[i] + da {
            return Some(a[i]);
        }
        if a[i] + da <= b[j] + db { i += 1 } else { j += 1 }
    }
    None
}

/// What one commune's manifests lose, move or reorder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommunePlan {
    /// The commune.
    pub area: String,
    /// Schedules not played as scheduled there (pending, declined, skipped, or re-slotted).
    pub hidden: BTreeSet<String>,
    /// Re-slotted schedules: id and the shift of each occurrence (slot − first occurrence).
    pub reslot: Vec<(String, Duration)>,
    /// Order questions: province schedule, the commune's own, which plays first.
    pub orders: Vec<(String, String, First)>,
}

/// The plan of every enabled commune from the stored `requests` that match a current question
/// of `needed` (same key and revision; others are stale and ignored).
pub fn plan(settings: &[Setting], needed: &[Needed], requests: &[Request]) -> Vec<CommunePlan> {
    let current: HashMap<(String, Kind, String, String), i64> =
        needed.iter().map(|n| (n.key(), n.revision)).collect();
    let mut out = Vec::new();
    for c in settings.iter().filter(|c| c.enabled) {
        let mut p = CommunePlan {
            area: c.area.clone(),
            ..CommunePlan::default()
        };
        for r in requests.iter().filter(|r| r.area == c.area) {
            let key = (
                r.area.clone(),
                r.kind,
                r.schedule_id.clone(),
                r.other_id.clone().unwrap_or_default(),
            );
            if current.get(&key) != Some(&r.revision) {
                continue;
            }
            match (r.kind, r.state) {
                (Kind::Acceptance, State::Pending | State::Declined) => {
                    p.hidden.insert(r.schedule_id.clone());
                }
                (Kind::Acceptance, State::Unanswered) if r.outcome.as_deref() == Some("skipped") => {
                    p.hidden.insert(r.schedule_id.clone());
                }
                (Kind::Acceptance, State::Reslotted) => {
                    p.hidden.insert(r.schedule_id.clone());
                    if let (Some(slot), Some(first)) = (r.slot_at, r.first_at) {
                        p.reslot.push((r.schedule_id.clone(), slot - first));
                    }
                }
                (Kind::Order, _) => p.orders.push((
                    r.schedule_id.clone(),
                    r.other_id.clone().unwrap_or_default(),
                    r.first.unwrap_or_default(),
                )),
                _ => {}
            }
        }
        // A question not stored yet: pending (hidden), or the default order.
        for n in needed.iter().filter(|n| n.area == c.area) {
            let stored = requests.iter().any(|r| {
                r.area == n.area
                    && r.kind == n.kind
                    && r.schedule_id == n.schedule_id
                    && r.other_id.as_deref().unwrap_or("") == n.other_id
                    && r.revision == n.revision
            });
            if stored {
                continue;
            }
            match n.kind {
                Kind::Acceptance => {
                    p.hidden.insert(n.schedule_id.clone());
                }
                Kind::Order => p
                    .orders
                    .push((n.schedule_id.clone(), n.other_id.clone(), First::Province)),
            }
        }
        if !p.hidden.is_empty() || !p.reslot.is_empty() || !p.orders.is_empty() {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests;
