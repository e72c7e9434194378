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

/// The distinct actors of the entries of `entity` whose action is one of `actions` (the authors
/// of a file or bulletin: who uploaded, wrote, edited or submitted it), on the use case's
/// connection.
pub async fn actors(conn: &mut Conn, entity: &str, actions: &[&str]) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT DISTINCT actor, action FROM audit_log WHERE entity = $1")
        .bind(entity.to_string())
        .fetch_all(conn)
        .await?;
    let mut out: Vec<String> = Vec::new();
    for r in &rows {
        let (actor, action): (String, String) = (r.try_get("actor")?, r.try_get("action")?);
        if actions.contains(&action.as_str()) && !out.contains(&actor) {
            out.push(actor);
        }
    }
    out.sort();
    Ok(out)
}

/// Which entries a page of the audit log shows: each filter is optional; `before` pages back
/// from an entry (`at`, `id`).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Exact username.
    pub actor: Option<String>,
    /// Action, or its group before the dot (`media` matches `media.approve`).
    pub action: Option<String>,
    /// Part of the entity (`bulletin:` or an id).
    pub entity: Option<String>,
    /// Entries strictly older than this (`at`, `id`).
    pub before: Option<(i64, String)>,
}

/// Up to `limit` entries matching `f`, newest first.
pub async fn search(store: &Store, f: &Filter, limit: i64) -> Result<Vec<Entry>> {
    let mut sql = String::from(
        "SELECT id, at, actor, action, entity, before_json, after_json FROM audit_log WHERE 1 = 1",
    );
    let mut binds: Vec<String> = Vec::new();
    let mut n = 0;
    let mut next = |binds: &mut Vec<String>, v: String| {
        binds.push(v);
        n += 1;
        format!("${n}")
    };
    if let Some(a) = &f.actor {
        let p = next(&mut binds, a.clone());
        sql.push_str(&format!(" AND actor = {p}"));
    }
    if let Some(a) = &f.action {
        let exact = next(&mut binds, a.clone());
        let group = next(&mut binds, format!("{a}.%"));
        sql.push_str(&format!(" AND (action = {exact} OR action LIKE {group})"));
    }
    if let Some(e) = &f.entity {
        let escaped = e.replace(['\\', '%', '_'], "");
        let p = next(&mut binds, format!("%{escaped}%"));
        sql.push_str(&format!(" AND entity LIKE {p}"));
    }
    let mut before_at = None;
    if let Some((at, id)) = &f.before {
        // `at` is bound as a number below, after the strings.
        let p_id = next(&mut binds, id.clone());
        before_at = Some((*at, p_id));
    }
    if let Some((_, p_id)) = &before_at {
        let p_at = format!("${}", binds.len() + 1);
        sql.push_str(&format!(" AND (at < {p_at} OR (at = {p_at} AND id < {p_id}))"));
    }
    let p_limit = format!("${}", binds.len() + 1 + usize::from(before_at.is_some()));
    sql.push_str(&format!(" ORDER BY at DESC, id DESC LIMIT {p_limit}"));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(b);
    }
    if let Some((at, _)) = before_at {
        q = q.bind(at);
    }
    let rows = q.bind(limit).fetch_all(&store.pool).await?;
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

/// The newest entry of `action` on `entity`, if any.
pub async fn latest(store: &Store, entity: &str, action: &str) -> Result<Option<Entry>> {
    let f = Filter {
        action: Some(action.to_string()),
        entity: Some(entity.to_string()),
        ..Filter::default()
    };
    Ok(search(store, &f, 20)
        .await?
        .into_iter()
        .find(|e| e.entity == entity && e.action == action))
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
