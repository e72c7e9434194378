//! What each device should hold: its desired manifest, computed from the schedules, the approved
//! media, the devices and the area tree, with no I/O. [`Fleet`] is the devices and areas walked in
//! memory (which devices a target set or a [`Change`] covers); [`compute`] evaluates every
//! enabled schedule's occurrences once and assigns them to the devices asked for, returning each
//! device's [`Content`] and the hash of that content; [`next_version`] decides from the stored
//! manifest whether a device is due a publish and under which version. The dispatcher
//! (`workers::dispatcher`) loads the inputs (`store::manifests`), signs and publishes.
//!
//! Two rules of issue 12 live here: the **late policy** ([`LateWindows`]: an occurrence carries
//! `play_until` = start + the window of its priority, so a device that reaches it late still
//! plays it inside that window) and **messages as desired state** ([`DeviceMessages`]: the
//! emergency and priority play-now commands inside their validity window are items of each
//! target's manifest, and the ones a stop cancelled are listed in `cancelled`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use nguon_protocol::{DeviceSettings, ManifestItem, MediaRef, Priority, RelaySpec};
use sha2::{Digest, Sha256};

use crate::domain::area::AreaTree;
use crate::domain::change::Change;
use crate::domain::media::MediaInfo;
use crate::domain::schedule::{Schedule, Targets};

/// A device as the dispatcher sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetDevice {
    /// Id.
    pub id: String,
    /// Area code.
    pub area: String,
    /// Whether enabled (a disabled device gets no manifest).
    pub enabled: bool,
    /// Default volume pushed in the manifest's settings.
    pub volume: Option<u8>,
}

/// Every device and the area tree, indexed for the walks the dispatcher and the overlap warnings
/// make.
#[derive(Debug, Default)]
pub struct Fleet {
    /// Every device, in id order.
    pub devices: Vec<FleetDevice>,
    /// The area tree.
    pub tree: AreaTree,
    by_area: HashMap<String, Vec<usize>>,
}

impl Fleet {
    /// A fleet of `devices` in `tree`.
    pub fn new(devices: Vec<FleetDevice>, tree: AreaTree) -> Fleet {
        let mut by_area: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, d) in devices.iter().enumerate() {
            by_area.entry(d.area.clone()).or_default().push(i);
        }
        Fleet {
            devices,
            tree,
            by_area,
        }
    }

    /// Device ids covered by a target set: its devices, and every device in its areas and their
    /// descendants.
    pub fn devices_for(&self, t: &Targets) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = t.devices.iter().cloned().collect();
        for a in self.tree.subtree(&t.areas) {
            if let Some(ix) = self.by_area.get(&a) {
                out.extend(ix.iter().map(|&i| self.devices[i].id.clone()));
            }
        }
        out
    }

    /// Device ids a change covers.
    pub fn devices_changed(&self, change: &Change) -> BTreeSet<String> {
        match change {
            Change::All => self.devices.iter().map(|d| d.id.clone()).collect(),
            Change::Devices(ids) => ids.iter().cloned().collect(),
            Change::Areas(a) => self.devices_for(&Targets {
                areas: a.clone(),
                devices: Vec::new(),
            }),
            Change::Targets { areas, devices } => self.devices_for(&Targets {
                areas: areas.clone(),
                devices: devices.clone(),
            }),
        }
    }
}

/// A computed manifest before versioning: its content and the hash of that content.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    /// Occurrences in the window, by start time then id.
    pub items: Vec<ManifestItem>,
    /// Media the items play, by sha256.
    pub media: Vec<MediaRef>,
    /// Device settings.
    pub settings: DeviceSettings,
    /// Ids of messages cancelled while their window lasts.
    pub cancelled: Vec<String>,
    /// Hex SHA-256 of `(items, media, settings)` as JSON (with `cancelled` appended when it is
    /// not empty): equal content, equal hash.
    pub hash: String,
}

/// The late policy: how long after its start a device may still play an occurrence it reached
/// late, by priority (zero: none; the device reports it `missed` after its grace period).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LateWindows {
    /// Emergency items.
    pub emergency: Duration,
    /// Priority items.
    pub priority: Duration,
    /// Normal items.
    pub normal: Duration,
}

