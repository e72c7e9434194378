//! The commune plans ([`super::plan`]) applied to computed manifests (`domain::manifest::compute`),
//! for the devices inside each commune: hidden schedules leave, a re-slotted schedule comes back
//! with every occurrence moved by its shift (evaluated over the window shifted back, so an item
//! moved later than its original time still appears), and of two clashing items the one that
//! plays second starts when the first ends. Items keep their ids (an occurrence is the same
//! occurrence at another time); a changed manifest gets its media list and hash recomputed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use nguon_protocol::{ManifestItem, MediaRef};

use super::{CommunePlan, First};
use crate::domain::manifest::{self, Content, Fleet, NO_MESSAGES, Window};
use crate::domain::media::MediaInfo;
use crate::domain::schedule::{Schedule, Targets};

/// A re-slotted schedule's items for one device, with their media.
type Moved = (Vec<ManifestItem>, Vec<MediaRef>);

/// Apply `plans` to `contents` (the manifests `compute` made for the window `w`).
pub fn apply(
    fleet: &Fleet,
    schedules: &[Schedule],
    media: &HashMap<String, MediaInfo>,
    plans: &[CommunePlan],
    w: Window<'_>,
    contents: &mut BTreeMap<String, Content>,
) {
    for p in plans {
        let devices: BTreeSet<String> = fleet
            .devices
            .iter()
            .filter(|d| contents.contains_key(&d.id) && fleet.tree.is_within(&d.area, &p.area))
            .map(|d| d.id.clone())
            .collect();
        if devices.is_empty() {
            continue;
        }
        // Re-slotted items of the commune's devices, by device.
        let mut moved: BTreeMap<String, Vec<Moved>> = BTreeMap::new();
        for (sid, shift) in &p.reslot {
            let Some(s) = schedules.iter().find(|s| s.id == *sid) else {
                continue;
            };
            let only_here = Schedule {
                targets: Targets {
                    areas: vec![p.area.clone()],
                    devices: Vec::new(),
                },
                ..s.clone()
            };
            let back = Window {
                now: w.now - *shift,
                messages: &NO_MESSAGES,
                ..w
            };
            let there = manifest::compute(fleet, std::slice::from_ref(&only_here), media, &devices, back);
            for (d, c) in there {
                let items = c.items.into_iter().map(|i| shifted(i, *shift)).collect();
                moved.entry(d).or_default().push((items, c.media));
            }
        }
        for d in &devices {
            let Some(c) = contents.get_mut(d) else {
                continue;
            };
            let before = c.items.len();
            c.items.retain(|i| !p.hidden.contains(&i.schedule_id));
            let mut changed = c.items.len() != before;
            for (items, refs) in moved.remove(d).unwrap_or_default() {
                changed |= !items.is_empty();
                c.items.extend(items);
                for r in refs {
                    if !c.media.iter().any(|m| m.sha256 == r.sha256) {
                        c.media.push(r);
                    }
                }
            }
            for (province, mine, first) in &p.orders {
                changed |= order(&mut c.items, &c.media, province, mine, *first);
            }
            if changed {
                c.items
                    .sort_by(|a, b| a.starts_at.cmp(&b.starts_at).then_with(|| a.id.cmp(&b.id)));
                let used: BTreeSet<&str> = c
                    .items
                    .iter()
                    .flat_map(|i| i.media.iter().map(String::as_str))
                    .collect();
                c.media.retain(|m| used.contains(m.sha256.as_str()));
                c.media.sort_by(|a, b| a.sha256.cmp(&b.sha256));
                c.hash = manifest::content_hash(&c.items, &c.media, &c.settings, &c.cancelled);
            }
        }
    }
}

/// `i` moved by `shift` (start, validity window, relay end).
fn shifted(mut i: ManifestItem, shift: Duration) -> ManifestItem {
    i.starts_at += shift;
    i.play_until = i.play_until.map(|t| t + shift);
    if let Some(r) = i.relay.as_mut() {
        r.until += shift;
    }
    i
}

/// How long one item plays: a relay its window, else its playlist times its repetitions.
pub fn length(i: &ManifestItem, media: &[MediaRef]) -> Duration {
    if let Some(r) = &i.relay {
        return r.until - i.starts_at;
    }
    let one: u64 = i
        .media
        .iter()
        .filter_map(|sha| media.iter().find(|m| m.sha256 == *sha))
        .map(|m| m.duration_ms)
        .sum();
    Duration::milliseconds((one * u64::from(i.repeat.max(1))) as i64)
}

/// Of each overlapping pair of an item of `province` and one of `mine`, start the second when the
/// first ends (`first` plays first). Whether anything moved.
fn order(items: &mut [ManifestItem], media: &[MediaRef], province: &str, mine: &str, first: First) -> bool {
    let (lead, follow) = match first {
        First::Province => (province, mine),
        First::Commune => (mine, province),
    };
    let leads: Vec<(DateTime<Utc>, DateTime<Utc>)> = items
        .iter()
        .filter(|i| i.schedule_id == lead)
        .map(|i| (i.starts_at, i.starts_at + length(i, media)))
        .collect();
    let mut changed = false;
    for i in items.iter_mut().filter(|i| i.schedule_id == follow) {
        let len = length(i, media);
        for (start, end) in &leads {
            if i.starts_at < *end && *start < i.starts_at + len {
                let shift = *end - i.starts_at;
                *i = shifted(i.clone(), shift);
                changed = true;
            }
        }
    }
    changed
}
