//! Message bodies. Server → device bodies travel inside a [`crate::ServerMessage`] that is signed;
//! device → server messages (state, telemetry, events) travel in a [`crate::DeviceReport`], signed
//! with the device key.
//! Timestamps are RFC 3339 UTC; durations are milliseconds; volumes are 0–100.

use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::DeviceId;

/// Circular 39/2020/TT-BTTTT content priority. Ordered: `Normal < Priority < Emergency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// The commune chooses the slot.
    #[default]
    Normal,
    /// Played first in the programme.
    Priority,
    /// Played immediately (disaster, fire, epidemic); preempts everything.
    Emergency,
}

impl Priority {
    /// Rank in the player, with live broadcast between emergency and priority:
    /// normal 0, priority 1, live 2, emergency 3.
    pub fn rank(self) -> u8 {
        match self {
            Priority::Normal => 0,
            Priority::Priority => 1,
            Priority::Emergency => 3,
        }
    }
    /// Rank of a live broadcast (see [`Priority::rank`]).
    pub const LIVE_RANK: u8 = 2;
    /// Rank of an emergency live broadcast: above every item, so it interrupts an emergency
    /// item that plays and no item interrupts it (an emergency item waits for its end).
    pub const EMERGENCY_LIVE_RANK: u8 = 4;

    /// Rank in the player of a live session opened at this priority: `emergency`
    /// [`Priority::EMERGENCY_LIVE_RANK`] (4), anything else [`Priority::LIVE_RANK`] (2).
    pub fn live_rank(self) -> u8 {
        match self {
            Priority::Emergency => Self::EMERGENCY_LIVE_RANK,
            _ => Self::LIVE_RANK,
        }
    }

    /// The priority of a `live_start` that carries none (servers before the field): `priority`.
    pub fn live_default() -> Self {
        Priority::Priority
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Normal => "normal",
            Priority::Priority => "priority",
            Priority::Emergency => "emergency",
        }
    }
}

impl std::str::FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "normal" => Ok(Priority::Normal),
            "priority" => Ok(Priority::Priority),
            "emergency" => Ok(Priority::Emergency),
            other => Err(format!(
                "unknown priority `{other}`, expected normal, priority or emergency"
            )),
        }
    }
}

/// What the player does with an item that a higher priority preempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnPreempt {
    /// Stop it and report `interrupted`.
    #[default]
    Interrupt,
    /// Continue it from where it stopped once the higher item ends, and report `resumed`.
    Resume,
}

/// A media file a device needs, addressed by content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaRef {
    /// Lowercase hex sha256 of the file's bytes; the device verifies it before playing.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Where to fetch it (HTTP, supports Range).
    pub url: String,
    /// Duration in milliseconds, as probed by the server.
    pub duration_ms: u64,
}

/// One occurrence to play: a schedule's rule evaluated to an absolute instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestItem {
    /// Occurrence id, unique and stable: `{schedule_id}@{starts_at as unix seconds}`.
    pub id: String,
    /// The schedule this occurrence comes from.
    pub schedule_id: String,
    /// Human title (shown in telemetry and the console).
    #[serde(default)]
    pub title: String,
    /// Absolute start instant (UTC).
    pub starts_at: DateTime<Utc>,
    /// Circular 39 priority.
    pub priority: Priority,
    /// Playback volume 0–100.
    pub volume: u8,
    /// Playlist in order, by sha256 (each must appear in the manifest's `media`).
    pub media: Vec<String>,
    /// How many times the playlist is played back to back (≥ 1).
    #[serde(default = "one")]
    pub repeat: u32,
    /// What happens when a higher priority preempts this item.
    #[serde(default)]
    pub on_preempt: OnPreempt,
    /// The late policy of this item: until this instant a device that reaches the item after its
    /// start (it was offline or rebooting) still plays it from the beginning and reports
    /// `played_late`; absent, an item reached more than the device's grace period (5 s) after its
    /// start is reported `missed`. Emergency and priority messages carry it (their validity
    /// window); older devices ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub play_until: Option<DateTime<Utc>>,
    /// An emergency message that repeats until `play_until` (or a cancel): the device plays it
    /// again at each start [`Repetition`] gives, each replay with its own id `{id}#k`. Absent:
    /// played once (older devices ignore it, so they play it once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repetition: Option<Repetition>,
    /// A relay (tiếp sóng, issue 17): the item plays this external stream from `starts_at` until
    /// its window's end instead of its media; its `media` is then the fallback recording, played
    /// when the stream gives nothing. Absent: a media item (older devices ignore it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<Box<RelaySpec>>,
}

