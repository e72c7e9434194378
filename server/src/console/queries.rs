//! The console's shared queries (areas, scoped devices). Not yet migrated: step A moves them to
//! `store::areas`/`store::devices`; this file then goes. (The recent proofs of play are
//! `store::reports::recent_plays`.)

use std::collections::BTreeMap;

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
