//! Per-target delivery tracking of a command (issue 12 §2): the state of each device a command
//! covered when it was issued, and the time of each change, derived from what is stored — the
//! command's target list (`command_targets`: online or not at issue, cancelled by a later stop),
//! the devices' acks, their `now_playing` telemetry and their proofs of play — by [`derive`],
//! when it is read. Nothing needs updating in place, so no sweep can fall behind: a target with
//! no outcome when the command's window has ended is `expired` from that instant on.
//!
//! States, in the order a target goes through them:
//! `pending` (online at issue) or `offline_pending` → `delivered` (the device acked the command,
//! or took it from its manifest) → `playing` (first sample, from telemetry or the proof of play)
//! → `played` | `played_late` (with the delay) | `interrupted` | `failed` (with the reason);
//! or `cancelled` (a stop, before an outcome) or `expired` (no outcome inside the window; for
//! stop/volume/sync: not acked before the command expired). Times are the device's clock for
//! what the device reports (ack, first sample, end), the server's for issue, cancel and expiry.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use nguon_protocol::PlayOutcome;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The state of one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    /// Online at issue, nothing heard yet.
    Pending,
    /// Offline at issue, nothing heard yet.
    OfflinePending,
    /// The device acked it (or took it from its manifest).
    Delivered,
    /// Its first sample went out.
    Playing,
    /// Played to the end, on time.
    Played,
    /// Played to the end from the beginning, late (the device caught up inside the window).
    PlayedLate,
    /// Stopped before its end (preempted, stopped, cancelled while playing, agent died).
    Interrupted,
    /// Could not be delivered or played (`reason`).
    Failed,
    /// A stop cancelled it before an outcome.
    Cancelled,
    /// No outcome before the window ended.
    Expired,
}

impl TargetState {
    /// Every state, in order.
    pub const ALL: [TargetState; 10] = [
        TargetState::Pending,
        TargetState::OfflinePending,
        TargetState::Delivered,
        TargetState::Playing,
        TargetState::Played,
        TargetState::PlayedLate,
        TargetState::Interrupted,
        TargetState::Failed,
        TargetState::Cancelled,
        TargetState::Expired,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Pending => "pending",
            TargetState::OfflinePending => "offline_pending",
            TargetState::Delivered => "delivered",
            TargetState::Playing => "playing",
            TargetState::Played => "played",
            TargetState::PlayedLate => "played_late",
            TargetState::Interrupted => "interrupted",
            TargetState::Failed => "failed",
            TargetState::Cancelled => "cancelled",
            TargetState::Expired => "expired",
        }
    }

    /// Whether the target has been reached (delivered or further, not failed/expired/cancelled).
    pub fn reached(self) -> bool {
        matches!(
            self,
            TargetState::Delivered
                | TargetState::Playing
                | TargetState::Played
                | TargetState::PlayedLate
                | TargetState::Interrupted
        )
    }
}

/// One change of a target's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StateChange {
    /// The new state.
    pub state: TargetState,
    /// When.
    pub at: DateTime<Utc>,
    /// Why, for `failed` and `interrupted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One target of a command and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TargetReport {
    /// Device id.
    pub device_id: String,
    /// Its area (the commune table groups by it).
    pub area: String,
    /// Its state now (the last change).
    pub state: TargetState,
    /// Since when.
    pub since: DateTime<Utc>,
    /// Why, for `failed` and `interrupted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For `played_late`: first sample − issue (the start the message asked for), ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<i64>,
    /// Every change, oldest first.
    pub history: Vec<StateChange>,
}

/// The command as tracking needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    /// `play_now`, `stop`, …
    pub action: String,
    /// Unix ms.
    pub issued_at: i64,
    /// Unix ms (end of the validity window for a catch-up play-now).
    pub expires_at: i64,
    /// Unix ms it was given up unpublished, if it was.
    pub failed_at: Option<i64>,
}

/// An ack of the command by a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckSeen {
    /// Device time, unix ms.
    pub at: i64,
    /// Whether it was taken.
    pub ok: bool,
    /// Why not.
    pub reason: Option<String>,
}

/// A proof of play of the command (item id = command id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaySeen {
    /// Outcome.
    pub outcome: PlayOutcome,
    /// Why.
    pub reason: Option<String>,
    /// The start it asked for (the issue instant), unix ms.
    pub occurrence_at: i64,
    /// First sample, unix ms.
    pub started_at: Option<i64>,
    /// Last sample, unix ms.
    pub ended_at: Option<i64>,
    /// When the server stored it, unix ms.
    pub received_at: i64,
}

