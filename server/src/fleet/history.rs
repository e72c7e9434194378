//! Device status history (issue 7): one row per online interval in `device_status_history`, fed
//! by ingest from the retained presence messages on `d/{device}/state`, and the availability of
//! a device over a period computed from it.
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
//! old interval as `reconnect`). [`close_unconfirmed`] runs once, [`RECONCILE_AFTER`] after ingest
//! starts: an interval still open whose device has sent nothing since the start is closed at the
//! device's `last_seen` (`server_restart`). Should the same session's `online` arrive later after
//! all, the interval is reopened: the connection never ended.
//!
//! # Availability
//!
//! For a device and a period `[from, to)`: online time overlapping the period ÷ the part of the
//! period the device existed (`[max(from, created_at), min(to, now))`). Only the rows overlapping
//! the period are read. `GET /api/v1/devices/{id}/status-history?from=&to=` serves a device's
//! intervals and availability.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::console::i18n::{self, Lang};
use crate::error::{Error, Result};
use crate::http::auth::Caller;
use crate::store::{Store, now_ms};

/// How long after ingest starts [`close_unconfirmed`] runs.
pub const RECONCILE_AFTER: Duration = Duration::from_secs(180);
/// Most intervals one API answer lists (the availability still covers the whole period).
pub const MAX_INTERVALS: usize = 5_000;
const DAY_MS: i64 = 86_400_000;

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
    fn parse(s: &str) -> Option<EndedBy> {
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
}

/// The device's latest interval (highest session), as far as this burst knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Latest {
    session: i64,
    online_from: i64,
    open: bool,
    ended_by: Option<EndedBy>,
    state_at: Option<i64>,
    last_seen: Option<i64>,
}

/// A write decided for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Open {
        session: i64,
        at: i64,
        state_at: i64,
    },
    Close {
        session: i64,
        at: i64,
        ended_by: EndedBy,
    },
    Reopen {
        session: i64,
    },
}

/// When an unseen end happened: the device's last sign of life, not before the interval began.
fn unseen_end(l: &Latest, now: i64) -> i64 {
    l.last_seen
        .unwrap_or(now)
        .clamp(l.online_from, now.max(l.online_from))
}

