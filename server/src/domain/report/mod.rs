//! The broadcast report (issues 7 and 13) as pure functions over loaded data: one row per
//! commune in the caller's scope (areas whose level is a commune; when there is none, the top
//! areas of the scope), the same figures per district (the communes' nearest district-level
//! ancestor in the area tree), and their total:
//!
//! - **items broadcast** (plays): proofs of play with outcome `played`, `played_late`, `resumed`
//!   or `interrupted` whose occurrence falls in the period, on the devices of the commune's
//!   subtree; **programmes**: the distinct media among them (one programme played 30 times is
//!   one programme, 30 plays);
//! - **minutes on air**: the sum of `ended_at − started_at` of those plays;
//! - **scheduled**: the occurrences of each schedule that fall after it was created, while it was
//!   enabled and before the earlier of now and the end of the period ([`counting`]), re-evaluated
//!   from the rule, times each loudspeaker of the commune it targets;
//! - **delivered**: distinct (loudspeaker, schedule, occurrence) among those plays that are one of
//!   the scheduled ones; **delivery rate** = delivered ÷ scheduled (never above 1);
//! - **availability**: for each loudspeaker (and, separately, each board), its online time in the
//!   period (from the status history) ÷ the part of the period it existed (registered, and not
//!   after now); per commune the mean over its devices, the total the mean over all of them;
//! - **emergencies**: distinct emergency items played, and their mean time to first play
//!   (first `started_at` − occurrence);
//! - **bulletins and boards** ([`sections`]): bulletins published in the period that reach the
//!   commune (targeted at it, an ancestor or a descendant), boards, proof of display (records,
//!   minutes on screen, distinct bulletins shown); and the breakdown of plays and displays by
//!   language and content category.
//!
//! [`Units::new`] places the devices in the rows; the service then reads the availability of
//! [`Units::speakers`] and [`Units::boards`], the plays, schedules, displays and bulletins of the
//! period, and [`Units::aggregate`] counts them. [`period`] holds the report's periods,
//! [`counting`] what is scheduled, [`sections`] the bulletin and breakdown sections and the form
//! (reporting unit, header, signature), [`records`] the API's proof-of-play, event and
//! command-ack records.

pub mod counting;
pub mod engagement;
pub mod period;
pub mod policy;
pub mod records;
pub mod sections;

use std::collections::{BTreeMap, HashMap, HashSet};

use nguon_protocol::{PlayOutcome, Priority};
use serde::Serialize;

use crate::domain::area::AreaTree;
use crate::domain::scope::Caller;
pub use sections::{Breakdown, PublishedBulletin, ReportDisplay};

/// The device kind the report schedules (boards' plays count as items, but a board is no
/// loudspeaker: it is never scheduled; its availability is counted apart).
pub const LOUDSPEAKER: &str = "loudspeaker";
/// The bulletin board kind.
pub const BOARD: &str = "board";

/// Whether a level names a commune (xã / phường / thị trấn).
pub fn is_commune(level: &str) -> bool {
    matches!(
        level.to_lowercase().as_str(),
        "commune" | "ward" | "township" | "xa" | "xã" | "phuong" | "phường" | "thị trấn" | "thi tran"
    )
}

/// Whether a level names a district (huyện / quận / thị xã / thành phố thuộc tỉnh).
pub fn is_district(level: &str) -> bool {
    matches!(
        level.to_lowercase().as_str(),
        "district" | "huyen" | "huyện" | "quan" | "quận" | "thị xã" | "thi xa" | "town" | "city"
    )
}

/// Whether a proof of play counts as on air: played (on time or late), resumed or interrupted.
pub fn on_air(outcome: Option<PlayOutcome>) -> bool {
    matches!(
        outcome,
        Some(PlayOutcome::Played | PlayOutcome::PlayedLate | PlayOutcome::Resumed | PlayOutcome::Interrupted)
    )
}

/// An area as the report reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaRow {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Parent code.
    pub parent: Option<String>,
    /// Level (`province`, `commune`, `village`...).
    pub level: String,
}

/// A device as the report reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportDevice {
    /// Id.
    pub id: String,
    /// `loudspeaker` or `board`.
    pub kind: String,
    /// Area.
    pub area: String,
    /// Registered (unix ms).
    pub created_at: i64,
    /// Online now.
    pub online: bool,
}

/// A proof of play as the report reads it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportPlay {
    /// Device.
    pub device_id: String,
    /// Schedule (empty for a command).
    pub schedule_id: String,
    /// Occurrence (manifest item) id, or command id.
    pub item_id: String,
    /// Scheduled instant (unix ms).
    pub occurrence_at: i64,
    /// First media file (the programme).
    pub sha256: String,
    /// Priority (`None`: a stored name this server does not know).
    pub priority: Option<Priority>,
    /// Outcome (`None`: a stored name this server does not know).
    pub outcome: Option<PlayOutcome>,
    /// Started (unix ms).
    pub started_at: Option<i64>,
    /// Ended (unix ms).
    pub ended_at: Option<i64>,
    /// Language of the content (a bulletin's speech), empty when unknown.
    pub language: String,
    /// Content category (a bulletin's), empty when unknown.
    pub category: String,
}