/// The stream of a relay item ([`ManifestItem::relay`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelaySpec {
    /// HTTP(S) URL of the stream (Icecast/SHOUTcast MP3 or AAC), absolute or relative to the
    /// server's base URL (the server's proxy, `/relay/{schedule_id}`).
    pub url: String,
    /// End of the window: the device stops the stream (or the fallback) at this instant.
    pub until: DateTime<Utc>,
    /// Seconds without any audio from the stream (it cannot be opened, or it broke off and does
    /// not come back) after which the fallback media plays instead.
    #[serde(default = "fallback_after_default")]
    pub fallback_after_s: u32,
}

fn fallback_after_default() -> u32 {
    15
}

/// What a device reports of a relay play ([`ProofOfPlay::relay`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RelayReport {
    /// Milliseconds of the stream's audio that went out.
    pub stream_ms: u64,
    /// How many times the stream was connected again after it broke off or failed to open.
    pub reconnects: u32,
    /// The stream gave nothing for `fallback_after_s` and the fallback media played (or, when
    /// the item had none, nothing played).
    pub failed: bool,
    /// The last error of the stream, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn one() -> u32 {
    1
}

/// How an emergency message repeats (issue 12 §3): plays at `offsets_s` after its start, then
/// every `every_s` after the last offset, while its window (`play_until`) lasts. The presets are
/// the patterns of Decision 18/2021/QĐ-TTg ([`Repetition::every_2h`],
/// [`Repetition::twice_5min_then_every_30min`]); the wire carries the expanded pattern, so a
/// device needs no preset names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repetition {
    /// Offsets (s) of the plays from the start, strictly increasing, the first 0 (the play
    /// itself).
    pub offsets_s: Vec<u32>,
    /// Then one play every this many seconds after the last offset (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_s: Option<u32>,
    /// Played before each replay (not before the first play): a spoken preamble that says when
    /// the bulletin was issued, by sha256 (listed with the message's media).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preamble: Option<String>,
}

/// At most this many replays of one message are expanded.
pub const MAX_REPLAYS: usize = 1000;

impl Repetition {
    /// Immediately, then every 2 hours.
    pub fn every_2h() -> Self {
        Repetition {
            offsets_s: vec![0],
            every_s: Some(7200),
            preamble: None,
        }
    }

    /// Immediately, twice more 5 minutes apart, then every 30 minutes.
    pub fn twice_5min_then_every_30min() -> Self {
        Repetition {
            offsets_s: vec![0, 300, 600],
            every_s: Some(1800),
            preamble: None,
        }
    }

    /// The problem with the pattern, if any; `min_every_s` is the shortest interval allowed.
    pub fn check(&self, min_every_s: u32) -> Result<(), String> {
        if self.offsets_s.first() != Some(&0) {
            return Err("`offsets_s` must start with 0 (the play itself)".into());
        }
        if self.offsets_s.windows(2).any(|w| w[1] <= w[0]) {
            return Err("`offsets_s` must be strictly increasing".into());
        }
        if self.offsets_s.len() > 100 {
            return Err("`offsets_s` holds at most 100 offsets".into());
        }
        if self.offsets_s.len() < 2 && self.every_s.is_none() {
            return Err("a repetition needs a second offset or `every_s`".into());
        }
        if let Some(e) = self.every_s
            && e < min_every_s
        {
            return Err(format!("`every_s` must be at least {min_every_s}, not {e}"));
        }
        Ok(())
    }