/// What one message does to the device's history (pure; `latest` is updated).
fn decide(latest: &mut Option<Latest>, m: &Presence, now: i64) -> Vec<Op> {
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

async fn load_latest(conn: &mut sqlx::AnyConnection, devices: &[&String]) -> Result<HashMap<String, Latest>> {
    let mut out = HashMap::new();
    for chunk in devices.chunks(500) {
        let sql = format!(
            "SELECT h.device_id, h.session, h.online_from, h.online_to, h.ended_by, h.state_at, s.last_seen \
             FROM device_status_history h LEFT JOIN device_status s ON s.device_id = h.device_id \
             WHERE h.device_id IN ({}) AND h.session = \
             (SELECT MAX(m.session) FROM device_status_history m WHERE m.device_id = h.device_id)",
            (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for d in chunk {
            q = q.bind((*d).clone());
        }
        for r in q.fetch_all(&mut *conn).await? {
            let to: Option<i64> = r.try_get("online_to")?;
            let ended: Option<String> = r.try_get("ended_by")?;
            out.insert(
                r.try_get("device_id")?,
                Latest {
                    session: r.try_get("session")?,
                    online_from: r.try_get("online_from")?,
                    open: to.is_none(),
                    ended_by: ended.as_deref().and_then(EndedBy::parse),
                    state_at: r.try_get("state_at")?,
                    last_seen: r.try_get("last_seen")?,
                },
            );
        }
    }
    Ok(out)
}

/// Record a burst of presence messages (in arrival order) in ingest's transaction. Call it
/// before `device_status` is updated from the same messages (its `last_seen` dates unseen ends).
pub async fn record(conn: &mut sqlx::AnyConnection, msgs: &[Presence], now: i64) -> Result<()> {
    if msgs.is_empty() {
        return Ok(());
    }
    let mut seen = HashSet::new();
    let devices: Vec<&String> = msgs
        .iter()
        .map(|m| &m.device)
        .filter(|d| seen.insert(*d))
        .collect();
    let mut latest = load_latest(conn, &devices).await?;
    for m in msgs {
        let mut l = latest.get(&m.device).copied();
        let ops = decide(&mut l, m, now);
        if let Some(l) = l {
            latest.insert(m.device.clone(), l);
        }
        for op in ops {
            match op {
                Op::Open {
                    session,
                    at,
                    state_at,
                } => {
                    sqlx::query(
                        "INSERT INTO device_status_history (device_id, session, online_from, online_to, ended_by, state_at) \
                         VALUES ($1, $2, $3, NULL, NULL, $4) ON CONFLICT (device_id, session) DO NOTHING",
                    )
                    .bind(m.device.clone())
                    .bind(session)
                    .bind(at)
                    .bind(state_at)
                    .execute(&mut *conn)
                    .await?;
                }
                Op::Close {
                    session,
                    at,
                    ended_by,
                } => {
                    sqlx::query(
                        "UPDATE device_status_history SET online_to = $1, ended_by = $2 \
                         WHERE device_id = $3 AND session = $4 AND online_to IS NULL",
                    )
                    .bind(at)
                    .bind(ended_by.as_str())
                    .bind(m.device.clone())
                    .bind(session)
                    .execute(&mut *conn)
                    .await?;
                }
                Op::Reopen { session } => {
                    sqlx::query(
                        "UPDATE device_status_history SET online_to = NULL, ended_by = NULL \
                         WHERE device_id = $1 AND session = $2 AND ended_by = 'server_restart'",
                    )
                    .bind(m.device.clone())
                    .bind(session)
                    .execute(&mut *conn)
                    .await?;
                }
            }
        }
    }
    Ok(())
}

/// Close the intervals still open whose device has sent nothing since `since` (the server's
/// start) at the device's `last_seen` (not before `online_from`), as `server_restart`. Returns how
/// many were closed.
pub async fn close_unconfirmed(store: &Store, since: i64) -> Result<u64> {
    let mut tx = store.begin_write().await?;
    let n = sqlx::query(
        "UPDATE device_status_history SET ended_by = 'server_restart', online_to = COALESCE(\
         (SELECT s.last_seen FROM device_status s WHERE s.device_id = device_status_history.device_id \
          AND s.last_seen > device_status_history.online_from), online_from) \
         WHERE online_to IS NULL AND NOT EXISTS (SELECT 1 FROM device_status s \
          WHERE s.device_id = device_status_history.device_id AND s.last_seen >= $1)",
    )
    .bind(since)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    if n > 0 {
        tracing::info!(
            closed = n,
            "status history: intervals not confirmed since the start were closed"
        );
    }
    Ok(n)
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
fn covered(spans: &mut [(i64, i64)], a: i64, b: i64) -> i64 {
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

/// Availability over `[from, to)` of each of `devices` (`(id, created_at)`); a device that did
/// not exist during any of the period (created after it, or the period lies in the future) has
/// no entry. Reads only the intervals overlapping the period.
pub async fn availability(
    store: &Store,
    devices: &[(String, i64)],
    from: i64,
    to: i64,
    now: i64,
) -> Result<HashMap<String, Availability>> {
    let windows: HashMap<&str, (i64, i64)> = devices
        .iter()
        .map(|(id, created)| (id.as_str(), (from.max(*created), to.min(now))))
        .filter(|(_, (a, b))| b > a)
        .collect();
    if windows.is_empty() {
        return Ok(HashMap::new());
    }
    let mut sql = String::from(
        "SELECT device_id, online_from, online_to FROM device_status_history \
         WHERE online_from < $1 AND (online_to IS NULL OR online_to > $2)",
    );
    let single = (windows.len() == 1).then(|| *windows.keys().next().expect("one"));
    if single.is_some() {
        sql.push_str(" AND device_id = $3");
    }
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(to).bind(from);
    if let Some(d) = single {
        q = q.bind(d.to_string());
    }
    let mut spans: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    for r in q.fetch_all(&store.pool).await? {
        let id: String = r.try_get("device_id")?;
        if !windows.contains_key(id.as_str()) {
            continue;
        }
        let a: i64 = r.try_get("online_from")?;
        let b: Option<i64> = r.try_get("online_to")?;
        spans.entry(id).or_default().push((a, b.unwrap_or(now)));
    }
    Ok(windows
        .into_iter()
        .map(|(id, (a, b))| {
            let online = spans.get_mut(id).map_or(0, |s| covered(s, a, b));
            (
                id.to_string(),
                Availability {
                    online_ms: online,
                    period_ms: b - a,
                    ratio: online as f64 / (b - a) as f64,
                },
            )
        })
        .collect())
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

/// A device's intervals overlapping `[from, to)`, newest first, at most `limit`.
pub async fn intervals(
    store: &Store,
    device: &str,
    from: i64,
    to: i64,
    limit: usize,
) -> Result<Vec<Interval>> {
    let rows = sqlx::query(
        "SELECT session, online_from, online_to, ended_by FROM device_status_history \
         WHERE device_id = $1 AND online_from < $2 AND (online_to IS NULL OR online_to > $3) \
         ORDER BY online_from DESC, session DESC LIMIT $4",
    )
    .bind(device.to_string())
    .bind(to)
    .bind(from)
    .bind(limit as i64)
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let ended: Option<String> = r.try_get("ended_by")?;
            Ok(Interval {
                session: r.try_get("session")?,
                online_from: r.try_get("online_from")?,
                online_to: r.try_get("online_to")?,
                ended_by: ended.as_deref().and_then(EndedBy::parse),
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// API

/// OpenAPI description of the status-history endpoint.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(status_history),
    components(schemas(StatusHistory, Interval, EndedBy, Availability))
)]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/devices/{id}/status-history", get(status_history))
}

/// Period of `GET /api/v1/devices/{id}/status-history`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct HistoryQuery {
    /// Period start, RFC 3339 or unix ms (default: `to` − 30 days).
    pub from: Option<String>,
    /// Period end, exclusive, RFC 3339 or unix ms (default: now).
    pub to: Option<String>,
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

fn parse_time(name: &str, v: &str) -> Result<i64> {
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

/// A device's online intervals and availability over `[from, to)`.
#[utoipa::path(get, path = "/api/v1/devices/{id}/status-history", tag = "devices",
    params(("id" = String, Path), HistoryQuery),
    responses((status = 200, body = StatusHistory), (status = 400, description = "bad `from`/`to`"),
              (status = 403, description = "device outside the caller's scope"), (status = 404)))]
async fn status_history(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<StatusHistory>> {
    crate::services::auth::check_device(&state, &caller, &id).await?;
    let d = crate::fleet::get(&state.store, &id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("device `{id}`")))?;
    let now = now_ms();
    let to =
        q.to.as_deref()
            .map(|v| parse_time("to", v))
            .transpose()?
            .unwrap_or(now);
    let from = q
        .from
        .as_deref()
        .map(|v| parse_time("from", v))
        .transpose()?
        .unwrap_or(to - 30 * DAY_MS);
    if from >= to {
        return Err(Error::bad("invalid_period", "`from` must be before `to`"));
    }
    let avail = availability(&state.store, &[(d.id.clone(), d.created_at)], from, to, now).await?;
    let mut list = intervals(&state.store, &d.id, from, to, MAX_INTERVALS + 1).await?;
    let truncated = list.len() > MAX_INTERVALS;
    list.truncate(MAX_INTERVALS);
    Ok(Json(StatusHistory {
        availability: avail.get(&d.id).copied(),
        device_id: d.id,
        from,
        to,
        intervals: list,
        truncated,
    }))
}

// ---------------------------------------------------------------------------------------------
// Console

/// Intervals shown on the device page.
const PAGE_ROWS: usize = 20;

/// `1 ngày 02:03:04` / `1 d 02:03:04`, or `h:mm:ss` / `m:ss` under a day.
pub fn duration_label(ms: i64, lang: Lang) -> String {
    let ms = ms.max(0);
    if ms < DAY_MS {
        return i18n::duration(ms);
    }
    let s = (ms % DAY_MS) / 1000;
    format!(
        "{} {} {:02}:{:02}:{:02}",
        ms / DAY_MS,
        i18n::t("hist.days", lang),
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

fn pct(a: Option<&Availability>) -> String {
    a.map_or_else(|| "—".into(), |a| format!("{} %", i18n::decimal(a.ratio * 100.0)))
}

/// The device page's "status history" section: recent intervals with the offline gaps between
/// them, and availability over the last 7 and 30 days.
pub async fn page_data(
    store: &Store,
    device: &str,
    created_at: i64,
    lang: Lang,
) -> Result<serde_json::Value> {
    let now = now_ms();
    let dev = [(device.to_string(), created_at)];
    let a7 = availability(store, &dev, now - 7 * DAY_MS, now, now).await?;
    let a30 = availability(store, &dev, now - 30 * DAY_MS, now, now).await?;
    let list = intervals(store, device, i64::MIN, i64::MAX, PAGE_ROWS).await?;
    let mut rows = Vec::new();
    let mut newer_from: Option<i64> = None; // start of the next-newer interval
    for iv in &list {
        if let (Some(next), Some(end)) = (newer_from, iv.online_to)
            && next > end
        {
            rows.push(serde_json::json!({"online": false, "from": end, "to": next,
                "duration": duration_label(next - end, lang), "ended_by": ""}));
        }
        let end = iv.online_to.unwrap_or(now);
        rows.push(serde_json::json!({
            "online": true, "from": iv.online_from, "to": iv.online_to, "session": iv.session,
            "duration": duration_label(end - iv.online_from, lang),
            "ended_by": iv.ended_by.map_or(String::new(), |e| i18n::t(&format!("hist.ended.{}", e.as_str()), lang).to_string()),
        }));
        newer_from = Some(iv.online_from);
    }
    Ok(serde_json::json!({
        "rows": rows,
        "avail7": pct(a7.get(device)),
        "avail30": pct(a30.get(device)),
    }))
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
    fn long_durations_show_days() {
        assert_eq!(duration_label(90_061_000, Lang::En), "1 d 01:01:01");
        assert_eq!(duration_label(61_000, Lang::Vi), "1:01");
    }
}