/// A schedule as the report counts it: its counted occurrences in the period
/// ([`counting::occurrences_in`]) and its targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    /// Schedule id.
    pub id: String,
    /// Counted occurrences (unix ms).
    pub occurrences: Vec<i64>,
    /// Target areas (their subtrees are targeted).
    pub areas: Vec<String>,
    /// Target devices.
    pub devices: Vec<String>,
}

/// A device and when it was registered: what the availability is read for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Speaker {
    /// Id.
    pub id: String,
    /// Registered (unix ms).
    pub created_at: i64,
}

/// One report row (a commune or a district) or the total.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AreaReport {
    /// Area code (empty for the total).
    pub code: String,
    /// Area name.
    pub name: String,
    /// The district the commune lies in (empty: none in the area tree; districts and the total
    /// leave it empty).
    pub district: String,
    /// Loudspeakers in the area's subtree.
    pub devices: i64,
    /// Loudspeakers online now.
    pub online: i64,
    /// Loudspeakers that existed during the period (those the availability is the mean over).
    pub availability_devices: i64,
    /// Plays that went on air.
    pub items: i64,
    /// Distinct programmes (media) among them.
    pub programmes: i64,
    /// Minutes on air.
    pub minutes: f64,
    /// Scheduled (device, occurrence) pairs.
    pub scheduled: i64,
    /// Of which played.
    pub delivered: i64,
    /// delivered ÷ scheduled (None when nothing was scheduled).
    pub delivery_rate: Option<f64>,
    /// Mean over the loudspeakers that existed in the period of (online time in the period ÷ the
    /// part of the period the loudspeaker existed); None when there is none.
    pub availability: Option<f64>,
    /// Distinct emergency items on air.
    pub emergencies: i64,
    /// Mean time to first play of those emergencies, seconds.
    pub ttfp_seconds: Option<f64>,
    /// Bulletins published in the period that reach the area.
    pub bulletins_published: i64,
    /// Bulletin boards in the area's subtree.
    pub boards: i64,
    /// Boards online now.
    pub boards_online: i64,
    /// Mean availability of the boards that existed in the period.
    pub board_availability: Option<f64>,
    /// Proof-of-display records in the period.
    pub displays: i64,
    /// Minutes on screen of those records.
    pub display_minutes: f64,
    /// Distinct bulletins shown.
    pub bulletins_shown: i64,
    #[serde(skip)]
    ttfp_sum_ms: i64,
    #[serde(skip)]
    availability_sum: f64,
    #[serde(skip)]
    board_availability_sum: f64,
    #[serde(skip)]
    board_availability_devices: i64,
}

impl AreaReport {
    fn named(code: &str, name: &str) -> AreaReport {
        AreaReport {
            code: code.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    /// Add the counts of `r` (distinct counts are set afterwards from their sets).
    fn add(&mut self, r: &AreaReport) {
        self.devices += r.devices;
        self.online += r.online;
        self.availability_devices += r.availability_devices;
        self.availability_sum += r.availability_sum;
        self.items += r.items;
        self.minutes += r.minutes;
        self.scheduled += r.scheduled;
        self.delivered += r.delivered;
        self.emergencies += r.emergencies;
        self.ttfp_sum_ms += r.ttfp_sum_ms;
        self.boards += r.boards;
        self.boards_online += r.boards_online;
        self.board_availability_sum += r.board_availability_sum;
        self.board_availability_devices += r.board_availability_devices;
        self.displays += r.displays;
        self.display_minutes += r.display_minutes;
    }

    fn finish(&mut self) {
        self.delivery_rate = (self.scheduled > 0).then(|| self.delivered as f64 / self.scheduled as f64);
        self.availability =
            (self.availability_devices > 0).then(|| self.availability_sum / self.availability_devices as f64);
        self.board_availability = (self.board_availability_devices > 0)
            .then(|| self.board_availability_sum / self.board_availability_devices as f64);
        self.ttfp_seconds =
            (self.emergencies > 0).then(|| self.ttfp_sum_ms as f64 / 1000.0 / self.emergencies as f64);
    }
}

/// A computed report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Period start, unix ms (inclusive).
    pub from_ms: i64,
    /// Period end, unix ms (exclusive).
    pub to_ms: i64,
    /// One row per commune.
    pub rows: Vec<AreaReport>,
    /// One row per district (sums of its communes; communes under no district are under an
    /// empty code).
    pub districts: Vec<AreaReport>,
    /// Sums over the rows.
    pub total: AreaReport,
    /// Plays and displays by language and by content category.
    pub breakdown: Vec<Breakdown>,
}

/// What [`Units::aggregate`] counts, loaded by the service for the period.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// Each device's ratio of online time (speakers and boards; those that did not exist in the
    /// period are absent).
    pub availability: HashMap<String, f64>,
    /// The proofs of play whose occurrence falls in the period.
    pub plays: Vec<ReportPlay>,
    /// Every schedule with its counted occurrences.
    pub scheduled: Vec<Scheduled>,
    /// The proof-of-display records that started in the period.
    pub displays: Vec<ReportDisplay>,
    /// The bulletins published in the period.
    pub bulletins: Vec<PublishedBulletin>,
}