impl LateWindows {
    /// The window of `p`.
    pub fn of(&self, p: Priority) -> Duration {
        match p {
            Priority::Emergency => self.emergency,
            Priority::Priority => self.priority,
            Priority::Normal => self.normal,
        }
    }

    /// `play_until` of an occurrence of priority `p` starting at `t`.
    pub fn play_until(&self, p: Priority, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let w = self.of(p);
        (w > Duration::zero()).then_some(t + w)
    }
}

/// The emergency and priority messages (play-now commands with a validity window) of one
/// device: those inside their window with the media they play, and the ids a stop cancelled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceMessages {
    /// Items (id = the command id, `play_until` = the end of its window).
    pub items: Vec<ManifestItem>,
    /// Their media.
    pub media: Vec<MediaRef>,
    /// Cancelled ids.
    pub cancelled: Vec<String>,
}

/// Messages by device id.
pub type Messages = BTreeMap<String, DeviceMessages>;

/// No messages.
pub static NO_MESSAGES: Messages = BTreeMap::new();

/// The window and the media URL base a computation uses.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    /// The evaluation time (start of the window).
    pub now: DateTime<Utc>,
    /// How far ahead occurrences are listed.
    pub lookahead: Duration,
    /// Base URL devices fetch media from (`{public_url}/media/{sha}`).
    pub public_url: &'a str,
    /// The late policy.
    pub late: LateWindows,
    /// Emergency and priority messages by device.
    pub messages: &'a Messages,
    /// Relays go through the server's proxy (`{public_url}/relay/{schedule_id}`), not to the
    /// stream's own URL (`[relay] mode`).
    pub relay_proxy: bool,
}

