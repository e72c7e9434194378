//! Table `commands` as the command outbox: the command use case writes a row unpublished
//! ([`insert_in`], in the transaction of its audit entry); the command sender reads the ones due
//! ([`pending`]), numbers each once ([`set_seq`], so a retry sends the same message), marks them
//! published after the broker confirmed them ([`mark_published`]) and fails those that expired
//! unpublished ([`fail_expired`]) or cannot be read ([`mark_failed`]). The report of one command
//! with its acks is `store::reports::command`, its delivery tracking `store::tracking`.
//!
//! Table `command_targets`: the devices a command covered when it was issued (recorded in the
//! database by [`record_targets_in`]; [`resolve_targets`] and [`insert_targets`] where the
//! service needs them in hand, a CAP alert or a live broadcast); a stop cancels the emergency or
//! priority messages still inside their window for the devices it covers ([`cancel_in`],
//! [`cancel_for_targets_of`]); the dispatcher reads the messages that are
//! part of desired state now ([`active_catch_up`]).

use sqlx::Row;

use crate::error::Result;
use crate::store::{Conn, Store, placeholders, push_values};

/// A command to record, unpublished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCommand {
    /// Id (= the envelope id devices ack).
    pub id: String,
    /// `device` or `area`.
    pub target_kind: String,
    /// Device id or area code.
    pub target: String,
    /// Topic it goes out on.
    pub topic: String,
    /// `play_now`, `stop`, `volume`, `sync`.
    pub action: String,
    /// The command JSON (`nguon_protocol::Command`).
    pub body: String,
    /// Unix ms.
    pub issued_at: i64,
    /// Unix ms after which it must not be sent nor acted on.
    pub expires_at: i64,
    /// Username of the caller who issued it (`admin-token` for the bootstrap token).
    pub issued_by: String,
    /// A play-now with a validity window (part of its targets' desired state until it expires).
    pub catch_up: bool,
}

/// An unpublished command, due to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Id.
    pub id: String,
    /// `device` or `area`.
    pub target_kind: String,
    /// Device id or area code.
    pub target: String,
    /// Topic.
    pub topic: String,
    /// The command JSON.
    pub body: String,
    /// Its sequence number, `0` until the sender numbers it.
    pub seq: i64,
    /// Unix ms.
    pub issued_at: i64,
    /// Unix ms.
    pub expires_at: i64,
}

/// Record a command, unpublished, inside the use case's transaction (pass `&mut *tx`).
pub async fn insert_in(conn: &mut Conn, c: &NewCommand) -> Result<()> {
    sqlx::query(
        "INSERT INTO commands (id, target_kind, target, topic, action, body, seq, issued_at, expires_at, issued_by, \
         catch_up) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9, $10)",
    )
    .bind(c.id.clone())
    .bind(c.target_kind.clone())
    .bind(c.target.clone())
    .bind(c.topic.clone())
    .bind(c.action.clone())
    .bind(c.body.clone())
    .bind(c.issued_at)
    .bind(c.expires_at)
    .bind(c.issued_by.clone())
    .bind(c.catch_up as i64)
    .execute(conn)
    .await?;
    Ok(())
}

/// A device a command covers, as it was when the command was issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetDevice {
    /// Device id.
    pub device_id: String,
    /// Its area.
    pub area: String,
    /// Whether it was online.
    pub online: bool,
}

/// The devices a command may target, with their status (`d`, `s`): the one filter of
/// [`resolve_targets`] and [`record_targets_in`], followed by `AND <key> IN (…)`.
const TARGETS: &str = "FROM devices d LEFT JOIN device_status s ON s.device_id = d.id \
                       WHERE d.enabled = 1 AND d.kind = 'loudspeaker'";

