//! Repetition of an emergency play-now (issue 12 §3) as clients ask for it: a preset named for
//! the patterns of Decision 18/2021/QĐ-TTg or a custom pattern, checked into the wire's
//! [`Repetition`] ([`resolve`], 422 `invalid_repetition` naming the field), and the words of the
//! spoken issue time each replay starts with ([`issue_time_text`]). Devices expand the pattern
//! themselves (offline too); each replay has its own id `{command_id}#k` (k ≥ 1).

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use nguon_protocol::{Priority, Repetition, replay_id};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::tracking::{AckSeen, Observed, PlaySeen, Tracked, Tracking, derive};
use crate::error::{Error, Result};

/// The presets: name, pattern, and how the console describes it.
pub const PRESETS: [&str; 2] = ["every_2h", "twice_5min_then_every_30min"];

/// Shortest interval between replays unless configured otherwise (`min_repeat_every_s`).
pub const DEFAULT_MIN_EVERY_S: u32 = 60;

/// The pattern of a preset name.
pub fn preset(name: &str) -> Option<Repetition> {
    match name {
        "every_2h" => Some(Repetition::every_2h()),
        "twice_5min_then_every_30min" => Some(Repetition::twice_5min_then_every_30min()),
        _ => None,
    }
}

fn bad(field: &str, message: impl std::fmt::Display) -> Error {
    Error::unprocessable("invalid_repetition", format!("`{field}`: {message}"))
}

fn seconds(v: &Value, field: &str) -> Result<u32> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| bad(field, format!("{v} is not a whole number of seconds")))
}

/// The pattern a request asks for: a preset name (`"every_2h"`,
/// `"twice_5min_then_every_30min"`) or `{"offsets_s": [0, …], "every_s": N}`. Only an emergency
/// repeats; `every_s` must be at least `min_every_s`.
pub fn resolve(req: &Value, priority: Priority, min_every_s: u32) -> Result<Repetition> {
    if priority != Priority::Emergency {
        return Err(bad(
            "repetition",
            format!("only an emergency repeats, not a {} message", priority.as_str()),
        ));
    }
    let r = match req {
        Value::String(name) => preset(name).ok_or_else(|| {
            bad(
                "repetition",
                format!(
                    "unknown preset `{name}`; expected {} or {{offsets_s, every_s}}",
                    PRESETS.join(", ")
                ),
            )
        })?,
        Value::Object(o) => {
            if let Some(k) = o.keys().find(|k| !["offsets_s", "every_s"].contains(&k.as_str())) {
                return Err(bad(&format!("repetition.{k}"), "unknown field"));
            }
            let offsets = o
                .get("offsets_s")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("repetition.offsets_s", "an array of seconds is required"))?;
            let offsets_s = offsets
                .iter()
                .map(|v| seconds(v, "repetition.offsets_s"))
                .collect::<Result<Vec<u32>>>()?;
            let every_s = match o.get("every_s") {
                None | Some(Value::Null) => None,
                Some(v) => Some(seconds(v, "repetition.every_s")?),
            };
            Repetition {
                offsets_s,
                every_s,
                preamble: None,
            }
        }
        other => {
            return Err(bad(
                "repetition",
                format!("{other} is neither a preset name nor {{offsets_s, every_s}}"),
            ));
        }
    };
    r.check(min_every_s).map_err(|m| {
        // "a repetition needs a second offset or `every_s`" is about the whole pattern.
        let field = if m.starts_with("a repetition") {
            "repetition"
        } else if m.contains("every_s") {
            "repetition.every_s"
        } else if m.contains("offsets_s") {
            "repetition.offsets_s"
        } else {
            "repetition"
        };
        bad(field, m)
    })?;
    // The gap between offsets is an interval too.
    if let Some(w) = r.offsets_s.windows(2).find(|w| w[1] - w[0] < min_every_s) {
        return Err(bad(
            "repetition.offsets_s",
            format!(
                "{} s between {} and {} is less than {min_every_s} s",
                w[1] - w[0],
                w[0],
                w[1]
            ),
        ));
    }
    Ok(r)
}