/// What is known about one target.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    /// Device id.
    pub device_id: String,
    /// Area at issue.
    pub area: String,
    /// Online at issue.
    pub online: bool,
    /// When a stop cancelled it for this device (unix ms).
    pub cancelled_at: Option<i64>,
    /// Acks, any order.
    pub acks: Vec<AckSeen>,
    /// Its first sample as telemetry reports it while it plays (unix ms).
    pub playing_since: Option<i64>,
    /// Proofs of play (normally one).
    pub plays: Vec<PlaySeen>,
}

/// The tracking of one command: counts per state (every state, zeros included) and the targets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Tracking {
    /// Targets per state.
    pub counts: BTreeMap<String, u64>,
    /// Targets reached (delivered or further).
    pub reached: u64,
    /// Every target, by device id.
    pub targets: Vec<TargetReport>,
}

fn ms(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t).unwrap_or_default()
}

/// One target's history.
fn target(cmd: &Tracked, o: &Observed, now: i64) -> TargetReport {
    let change = |state, at: i64, reason: Option<String>| StateChange {
        state,
        at: ms(at),
        reason,
    };
    let mut h = vec![change(
        if o.online {
            TargetState::Pending
        } else {
            TargetState::OfflinePending
        },
        cmd.issued_at,
        None,
    )];
    let mut acks = o.acks.clone();
    acks.sort_by_key(|a| a.at);
    if let Some(a) = acks.iter().find(|a| a.ok).or(acks.first()) {
        if a.ok {
            h.push(change(TargetState::Delivered, a.at, None));
        } else {
            h.push(change(TargetState::Failed, a.at, a.reason.clone()));
        }
    }
    // The proof that says most: one that played, else the latest.
    let mut plays = o.plays.clone();
    plays.sort_by_key(|p| (on_air_rank(p.outcome), p.received_at));
    let play = plays.last();
    let started = play.and_then(|p| p.started_at).or(o.playing_since);
    if let Some(s) = started {
        h.push(change(TargetState::Playing, s, None));
    }
    let mut delay_ms = None;
    let mut done = false;
    if let Some(p) = play {
        let at = p.ended_at.or(p.started_at).unwrap_or(p.received_at);
        let (state, reason) = match p.outcome {
            PlayOutcome::Played | PlayOutcome::Resumed => (TargetState::Played, None),
            PlayOutcome::PlayedLate => {
                delay_ms = p.started_at.map(|s| s - p.occurrence_at);
                (TargetState::PlayedLate, None)
            }
            PlayOutcome::Interrupted => (TargetState::Interrupted, p.reason.clone()),
            PlayOutcome::Missed => (
                TargetState::Failed,
                Some(format!("missed: {}", p.reason.clone().unwrap_or_default())),
            ),
            PlayOutcome::SkippedQuietHours => (TargetState::Failed, Some("skipped in quiet hours".into())),
            PlayOutcome::Failed => (TargetState::Failed, p.reason.clone()),
        };
        h.push(change(state, at, reason));
        done = true;
    }
    let last = h.last().map(|c| c.state).unwrap_or(TargetState::Pending);
    let settled =
        done || last == TargetState::Failed || (cmd.action != "play_now" && last == TargetState::Delivered);
    if !settled {
        if let Some(c) = o.cancelled_at {
            h.push(change(TargetState::Cancelled, c, None));
        } else if let (Some(f), TargetState::Pending | TargetState::OfflinePending) = (cmd.failed_at, last) {
            h.push(change(
                TargetState::Failed,
                f,
                Some("the server could not publish it before it expired".into()),
            ));
        } else if now >= cmd.expires_at && last != TargetState::Playing {
            h.push(change(TargetState::Expired, cmd.expires_at, None));
        }
    }
    let end = h
        .last()
        .cloned()
        .unwrap_or_else(|| change(TargetState::Pending, cmd.issued_at, None));
    TargetReport {
        device_id: o.device_id.clone(),
        area: o.area.clone(),
        state: end.state,
        since: end.at,
        reason: end.reason,
        delay_ms,
        history: h,
    }
}

/// Played outcomes sort last (the most telling proof wins).
fn on_air_rank(o: PlayOutcome) -> u8 {
    match o {
        PlayOutcome::Played | PlayOutcome::PlayedLate | PlayOutcome::Resumed => 2,
        PlayOutcome::Interrupted => 1,
        _ => 0,
    }
}

