//! Presence decisions of the device status history (issue 7): how the presence messages on
//! `d/{device}/state` become online intervals (one row per interval in `device_status_history`,
//! written by `store::history` in ingest's transaction), and the availability of a device over a
//! period computed from them. Pure: the SQL is `store::history`'s, the endpoint `http::devices`'s.
//!
//! # Recording
//!
//! Every MQTT connection of a device is one *session* (the counter the device increments on each
//! connect); an interval is the time one session was online, keyed `(device_id, session)`:
//!
//! - `online` for a session newer than the device's latest interval opens an interval (at the
//!   time the server receives it); an interval of an older session still open is closed first
//!   (`reconnect`: the server never saw it end). A repeated (retained) `online` of the same session
//!   changes nothing, and one of an older session is stale and ignored.
//! - `offline` of the open session closes it: `will` when it is the session's last will (the
//!   device writes the will before it connects, so its `at` is not after the `at` of the session's
//!   `online`), `offline` for a clean goodbye. An `offline` of an older session is a stale will
//!   arriving after a reconnect and is ignored.
//! - End times: an end the server sees happen live is stamped with the time the server receives
//!   it. An end it learns afterwards (a newer session, or any message the broker delivers as
//!   *retained*, i.e. written while the server was not subscribed) is stamped with the device's
//!   `last_seen` (its last message before this burst, never before `online_from`), the latest
//!   moment it is known to have been online.
//!
//! # Server restart
//!
//! Intervals stay open across a restart. On reconnecting to the broker the server receives every
//! retained state: `online` of the same session re-confirms the open interval (the device kept its
//! connection, so it was online all along), `offline` closes it as above. With the embedded broker
//! retained messages do not survive the restart: devices reconnect with a new session (closing the
//! old interval as `reconnect`). `store::history::close_unconfirmed` runs once, [`RECONCILE_AFTER`] after ingest
//! starts: an interval still open whose device has sent nothing since the start is closed at the
//! device's `last_seen` (`server_restart`). Should the same session's `online` arrive later after
//! all, the interval is reopened: the connection never ended.
//!
//! # Availability
//!
//! For a device and a period `[from, to)`: online time overlapping the period ÷ the part of the
//! period the device existed (`[max(from, created_at), min(to, now))`). Only the rows overlapping
//! the period are read ([`covered`], [`availability`]). `GET /api/v1/devices/{id}/status-history?from=&to=`
//! serves a device's intervals and availability ([`StatusHistory`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, Result};

/// How long after ingest starts `store::history::close_unconfirmed` runs.
pub const RECONCILE_AFTER: Duration = Duration::from_secs(180);
/// Most intervals one API answer lists (the availability still covers the whole period).
pub const MAX_INTERVALS: usize = 5_000;
/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// How an interval ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndedBy {
    /// The device published `online: false` itself.
    Offline,
    /// The broker published the device's last will (connection lost).
    Will,
    /// A newer session came online before the end of this one was seen.
    Reconnect,
    /// Closed by the server after a restart: nothing confirmed the device since.
    ServerRestart,
}

impl EndedBy {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EndedBy::Offline => "offline",
            EndedBy::Will => "will",
            EndedBy::Reconnect => "reconnect",
            EndedBy::ServerRestart => "server_restart",
        }
    }
    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<EndedBy> {
        Some(match s {
            "offline" => EndedBy::Offline,
            "will" => EndedBy::Will,
            "reconnect" => EndedBy::Reconnect,
            "server_restart" => EndedBy::ServerRestart,
            _ => return None,
        })
    }
}

/// One presence message, in arrival order.
#[derive(Debug, Clone)]
pub struct Presence {
    /// Device id.
    pub device: String,
    /// Online or offline.
    pub online: bool,
    /// Session counter.
    pub session: i64,
    /// The device's `at`, unix ms.
    pub at: i64,
    /// Delivered by the broker as a retained message (written while the server was not listening).
    pub retained: bool,
    /// The agent's install id (none from older agents and boards); ingest turns `session` into
    /// the device's session across installs (`store::installs`) before anything else reads it.
    pub install: Option<String>,
}