    /// The starts of the replays (k = 1, 2, …; k = 0 is the play itself at `start`) before
    /// `until`, at most [`MAX_REPLAYS`].
    pub fn replays(&self, start: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let secs = |s: u64| start + chrono::Duration::seconds(s as i64);
        let mut out: Vec<DateTime<Utc>> = self.offsets_s.iter().skip(1).map(|o| secs(*o as u64)).collect();
        if let Some(every) = self.every_s.filter(|e| *e > 0) {
            let last = *self.offsets_s.last().unwrap_or(&0) as u64;
            out.extend(
                (1..)
                    .map(|j| secs(last + j * every as u64))
                    .take_while(|t| *t < until)
                    .take(MAX_REPLAYS),
            );
        }
        out.retain(|t| *t < until);
        out.truncate(MAX_REPLAYS);
        out
    }
}

/// The id of replay `k` (≥ 1) of message `id`: `{id}#k`.
pub fn replay_id(id: &str, k: usize) -> String {
    format!("{id}#{k}")
}

/// The message a replay id (`{id}#k`) belongs to, and `k`; `None` for any other id.
pub fn replay_of(id: &str) -> Option<(&str, usize)> {
    let (base, k) = id.rsplit_once('#')?;
    Some((base, k.parse().ok()?))
}

/// Daily quiet hours in the device's local time zone, during which `normal` items are skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    /// Start, local time `HH:MM`.
    pub start: NaiveTime,
    /// End, local time `HH:MM` (may be earlier than start: the window then spans midnight).
    pub end: NaiveTime,
}

impl QuietHours {
    /// Whether a local time-of-day falls inside the window.
    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.start <= self.end {
            t >= self.start && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }
}

/// Settings the server pushes with the manifest; `None` keeps the device's configured value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DeviceSettings {
    /// Default volume 0–100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<u8>,
    /// Quiet hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
    /// Heartbeat interval in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_secs: Option<u32>,
    /// IANA time zone for quiet hours (default Asia/Ho_Chi_Minh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// The desired state of one device: everything it must play in the look-ahead window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Monotonically increasing version for this device; changes whenever content changes.
    pub version: u64,
    /// When the server computed it.
    pub generated_at: DateTime<Utc>,
    /// Start of the look-ahead window covered.
    pub window_start: DateTime<Utc>,
    /// End of the look-ahead window covered.
    pub window_end: DateTime<Utc>,
    /// Occurrences ordered by `starts_at`.
    pub items: Vec<ManifestItem>,
    /// Every media file the items reference.
    pub media: Vec<MediaRef>,
    /// Device settings.
    #[serde(default)]
    pub settings: DeviceSettings,
    /// Ids of emergency or priority messages cancelled while their validity window lasts: a
    /// device stops them if they play, and never plays them afterwards (a cancel that reaches a
    /// device that was offline when it was sent). Older devices ignore it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cancelled: Vec<String>,
    /// The agent release the device should run (a rollout that selects it, `docs/ota.md`);
    /// absent: keep the running version. Older devices ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<crate::ota::AgentTarget>,
}

/// An immediate action. Delivered on `d/{device}/cmd` or `a/{area}/cmd`; acked by an
/// [`EventBody::Ack`] carrying the envelope id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Command {
    /// Play now (an emergency uses `priority: emergency`).
    PlayNow {
        /// The item to play; its `starts_at` is the issue instant.
        item: ManifestItem,
        /// The media it references.
        media: Vec<MediaRef>,
    },
    /// Stop what is playing (one item, or everything if `item_id` is absent).
    Stop {
        /// The item to stop.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item_id: Option<String>,
    },
    /// Set the default volume 0–100.
    Volume {
        /// New level.
        level: u8,
    },
    /// Re-read the desired state and report telemetry now.
    Sync,
    /// Start relaying a live stream (ranks between emergency and priority).
    LiveStart {
        /// Stream URL (HTTP, audio).
        url: String,
        /// Id used in reports.
        session_id: String,
        /// The session's priority (`priority` or `emergency`; absent from older servers:
        /// `priority`). The agent ranks an `emergency` session above emergency items
        /// ([`Priority::live_rank`]) and reports the session's proof of play with it.
        #[serde(default = "Priority::live_default")]
        priority: Priority,
    },
    /// Stop the live stream.
    LiveStop {
        /// Id used in reports.
        session_id: String,
    },
}

