//! Overlaps, computed from data already loaded: the warnings a new schedule gets when it plays at
//! the same priority on the same device as another one ([`overlaps`]), and the conflicts the
//! calendar marks between plays that reach a common area or device ([`conflicts`]).

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Duration, Utc};

use super::{Overlap, Schedule, Targets, Warnings};

/// Overlap warnings listed in a response (the total is always given).
pub const MAX_WARNINGS: usize = 20;

/// How long a playlist plays once, in ms (unknown media count 0; at least 1 ms).
pub fn playlist_ms(media: &[String], dur: impl Fn(&str) -> Option<i64>) -> i64 {
    media.iter().map(|s| dur(s).unwrap_or(0)).sum::<i64>().max(1)
}

/// The schedules of `all` (the enabled ones) that compete with `new`: the others at its priority.
pub fn competing<'a>(new: &Schedule, all: &'a [Schedule]) -> Vec<&'a Schedule> {
    all.iter()
        .filter(|s| s.id != new.id && s.priority == new.priority)
        .collect()
}

/// Every (device, occurrence pair) where `new`, playing at `starts` for `duration_ms` each,
/// overlaps one of `others` inside `window` on a device both reach. `media_ms` gives a media
/// file's duration, `devices_for` the devices a target set covers.
pub fn overlaps(
    new: &Schedule,
    starts: &[DateTime<Utc>],
    duration_ms: i64,
    others: &[&Schedule],
    media_ms: impl Fn(&str) -> Option<i64>,
    devices_for: impl Fn(&Targets) -> BTreeSet<String>,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> Warnings {
    let mut w = Warnings::default();
    if starts.is_empty() || others.is_empty() {
        return w;
    }
    let mine = devices_for(&new.targets);
    for other in others {
        let od = playlist_ms(&other.media, &media_ms) * other.repeat as i64;
        let oocc = other.occurrences(from - Duration::milliseconds(od), to);
        let mut pairs = Vec::new();
        for a in starts {
            let a_end = *a + Duration::milliseconds(duration_ms);
            for b in &oocc {
                let b_end = *b + Duration::milliseconds(od);
                if *a < b_end && *b < a_end {
                    pairs.push((*a, *b));
                }
            }
        }
        if pairs.is_empty() {
            continue;
        }
        let theirs = devices_for(&other.targets);
        for d in mine.intersection(&theirs) {
            for (a, b) in &pairs {
                w.overlap_count += 1;
                if w.overlaps.len() < MAX_WARNINGS {
                    w.overlaps.push(Overlap {
                        device: d.clone(),
                        schedule_id: other.id.clone(),
                        at: *a,
                        other_at: *b,
                    });
                }
            }
        }
    }
    w
}

/// One play on the calendar.
#[derive(Debug, Clone)]
pub struct Slot {
    /// Start, unix ms.
    pub start: i64,
    /// End, unix ms.
    pub end: i64,
    /// Which schedule plays (an index into the caller's list).
    pub schedule: usize,
    /// What it reaches: area codes (with their subtrees) and `device:<id>`.
    pub reach: HashSet<String>,
}

/// For `slots` sorted by start: whether each one overlaps a play of another schedule that reaches
/// a common area or device.
pub fn conflicts(slots: &[Slot]) -> Vec<bool> {
    let mut conflict = vec![false; slots.len()];
    for a in 0..slots.len() {
        for b in a + 1..slots.len() {
            if slots[b].start >= slots[a].end {
                break;
            }
            if slots[a].schedule != slots[b].schedule && !slots[a].reach.is_disjoint(&slots[b].reach) {
                conflict[a] = true;
                conflict[b] = true;
            }
        }
    }
    conflict
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::schedule::{NewSchedule, draft, validate};

    fn schedule(id: &str, cron: &str, areas: &[&str], priority: &str) -> Schedule {
        let req: NewSchedule = serde_json::from_value(serde_json::json!({
            "title": id, "media": ["m60"], "targets": {"areas": areas}, "priority": priority,
            "rule": {"kind": "cron", "cron": cron}, "time_zone": "UTC"
        }))
        .unwrap();
        let v = validate(&req, "UTC", 60).unwrap();
        draft(id.into(), v, &req, DateTime::UNIX_EPOCH)
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn plays_that_overlap_on_a_shared_device_are_counted_per_device() {
        let new = schedule("new", "0 6 * * *", &["a"], "normal");
        let all = vec![
            new.clone(),
            schedule("same", "0 6 * * *", &["a"], "normal"),
            schedule("later", "0 7 * * *", &["a"], "normal"),
            schedule("urgent", "0 6 * * *", &["a"], "emergency"),
        ];
        let others = competing(&new, &all);
        assert_eq!(others.len(), 2);
        let window = (utc("2026-01-01T00:00:00Z"), utc("2026-01-03T00:00:00Z"));
        let starts = new.occurrences(window.0, window.1);
        let media = |s: &str| (s == "m60").then_some(60_000);
        let devices = |t: &Targets| -> BTreeSet<String> {
            t.areas
                .iter()
                .flat_map(|a| [format!("{a}-1"), format!("{a}-2")])
                .collect()
        };
        let w = overlaps(&new, &starts, 60_000, &others, media, devices, window);
        // Two days × two devices, only with `same`.
        assert_eq!(w.overlap_count, 4);
        assert!(w.overlaps.iter().all(|o| o.schedule_id == "same"));
        assert_eq!(w.overlaps[0].at, utc("2026-01-01T06:00:00Z"));
        let none = overlaps(&new, &starts, 60_000, &others, media, |_| BTreeSet::new(), window);
        assert_eq!(none.overlap_count, 0);
    }

    #[test]
    fn calendar_conflicts_need_overlap_a_shared_reach_and_two_schedules() {
        let reach = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<HashSet<_>>();
        let slots = [
            Slot {
                start: 0,
                end: 100,
                schedule: 0,
                reach: reach(&["a"]),
            },
            Slot {
                start: 50,
                end: 150,
                schedule: 1,
                reach: reach(&["a", "b"]),
            },
            Slot {
                start: 60,
                end: 70,
                schedule: 2,
                reach: reach(&["c"]),
            },
            Slot {
                start: 120,
                end: 200,
                schedule: 1,
                reach: reach(&["b"]),
            },
            Slot {
                start: 300,
                end: 400,
                schedule: 0,
                reach: reach(&["a"]),
            },
        ];
        assert_eq!(conflicts(&slots), [true, true, false, false, false]);
    }
}