/// Whether `id` can be an agent's install id (1–64 letters, digits, `-`); other values are
/// treated as absent.
pub fn valid_install(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The offset of a device install's session counter (see `store::installs`): an install first
/// seen when the device had reached session `top` starts after it, unless it is the device's
/// first install id and its counter already runs above `top` (an agent upgraded in place, whose
/// data directory and so its numbering continue).
pub fn install_offset(first_install: bool, session: i64, top: i64) -> i64 {
    if first_install && session > top { 0 } else { top }
}

/// The device's latest interval (highest session), as far as this burst knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latest {
    /// Its session.
    pub session: i64,
    /// Unix ms the server learned it was online.
    pub online_from: i64,
    /// Whether it is still open.
    pub open: bool,
    /// How it ended (when closed).
    pub ended_by: Option<EndedBy>,
    /// The device's `at` of the session's `online` message.
    pub state_at: Option<i64>,
    /// The device's last message of any kind (`device_status.last_seen`).
    pub last_seen: Option<i64>,
}

/// A write decided for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Open the session's interval at `at`.
    Open {
        /// Session.
        session: i64,
        /// Unix ms (server time).
        at: i64,
        /// The device's `at` of the `online` message.
        state_at: i64,
    },
    /// Close the session's open interval at `at`.
    Close {
        /// Session.
        session: i64,
        /// Unix ms.
        at: i64,
        /// How it ended.
        ended_by: EndedBy,
    },
    /// Reopen an interval the reconciliation closed (`server_restart`): it never ended.
    Reopen {
        /// Session.
        session: i64,
    },
}

/// When an unseen end happened: the device's last sign of life, not before the interval began.
fn unseen_end(l: &Latest, now: i64) -> i64 {
    l.last_seen
        .unwrap_or(now)
        .clamp(l.online_from, now.max(l.online_from))
}

/// What one message does to the device's history (`latest` is updated).
pub fn decide(latest: &mut Option<Latest>, m: &Presence, now: i64) -> Vec<Op> {
    let mut ops = Vec::new();
    if m.online {
        match latest {
            Some(l) if l.session > m.session => {} // stale
            Some(l) if l.session == m.session => {
                if !l.open && l.ended_by == Some(EndedBy::ServerRestart) {
                    ops.push(Op::Reopen { session: l.session });
                    l.open = true;
                    l.ended_by = None;
                }
                l.last_seen = Some(now);
            }
            _ => {
                if let Some(l) = latest.as_ref().filter(|l| l.open) {
                    ops.push(Op::Close {
                        session: l.session,
                        at: unseen_end(l, now),
                        ended_by: EndedBy::Reconnect,
                    });
                }
                ops.push(Op::Open {
                    session: m.session,
                    at: now,
                    state_at: m.at,
                });
                *latest = Some(Latest {
                    session: m.session,
                    online_from: now,
                    open: true,
                    ended_by: None,
                    state_at: Some(m.at),
                    last_seen: Some(now),
                });
            }
        }
        return ops;
    }
    let Some(l) = latest.as_mut().filter(|l| l.open && l.session <= m.session) else {
        return ops; // nothing open, or a stale will of an older session
    };
    let ended_by = if l.session < m.session {
        EndedBy::Reconnect
    } else if l.state_at.is_some_and(|s| m.at <= s) {
        EndedBy::Will
    } else {
        EndedBy::Offline
    };
    let at = if m.retained || ended_by == EndedBy::Reconnect {
        unseen_end(l, now)
    } else {
        now
    };
    ops.push(Op::Close {
        session: l.session,
        at,
        ended_by,
    });
    l.open = false;
    l.ended_by = Some(ended_by);
    ops
}

/// One device's figure for a period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct Availability {
    /// Online time inside the counted part of the period, ms.
    pub online_ms: i64,
    /// The counted part of the period: `[max(from, created_at), min(to, now))`, ms.
    pub period_ms: i64,
    /// `online_ms ÷ period_ms`, 0–1.
    pub ratio: f64,
}

/// Total length of the union of `spans` clipped to `[a, b)`.
pub fn covered(spans: &mut [(i64, i64)], a: i64, b: i64) -> i64 {
    spans.sort_unstable();
    let (mut total, mut cur) = (0i64, a);
    for &(s, e) in spans.iter() {
        let (s, e) = (s.max(cur), e.min(b));
        if e > s {
            total += e - s;
            cur = e;
        }
    }
    total
}

/// The counted part of `[from, to)` for a device created at `created`: `[max(from, created),
/// min(to, now))`, or `None` when the device did not exist during any of it (created after it, or
/// the period lies in the future).
pub fn counted_window(from: i64, to: i64, created: i64, now: i64) -> Option<(i64, i64)> {
    let (a, b) = (from.max(created), to.min(now));
    (b > a).then_some((a, b))
}