/// The tracking of `cmd` at `now` (unix ms) from what is known about each target.
pub fn derive(cmd: &Tracked, observed: &[Observed], now: i64) -> Tracking {
    let mut targets: Vec<TargetReport> = observed.iter().map(|o| target(cmd, o, now)).collect();
    targets.sort_by(|a, b| a.device_id.cmp(&b.device_id));
    let mut counts: BTreeMap<String, u64> = TargetState::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), 0))
        .collect();
    for t in &targets {
        *counts.entry(t.state.as_str().to_string()).or_default() += 1;
    }
    Tracking {
        counts,
        reached: targets.iter().filter(|t| t.state.reached()).count() as u64,
        targets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000;

    fn emergency() -> Tracked {
        Tracked {
            action: "play_now".into(),
            issued_at: T0,
            expires_at: T0 + 1_800_000,
            failed_at: None,
        }
    }

    fn dev(id: &str, online: bool) -> Observed {
        Observed {
            device_id: id.into(),
            area: "x".into(),
            online,
            ..Observed::default()
        }
    }

    fn play(outcome: PlayOutcome, started: i64, ended: i64) -> PlaySeen {
        PlaySeen {
            outcome,
            reason: None,
            occurrence_at: T0,
            started_at: Some(started),
            ended_at: Some(ended),
            received_at: ended + 100,
        }
    }

    fn states(t: &TargetReport) -> Vec<&'static str> {
        t.history.iter().map(|c| c.state.as_str()).collect()
    }

    #[test]
    fn each_target_goes_through_its_states_with_their_times_and_the_counts_add_up() {
        let mut on_time = dev("a", true);
        on_time.acks.push(AckSeen {
            at: T0 + 200,
            ok: true,
            reason: None,
        });
        on_time
            .plays
            .push(play(PlayOutcome::Played, T0 + 300, T0 + 5_300));
        let mut late = dev("b", false);
        late.acks.push(AckSeen {
            at: T0 + 60_000,
            ok: true,
            reason: None,
        });
        late.plays
            .push(play(PlayOutcome::PlayedLate, T0 + 61_000, T0 + 66_000));
        let mut playing = dev("c", true);
        playing.playing_since = Some(T0 + 400);
        let waiting = dev("d", false);
        let mut cancelled = dev("e", false);
        cancelled.cancelled_at = Some(T0 + 5_000);
        let t = derive(
            &emergency(),
            &[on_time, late, playing, waiting, cancelled],
            T0 + 70_000,
        );
        let by: Vec<(&str, Vec<&str>)> = t
            .targets
            .iter()
            .map(|x| (x.device_id.as_str(), states(x)))
            .collect();
        assert_eq!(
            by,
            [
                ("a", vec!["pending", "delivered", "playing", "played"]),
                (
                    "b",
                    vec!["offline_pending", "delivered", "playing", "played_late"]
                ),
                ("c", vec!["pending", "playing"]),
                ("d", vec!["offline_pending"]),
                ("e", vec!["offline_pending", "cancelled"]),
            ]
        );
        assert_eq!(t.targets[1].delay_ms, Some(61_000));
        assert_eq!(t.targets[1].since, ms(T0 + 66_000));
        assert_eq!(t.counts["played"], 1);
        assert_eq!(t.counts["played_late"], 1);
        assert_eq!(t.counts["offline_pending"], 1);
        assert_eq!(t.counts["expired"], 0);
        assert_eq!(t.counts.values().sum::<u64>(), 5);
        assert_eq!(t.reached, 3);
    }

    #[test]
    fn a_target_without_an_outcome_expires_with_the_window_and_a_refused_ack_fails() {
        let mut refused = dev("r", true);
        refused.acks.push(AckSeen {
            at: T0 + 10,
            ok: false,
            reason: Some("not handed to the player".into()),
        });
        let mut delivered = dev("d", true);
        delivered.acks.push(AckSeen {
            at: T0 + 10,
            ok: true,
            reason: None,
        });
        let obs = [dev("a", false), delivered, refused];
        let before = derive(&emergency(), &obs, T0 + 1_799_999);
        assert_eq!(before.counts["expired"], 0);
        let after = derive(&emergency(), &obs, T0 + 1_800_000);
        let got: Vec<(&str, &str)> = after
            .targets
            .iter()
            .map(|x| (x.device_id.as_str(), x.state.as_str()))
            .collect();
        assert_eq!(got, [("a", "expired"), ("d", "expired"), ("r", "failed")]);
        assert_eq!(
            after.targets[2].reason.as_deref(),
            Some("not handed to the player")
        );
        // A volume command acked is done: it does not expire.
        let volume = Tracked {
            action: "volume".into(),
            ..emergency()
        };
        let v = derive(&volume, &obs[1..2], T0 + 10_000_000);
        assert_eq!(v.targets[0].state, TargetState::Delivered);
    }
}