/// What the preamble of each replay says: "Bản tin phát hành lúc 14 giờ 05 ngày 3 tháng 12" (the
/// issue time in the province's time zone; the speech normaliser reads the numbers out).
pub fn issue_time_text<Tz: TimeZone>(t: &DateTime<Tz>) -> String {
    format!(
        "Bản tin phát hành lúc {} giờ {:02} ngày {} tháng {}",
        t.hour(),
        t.minute(),
        t.day(),
        t.month()
    )
}

/// One replay of a repeating message with its delivery tracking, like the first play's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RepetitionReport {
    /// Which replay (1, 2, …; the first play is the command itself).
    pub k: u32,
    /// Its id, `{command_id}#k`, as its proofs of play carry it.
    pub item_id: String,
    /// When it was due.
    pub due_at: DateTime<Utc>,
    /// Its tracking: counts per state and each target's history.
    pub tracking: Tracking,
}

/// What devices reported about the replays of one message, by (device id, k).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaysSeen {
    /// Proofs of play.
    pub plays: BTreeMap<(String, u32), Vec<PlaySeen>>,
    /// First sample of a replay playing now (telemetry), unix ms.
    pub playing: BTreeMap<(String, u32), i64>,
}

/// The replays of command `id` (pattern `r`, first play at `start`) due by `now` (unix ms), each
/// tracked over the command's targets like the first play: a target that acked the command has
/// it (`delivered` from the replay's due time), its proofs and telemetry of `{id}#k` say the rest;
/// a replay's window ends when the next one is due. Replays due after every target's cancel are
/// not listed (the cancel stopped them).
pub fn track(
    id: &str,
    cmd: &Tracked,
    r: &Repetition,
    start: DateTime<Utc>,
    observed: &[Observed],
    seen: &ReplaysSeen,
    now: i64,
) -> Vec<RepetitionReport> {
    let until = DateTime::from_timestamp_millis(cmd.expires_at).unwrap_or(start);
    let starts = r.replays(start, until);
    let mut out = Vec::new();
    for (i, t) in starts.iter().enumerate() {
        let (k, due) = (i as u32 + 1, t.timestamp_millis());
        if due > now {
            break;
        }
        if observed.iter().all(|o| o.cancelled_at.is_some_and(|c| c <= due)) && !observed.is_empty() {
            continue;
        }
        let end = starts
            .get(i + 1)
            .map_or(cmd.expires_at, |n| n.timestamp_millis().min(cmd.expires_at));
        let c = Tracked {
            issued_at: due,
            expires_at: end,
            ..cmd.clone()
        };
        let obs: Vec<Observed> = observed
            .iter()
            .map(|o| {
                let key = (o.device_id.clone(), k);
                Observed {
                    acks: o
                        .acks
                        .iter()
                        .filter(|a| a.ok)
                        .map(|a| AckSeen {
                            at: a.at.max(due),
                            ..a.clone()
                        })
                        .collect(),
                    playing_since: seen.playing.get(&key).copied(),
                    plays: seen.plays.get(&key).cloned().unwrap_or_default(),
                    ..o.clone()
                }
            })
            .collect();
        out.push(RepetitionReport {
            k,
            item_id: replay_id(id, k as usize),
            due_at: *t,
            tracking: derive(&c, &obs, now),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn field(e: Error) -> String {
        match e {
            Error::Unprocessable { code, message } => {
                assert_eq!(code, "invalid_repetition");
                message.split('`').nth(1).unwrap_or_default().to_string()
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn presets_and_custom_patterns_resolve_and_bad_ones_name_their_field() {
        let e = Priority::Emergency;
        assert_eq!(
            resolve(&json!("every_2h"), e, 60).unwrap(),
            Repetition::every_2h()
        );
        let r = resolve(&json!("twice_5min_then_every_30min"), e, 60).unwrap();
        assert_eq!((r.offsets_s, r.every_s), (vec![0, 300, 600], Some(1800)));
        let r = resolve(&json!({"offsets_s": [0, 90], "every_s": 600}), e, 60).unwrap();
        assert_eq!((r.offsets_s, r.every_s), (vec![0, 90], Some(600)));
        // A test server may allow shorter intervals.
        assert!(resolve(&json!({"offsets_s": [0], "every_s": 5}), e, 5).is_ok());
        for (bad, want) in [
            (json!("hourly"), "repetition"),
            (json!(3), "repetition"),
            (json!({"offsets_s": [0], "every_s": 30}), "repetition.every_s"),
            (json!({"offsets_s": [0, 30]}), "repetition.offsets_s"),
            (json!({"offsets_s": [5], "every_s": 600}), "repetition.offsets_s"),
            (json!({"offsets_s": [0, 600, 300]}), "repetition.offsets_s"),
            (json!({"offsets_s": [0, -1]}), "repetition.offsets_s"),
            (json!({"every_s": 600}), "repetition.offsets_s"),
            (json!({"offsets_s": [0]}), "repetition"),
            (
                json!({"offsets_s": [0], "every_s": 600, "times": 3}),
                "repetition.times",
            ),
        ] {
            assert_eq!(field(resolve(&bad, e, 60).unwrap_err()), want, "{bad}");
        }
        assert_eq!(
            field(resolve(&json!("every_2h"), Priority::Priority, 60).unwrap_err()),
            "repetition"
        );
    }

    #[test]
    fn each_replay_due_is_tracked_like_the_first_play_from_its_own_proofs() {
        let t0 = 1_800_000_000_000i64;
        let start = DateTime::from_timestamp_millis(t0).unwrap();
        let cmd = Tracked {
            action: "play_now".into(),
            issued_at: t0,
            expires_at: t0 + 1_000_000,
            failed_at: None,
        };
        let r = Repetition {
            offsets_s: vec![0],
            every_s: Some(100),
            preamble: None,
        };
        let dev = |id: &str| Observed {
            device_id: id.into(),
            area: "x".into(),
            online: true,
            acks: vec![AckSeen {
                at: t0 + 50,
                ok: true,
                reason: None,
            }],
            ..Observed::default()
        };
        let mut seen = ReplaysSeen::default();
        seen.plays.insert(
            ("a".into(), 1),
            vec![PlaySeen {
                outcome: nguon_protocol::PlayOutcome::Played,
                reason: None,
                occurrence_at: t0 + 100_000,
                started_at: Some(t0 + 100_010),
                ended_at: Some(t0 + 102_000),
                received_at: t0 + 102_100,
            }],
        );
        seen.playing.insert(("b".into(), 2), t0 + 200_020);
        let reps = track("c1", &cmd, &r, start, &[dev("a"), dev("b")], &seen, t0 + 200_500);
        let got: Vec<(u32, &str, u64, u64, u64)> = reps
            .iter()
            .map(|x| {
                let n = |s: &str| x.tracking.counts[s];
                (x.k, x.item_id.as_str(), n("played"), n("playing"), n("delivered"))
            })
            .collect();
        // Replay 1's window ended when replay 2 was due: b, which never played it, expired.
        assert_eq!(got, [(1, "c1#1", 1, 0, 0), (2, "c1#2", 0, 1, 1)]);
        assert_eq!(reps[0].tracking.counts["expired"], 1);
        // A cancel of every target before replay 2 stops listing it and what follows.
        let mut a = dev("a");
        a.cancelled_at = Some(t0 + 150_000);
        let reps = track("c1", &cmd, &r, start, &[a], &seen, t0 + 400_000);
        assert_eq!(reps.len(), 1);
    }

    #[test]
    fn the_preamble_says_the_issue_time_in_words_the_normaliser_reads() {
        let t = chrono_tz::Asia::Ho_Chi_Minh
            .with_ymd_and_hms(2026, 12, 3, 14, 5, 0)
            .unwrap();
        assert_eq!(
            issue_time_text(&t),
            "Bản tin phát hành lúc 14 giờ 05 ngày 3 tháng 12"
        );
    }
}