/// The availability over the counted window `[a, b)` (non-empty, [`counted_window`]) of a device
/// online during `spans` (an open interval ends now).
pub fn availability(spans: &mut [(i64, i64)], (a, b): (i64, i64)) -> Availability {
    let online = covered(spans, a, b);
    Availability {
        online_ms: online,
        period_ms: b - a,
        ratio: online as f64 / (b - a) as f64,
    }
}

/// One stored interval.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Interval {
    /// Connection session counter.
    pub session: i64,
    /// Unix ms the server learned the device was online.
    pub online_from: i64,
    /// Unix ms the interval ended; null while online.
    pub online_to: Option<i64>,
    /// How it ended; null while online.
    pub ended_by: Option<EndedBy>,
}

/// A device's status history over a period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusHistory {
    /// Device id.
    pub device_id: String,
    /// Period start, unix ms.
    pub from: i64,
    /// Period end (exclusive), unix ms.
    pub to: i64,
    /// Availability over the period (null when the device did not exist in it).
    pub availability: Option<Availability>,
    /// Intervals overlapping the period, newest first.
    pub intervals: Vec<Interval>,
    /// Whether more than [`MAX_INTERVALS`] overlapped (only the newest are listed).
    pub truncated: bool,
}

/// A time given as unix milliseconds or RFC 3339, or a 400 `invalid_time` naming `name`.
pub fn parse_time(name: &str, v: &str) -> Result<i64> {
    let v = v.trim();
    if let Ok(ms) = v.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            Error::bad(
                "invalid_time",
                format!("`{name}` must be an RFC 3339 time (2026-06-01T00:00:00+07:00) or unix milliseconds, not `{v}`"),
            )
        })
}