/// The manifest content of every enabled device in `devices`: the occurrences of every schedule
/// (evaluated once per schedule) whose targets cover the device directly or through its area's
/// ancestors. A schedule with media missing or no longer approved contributes nothing. An
/// occurrence still playing at `now` (it started less than its playlist's duration ago) stays.
pub fn compute(
    fleet: &Fleet,
    schedules: &[Schedule],
    media: &HashMap<String, MediaInfo>,
    devices: &BTreeSet<String>,
    w: Window<'_>,
) -> BTreeMap<String, Content> {
    // Per schedule: its items in the window and its media refs.
    let mut prepared: Vec<(Vec<ManifestItem>, Vec<MediaRef>)> = Vec::with_capacity(schedules.len());
    let mut by_area: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_device: HashMap<&str, Vec<usize>> = HashMap::new();
    for s in schedules {
        let refs: Option<Vec<MediaRef>> = s
            .media
            .iter()
            .map(|sha| {
                media.get(sha).filter(|m| m.approved).map(|m| {
                    // Devices fetch and play an upload's normalised rendition.
                    let d = m.delivered(sha);
                    MediaRef {
                        size: d.size.max(0) as u64,
                        url: format!("{}/media/{}", w.public_url, d.sha256),
                        duration_ms: d.duration_ms.max(0) as u64,
                        sha256: d.sha256,
                    }
                })
            })
            .collect();
        let Some(refs) = refs else {
            tracing::warn!(schedule = %s.id, "schedule skipped: some of its media is missing or no longer approved");
            prepared.push((Vec::new(), Vec::new()));
            continue;
        };
        let refs_in_order: Vec<String> = refs.iter().map(|r| r.sha256.clone()).collect();
        // A relay lasts its window (and is joined late inside it).
        let relay_window = Option::map(s.relay.as_ref(), |r| Duration::seconds(i64::from(r.duration_s)));
        let dur = relay_window.map_or_else(
            || refs.iter().map(|m| m.duration_ms as i64).sum::<i64>() * s.repeat as i64,
            |r| r.num_milliseconds(),
        );
        // An occurrence with a window of its own (`valid_for_s`, a repetition) stays listed while
        // the window lasts, so a device that reaches it late, and its replays, still find it.
        let window = relay_window
            .or_else(|| s.valid_for_s.map(|v| Duration::seconds(i64::from(v))))
            .or_else(|| s.repetition.as_ref().map(|_| w.late.of(s.priority)));
        let back = window.map_or(Duration::milliseconds(dur), |x| {
            x.max(Duration::milliseconds(dur))
        });
        let items = s
            .occurrences(w.now - back, w.now + w.lookahead)
            .into_iter()
            .map(|t| ManifestItem {
                id: format!("{}@{}", s.id, t.timestamp()),
                schedule_id: s.id.clone(),
                title: s.title.clone(),
                starts_at: t,
                priority: s.priority,
                volume: s.volume,
                media: refs_in_order.clone(),
                repeat: s.repeat,
                on_preempt: s.on_preempt,
                play_until: relay_window
                    .map(|r| t + r)
                    .or_else(|| s.valid_for_s.map(|v| t + Duration::seconds(i64::from(v))))
                    .or_else(|| w.late.play_until(s.priority, t)),
                repetition: s.repetition.clone(),
                relay: s.relay.as_ref().zip(relay_window).map(|(r, len)| {
                    Box::new(RelaySpec {
                        url: if w.relay_proxy {
                            format!("{}/relay/{}", w.public_url, s.id)
                        } else {
                            r.url.clone()
                        },
                        until: t + len,
                        fallback_after_s: r.fallback_after_s,
                    })
                }),
            })
            .collect();
        let i = prepared.len();
        prepared.push((items, refs));
        for a in &s.targets.areas {
            by_area.entry(a.as_str()).or_default().push(i);
        }
        for d in &s.targets.devices {
            by_device.entry(d.as_str()).or_default().push(i);
        }
    }
    let mut out = BTreeMap::new();
    for d in fleet
        .devices
        .iter()
        .filter(|d| d.enabled && devices.contains(&d.id))
    {
        let mut ix: Vec<usize> = by_device.get(d.id.as_str()).cloned().unwrap_or_default();
        for a in fleet.tree.chain(&d.area) {
            if let Some(v) = by_area.get(a.as_str()) {
                ix.extend(v);
            }
        }
        ix.sort_unstable();
        ix.dedup();
        let mut items: Vec<ManifestItem> = Vec::new();
        let mut refs: BTreeMap<String, MediaRef> = BTreeMap::new();
        for i in ix {
            let (it, rf) = &prepared[i];
            if it.is_empty() {
                continue;
            }
            items.extend(it.iter().cloned());
            for r in rf {
                refs.entry(r.sha256.clone()).or_insert_with(|| r.clone());
            }
        }
        let mut cancelled = Vec::new();
        if let Some(m) = w.messages.get(&d.id) {
            items.extend(m.items.iter().cloned());
            for r in &m.media {
                refs.entry(r.sha256.clone()).or_insert_with(|| r.clone());
            }
            cancelled = m.cancelled.clone();
            cancelled.sort();
            cancelled.dedup();
        }
        items.sort_by(|a, b| a.starts_at.cmp(&b.starts_at).then_with(|| a.id.cmp(&b.id)));
        let media: Vec<MediaRef> = refs.into_values().collect();
        let settings = DeviceSettings {
            volume: d.volume,
            ..DeviceSettings::default()
        };
        let hash = content_hash(&items, &media, &settings, &cancelled);
        out.insert(
            d.id.clone(),
            Content {
                items,
                media,
                settings,
                cancelled,
                hash,
            },
        );
    }
    out
}

/// The content hash; `cancelled` counts only when it is not empty, so a manifest without
/// cancelled messages keeps the hash it had before the field existed.
pub fn content_hash(
    items: &[ManifestItem],
    media: &[MediaRef],
    settings: &DeviceSettings,
    cancelled: &[String],
) -> String {
    let mut h = Sha256::new();
    if cancelled.is_empty() {
        h.update(serde_json::to_vec(&(items, media, settings)).unwrap_or_default());
    } else {
        h.update(serde_json::to_vec(&(items, media, settings, cancelled)).unwrap_or_default());
    }
    hex::encode(h.finalize())
}

/// The shortest look-ahead a device is given, in hours: when a device's manifest over the
/// configured window exceeds the cap the dispatcher shortens its window ([`fit`]), but a schedule
/// whose devices would exceed the cap even over this window is refused.
pub const MIN_WINDOW_HOURS: i64 = 24;