/// The report's rows for a caller and where each device counts: the first step of a report.
#[derive(Debug, Clone)]
pub struct Units {
    rows: BTreeMap<String, AreaReport>,
    /// Device (any kind) → its row.
    device_unit: HashMap<String, String>,
    /// Area → the loudspeakers registered in it (with a row).
    speakers_by_area: HashMap<String, Vec<String>>,
    /// Loudspeaker → its row.
    speaker_unit: HashMap<String, String>,
    speakers: Vec<Speaker>,
    boards: Vec<Speaker>,
    /// District code → name.
    districts: BTreeMap<String, String>,
}

impl Units {
    /// The rows of `caller`'s report over `areas` (by code, with `tree` built from the same rows),
    /// with each in-scope device placed in the row of the nearest row area at or above its area,
    /// and the loudspeakers and boards counted (and those online now).
    pub fn new(
        caller: &Caller,
        areas: &BTreeMap<String, AreaRow>,
        tree: &AreaTree,
        devices: &[ReportDevice],
    ) -> Units {
        let mut units: Vec<&AreaRow> = areas
            .values()
            .filter(|a| caller.in_scope(&a.code) && is_commune(&a.level))
            .collect();
        if units.is_empty() {
            units = areas
                .values()
                .filter(|a| {
                    caller.in_scope(&a.code)
                        && a.parent
                            .as_ref()
                            .is_none_or(|p| !caller.in_scope(p) || !areas.contains_key(p))
                })
                .collect();
        }
        let unit_set: HashSet<&str> = units.iter().map(|a| a.code.as_str()).collect();
        let mut districts = BTreeMap::new();
        let rows: BTreeMap<String, AreaReport> = units
            .iter()
            .map(|a| {
                let mut r = AreaReport::named(&a.code, &a.name);
                if let Some(d) = tree
                    .chain(&a.code)
                    .into_iter()
                    .skip(1)
                    .filter_map(|c| areas.get(&c))
                    .find(|c| is_district(&c.level))
                {
                    r.district = d.code.clone();
                    districts.insert(d.code.clone(), d.name.clone());
                }
                (a.code.clone(), r)
            })
            .collect();
        let mut out = Units {
            rows,
            device_unit: HashMap::new(),
            speakers_by_area: HashMap::new(),
            speaker_unit: HashMap::new(),
            speakers: Vec::new(),
            boards: Vec::new(),
            districts,
        };
        for d in devices {
            if !caller.in_scope(&d.area) {
                continue;
            }
            let Some(u) = tree
                .chain(&d.area)
                .into_iter()
                .find(|c| unit_set.contains(c.as_str()))
            else {
                continue;
            };
            let row = out.rows.get_mut(&u).expect("unit row");
            let me = Speaker {
                id: d.id.clone(),
                created_at: d.created_at,
            };
            if d.kind == LOUDSPEAKER {
                row.devices += 1;
                row.online += i64::from(d.online);
                out.speakers_by_area
                    .entry(d.area.clone())
                    .or_default()
                    .push(d.id.clone());
                out.speaker_unit.insert(d.id.clone(), u.clone());
                out.speakers.push(me);
            } else if d.kind == BOARD {
                row.boards += 1;
                row.boards_online += i64::from(d.online);
                out.boards.push(me);
            }
            out.device_unit.insert(d.id.clone(), u);
        }
        out
    }

    /// The loudspeakers counted in some row, in the order of the devices given to [`Units::new`]:
    /// the report needs their availability.
    pub fn speakers(&self) -> &[Speaker] {
        &self.speakers
    }

    /// The boards counted in some row: the report needs their availability too.
    pub fn boards(&self) -> &[Speaker] {
        &self.boards
    }

