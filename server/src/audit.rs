//! The audit log (issue 7): every change made through the console or the API is recorded with
//! who made it, what, when, and the entity's JSON before and after. [`record`] never fails the
//! change it describes; a failed write is logged.

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use crate::Result;
use crate::store::{Store, now_ms};

/// One audit entry.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Id (uuid v7: sorts by time).
    pub id: String,
    /// Unix ms.
    pub at: i64,
    /// Username (or `admin-token` for the bootstrap token).
    pub actor: String,
    /// Machine name of the action, e.g. `media.approve`.
    pub action: String,
    /// What was changed, e.g. `media:<sha>`.
    pub entity: String,
    /// JSON before (absent for creations).
    pub before: Option<String>,
    /// JSON after (absent for deletions).
    pub after: Option<String>,
}

/// Record a change. `before`/`after` are any serialisable value (`None` when not applicable).
pub async fn record(
    store: &Store,
    actor: &str,
    action: &str,
    entity: &str,
    before: Option<Value>,
    after: Option<Value>,
) {
    let res = sqlx::query(
        "INSERT INTO audit_log (id, at, actor, action, entity, before_json, after_json) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(now_ms())
    .bind(actor.to_string())
    .bind(action.to_string())
    .bind(entity.to_string())
    .bind(before.map(|v| v.to_string()))
    .bind(after.map(|v| v.to_string()))
    .execute(&store.pool)
    .await;
    if let Err(e) = res {
        tracing::error!(error = %e, action, entity, "audit log write failed");
    }
}

/// The latest `limit` entries, newest first.
pub async fn recent(store: &Store, limit: i64) -> Result<Vec<Entry>> {
    let rows = sqlx::query(
        "SELECT id, at, actor, action, entity, before_json, after_json FROM audit_log ORDER BY at DESC, id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Entry {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                entity: r.try_get("entity")?,
                before: r.try_get("before_json")?,
                after: r.try_get("after_json")?,
            })
        })
        .collect()
}