/// The enabled loudspeakers of `areas` (each with its descendants: pass the subtree) and the
/// devices named in `devices`, with their area and whether they are online now, by id. (Boards
/// show bulletins from their HTTP feed; they play nothing.)
pub async fn resolve_targets(
    store: &Store,
    areas: &[String],
    devices: &[String],
) -> Result<Vec<TargetDevice>> {
    let mut out = Vec::new();
    for (column, keys) in [("d.area", areas), ("d.id", devices)] {
        for chunk in keys.chunks(500) {
            let sql = format!(
                "SELECT d.id, d.area, COALESCE(s.online, 0) AS online {TARGETS} AND {column} IN ({})",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for k in chunk {
                q = q.bind(k.clone());
            }
            for r in q.fetch_all(&store.pool).await? {
                out.push(TargetDevice {
                    device_id: r.try_get("id")?,
                    area: r.try_get("area")?,
                    online: r.try_get::<i64, _>("online")? != 0,
                });
            }
        }
    }
    out.sort_by(|a, b| a.device_id.cmp(&b.device_id));
    out.dedup_by(|a, b| a.device_id == b.device_id);
    Ok(out)
}

/// Record the target devices of command `id`, inside its transaction.
pub async fn insert_targets(
    conn: &mut Conn,
    backend: crate::store::Backend,
    id: &str,
    targets: &[TargetDevice],
) -> Result<()> {
    for chunk in targets.chunks(500) {
        let mut sql =
            String::from("INSERT INTO command_targets (command_id, device_id, area, online) VALUES ");
        push_values(&mut sql, chunk.len(), 4, backend);
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for t in chunk {
            q = q
                .bind(id.to_string())
                .bind(t.device_id.clone())
                .bind(t.area.clone())
                .bind(t.online as i64);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Record, inside the transaction of command `id`, the enabled loudspeakers of `areas` (each
/// with its descendants: pass the subtree) or of `devices` (one of the two) as its targets, with
/// their area and whether they are online now, in the database (`INSERT … SELECT`: nothing is
/// read into the server, so a province of 100,000 devices costs a few statements). Returns
/// (targets, online).
pub async fn record_targets_in(
    conn: &mut Conn,
    id: &str,
    areas: &[String],
    devices: &[String],
) -> Result<(u64, u64)> {
    for (column, keys) in [("d.area", areas), ("d.id", devices)] {
        for chunk in keys.chunks(500) {
            let sql = format!(
                "INSERT INTO command_targets (command_id, device_id, area, online) \
                 SELECT $1, d.id, d.area, COALESCE(s.online, 0) {TARGETS} AND {column} IN ({})",
                placeholders(2, chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.to_string());
            for k in chunk {
                q = q.bind(k.clone());
            }
            q.execute(&mut *conn).await?;
        }
    }
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN online <> 0 THEN 1 ELSE 0 END), 0) AS up \
         FROM command_targets WHERE command_id = $1",
    )
    .bind(id.to_string())
    .fetch_one(&mut *conn)
    .await?;
    let n: i64 = row.try_get("n")?;
    let up: i64 = row.try_get("up")?;
    Ok((n.max(0) as u64, up.max(0) as u64))
}

/// [`cancel_in`] for the devices command `covering` was recorded for ([`record_targets_in`]),
/// without reading them into the server: a stop to a province cancels in one statement.
pub async fn cancel_for_targets_of(
    conn: &mut Conn,
    item: Option<&str>,
    covering: &str,
    now: i64,
) -> Result<u64> {
    let only = if item.is_some() { " AND id = $3" } else { "" };
    let sql = format!(
        "UPDATE command_targets SET cancelled_at = $1 WHERE cancelled_at IS NULL \
         AND command_id IN (SELECT id FROM commands WHERE catch_up = 1 AND expires_at > $1{only}) \
         AND device_id IN (SELECT device_id FROM command_targets WHERE command_id = $2)"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(covering.to_string());
    if let Some(i) = item {
        q = q.bind(i.to_string());
    }
    Ok(q.execute(&mut *conn).await?.rows_affected())
}

/// Cancel, for `devices`, the emergency or priority messages still inside their window at `now`
/// (only `item` when given): they leave those devices' desired state and are listed there as
/// cancelled until their window ends. Returns how many (message, device) pairs were cancelled.
pub async fn cancel_in(conn: &mut Conn, item: Option<&str>, devices: &[String], now: i64) -> Result<u64> {
    let mut n = 0;
    for chunk in devices.chunks(500) {
        let only = if item.is_some() { " AND id = $2" } else { "" };
        let sql = format!(
            "UPDATE command_targets SET cancelled_at = $1 WHERE cancelled_at IS NULL \
             AND command_id IN (SELECT id FROM commands WHERE catch_up = 1 AND expires_at > $1{only}) \
             AND device_id IN ({})",
            placeholders(if item.is_some() { 3 } else { 2 }, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
        if let Some(i) = item {
            q = q.bind(i.to_string());
        }
        for d in chunk {
            q = q.bind(d.clone());
        }
        n += q.execute(&mut *conn).await?.rows_affected();
    }
    Ok(n)
}

/// One emergency or priority message inside its window, for one target device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveTarget {
    /// The command id.
    pub command_id: String,
    /// The command JSON (a `play_now`).
    pub body: String,
    /// The device.
    pub device_id: String,
    /// Whether a stop cancelled it for this device.
    pub cancelled: bool,
}

/// Every (message, device) of the play-now commands with a validity window that has not ended
/// at `now`, cancelled ones included, by command then device.
pub async fn active_catch_up(store: &Store, now: i64) -> Result<Vec<ActiveTarget>> {
    let rows = sqlx::query(
        "SELECT c.id, c.body, t.device_id, t.cancelled_at FROM commands c \
         JOIN command_targets t ON t.command_id = c.id \
         WHERE c.catch_up = 1 AND c.expires_at > $1 AND c.failed_at IS NULL \
         ORDER BY c.issued_at, c.id, t.device_id",
    )
    .bind(now)
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ActiveTarget {
                command_id: r.try_get("id")?,
                body: r.try_get("body")?,
                device_id: r.try_get("device_id")?,
                cancelled: r.try_get::<Option<i64>, _>("cancelled_at")?.is_some(),
            })
        })
        .collect()
}

/// The oldest `limit` commands neither published nor failed that are still valid at `now`, in
/// issue order.
pub async fn pending(store: &Store, now: i64, limit: i64) -> Result<Vec<Pending>> {
    let rows = sqlx::query(
        "SELECT id, target_kind, target, topic, body, seq, issued_at, expires_at FROM commands \
         WHERE published_at IS NULL AND failed_at IS NULL AND expires_at > $1 \
         ORDER BY issued_at, id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Pending {
                id: r.try_get("id")?,
                target_kind: r.try_get("target_kind")?,
                target: r.try_get("target")?,
                topic: r.try_get("topic")?,
                body: r.try_get("body")?,
                seq: r.try_get("seq")?,
                issued_at: r.try_get("issued_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .collect()
}

/// Mark every command still unpublished at `now` but expired as failed; returns how many.
pub async fn fail_expired(store: &Store, now: i64) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE commands SET failed_at = $1 \
         WHERE published_at IS NULL AND failed_at IS NULL AND expires_at <= $1",
    )
    .bind(now)
    .execute(&store.pool)
    .await?
    .rows_affected())
}

/// Mark one command as failed (it cannot be sent).
pub async fn mark_failed(store: &Store, id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE commands SET failed_at = $1 WHERE id = $2 AND published_at IS NULL")
        .bind(now)
        .bind(id.to_string())
        .execute(&store.pool)
        .await?;
    Ok(())
}

/// Record the sequence number a command is sent with (before its first publish, so every retry
/// sends the same message).
pub async fn set_seq(store: &Store, id: &str, seq: i64) -> Result<()> {
    sqlx::query("UPDATE commands SET seq = $1 WHERE id = $2")
        .bind(seq)
        .bind(id.to_string())
        .execute(&store.pool)
        .await?;
    Ok(())
}

/// Mark a command published at `now` (after the broker confirmed it).
pub async fn mark_published(store: &Store, id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE commands SET published_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id.to_string())
        .execute(&store.pool)
        .await?;
    Ok(())
}

