//! Table `device_status_history`: the online intervals of each device (one row per MQTT
//! session), written by ingest in its burst's transaction ([`record`], applying the decisions of
//! `domain::presence`), closed after a restart when nothing re-confirmed them
//! ([`close_unconfirmed`]), and read for the availability over a period ([`availability`], only
//! the rows overlapping it) and the list of intervals ([`intervals`]).

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use crate::domain::presence::{self, Availability, EndedBy, Interval, Latest, Op, Presence};
use crate::error::Result;
use crate::store::{Conn, Store, placeholders};

async fn load_latest(conn: &mut Conn, devices: &[&String]) -> Result<HashMap<String, Latest>> {
    let mut out = HashMap::new();
    for chunk in devices.chunks(500) {
        let sql = format!(
            "SELECT h.device_id, h.session, h.online_from, h.online_to, h.ended_by, h.state_at, s.last_seen \
             FROM device_status_history h LEFT JOIN device_status s ON s.device_id = h.device_id \
             WHERE h.device_id IN ({}) AND h.session = \
             (SELECT MAX(m.session) FROM device_status_history m WHERE m.device_id = h.device_id)",
            placeholders(1, chunk.len())
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
pub async fn record(conn: &mut Conn, msgs: &[Presence], now: i64) -> Result<()> {
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
        let ops = presence::decide(&mut l, m, now);
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
        .filter_map(|(id, created)| Some((id.as_str(), presence::counted_window(from, to, *created, now)?)))
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
        .map(|(id, w)| {
            let mut none = Vec::new();
            let s = spans.get_mut(id).unwrap_or(&mut none);
            (id.to_string(), presence::availability(s, w))
        })
        .collect())
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
