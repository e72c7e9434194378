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

/// Wakes the workers after a commit: the dispatcher (outbox rows written) and, for later, the
/// command sender (`commands` rows written). Cloneable; a wake sent while the worker is busy is
/// kept (one permit), so none is lost and a burst of wakes costs one batch.
#[derive(Clone, Debug, Default)]
pub struct Wake {
    dispatch: Arc<Notify>,
    commands: Arc<Notify>,
}

impl Wake {
    /// A new handle (clone it for every holder).
    pub fn new() -> Wake {
        Wake::default()
    }

    /// Tell the dispatcher that outbox rows were committed.
    pub fn dispatch(&self) {
        self.dispatch.notify_one();
    }

    /// Tell the command sender that commands were committed.
    pub fn commands(&self) {
        self.commands.notify_one();
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