/// A command as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Recent {
    /// Id.
    pub id: String,
    /// `play_now`, `stop`, …
    pub action: String,
    /// `device` or `area`.
    pub target_kind: String,
    /// Device id or area code.
    pub target: String,
    /// Unix ms.
    pub issued_at: i64,
    /// Unix ms.
    pub expires_at: i64,
    /// A message with a validity window.
    pub catch_up: bool,
}

/// The newest command of `action` addressed to device `device`: (id, body JSON, issued at).
pub async fn last_for_device(
    store: &Store,
    device: &str,
    action: &str,
) -> Result<Option<(String, String, i64)>> {
    let row = sqlx::query(
        "SELECT id, body, issued_at FROM commands WHERE target_kind = 'device' AND target = $1 AND action = $2 \
         ORDER BY issued_at DESC, id DESC LIMIT 1",
    )
    .bind(device.to_string())
    .bind(action.to_string())
    .fetch_optional(&store.pool)
    .await?;
    row.map(|r| Ok((r.try_get("id")?, r.try_get("body")?, r.try_get("issued_at")?)))
        .transpose()
}

/// The latest `limit` commands, newest first.
pub async fn recent(store: &Store, limit: i64) -> Result<Vec<Recent>> {
    let rows = sqlx::query(
        "SELECT id, action, target_kind, target, issued_at, expires_at, catch_up FROM commands \
         ORDER BY issued_at DESC, id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Recent {
                id: r.try_get("id")?,
                action: r.try_get("action")?,
                target_kind: r.try_get("target_kind")?,
                target: r.try_get("target")?,
                issued_at: r.try_get("issued_at")?,
                expires_at: r.try_get("expires_at")?,
                catch_up: r.try_get::<i64, _>("catch_up")? != 0,
            })
        })
        .collect()
}