    /// The codes of the report's rows (communes).
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.rows.keys().map(String::as_str)
    }

    /// Count the period `[from_ms, to_ms)` from what the service loaded (`tree`: the area tree).
    pub fn aggregate(mut self, l: &Loaded, tree: &AreaTree, (from_ms, to_ms): (i64, i64)) -> Report {
        let rows = &mut self.rows;
        let mut distinct = sections::Distinct::default();
        for (id, ratio) in &l.availability {
            let Some(row) = self.device_unit.get(id).and_then(|u| rows.get_mut(u)) else {
                continue;
            };
            if self.speaker_unit.contains_key(id) {
                row.availability_devices += 1;
                row.availability_sum += ratio;
            } else {
                row.board_availability_devices += 1;
                row.board_availability_sum += ratio;
            }
        }

        // What is scheduled: per schedule, its counted occurrences and target loudspeakers.
        let mut targets_of: HashMap<&str, (HashSet<i64>, HashSet<&str>)> = HashMap::new();
        for s in l.scheduled.iter().filter(|s| !s.occurrences.is_empty()) {
            let mut targets: HashSet<&str> = HashSet::new();
            for a in tree.subtree(&s.areas) {
                if let Some(list) = self.speakers_by_area.get(&a) {
                    targets.extend(list.iter().map(String::as_str));
                }
            }
            targets.extend(
                s.devices
                    .iter()
                    .filter(|d| self.speaker_unit.contains_key(*d))
                    .map(String::as_str),
            );
            for d in &targets {
                let u = &self.speaker_unit[*d];
                rows.get_mut(u).expect("unit row").scheduled += s.occurrences.len() as i64;
            }
            targets_of.insert(s.id.as_str(), (s.occurrences.iter().copied().collect(), targets));
        }

        let mut delivered: HashSet<(&str, &str, i64)> = HashSet::new();
        let mut first_emergency: HashMap<(&str, &str), i64> = HashMap::new(); // (unit, item) → ttfp ms
        let mut breakdown = sections::BreakdownBuilder::default();
        for p in &l.plays {
            let Some(u) = self.device_unit.get(&p.device_id) else {
                continue;
            };
            if !on_air(p.outcome) {
                continue;
            }
            let row = rows.get_mut(u).expect("unit row");
            row.items += 1;
            let mut minutes = 0.0;
            if let (Some(s), Some(e)) = (p.started_at, p.ended_at)
                && e > s
            {
                minutes = (e - s) as f64 / 60_000.0;
                row.minutes += minutes;
            }
            breakdown.play(&p.language, &p.category, minutes);
            distinct.programme(u, &row.district, &p.sha256);
            if let Some((occ, targets)) = targets_of.get(p.schedule_id.as_str())
                && occ.contains(&p.occurrence_at)
                && targets.contains(p.device_id.as_str())
                && delivered.insert((&p.device_id, &p.schedule_id, p.occurrence_at))
            {
                row.delivered += 1;
            }
            if p.priority == Some(Priority::Emergency) {
                let t = p.started_at.map_or(0, |s| (s - p.occurrence_at).max(0));
                first_emergency
                    .entry((u, &p.item_id))
                    .and_modify(|v| *v = (*v).min(t))
                    .or_insert(t);
            }
        }
        for ((u, _), t) in first_emergency {
            let row = rows.get_mut(u).expect("unit row");
            row.emergencies += 1;
            row.ttfp_sum_ms += t;
        }
        for d in &l.displays {
            let Some(u) = self.device_unit.get(&d.device_id) else {
                continue;
            };
            let row = rows.get_mut(u).expect("unit row");
            let minutes = (d.shown_to - d.shown_from).max(0) as f64 / 60_000.0;
            row.displays += 1;
            row.display_minutes += minutes;
            breakdown.display(&d.language, &d.category, minutes);
            distinct.shown(u, &row.district, &d.bulletin_id);
        }
        for b in &l.bulletins {
            for (u, row) in rows.iter() {
                if b.targets
                    .iter()
                    .any(|t| tree.is_within(u, t) || tree.is_within(t, u))
                {
                    distinct.published(u, &row.district, &b.id);
                }
            }
        }

        let mut total = AreaReport::default();
        let mut districts: BTreeMap<String, AreaReport> = BTreeMap::new();
        let mut out = Vec::new();
        for (_, mut r) in self.rows {
            total.add(&r);
            let name = self.districts.get(&r.district).cloned().unwrap_or_default();
            districts
                .entry(r.district.clone())
                .or_insert_with(|| AreaReport::named(&r.district, &name))
                .add(&r);
            distinct.set_row(&mut r);
            r.finish();
            out.push(r);
        }
        let mut districts: Vec<AreaReport> = districts.into_values().collect();
        for d in &mut districts {
            distinct.set_district(d);
            d.finish();
        }
        distinct.set_total(&mut total);
        total.finish();
        Report {
            from_ms,
            to_ms,
            rows: out,
            districts,
            total,
            breakdown: breakdown.finish(),
        }
    }
}

#[cfg(test)]
mod tests;
