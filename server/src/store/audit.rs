//! The audit log (issue 7): every change made through the console or the API is recorded with
//! who made it, what, when, and the entity's JSON before and after. A use case writes its entry
//! with [`record`] inside the transaction of the change, so there is no change without its entry
//! and no entry for a change that rolled back.

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use crate::error::Result;
use crate::store::{Conn, Store, now_ms};

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

/// Record a change inside the use case's transaction (pass `&mut *tx`). `subject` names the
/// entity (`area:08003`); `before`/`after` are its JSON (`None` for a creation or deletion).
pub async fn record(
    conn: &mut Conn,
    actor: &str,
    action: &str,
    subject: &str,
    before: Option<Value>,
    after: Option<Value>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor, action, entity, before_json, after_json) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(now_ms())
    .bind(actor.to_string())
    .bind(action.to_string())
    .bind(subject.to_string())
    .bind(before.map(|v| v.to_string()))
    .bind(after.map(|v| v.to_string()))
    .execute(conn)
    .await?;
    Ok(())
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

/// The entities (`bulletin:<id>`, ...) of the entries of `action` made by `actor`.
pub async fn entities(store: &Store, action: &str, actor: &str) -> Result<Vec<String>> {
    sqlx::query("SELECT entity FROM audit_log WHERE action = $1 AND actor = $2")
        .bind(action.to_string())
        .bind(actor.to_string())
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(|r| Ok(r.try_get("entity")?))
        .collect()
}
