//! Live sessions' SQL (issue 17, `live_sessions`): the row written when an operator opens a
//! session, its start and end, and the devices' proofs of play of a session (`plays.item_id` =
//! the session id).

use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use crate::error::Result;
use crate::store::{Conn, Store, from_ms};

/// A session as stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionRow {
    /// Session id (= the devices' `session_id`).
    pub id: String,
    /// Username of the operator speaking.
    pub started_by: String,
    /// Title.
    pub title: String,
    /// `priority` or `emergency`.
    pub priority: String,
    /// Area codes asked for.
    pub areas: Vec<String>,
    /// Device ids asked for.
    pub devices: Vec<String>,
    /// Loudspeakers covered when it was opened.
    pub targets: i64,
    /// When it was opened (RFC 3339).
    pub opened_at: chrono::DateTime<chrono::Utc>,
    /// When the microphone connected.
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it ended.
    pub ended_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Why it ended (`stopped`, `operator_gone`, `bad_frame: …`, `never_connected`, …).
    pub end_reason: Option<String>,
    /// MP3 bytes the stream carried.
    pub stream_bytes: i64,
    /// The recording (media sha256), once stored.
    pub media_sha256: Option<String>,
}

/// Record a new session inside the caller's transaction.
pub async fn insert_in(conn: &mut Conn, s: &SessionRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO live_sessions (id, started_by, title, priority, areas, devices, targets, opened_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(s.id.clone())
    .bind(s.started_by.clone())
    .bind(s.title.clone())
    .bind(s.priority.clone())
    .bind(serde_json::to_string(&s.areas).unwrap_or_else(|_| "[]".into()))
    .bind(serde_json::to_string(&s.devices).unwrap_or_else(|_| "[]".into()))
    .bind(s.targets)
    .bind(s.opened_at.timestamp_millis())
    .execute(conn)
    .await?;
    Ok(())
}

/// Stamp the microphone's connection (the first one only).
pub async fn started(store: &Store, id: &str, at: i64) -> Result<()> {
    sqlx::query("UPDATE live_sessions SET started_at = $1 WHERE id = $2 AND started_at IS NULL")
        .bind(at)
        .bind(id.to_string())
        .execute(&store.pool)
        .await?;
    Ok(())
}

/// Stamp the end inside the caller's transaction (once: a second end changes nothing).
pub async fn ended_in(conn: &mut Conn, id: &str, at: i64, reason: &str, bytes: i64) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE live_sessions SET ended_at = $1, end_reason = $2, stream_bytes = $3 WHERE id = $4 AND ended_at IS NULL",
    )
    .bind(at)
    .bind(reason.to_string())
    .bind(bytes)
    .bind(id.to_string())
    .execute(conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Link the stored recording.
pub async fn recorded(store: &Store, id: &str, sha: &str) -> Result<()> {
    sqlx::query("UPDATE live_sessions SET media_sha256 = $1 WHERE id = $2")
        .bind(sha.to_string())
        .bind(id.to_string())
        .execute(&store.pool)
        .await?;
    Ok(())
}

/// One session.
pub async fn get(store: &Store, id: &str) -> Result<Option<SessionRow>> {
    let r = sqlx::query(
        "SELECT id, started_by, title, priority, areas, devices, targets, opened_at, started_at, ended_at, \
         end_reason, stream_bytes, media_sha256 FROM live_sessions WHERE id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(&store.pool)
    .await?;
    let Some(r) = r else { return Ok(None) };
    let list = |s: String| serde_json::from_str::<Vec<String>>(&s).unwrap_or_default();
    Ok(Some(SessionRow {
        id: r.try_get("id")?,
        started_by: r.try_get("started_by")?,
        title: r.try_get("title")?,
        priority: r.try_get("priority")?,
        areas: list(r.try_get("areas")?),
        devices: list(r.try_get("devices")?),
        targets: r.try_get("targets")?,
        opened_at: from_ms(r.try_get("opened_at")?),
        started_at: r.try_get::<Option<i64>, _>("started_at")?.map(from_ms),
        ended_at: r.try_get::<Option<i64>, _>("ended_at")?.map(from_ms),
        end_reason: r.try_get("end_reason")?,
        stream_bytes: r.try_get("stream_bytes")?,
        media_sha256: r.try_get("media_sha256")?,
    }))
}

/// A device's proof of play of a session.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionPlay {
    /// Device id.
    pub device_id: String,
    /// played | interrupted | failed.
    pub outcome: String,
    /// Why (an interruption, a failure).
    pub reason: Option<String>,
    /// First sample.
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Last sample.
    pub ended_at: Option<chrono::DateTime<chrono::Utc>>,
    /// How long it played, ms (last sample − first sample).
    pub duration_ms: Option<i64>,
}

/// The proofs of play of session `id`, by device.
pub async fn plays(store: &Store, id: &str) -> Result<Vec<SessionPlay>> {
    let rows = sqlx::query(
        "SELECT device_id, outcome, reason, started_at, ended_at FROM plays WHERE item_id = $1 ORDER BY device_id",
    )
    .bind(id.to_string())
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let s: Option<i64> = r.try_get("started_at")?;
            let e: Option<i64> = r.try_get("ended_at")?;
            Ok(SessionPlay {
                device_id: r.try_get("device_id")?,
                outcome: r.try_get("outcome")?,
                reason: r.try_get("reason")?,
                started_at: s.map(from_ms),
                ended_at: e.map(from_ms),
                duration_ms: s.zip(e).map(|(s, e)| (e - s).max(0)),
            })
        })
        .collect()
}

/// The devices whose latest telemetry shows item `id` playing.
pub async fn now_playing(store: &Store, id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT device_id, now_playing FROM device_status WHERE now_playing LIKE $1")
        .bind(format!("%{id}%"))
        .fetch_all(&store.pool)
        .await?;
    let mut out = Vec::new();
    for r in rows {
        let np: Option<String> = r.try_get("now_playing")?;
        let item = np
            .and_then(|n| serde_json::from_str::<nguon_protocol::NowPlaying>(&n).ok())
            .map(|n| n.item_id);
        if item.as_deref() == Some(id) {
            out.push(r.try_get("device_id")?);
        }
    }
    Ok(out)
}