/// Device presence, published retained on `d/{device}/state`. The last will carries the same
/// `session` as the connection it belongs to, so a late will from an old session is ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceState {
    /// Protocol version.
    pub v: u32,
    /// The device.
    pub device: DeviceId,
    /// Online or offline.
    pub online: bool,
    /// Connection session counter, incremented by the device on every connect.
    pub session: u64,
    /// When the device wrote this (for the will: when the session began).
    pub at: DateTime<Utc>,
    /// The agent's install id: random, made once in its data directory. A reinstall (a fresh
    /// data directory, so `session` starts again at 1) has a new one, which tells the server its
    /// low session counter is a new install of the device, not a stale message. Absent from
    /// older agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install: Option<String>,
}

/// What is playing now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NowPlaying {
    /// Occurrence id.
    pub item_id: String,
    /// Media file.
    pub sha256: String,
    /// Priority.
    pub priority: Priority,
    /// Start of this play.
    pub started_at: DateTime<Utc>,
}

/// Heartbeat on `d/{device}/telemetry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Telemetry {
    /// Protocol version.
    pub v: u32,
    /// The device.
    pub device: DeviceId,
    /// When sent.
    pub at: DateTime<Utc>,
    /// Current session counter.
    pub session: u64,
    /// Current volume 0–100.
    pub volume: u8,
    /// What is playing, if anything.
    pub now_playing: Option<NowPlaying>,
    /// Version of the last manifest applied.
    pub manifest_version: Option<u64>,
    /// Bytes used by the media cache.
    pub cache_bytes: u64,
    /// Free bytes on the file system of the agent's data directory (cache, store, outbox),
    /// as an unprivileged process may use them.
    pub disk_free_bytes: u64,
    /// Size in bytes of that file system (absent from older agents); the server's low-disk alarm
    /// compares `disk_free_bytes` with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_total_bytes: Option<u64>,
    /// Estimated offset of the device clock against the server (device − server), ms.
    pub clock_offset_ms: Option<i64>,
    /// Agent version.
    pub agent_version: String,
    /// Seconds since the agent started.
    pub uptime_s: u64,
    /// Events waiting in the outbox.
    #[serde(default)]
    pub outbox_len: u64,
    /// The broker the agent is connected to (`mqtt://host:port`; absent from older agents), so
    /// that an operator sees how a fleet spreads over a broker cluster's nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<String>,
    /// The agent's install id (see [`DeviceState::install`]); absent from older agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install: Option<String>,
}

/// Outcome of one occurrence on one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlayOutcome {
    /// Played to the end.
    Played,
    /// Played to the end from the beginning, but started after its start instant plus the grace
    /// period, inside its `play_until` window (the device was offline or rebooting); the delay is
    /// `started_at − occurrence_at`.
    PlayedLate,
    /// Stopped by a higher priority (or a stop command) and not resumed.
    Interrupted,
    /// Preempted, then resumed and played to the end.
    Resumed,
    /// Suppressed by quiet hours.
    SkippedQuietHours,
    /// Its start passed while the device could not play (off, booting).
    Missed,
    /// Could not be played; `reason` says why.
    Failed,
}

impl PlayOutcome {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PlayOutcome::Played => "played",
            PlayOutcome::PlayedLate => "played_late",
            PlayOutcome::Interrupted => "interrupted",
            PlayOutcome::Resumed => "resumed",
            PlayOutcome::SkippedQuietHours => "skipped_quiet_hours",
            PlayOutcome::Missed => "missed",
            PlayOutcome::Failed => "failed",
        }
    }
}

