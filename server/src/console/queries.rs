//! The console's shared queries (areas, scoped devices, recent proofs of play). Not yet migrated:
//! step A moves the area and device queries to `store::areas`/`store::devices`, step D the plays
//! to the reports' store module; this file then goes.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sqlx::Row;

use super::PageError;
use crate::domain::scope::Caller;
use crate::error::{Error, Result};
use crate::services::AppState;

/// Console handlers that still run SQL themselves get their `?` through this (step A/C/D remove
/// the last of them).
impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> Self {
        PageError(Error::Db(e), super::Lang::Vi)
    }
}

/// An area row with its parent.
#[derive(Debug, Clone)]
pub struct AreaInfo {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Parent code.
    pub parent: Option<String>,
    /// Level (`province`, `commune`, `village`...).
    pub level: String,
}

/// All areas by code.
pub async fn all_areas(state: &AppState) -> Result<BTreeMap<String, AreaInfo>> {
    let rows = sqlx::query("SELECT code, name, parent, level FROM areas ORDER BY code")
        .fetch_all(&state.store.pool)
        .await?;
    let mut out = BTreeMap::new();
    for r in rows {
        let a = AreaInfo {
            code: r.try_get("code")?,
            name: r.try_get("name")?,
            parent: r.try_get("parent")?,
            level: r.try_get("level")?,
        };
        out.insert(a.code.clone(), a);
    }
    Ok(out)
}

/// A device with its live status, as the console lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceRow {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// `loudspeaker` or `board`.
    pub kind: String,
    /// Area.
    pub area: String,
    /// Online now.
    pub online: bool,
    /// Last message (unix ms).
    pub last_seen: Option<i64>,
    /// Now playing JSON (from the last heartbeat).
    pub now_playing: Option<String>,
}

/// Devices inside the caller's scope.
pub async fn scoped_devices(state: &AppState, caller: &Caller) -> Result<Vec<DeviceRow>> {
    let scope = crate::store::scope::scope_sql(caller, "d.area", 1);
    let sql = format!(
        "SELECT d.id, d.name, d.kind, d.area, s.online, s.last_seen, s.now_playing FROM devices d \
         LEFT JOIN device_status s ON s.device_id = d.id WHERE {} ORDER BY d.id",
        scope.sql
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in scope.binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(&state.store.pool).await?;
    let mut out = Vec::new();
    for r in rows {
        let area: String = r.try_get("area")?;
        out.push(DeviceRow {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            kind: r.try_get("kind")?,
            area,
            online: r.try_get::<Option<i64>, _>("online")?.unwrap_or(0) != 0,
            last_seen: r.try_get("last_seen")?,
            now_playing: r.try_get("now_playing")?,
        });
    }
    Ok(out)
}

/// Recent proofs of play of the caller's devices matching `extra` (an SQL condition on `p`).
pub(super) async fn recent_plays(
    state: &AppState,
    caller: &Caller,
    extra: &'static str,
    limit: usize,
    device: Option<&str>,
) -> Result<Vec<Value>> {
    let mut sql = String::from(
        "SELECT p.device_id, p.priority, p.outcome, p.reason, p.started_at, p.occurrence_at, p.received_at, m.title, d.area \
         FROM plays p JOIN devices d ON d.id = p.device_id LEFT JOIN media m ON m.sha256 = p.sha256 WHERE ",
    );
    sql.push_str(extra);
    let scope = crate::store::scope::scope_sql(caller, "d.area", 1);
    sql.push_str(&format!(" AND {}", scope.sql));
    if device.is_some() {
        sql.push_str(&format!(" AND p.device_id = ${}", scope.next(1)));
    }
    sql.push_str(&format!(" ORDER BY p.received_at DESC LIMIT {limit}"));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in scope.binds {
        q = q.bind(b);
    }
    if let Some(d) = device {
        q = q.bind(d.to_string());
    }
    let rows = q.fetch_all(&state.store.pool).await?;
    let mut out = Vec::new();
    for r in rows {
        let started: Option<i64> = r.try_get("started_at")?;
        let occ: i64 = r.try_get("occurrence_at")?;
        out.push(json!({
            "device_id": r.try_get::<String, _>("device_id")?,
            "priority": r.try_get::<String, _>("priority")?,
            "outcome": r.try_get::<String, _>("outcome")?,
            "reason": r.try_get::<Option<String>, _>("reason")?,
            "title": r.try_get::<Option<String>, _>("title")?.unwrap_or_default(),
            "at": started.unwrap_or(occ),
        }));
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}