/// Room left for what [`signed_size`] cannot know exactly (the digits of the times and of the
/// sequence number the signer stamps).
const SIZE_SLACK: usize = 256;

/// An upper bound of the bytes of the signed `desired` message that carries `c` to `device` for
/// the window `[now, end)`: the envelope with its escaped payload and signature, as published.
pub fn signed_size(c: &Content, device: &str, now: DateTime<Utc>, end: DateTime<Utc>) -> usize {
    signed_size_of(&c.items, &c.media, &c.settings, &c.cancelled, device, now, end)
}

fn signed_size_of(
    items: &[ManifestItem],
    media: &[MediaRef],
    settings: &DeviceSettings,
    cancelled: &[String],
    device: &str,
    now: DateTime<Utc>,
    end: DateTime<Utc>,
) -> usize {
    let manifest = nguon_protocol::Manifest {
        version: u64::MAX,
        generated_at: now,
        window_start: now,
        window_end: end,
        items: items.to_vec(),
        media: media.to_vec(),
        settings: settings.clone(),
        cancelled: cancelled.to_vec(),
        agent: None,
    };
    let audience = nguon_protocol::DeviceId::parse(device)
        .map(nguon_protocol::Audience::Device)
        .unwrap_or_else(|_| {
            nguon_protocol::Audience::Device(nguon_protocol::DeviceId::parse("x".repeat(64)).expect("64 x"))
        });
    let msg = nguon_protocol::ServerMessage {
        v: nguon_protocol::PROTOCOL_VERSION,
        id: uuid::Uuid::nil(),
        audience,
        seq: u64::MAX,
        issued_at: now,
        expires_at: end,
        body: nguon_protocol::ServerBody::Desired(manifest),
    };
    let env = nguon_protocol::Signed {
        v: nguon_protocol::PROTOCOL_VERSION,
        payload: serde_json::to_string(&msg).unwrap_or_default(),
        sig: Some("A".repeat(88)),
    };
    env.to_bytes().len() + SIZE_SLACK
}

/// `c` cut to fit `max_bytes` signed ([`signed_size`]): the longest run of its first items (by
/// start) that fits, ending before a start instant (items starting together stay together), the
/// media they play, and the window's new end: the start of the first item left out. Returns the
/// content unchanged, with `end`, when it fits already.
pub fn fit(
    c: Content,
    device: &str,
    now: DateTime<Utc>,
    end: DateTime<Utc>,
    max_bytes: usize,
) -> (Content, DateTime<Utc>) {
    if c.items.is_empty() || signed_size(&c, device, now, end) <= max_bytes {
        return (c, end);
    }
    let media_for = |items: &[ManifestItem]| -> Vec<MediaRef> {
        let used: BTreeSet<&str> = items
            .iter()
            .flat_map(|i| i.media.iter().map(String::as_str))
            .collect();
        c.media
            .iter()
            .filter(|m| used.contains(m.sha256.as_str()))
            .cloned()
            .collect()
    };
    let fits = |k: usize| {
        let items = &c.items[..k];
        let cut = c.items.get(k).map_or(end, |i| i.starts_at);
        signed_size_of(
            items,
            &media_for(items),
            &c.settings,
            &c.cancelled,
            device,
            now,
            cut,
        ) <= max_bytes
    };
    // The largest k in [0, len) with fits(k); fits(0) holds for any sane cap.
    let (mut lo, mut hi) = (0usize, c.items.len());
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) { lo = mid } else { hi = mid }
    }
    let mut k = lo;
    while k > 0 && c.items[k - 1].starts_at == c.items[k].starts_at {
        k -= 1;
    }
    let cut = c.items[k].starts_at;
    let items = c.items[..k].to_vec();
    let media = media_for(&items);
    let hash = content_hash(&items, &media, &c.settings, &c.cancelled);
    (
        Content {
            items,
            media,
            settings: c.settings,
            cancelled: c.cancelled,
            hash,
        },
        cut,
    )
}

/// A device's stored manifest, as far as versioning needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its version.
    pub version: i64,
    /// Hash of its content.
    pub hash: String,
    /// Unix ms the broker confirmed its publish; 0 while it is recorded but not yet confirmed.
    pub published_at: i64,
}