/// Proof of play for one occurrence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofOfPlay {
    /// Occurrence id (manifest item id, or the command id for play-now).
    pub item_id: String,
    /// Schedule id (empty for ad-hoc play-now).
    pub schedule_id: String,
    /// The scheduled instant.
    pub occurrence_at: DateTime<Utc>,
    /// First media file of the item.
    pub sha256: String,
    /// Priority played at.
    pub priority: Priority,
    /// First sample reached the output.
    pub started_at: Option<DateTime<Utc>>,
    /// Last sample reached the output.
    pub ended_at: Option<DateTime<Utc>>,
    /// Outcome.
    pub outcome: PlayOutcome,
    /// Why, for `failed`, `missed` and `interrupted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Loudness of what the device handed to its audio output (after the item's volume): the RMS
    /// of the loudest 1-second window, in whole dBFS (floor −120). Absent when nothing was
    /// measured (nothing played, or the null sink, which decodes nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rms_dbfs: Option<i32>,
    /// The item played to its end (`played`, `played_late`, `resumed`) yet every 1-second window
    /// stayed below the device's silence threshold (`audio.silence_dbfs`, default −50 dBFS): it
    /// should have sounded and did not (silent media, volume 0, a broken decoder). The server
    /// raises a silence alarm from it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub silent: bool,
    /// A relay item's stream: how much of it played, reconnections, and whether it failed (the
    /// server raises `relay_failed` from it). Absent for other items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<RelayReport>,
}

/// One event from a device. `id` is a uuid the server uses to ingest idempotently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Unique id (uuid v4 or v7), the idempotency key.
    pub id: Uuid,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    #[serde(flatten)]
    pub body: EventBody,
}

/// The kinds of event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    /// Proof of play.
    Play(ProofOfPlay),
    /// A command or manifest was received and acted on (`ok`) or could not be (`reason`).
    Ack {
        /// Envelope id of the command or manifest.
        message_id: Uuid,
        /// Whether it was applied.
        ok: bool,
        /// Manifest version, when acking a manifest.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        manifest_version: Option<u64>,
        /// Why not.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A server message was refused (bad signature, expired, replayed, malformed).
    Rejected {
        /// Topic it came on.
        topic: String,
        /// Envelope id, when it could be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<Uuid>,
        /// Why.
        reason: String,
    },
    /// A step of an agent update (`docs/ota.md`). Servers before it store it as an unknown event.
    AgentUpdate {
        /// The rollout ([`crate::AgentTarget::rollout`]).
        rollout: String,
        /// The version being installed.
        version: String,
        /// Where the update is.
        state: crate::ota::UpdateState,
        /// Why, for `failed` and `rolled_back`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A media file failed verification or download.
    MediaError {
        /// The file.
        sha256: String,
        /// Why.
        reason: String,
    },
}

/// The server's receipt for a device's events, on `d/{device}/receipt`: these event ids are stored
/// (or were already), and the device may drop them from its outbox. Idempotent, so a device
/// applies it without the replay check (an old receipt only names events already dropped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The ids of the events the server holds, from one or more batches.
    pub events: Vec<Uuid>,
}

/// The body of a device report on `d/{device}/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventBatch {
    /// Protocol version.
    pub v: u32,
    /// The device that sends it (must match the topic).
    pub device: DeviceId,
    /// When sent.
    pub sent_at: DateTime<Utc>,
    /// The events, oldest first.
    pub events: Vec<Event>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repetition_expands_to_its_replays_inside_the_window_with_ids_of_their_own() {
        let t0: DateTime<Utc> = "2026-12-03T07:05:00Z".parse().unwrap();
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        let r = Repetition::twice_5min_then_every_30min();
        assert_eq!(r.replays(t0, at(4200)), [at(300), at(600), at(2400)]);
        assert_eq!(
            Repetition::every_2h().replays(t0, at(7200)),
            Vec::<DateTime<Utc>>::new()
        );
        assert_eq!(Repetition::every_2h().replays(t0, at(7201)), [at(7200)]);
        assert!(r.check(60).is_ok());
        assert!(
            Repetition {
                every_s: Some(30),
                ..r.clone()
            }
            .check(60)
            .is_err()
        );
        assert_eq!(replay_id("c1", 2), "c1#2");
        assert_eq!(replay_of("c1#2"), Some(("c1", 2)));
        assert_eq!(replay_of("s@17"), None);
        // Older devices ignore the field; absent, an item plays once.
        let json = r#"{"id":"a","schedule_id":"","starts_at":"2026-12-03T07:05:00Z","priority":"emergency","volume":80,"media":[]}"#;
        assert_eq!(
            serde_json::from_str::<ManifestItem>(json).unwrap().repetition,
            None
        );
    }
}
