//! The dispatch outbox (`dispatch_outbox`): every change to a device's desired state writes one
//! row ([`insert`]) in the transaction of the change itself, then wakes the dispatcher
//! ([`Wake::dispatch`]). The dispatcher reads the pending rows ([`pending`]), publishes, and
//! deletes them ([`delete`]); a row that is never deleted is read again at the next batch, so a
//! change cannot be lost between the commit and the publish.

use std::sync::Arc;

use sqlx::Row;
use tokio::sync::Notify;

use crate::domain::change::Change;
use crate::error::{Error, Result};
use crate::store::{Conn, Store, now_ms, placeholders};

/// Insert an outbox row for `change` inside the caller's transaction (pass `&mut *tx`).
pub async fn insert(conn: &mut Conn, change: &Change) -> Result<()> {
    let body = serde_json::to_string(change).map_err(Error::context("outbox change"))?;
    sqlx::query("INSERT INTO dispatch_outbox (id, change, created_at) VALUES ($1, $2, $3)")
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(body)
        .bind(now_ms())
        .execute(conn)
        .await?;
    Ok(())
}

/// One pending outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Row id (uuid v7).
    pub id: String,
    /// The change (`Change::All` when the stored JSON is unreadable: recompute everything).
    pub change: Change,
    /// Unix ms of the commit that wrote it.
    pub created_at: i64,
}

/// The oldest `limit` pending rows, oldest first.
pub async fn pending(store: &Store, limit: i64) -> Result<Vec<Pending>> {
    let rows =
        sqlx::query("SELECT id, change, created_at FROM dispatch_outbox ORDER BY created_at, id LIMIT $1")
            .bind(limit)
            .fetch_all(&store.pool)
            .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let id: String = r.try_get("id")?;
        let text: String = r.try_get("change")?;
        let change = match serde_json::from_str::<Change>(&text) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(outbox_id = %id, error = %e, "unreadable outbox row; recomputing everything");
                Change::All
            }
        };
        out.push(Pending {
            id,
            change,
            created_at: r.try_get("created_at")?,
        });
    }
    Ok(out)
}

/// Delete outbox rows by id (inside the transaction that records what they caused).
pub async fn delete(conn: &mut Conn, ids: &[String]) -> Result<()> {
    for chunk in ids.chunks(500) {
        let sql = format!(
            "DELETE FROM dispatch_outbox WHERE id IN ({})",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(id.clone());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The kind of a forwarded wake: outbox rows.
pub const DISPATCH: &str = "dispatch";
/// The kind of a forwarded wake: commands.
pub const COMMANDS: &str = "commands";

/// Wakes the workers after a commit: the dispatcher (outbox rows written) and, for later, the
/// command sender (`commands` rows written). Cloneable; a wake sent while the worker is busy is
/// kept (one permit), so none is lost and a burst of wakes costs one batch.
///
/// With several instances on PostgreSQL, `store::wake_relay` forwards each wake to the other
/// instances (the leader runs the workers; the request may have reached a follower).
#[derive(Clone, Debug, Default)]
pub struct Wake {
    dispatch: Arc<Notify>,
    commands: Arc<Notify>,
    relay: Arc<std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<&'static str>>>,
}

impl Wake {
    /// A new handle (clone it for every holder).
    pub fn new() -> Wake {
        Wake::default()
    }

    /// Tell the dispatcher that outbox rows were committed.
    pub fn dispatch(&self) {
        self.dispatch.notify_one();
        self.forward(DISPATCH);
    }

    /// Tell the command sender that commands were committed.
    pub fn commands(&self) {
        self.commands.notify_one();
        self.forward(COMMANDS);
    }

    fn forward(&self, kind: &'static str) {
        if let Some(tx) = self.relay.get() {
            let _ = tx.send(kind);
        }
    }

    /// From now on, every wake is also sent to the returned receiver (`store::wake_relay`);
    /// `None` if a relay is attached already.
    pub fn attach_relay(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<&'static str>> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.relay.set(tx).ok().map(|()| rx)
    }

    /// A wake that came from another instance: this process's worker only, not forwarded again.
    pub fn local(&self, kind: &str) {
        match kind {
            DISPATCH => self.dispatch.notify_one(),
            COMMANDS => self.commands.notify_one(),
            _ => {}
        }
    }

    /// Wait for [`Wake::dispatch`] (the dispatcher's side).
    pub async fn dispatch_woken(&self) {
        self.dispatch.notified().await;
    }

    /// Wait for [`Wake::commands`] (the command sender's side).
    pub async fn commands_woken(&self) {
        self.commands.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Wake;

    #[tokio::test]
    async fn a_wake_sent_before_the_worker_waits_is_kept_once() {
        let w = Wake::new();
        let sender = w.clone();
        sender.dispatch();
        sender.dispatch();
        tokio::time::timeout(Duration::from_secs(1), w.dispatch_woken())
            .await
            .expect("the stored wake");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), w.dispatch_woken())
                .await
                .is_err(),
            "two wakes before waiting make one batch"
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(20), w.commands_woken())
                .await
                .is_err(),
            "the command sender was not woken"
        );
    }
}
