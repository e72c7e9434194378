//! Agent releases and rollouts (issue 16, docs/ota.md): their rows, and the reads of a rollout's
//! progress (the devices' `agent_update` events, their last heartbeat's agent version).

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::ota::{Release, Report, Rollout, RolloutState, binary_path};
use crate::error::{Error, Result};
use crate::store::{Conn, Store};

fn release(r: &AnyRow) -> Result<Release> {
    let arch: String = r.try_get("arch")?;
    let sha256: String = r.try_get("sha256")?;
    Ok(Release {
        version: r.try_get("version")?,
        arch: arch
            .parse()
            .map_err(|e: String| Error::internal(format!("agent_releases.arch: {e}")))?,
        url: binary_path(&sha256),
        sha256,
        size: r.try_get("size")?,
        notes: r.try_get("notes")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
    })
}

const RELEASE_COLS: &str = "version, arch, sha256, size, notes, created_at, created_by";

/// Store a release (the caller checked that none has its version and architecture).
pub async fn insert_release(conn: &mut Conn, r: &Release) -> Result<()> {
    sqlx::query(
        "INSERT INTO agent_releases (version, arch, sha256, size, notes, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(r.version.clone())
    .bind(r.arch.as_str())
    .bind(r.sha256.clone())
    .bind(r.size)
    .bind(r.notes.clone())
    .bind(r.created_at)
    .bind(r.created_by.clone())
    .execute(conn)
    .await?;
    Ok(())
}

/// The release of `version` for `arch`.
pub async fn release_in(conn: &mut Conn, version: &str, arch: &str) -> Result<Option<Release>> {
    let q = format!("SELECT {RELEASE_COLS} FROM agent_releases WHERE version = $1 AND arch = $2");
    sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(version.to_string())
        .bind(arch.to_string())
        .fetch_optional(conn)
        .await?
        .map(|r| release(&r))
        .transpose()
}

/// Whether any release has this version.
pub async fn version_exists(conn: &mut Conn, version: &str) -> Result<bool> {
    Ok(sqlx::query("SELECT 1 FROM agent_releases WHERE version = $1")
        .bind(version.to_string())
        .fetch_optional(conn)
        .await?
        .is_some())
}

/// Every release, newest first.
pub async fn releases(store: &Store) -> Result<Vec<Release>> {
    let q = format!("SELECT {RELEASE_COLS} FROM agent_releases ORDER BY created_at DESC, version, arch");
    sqlx::query(sqlx::AssertSqlSafe(q))
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(release)
        .collect()
}

/// Whether a stored release has this sha256 (the binary route serves only those).
pub async fn has_binary(store: &Store, sha256: &str) -> Result<bool> {
    Ok(sqlx::query("SELECT 1 FROM agent_releases WHERE sha256 = $1")
        .bind(sha256.to_string())
        .fetch_optional(&store.pool)
        .await?
        .is_some())
}

fn rollout(r: &AnyRow) -> Result<Rollout> {
    let areas: String = r.try_get("areas")?;
    let state: String = r.try_get("state")?;
    Ok(Rollout {
        id: r.try_get("id")?,
        version: r.try_get("version")?,
        areas: serde_json::from_str(&areas).unwrap_or_default(),
        percent: r.try_get::<i64, _>("percent")?.clamp(0, 100) as u8,
        confirm_minutes: r.try_get::<i64, _>("confirm_minutes")?.clamp(1, 1440) as u32,
        state: RolloutState::parse(&state),
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        updated_at: r.try_get("updated_at")?,
    })
}

const ROLLOUT_COLS: &str =
    "id, version, areas, percent, confirm_minutes, state, created_at, created_by, updated_at";

/// Store a new rollout.
pub async fn insert_rollout(conn: &mut Conn, r: &Rollout) -> Result<()> {
    sqlx::query(
        "INSERT INTO rollouts (id, version, areas, percent, confirm_minutes, state, created_at, created_by, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(r.id.clone())
    .bind(r.version.clone())
    .bind(serde_json::to_string(&r.areas).unwrap_or_default())
    .bind(i64::from(r.percent))
    .bind(i64::from(r.confirm_minutes))
    .bind(r.state.as_str())
    .bind(r.created_at)
    .bind(r.created_by.clone())
    .bind(r.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Write a rollout's share and state.
pub async fn update_rollout(conn: &mut Conn, r: &Rollout) -> Result<()> {
    sqlx::query("UPDATE rollouts SET percent = $1, state = $2, updated_at = $3 WHERE id = $4")
        .bind(i64::from(r.percent))
        .bind(r.state.as_str())
        .bind(r.updated_at)
        .bind(r.id.clone())
        .execute(conn)
        .await?;
    Ok(())
}

/// One rollout.
pub async fn rollout_in(conn: &mut Conn, id: &str) -> Result<Option<Rollout>> {
    let q = format!("SELECT {ROLLOUT_COLS} FROM rollouts WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?
        .map(|r| rollout(&r))
        .transpose()
}

/// Every rollout, newest first.
pub async fn rollouts(store: &Store) -> Result<Vec<Rollout>> {
    let q = format!("SELECT {ROLLOUT_COLS} FROM rollouts ORDER BY created_at DESC, id DESC");
    sqlx::query(sqlx::AssertSqlSafe(q))
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(rollout)
        .collect()
}

/// The active rollouts and the releases of their versions (the dispatcher's read).
pub async fn active(store: &Store) -> Result<(Vec<Rollout>, HashMap<String, Vec<Release>>)> {
    let q = format!("SELECT {ROLLOUT_COLS} FROM rollouts WHERE state = 'active'");
    let active: Vec<Rollout> = sqlx::query(sqlx::AssertSqlSafe(q))
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(rollout)
        .collect::<Result<_>>()?;
    let mut builds: HashMap<String, Vec<Release>> = HashMap::new();
    if !active.is_empty() {
        for r in releases(store).await? {
            if active.iter().any(|a| a.version == r.version) {
                builds.entry(r.version.clone()).or_default().push(r);
            }
        }
    }
    Ok((active, builds))
}

/// The last `agent_update` report of each device for rollout `id`.
pub async fn reports(store: &Store, id: &str) -> Result<HashMap<String, Report>> {
    let rows = sqlx::query(
        "SELECT device_id, body, at FROM device_events WHERE kind = 'agent_update' AND message_id = $1 \
         ORDER BY at, received_at",
    )
    .bind(id.to_string())
    .fetch_all(&store.pool)
    .await?;
    let mut out = HashMap::new();
    for r in rows {
        let body: String = r.try_get("body")?;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let state = v["state"].as_str().unwrap_or("unknown").to_string();
        let reason = v["reason"].as_str().map(str::to_string);
        out.insert(r.try_get("device_id")?, (state, reason, r.try_get("at")?));
    }
    Ok(out)
}

/// The agent version of each device's last heartbeat.
pub async fn agent_versions(store: &Store) -> Result<HashMap<String, String>> {
    let rows = sqlx::query("SELECT device_id, telemetry FROM device_status WHERE telemetry IS NOT NULL")
        .fetch_all(&store.pool)
        .await?;
    let mut out = HashMap::new();
    for r in rows {
        let t: String = r.try_get("telemetry")?;
        if let Some(v) = serde_json::from_str::<serde_json::Value>(&t)
            .ok()
            .and_then(|v| v["agent_version"].as_str().map(str::to_string))
        {
            out.insert(r.try_get("device_id")?, v);
        }
    }
    Ok(out)
}