/// The version to publish `hash` under, or `None` when the device is not due: a new device starts
/// at 1; changed content takes the next version; the same content keeps its version and is due
/// only when `force`d (at start), when its last publish was not confirmed (`published_at` 0), or
/// when it was published before `refresh_before` (unix ms), so its window rolls forward.
pub fn next_version(stored: Option<&Stored>, hash: &str, force: bool, refresh_before: i64) -> Option<i64> {
    match stored {
        None => Some(1),
        Some(s) if s.hash != hash => Some(s.version + 1),
        Some(s) if force || s.published_at < refresh_before => Some(s.version),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::schedule::{NewSchedule, draft, validate};

    fn fleet() -> Fleet {
        let tree = AreaTree::new([
            ("p".to_string(), None),
            ("c1".to_string(), Some("p".to_string())),
            ("c2".to_string(), Some("p".to_string())),
        ]);
        let dev = |id: &str, area: &str, enabled: bool| FleetDevice {
            id: id.into(),
            area: area.into(),
            enabled,
            volume: Some(60),
        };
        Fleet::new(
            vec![
                dev("a", "c1", true),
                dev("b", "c2", true),
                dev("off", "c1", false),
            ],
            tree,
        )
    }

    fn schedule(id: &str, targets: serde_json::Value, at: &str) -> Schedule {
        let req: NewSchedule = serde_json::from_value(serde_json::json!({
            "title": "Tin", "media": ["m1"], "targets": targets,
            "rule": {"kind": "once", "at": at}, "time_zone": "UTC"
        }))
        .unwrap();
        let v = validate(&req, "UTC", 60).unwrap();
        draft(id.into(), v, &req, DateTime::UNIX_EPOCH)
    }

    fn media(approved: bool) -> HashMap<String, MediaInfo> {
        HashMap::from([(
            "m1".to_string(),
            MediaInfo {
                size: 1000,
                duration_ms: 30_000,
                approved,
                rendition: None,
            },
        )])
    }

    fn window(now: &str) -> Window<'static> {
        Window {
            now: now.parse().unwrap(),
            lookahead: Duration::hours(72),
            public_url: "http://srv",
            late: LateWindows::default(),
            messages: &NO_MESSAGES,
            relay_proxy: true,
        }
    }

    fn all(f: &Fleet) -> BTreeSet<String> {
        f.devices_changed(&Change::All)
    }

    #[test]
    fn an_area_schedule_reaches_the_devices_below_it_and_a_device_schedule_only_its_device() {
        let f = fleet();
        let s = [
            schedule("s1", serde_json::json!({"areas": ["p"]}), "2026-12-02T08:00:00"),
            schedule("s2", serde_json::json!({"devices": ["b"]}), "2026-12-02T07:00:00"),
        ];
        let out = compute(&f, &s, &media(true), &all(&f), window("2026-12-02T00:00:00Z"));
        assert_eq!(
            out.keys().collect::<Vec<_>>(),
            ["a", "b"],
            "the disabled device gets nothing"
        );
        let ids = |d: &str| out[d].items.iter().map(|i| i.id.clone()).collect::<Vec<_>>();
        let at = |h: u32| {
            chrono::NaiveDate::from_ymd_opt(2026, 12, 2)
                .unwrap()
                .and_hms_opt(h, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp()
        };
        assert_eq!(ids("a"), [format!("s1@{}", at(8))]);
        assert_eq!(
            ids("b"),
            [format!("s2@{}", at(7)), format!("s1@{}", at(8))],
            "by start time"
        );
        assert_eq!(out["b"].media.len(), 1, "one ref per sha");
        assert_eq!(out["b"].media[0].url, "http://srv/media/m1");
        assert_eq!(out["a"].settings.volume, Some(60));
    }

    #[test]
    fn devices_are_sent_the_normalised_rendition_of_an_upload() {
        let f = fleet();
        let s = [schedule(
            "s1",
            serde_json::json!({"areas": ["p"]}),
            "2026-12-02T08:00:00",
        )];
        let mut m = media(true);
        m.get_mut("m1").unwrap().rendition = Some(crate::domain::media::Delivered {
            sha256: "r1".into(),
            size: 5000,
            duration_ms: 30_010,
        });
        let out = compute(&f, &s, &m, &all(&f), window("2026-12-02T00:00:00Z"));
        assert_eq!(out["a"].items[0].media, ["r1"]);
        let r = &out["a"].media[0];
        assert_eq!((r.sha256.as_str(), r.size, r.duration_ms), ("r1", 5000, 30_010));
        assert_eq!(r.url, "http://srv/media/r1");
    }

    #[test]
    fn unapproved_media_or_a_past_window_gives_an_empty_manifest_with_its_own_hash() {
        let f = fleet();
        let s = [schedule(
            "s1",
            serde_json::json!({"areas": ["c1"]}),
            "2026-12-02T08:00:00",
        )];
        let with = compute(&f, &s, &media(true), &all(&f), window("2026-12-02T00:00:00Z"));
        let unapproved = compute(&f, &s, &media(false), &all(&f), window("2026-12-02T00:00:00Z"));
        let later = compute(&f, &s, &media(true), &all(&f), window("2026-12-03T00:00:00Z"));
        assert!(unapproved["a"].items.is_empty() && unapproved["a"].media.is_empty());
        assert!(later["a"].items.is_empty());
        assert_ne!(with["a"].hash, unapproved["a"].hash);
        assert_eq!(unapproved["a"].hash, later["a"].hash, "equal content, equal hash");
        // Still playing: started 10 s ago, the clip lasts 30 s.
        let playing = compute(&f, &s, &media(true), &all(&f), window("2026-12-02T08:00:10Z"));
        assert_eq!(playing["a"].items.len(), 1);
    }

    #[test]
    fn occurrences_carry_the_late_window_of_their_priority_and_messages_join_their_targets() {
        let f = fleet();
        let mut s = schedule("s1", serde_json::json!({"areas": ["p"]}), "2026-12-02T08:00:00");
        s.priority = Priority::Emergency;
        let late = LateWindows {
            emergency: Duration::minutes(30),
            priority: Duration::minutes(10),
            normal: Duration::zero(),
        };
        let start: DateTime<Utc> = "2026-12-02T08:00:00Z".parse().unwrap();
        let msg = ManifestItem {
            id: "cmd-1".into(),
            schedule_id: String::new(),
            title: "Cảnh báo".into(),
            starts_at: "2026-12-02T00:00:00Z".parse().unwrap(),
            priority: Priority::Emergency,
            volume: 100,
            media: vec!["m2".into()],
            repeat: 1,
            on_preempt: Default::default(),
            play_until: Some("2026-12-02T00:30:00Z".parse().unwrap()),
            repetition: None,
            relay: None,
        };
        let m2 = MediaRef {
            sha256: "m2".into(),
            size: 1,
            url: "http://srv/media/m2".into(),
            duration_ms: 1000,
        };
        let messages = Messages::from([
            (
                "a".to_string(),
                DeviceMessages {
                    items: vec![msg.clone()],
                    media: vec![m2.clone()],
                    cancelled: Vec::new(),
                },
            ),
            (
                "b".to_string(),
                DeviceMessages {
                    cancelled: vec!["cmd-1".into()],
                    ..DeviceMessages::default()
                },
            ),
        ]);
        let w = Window {
            late,
            messages: &messages,
            relay_proxy: true,
            ..window("2026-12-02T00:00:00Z")
        };
        let out = compute(&f, std::slice::from_ref(&s), &media(true), &all(&f), w);
        let a = &out["a"];
        assert_eq!(a.items.len(), 2);
        assert_eq!(a.items[0], msg, "the message first: it started earlier");
        assert_eq!(a.items[1].play_until, Some(start + Duration::minutes(30)));
        assert!(a.media.contains(&m2));
        assert_eq!(out["b"].cancelled, ["cmd-1"]);
        assert_eq!(out["b"].items.len(), 1);
        // Without messages b's content (and hash) differs only by the cancel list.
        let plain = compute(
            &f,
            std::slice::from_ref(&s),
            &media(true),
            &all(&f),
            Window {
                late,
                ..window("2026-12-02T00:00:00Z")
            },
        );
        assert_ne!(plain["b"].hash, out["b"].hash);
        assert_eq!(plain["b"].items, out["b"].items);
        // A normal occurrence keeps the grace rule: no window.
        s.priority = Priority::Normal;
        let n = compute(&f, &[s], &media(true), &all(&f), w);
        assert_eq!(n["b"].items[0].play_until, None);
    }

    #[test]
    fn only_the_devices_asked_for_are_computed() {
        let f = fleet();
        let s = [schedule(
            "s1",
            serde_json::json!({"areas": ["p"]}),
            "2026-12-02T08:00:00",
        )];
        let asked = f.devices_changed(&Change::Areas(vec!["c2".into()]));
        assert_eq!(asked, BTreeSet::from(["b".to_string()]));
        let out = compute(&f, &s, &media(true), &asked, window("2026-12-02T00:00:00Z"));
        assert_eq!(out.keys().collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn changes_cover_devices_by_area_subtree_and_by_id() {
        let f = fleet();
        let t = Change::Targets {
            areas: vec!["p".into()],
            devices: vec!["elsewhere".into()],
        };
        assert_eq!(f.devices_changed(&t).len(), 4);
        assert_eq!(f.devices_changed(&Change::Areas(vec!["c1".into()])).len(), 2);
        assert_eq!(f.devices_changed(&Change::Devices(vec!["x".into()])).len(), 1);
    }

    #[test]
    fn an_over_cap_manifest_is_cut_before_the_first_start_that_does_not_fit() {
        let f = fleet();
        // Every minute for 72 h with a long title: thousands of items, far over 64 KiB.
        let req: NewSchedule = serde_json::from_value(serde_json::json!({
            "title": "Thông báo ".repeat(18), "media": ["m1"], "targets": {"areas": ["p"]},
            "rule": {"kind": "cron", "cron": "* * * * *"}, "time_zone": "UTC"
        }))
        .unwrap();
        let s = [draft(
            "s1".into(),
            validate(&req, "UTC", 60).unwrap(),
            &req,
            DateTime::UNIX_EPOCH,
        )];
        let w = window("2026-12-02T00:00:00Z");
        let end = w.now + w.lookahead;
        let c = compute(&f, &s, &media(true), &all(&f), w).remove("a").unwrap();
        let full = signed_size(&c, "a", w.now, end);
        let max = 64 * 1024;
        assert!(full > 10 * max, "{full}");
        let (cut, cut_end) = fit(c.clone(), "a", w.now, end, max);
        assert!(signed_size(&cut, "a", w.now, cut_end) <= max);
        assert!(!cut.items.is_empty() && cut.items.len() < c.items.len());
        assert_eq!(
            cut.items[..],
            c.items[..cut.items.len()],
            "a prefix, in start order"
        );
        assert_eq!(
            cut_end,
            c.items[cut.items.len()].starts_at,
            "the window ends at the first item left out"
        );
        assert!(cut.items.iter().all(|i| i.starts_at < cut_end));
        assert_ne!(cut.hash, c.hash);
        let (same, same_end) = fit(cut.clone(), "a", w.now, cut_end, max);
        assert_eq!((same, same_end), (cut, cut_end), "what fits is left alone");
    }

    #[test]
    fn versions_bump_on_change_and_unconfirmed_or_stale_manifests_are_due_again() {
        let stored = |published_at| Stored {
            version: 4,
            hash: "h".into(),
            published_at,
        };
        assert_eq!(next_version(None, "h", false, 0), Some(1));
        assert_eq!(next_version(Some(&stored(100)), "other", false, 0), Some(5));
        assert_eq!(
            next_version(Some(&stored(100)), "h", false, 50),
            None,
            "fresh and unchanged"
        );
        assert_eq!(
            next_version(Some(&stored(100)), "h", true, 50),
            Some(4),
            "forced at start"
        );
        assert_eq!(
            next_version(Some(&stored(10)), "h", false, 50),
            Some(4),
            "older than a day"
        );
        assert_eq!(
            next_version(Some(&stored(0)), "h", false, 50),
            Some(4),
            "never confirmed"
        );
    }
}