/// The period of a status-history request: `to` defaults to now, `from` to `to` − 30 days;
/// 400 `invalid_period` unless `from` < `to`.
pub fn period(from: Option<&str>, to: Option<&str>, now: i64) -> Result<(i64, i64)> {
    let to = to.map(|v| parse_time("to", v)).transpose()?.unwrap_or(now);
    let from = from
        .map(|v| parse_time("from", v))
        .transpose()?
        .unwrap_or(to - 30 * DAY_MS);
    if from >= to {
        return Err(Error::bad("invalid_period", "`from` must be before `to`"));
    }
    Ok((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(online: bool, session: i64, at: i64, retained: bool) -> Presence {
        Presence {
            device: "lc-1".into(),
            online,
            session,
            at,
            retained,
            install: None,
        }
    }

    #[test]
    fn sessions_open_close_and_ignore_repeats_and_stale_wills() {
        let mut l = None;
        assert_eq!(
            decide(&mut l, &msg(true, 1, 100, false), 1_000),
            vec![Op::Open {
                session: 1,
                at: 1_000,
                state_at: 100
            }]
        );
        assert!(
            decide(&mut l, &msg(true, 1, 100, true), 2_000).is_empty(),
            "repeat"
        );
        // The will carries the time the session began (before its online message).
        assert_eq!(
            decide(&mut l, &msg(false, 1, 99, false), 3_000),
            vec![Op::Close {
                session: 1,
                at: 3_000,
                ended_by: EndedBy::Will
            }]
        );
        assert_eq!(
            decide(&mut l, &msg(true, 2, 4_000, false), 5_000),
            vec![Op::Open {
                session: 2,
                at: 5_000,
                state_at: 4_000
            }]
        );
        assert!(
            decide(&mut l, &msg(false, 1, 99, false), 6_000).is_empty(),
            "stale will"
        );
        assert!(
            decide(&mut l, &msg(true, 1, 100, false), 6_000).is_empty(),
            "stale online"
        );
        assert_eq!(
            decide(&mut l, &msg(false, 2, 7_000, false), 8_000),
            vec![Op::Close {
                session: 2,
                at: 8_000,
                ended_by: EndedBy::Offline
            }]
        );
        assert!(
            decide(&mut l, &msg(false, 2, 7_000, false), 9_000).is_empty(),
            "already closed"
        );
    }

    #[test]
    fn unseen_ends_are_dated_by_the_last_message() {
        let mut l = Some(Latest {
            session: 3,
            online_from: 1_000,
            open: true,
            ended_by: None,
            state_at: Some(10),
            last_seen: Some(4_000),
        });
        assert_eq!(
            decide(&mut l, &msg(true, 4, 9_000, false), 10_000),
            vec![
                Op::Close {
                    session: 3,
                    at: 4_000,
                    ended_by: EndedBy::Reconnect
                },
                Op::Open {
                    session: 4,
                    at: 10_000,
                    state_at: 9_000
                }
            ]
        );
        let mut l = Some(Latest {
            session: 3,
            online_from: 1_000,
            open: true,
            ended_by: None,
            state_at: Some(10),
            last_seen: Some(4_000),
        });
        assert_eq!(
            decide(&mut l, &msg(false, 3, 5, true), 10_000),
            vec![Op::Close {
                session: 3,
                at: 4_000,
                ended_by: EndedBy::Will
            }],
            "a retained will read after a restart"
        );
        // Closed by the reconciliation, then the same session turns out to be connected.
        let mut l = Some(Latest {
            session: 3,
            online_from: 1_000,
            open: false,
            ended_by: Some(EndedBy::ServerRestart),
            state_at: Some(10),
            last_seen: Some(4_000),
        });
        assert_eq!(
            decide(&mut l, &msg(true, 3, 10, true), 10_000),
            vec![Op::Reopen { session: 3 }]
        );
    }

    #[test]
    fn covered_time_is_clipped_and_never_counts_twice() {
        let mut s = vec![(0, 10), (5, 20), (30, 40), (-5, 2)];
        assert_eq!(covered(&mut s, 0, 35), 20 + 5);
        assert_eq!(covered(&mut [], 0, 10), 0);
    }

    #[test]
    fn an_offline_of_a_newer_session_closes_the_open_one_as_a_reconnect_at_its_last_message() {
        let mut l = Some(Latest {
            session: 2,
            online_from: 1_000,
            open: true,
            ended_by: None,
            state_at: Some(900),
            last_seen: Some(3_000),
        });
        assert_eq!(
            decide(&mut l, &msg(false, 3, 5_000, false), 6_000),
            vec![Op::Close {
                session: 2,
                at: 3_000,
                ended_by: EndedBy::Reconnect
            }]
        );
        assert!(!l.unwrap().open);
        // A retained offline read live is dated by the last message, never before the start.
        let mut early = Some(Latest {
            session: 4,
            online_from: 7_000,
            open: true,
            ended_by: None,
            state_at: Some(10),
            last_seen: Some(2_000),
        });
        assert_eq!(
            decide(&mut early, &msg(false, 4, 50, true), 9_000),
            vec![Op::Close {
                session: 4,
                at: 7_000,
                ended_by: EndedBy::Offline
            }]
        );
        // Nothing known about the device: an offline changes nothing.
        assert!(decide(&mut None, &msg(false, 1, 1, false), 2).is_empty());
    }

    #[test]
    fn ended_by_round_trips_through_its_stored_name() {
        for e in [
            EndedBy::Offline,
            EndedBy::Will,
            EndedBy::Reconnect,
            EndedBy::ServerRestart,
        ] {
            assert_eq!(EndedBy::parse(e.as_str()), Some(e));
        }
        assert_eq!(EndedBy::parse("crash"), None);
    }

    #[test]
    fn availability_counts_only_the_part_of_the_period_the_device_existed() {
        // Created in the middle of the period; the period ends in the future.
        let w = counted_window(0, 1_000, 400, 800).unwrap();
        assert_eq!(w, (400, 800));
        let a = availability(&mut [(300, 500), (700, 900)], w);
        assert_eq!(
            a,
            Availability {
                online_ms: 100 + 100,
                period_ms: 400,
                ratio: 0.5
            }
        );
        assert_eq!(
            counted_window(0, 1_000, 1_000, 2_000),
            None,
            "created after the period"
        );
        assert_eq!(counted_window(500, 1_000, 0, 400), None, "a period in the future");
    }

    #[test]
    fn a_period_defaults_to_the_last_30_days_and_accepts_ms_or_rfc3339() {
        let now = 100 * DAY_MS;
        assert_eq!(period(None, None, now).unwrap(), (70 * DAY_MS, now));
        assert_eq!(period(Some("5"), Some(" 10 "), now).unwrap(), (5, 10));
        assert_eq!(
            period(
                Some("2026-06-01T00:00:00+07:00"),
                Some("2026-06-01T00:00:00Z"),
                now
            )
            .unwrap(),
            (1_780_246_800_000, 1_780_272_000_000)
        );
        let code = |r: Result<(i64, i64)>| match r.unwrap_err() {
            Error::BadRequest { code, .. } => code,
            other => panic!("{other:?}"),
        };
        assert_eq!(code(period(Some("10"), Some("10"), now)), "invalid_period");
        assert_eq!(code(period(Some("yesterday"), None, now)), "invalid_time");
    }
}
