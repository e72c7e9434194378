//! The broadcast report (issue 7) as pure functions over loaded data: one row per commune in the
//! caller's scope (areas whose level is a commune; when there is none, the top areas of the
//! scope), and their total:
//!
//! - **items broadcast**: proofs of play with outcome `played`, `played_late`, `resumed` or `interrupted` whose
//!   occurrence falls in the period, on the devices of the commune's subtree;
//! - **minutes on air**: the sum of `ended_at − started_at` of those plays;
//! - **scheduled**: occurrences of the enabled schedules in the period, re-evaluated from their
//!   rules (not from published manifests), times each loudspeaker of the commune they target;
//! - **delivered**: distinct (device, schedule, occurrence) among those plays whose schedule exists;
//!   **delivery rate** = delivered ÷ scheduled;
//! - **availability**: for each loudspeaker, its online time in the period (from the status
//!   history) ÷ the part of the period it existed (registered, and not after now); per commune the
//!   mean over its loudspeakers, the total the mean over all of them;
//! - **emergencies**: distinct emergency items played, and their mean time to first play
//!   (first `started_at` − occurrence).
//!
//! [`Units::new`] places the devices in the rows; the service then reads the availability of
//! [`Units::speakers`] and the plays and schedules of the period, and [`Units::aggregate`] counts
//! them. [`period`] holds the report's periods, [`records`] the API's proof-of-play, event and
//! command-ack records.

pub mod period;
pub mod records;

use std::collections::{BTreeMap, HashMap, HashSet};

use nguon_protocol::{PlayOutcome, Priority};
use serde::Serialize;

use crate::domain::area::AreaTree;
use crate::domain::scope::Caller;

/// The device kind the report counts (boards' plays count as items, but a board is no
/// loudspeaker: it is never scheduled and has no availability).
pub const LOUDSPEAKER: &str = "loudspeaker";

/// Whether a level names a commune (xã / phường / thị trấn).
pub fn is_commune(level: &str) -> bool {
    matches!(
        level.to_lowercase().as_str(),
        "commune" | "ward" | "xa" | "xã" | "phuong" | "phường"
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportPlay {
    /// Device.
    pub device_id: String,
    /// Schedule (empty for a command).
    pub schedule_id: String,
    /// Occurrence (manifest item) id, or command id.
    pub item_id: String,
    /// Scheduled instant (unix ms).
    pub occurrence_at: i64,
    /// Priority (`None`: a stored name this server does not know).
    pub priority: Option<Priority>,
    /// Outcome (`None`: a stored name this server does not know).
    pub outcome: Option<PlayOutcome>,
    /// Started (unix ms).
    pub started_at: Option<i64>,
    /// Ended (unix ms).
    pub ended_at: Option<i64>,
}

/// An enabled schedule as the report counts it: its occurrences in the period and its targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    /// Occurrences in the period.
    pub occurrences: i64,
    /// Target areas (their subtrees are targeted).
    pub areas: Vec<String>,
    /// Target devices.
    pub devices: Vec<String>,
}

/// A loudspeaker and when it was registered: what the availability is read for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Speaker {
    /// Id.
    pub id: String,
    /// Registered (unix ms).
    pub created_at: i64,
}

/// One report row (a commune) or the total.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AreaReport {
    /// Area code (empty for the total).
    pub code: String,
    /// Area name.
    pub name: String,
    /// Loudspeakers in the area's subtree.
    pub devices: i64,
    /// Loudspeakers online now.
    pub online: i64,
    /// Loudspeakers that existed during the period (those the availability is the mean over).
    pub availability_devices: i64,
    /// Plays that went on air.
    pub items: i64,
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
    #[serde(skip)]
    ttfp_sum_ms: i64,
    #[serde(skip)]
    availability_sum: f64,
}

