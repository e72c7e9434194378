//! Table `commands` as the command outbox: the command use case writes a row unpublished
//! ([`insert_in`], in the transaction of its audit entry); the command sender reads the ones due
//! ([`pending`]), numbers each once ([`set_seq`], so a retry sends the same message), marks them
//! published after the broker confirmed them ([`mark_published`]) and fails those that expired
//! unpublished ([`fail_expired`]) or cannot be read ([`mark_failed`]). The report of one command
//! with its acks is `store::reports::command`.

use sqlx::Row;

use crate::error::Result;
use crate::store::{Conn, Store};

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
        "INSERT INTO commands (id, target_kind, target, topic, action, body, seq, issued_at, expires_at, issued_by) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9)",
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
    .execute(conn)
    .await?;
    Ok(())
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