impl AreaReport {
    fn finish(&mut self) {
        self.delivery_rate = (self.scheduled > 0).then(|| self.delivered as f64 / self.scheduled as f64);
        self.availability =
            (self.availability_devices > 0).then(|| self.availability_sum / self.availability_devices as f64);
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
    /// Sums over the rows.
    pub total: AreaReport,
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
}

impl Units {
    /// The rows of `caller`'s report over `areas` (by code, with `tree` built from the same rows),
    /// with each in-scope device placed in the row of the nearest row area at or above its area,
    /// and the loudspeakers counted (and those online now).
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
        let rows: BTreeMap<String, AreaReport> = units
            .iter()
            .map(|a| {
                (
                    a.code.clone(),
                    AreaReport {
                        code: a.code.clone(),
                        name: a.name.clone(),
                        ..Default::default()
                    },
                )
            })
            .collect();
        let mut out = Units {
            rows,
            device_unit: HashMap::new(),
            speakers_by_area: HashMap::new(),
            speaker_unit: HashMap::new(),
            speakers: Vec::new(),
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
            if d.kind == LOUDSPEAKER {
                let row = out.rows.get_mut(&u).expect("unit row");
                row.devices += 1;
                row.online += i64::from(d.online);
                out.speakers_by_area
                    .entry(d.area.clone())
                    .or_default()
                    .push(d.id.clone());
                out.speaker_unit.insert(d.id.clone(), u.clone());
                out.speakers.push(Speaker {
                    id: d.id.clone(),
                    created_at: d.created_at,
                });
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

    /// Count the period `[from_ms, to_ms)`: `availability` is each loudspeaker's ratio of online
    /// time (those that did not exist in the period are absent), `plays` the proofs of play whose
    /// occurrence falls in the period, `known` the ids of every stored schedule (enabled or not),
    /// `scheduled` the enabled schedules' occurrences and targets, `tree` the area tree.
    pub fn aggregate<'a>(
        mut self,
        availability: impl IntoIterator<Item = (&'a str, f64)>,
        plays: &[ReportPlay],
        known: &HashSet<&str>,
        scheduled: &[Scheduled],
        tree: &AreaTree,
        (from_ms, to_ms): (i64, i64),
    ) -> Report {
        let rows = &mut self.rows;
        for (id, ratio) in availability {
            if let Some(row) = self.speaker_unit.get(id).and_then(|u| rows.get_mut(u)) {
                row.availability_devices += 1;
                row.availability_sum += ratio;
            }
        }

        let mut delivered: HashSet<(&str, &str, i64)> = HashSet::new();
        let mut first_emergency: HashMap<(&str, &str), i64> = HashMap::new(); // (unit, item) → ttfp ms
        for p in plays {
            let Some(u) = self.device_unit.get(&p.device_id) else {
                continue;
            };
            if !on_air(p.outcome) {
                continue;
            }
            let row = rows.get_mut(u).expect("unit row");
            row.items += 1;
            if let (Some(s), Some(e)) = (p.started_at, p.ended_at)
                && e > s
            {
                row.minutes += (e - s) as f64 / 60_000.0;
            }
            if known.contains(p.schedule_id.as_str())
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

        for s in scheduled.iter().filter(|s| s.occurrences > 0) {
            let mut targets: HashSet<&str> = HashSet::new();
            for a in tree.subtree(&s.areas) {
                targets.extend(
                    self.speakers_by_area
                        .get(&a)
                        .into_iter()
                        .flatten()
                        .map(String::as_str),
                );
            }
            targets.extend(
                s.devices
                    .iter()
                    .filter(|d| self.speaker_unit.contains_key(*d))
                    .map(String::as_str),
            );
            for d in targets {
                if let Some(u) = self.speaker_unit.get(d) {
                    rows.get_mut(u).expect("unit row").scheduled += s.occurrences;
                }
            }
        }

        let mut total = AreaReport::default();
        let mut out = Vec::new();
        for (_, mut r) in self.rows {
            total.devices += r.devices;
            total.online += r.online;
            total.availability_devices += r.availability_devices;
            total.availability_sum += r.availability_sum;
            total.items += r.items;
            total.minutes += r.minutes;
            total.scheduled += r.scheduled;
            total.delivered += r.delivered;
            total.emergencies += r.emergencies;
            total.ttfp_sum_ms += r.ttfp_sum_ms;
            r.finish();
            out.push(r);
        }
        total.finish();
        Report {
            from_ms,
            to_ms,
            rows: out,
            total,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap, HashSet};

    use nguon_protocol::{PlayOutcome, Priority};

    use super::{AreaReport, AreaRow, ReportDevice, ReportPlay, Scheduled, Units};
    use crate::domain::area::AreaTree;
    use crate::domain::scope::{Caller, Role, Via};

    const MIN: i64 = 60_000;

    fn areas() -> BTreeMap<String, AreaRow> {
        [
            ("p", None, "province"),
            ("c1", Some("p"), "commune"),
            ("v1", Some("c1"), "village"),
            ("c2", Some("p"), "Phường"),
        ]
        .into_iter()
        .map(|(code, parent, level)| {
            (
                code.to_string(),
                AreaRow {
                    code: code.into(),
                    name: format!("Area {code}"),
                    parent: parent.map(str::to_string),
                    level: level.into(),
                },
            )
        })
        .collect()
    }

    fn tree(areas: &BTreeMap<String, AreaRow>) -> AreaTree {
        AreaTree::new(areas.values().map(|a| (a.code.clone(), a.parent.clone())))
    }

    /// Loudspeakers s1 (c1, online), s2 (village v1 of c1), s3 (c2, online), x (the province:
    /// in no row); board b (c2).
    fn devices() -> Vec<ReportDevice> {
        [
            ("s1", "loudspeaker", "c1", true),
            ("s2", "loudspeaker", "v1", false),
            ("s3", "loudspeaker", "c2", true),
            ("b", "board", "c2", true),
            ("x", "loudspeaker", "p", true),
        ]
        .into_iter()
        .map(|(id, kind, area, online)| ReportDevice {
            id: id.into(),
            kind: kind.into(),
            area: area.into(),
            created_at: 0,
            online,
        })
        .collect()
    }

    fn play(
        device: &str,
        schedule: &str,
        item: &str,
        occ: i64,
        outcome: Option<PlayOutcome>,
        span: (Option<i64>, Option<i64>),
    ) -> ReportPlay {
        ReportPlay {
            device_id: device.into(),
            schedule_id: schedule.into(),
            item_id: item.into(),
            occurrence_at: occ,
            priority: Some(if schedule.is_empty() {
                Priority::Emergency
            } else {
                Priority::Normal
            }),
            outcome,
            started_at: span.0,
            ended_at: span.1,
        }
    }

    fn plays() -> Vec<ReportPlay> {
        use PlayOutcome::*;
        vec![
            // c1: schedule A's occurrence at 100 played twice on s1 (1 + 0.5 min, one delivery),
            // missed and failed on s2, then interrupted there after 2 minutes (a delivery).
            play(
                "s1",
                "A",
                "a@100",
                100,
                Some(Played),
                (Some(100), Some(100 + MIN)),
            ),
            play(
                "s1",
                "A",
                "a@100",
                100,
                Some(Played),
                (Some(200), Some(200 + MIN / 2)),
            ),
            play("s2", "A", "a@100", 100, Some(Missed), (None, None)),
            play("s2", "A", "a@100", 100, Some(Failed), (None, None)),
            play(
                "s2",
                "A",
                "a@100",
                100,
                Some(Interrupted),
                (Some(150), Some(150 + 2 * MIN)),
            ),
            // c1: a schedule that is gone, resumed without an end (an item, no minutes).
            play("s1", "gone", "g@300", 300, Some(Resumed), (Some(300), None)),
            // Emergency `cmd` at 500: on s1 after 1 s and s2 after 4 s (c1: one, 1 s), on s3
            // after 2 s for a minute (c2: one, 2 s).
            play("s1", "", "cmd", 500, Some(Played), (Some(1500), None)),
            play("s2", "", "cmd", 500, Some(Played), (Some(4500), None)),
            play("s3", "", "cmd", 500, Some(Played), (Some(2500), Some(2500 + MIN))),
            // c2: the board plays schedule B for a minute (an item and a delivery).
            play("b", "B", "b@700", 700, Some(Played), (Some(700), Some(700 + MIN))),
            // Nothing: x is in no row; an outcome this server does not know; skipped.
            play("x", "A", "a@100", 100, Some(Played), (Some(100), Some(100 + MIN))),
            play("s1", "A", "a@100", 100, None, (Some(100), Some(100 + MIN))),
            play("s1", "A", "a@100", 100, Some(SkippedQuietHours), (None, None)),
        ]
    }

    /// A: twice over c1 (s1, s2); B: three times on s3, the board b and x (only s3 counts);
    /// D: no occurrence in the period.
    fn scheduled() -> Vec<Scheduled> {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        vec![
            Scheduled {
                occurrences: 2,
                areas: v(&["c1"]),
                devices: vec![],
            },
            Scheduled {
                occurrences: 3,
                areas: vec![],
                devices: v(&["s3", "b", "x"]),
            },
            Scheduled {
                occurrences: 0,
                areas: v(&["p"]),
                devices: v(&["s1"]),
            },
        ]
    }

    fn caller(scope: Option<&[&str]>) -> Caller {
        Caller {
            user_id: "u".into(),
            username: "u".into(),
            role: Role::Viewer,
            scope_areas: scope.map(|s| s.iter().map(|c| c.to_string()).collect()),
            scope_roots: scope.map(|s| s.iter().map(|c| c.to_string()).collect()),
            via: Via::Session,
            csrf: None,
        }
    }

    fn report(scope: Option<&[&str]>) -> super::Report {
        let areas = areas();
        let tree = tree(&areas);
        let units = Units::new(&caller(scope), &areas, &tree, &devices());
        let availability: HashMap<String, f64> = units
            .speakers()
            .iter()
            .filter_map(|s| match s.id.as_str() {
                "s1" => Some((s.id.clone(), 0.5)),
                "s2" => Some((s.id.clone(), 1.0)),
                _ => None, // s3 did not exist in the period
            })
            .collect();
        let known: HashSet<&str> = ["A", "B", "D"].into();
        units.aggregate(
            availability.iter().map(|(id, r)| (id.as_str(), *r)),
            &plays(),
            &known,
            &scheduled(),
            &tree,
            (0, 1_000_000),
        )
    }

    fn row(code: &str, name: &str, counts: [i64; 7], minutes: f64) -> AreaReport {
        let [
            devices,
            online,
            availability_devices,
            items,
            scheduled,
            delivered,
            emergencies,
        ] = counts;
        AreaReport {
            code: code.into(),
            name: name.into(),
            devices,
            online,
            availability_devices,
            items,
            minutes,
            scheduled,
            delivered,
            emergencies,
            ..Default::default()
        }
    }

    #[test]
    fn a_small_province_is_counted_by_hand() {
        let rep = report(None);
        assert_eq!((rep.from_ms, rep.to_ms), (0, 1_000_000));
        let codes: Vec<&str> = rep.rows.iter().map(|r| r.code.as_str()).collect();
        assert_eq!(codes, ["c1", "c2"], "one row per commune, by code");
        let [c1, c2] = [&rep.rows[0], &rep.rows[1]];
        // c1: s1 and s2; items 2 + 1 + 1 + 2 emergency plays; minutes 1 + 0.5 + 2; scheduled
        // 2 × 2; delivered (s1, A, 100) and (s2, A, 100); availability (0.5 + 1) / 2; one
        // emergency first played after 1 s.
        assert_eq!(
            (
                c1.devices,
                c1.online,
                c1.availability_devices,
                c1.items,
                c1.scheduled,
                c1.delivered
            ),
            (2, 1, 2, 6, 4, 2)
        );
        assert_eq!(c1.minutes, 3.5);
        assert_eq!(c1.delivery_rate, Some(0.5));
        assert_eq!(c1.availability, Some(0.75));
        assert_eq!((c1.emergencies, c1.ttfp_seconds), (1, Some(1.0)));
        // c2: s3 (the board is no loudspeaker); items: the emergency and the board's play; one
        // minute each; scheduled 3 (s3 only), delivered 1 (the board); no availability.
        assert_eq!(
            (
                c2.devices,
                c2.online,
                c2.availability_devices,
                c2.items,
                c2.scheduled,
                c2.delivered
            ),
            (1, 1, 0, 2, 3, 1)
        );
        assert_eq!(c2.minutes, 2.0);
        assert_eq!(c2.delivery_rate, Some(1.0 / 3.0));
        assert_eq!(c2.availability, None);
        assert_eq!((c2.emergencies, c2.ttfp_seconds), (1, Some(2.0)));
        // The total: sums, rates of the sums, availability the mean over all loudspeakers.
        let t = &rep.total;
        assert_eq!((t.code.as_str(), t.name.as_str()), ("", ""));
        assert_eq!(
            (
                t.devices,
                t.online,
                t.availability_devices,
                t.items,
                t.scheduled,
                t.delivered
            ),
            (3, 2, 2, 8, 7, 3)
        );
        assert_eq!(t.minutes, 5.5);
        assert_eq!(t.delivery_rate, Some(3.0 / 7.0));
        assert_eq!(t.availability, Some(0.75));
        assert_eq!((t.emergencies, t.ttfp_seconds), (2, Some(1.5)));
    }

    #[test]
    fn a_scope_keeps_its_communes_else_its_top_areas() {
        // An operator of c2 sees c2 only.
        let rep = report(Some(&["c2"]));
        let mut want = row("c2", "Area c2", [1, 1, 0, 2, 3, 1, 1], 2.0);
        want.delivery_rate = Some(1.0 / 3.0);
        (want.ttfp_seconds, want.ttfp_sum_ms) = (Some(2.0), 2000);
        assert_eq!(rep.rows.len(), 1);
        assert_eq!(rep.rows[0], want);
        // A viewer of the village v1 (no commune in scope) gets v1 itself: s2 only (on air:
        // the interrupted play and the emergency).
        let rep = report(Some(&["v1"]));
        let mut want = row("v1", "Area v1", [1, 0, 1, 2, 2, 1, 1], 2.0);
        want.delivery_rate = Some(0.5);
        (want.availability, want.availability_sum) = (Some(1.0), 1.0);
        (want.ttfp_seconds, want.ttfp_sum_ms) = (Some(4.0), 4000);
        assert_eq!(rep.rows, vec![want.clone()]);
        assert_eq!(
            (rep.total.items, rep.total.scheduled, rep.total.ttfp_seconds),
            (2, 2, Some(4.0))
        );
        // Nothing in scope: no row, an empty total.
        let rep = report(Some(&[]));
        assert!(rep.rows.is_empty());
        assert_eq!(rep.total.delivery_rate, None);
    }

    #[test]
    fn the_rows_level_and_on_air_rules() {
        for level in ["commune", "Ward", "xa", "Xã", "phuong", "PHƯỜNG"] {
            assert!(super::is_commune(level), "{level}");
        }
        for level in ["province", "village", "thôn", ""] {
            assert!(!super::is_commune(level), "{level}");
        }
        use PlayOutcome::*;
        let on: Vec<bool> = [
            Played,
            PlayedLate,
            Resumed,
            Interrupted,
            SkippedQuietHours,
            Missed,
            Failed,
        ]
        .into_iter()
        .map(|o| super::on_air(Some(o)))
        .collect();
        assert_eq!(on, [true, true, true, true, false, false, false]);
        assert!(!super::on_air(None));
    }
}
