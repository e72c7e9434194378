//! What the bulletin boards read and write: a board's row in `devices` (area, language, token
//! hash), the bulletins published to a set of areas (`bulletins` joined with `bulletin_targets`)
//! and proof of display (`displays`: stored, and the latest of a board listed), and the board's
//! `last_seen` while its change stream is open.

use sqlx::Row;

use crate::domain::bulletin::DisplayIn;
use crate::domain::bulletin::feed::Candidate;
use crate::domain::review::ReviewStatus;
use crate::error::Result;
use crate::store::{Store, bulletins, placeholders};

/// A board as its feed needs it.
#[derive(Debug, Clone)]
pub struct Board {
    /// Its area.
    pub area: String,
    /// Its own language, if set.
    pub language: Option<String>,
    /// sha256 (hex) of its bearer token, if provisioned.
    pub token_hash: Option<String>,
}

/// The board (any device) `id`.
pub async fn board(store: &Store, id: &str) -> Result<Option<Board>> {
    let Some(row) = sqlx::query("SELECT area, language, board_token_hash FROM devices WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&store.pool)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(Board {
        area: row.try_get("area")?,
        language: row.try_get("language")?,
        token_hash: row.try_get("board_token_hash")?,
    }))
}

/// The approved bulletins published to any of `areas` and current at `now` (unix ms), each once,
/// with their variants and files.
pub async fn published_to(store: &Store, areas: &[String], now: i64) -> Result<Vec<Candidate>> {
    if areas.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT DISTINCT b.id, b.priority, b.category, b.dwell_s, b.valid_from, b.valid_until, b.published_at \
         FROM bulletins b JOIN bulletin_targets t ON t.bulletin_id = b.id \
         WHERE b.status = 'approved' AND t.area IN ({}) \
         AND (b.valid_from IS NULL OR b.valid_from <= ${n}) AND (b.valid_until IS NULL OR b.valid_until > ${n})",
        placeholders(1, areas.len()),
        n = areas.len() + 1
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for a in areas {
        q = q.bind(a.clone());
    }
    let rows = q.bind(now).fetch_all(&store.pool).await?;
    let mut conn = store.pool.acquire().await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let id: String = r.try_get("id")?;
        out.push(Candidate {
            variants: bulletins::variants(&mut conn, &id).await?,
            files: bulletins::files(&mut conn, &id).await?,
            id,
            status: ReviewStatus::Approved,
            priority: r.try_get("priority")?,
            category: r.try_get("category")?,
            dwell_s: r.try_get("dwell_s")?,
            valid_from: r.try_get("valid_from")?,
            valid_until: r.try_get("valid_until")?,
            published_at: r.try_get::<Option<i64>, _>("published_at")?.unwrap_or(0),
        });
    }
    Ok(out)
}

/// Board `id`'s change stream of `session` is open at `now`: stamp `device_status.last_seen`.
pub async fn seen(store: &Store, id: &str, session: i64, now: i64) -> Result<()> {
    sqlx::query("UPDATE device_status SET last_seen = $1 WHERE device_id = $2 AND session = $3")
        .bind(now)
        .bind(id.to_string())
        .bind(session)
        .execute(&store.pool)
        .await?;
    Ok(())
}

/// A board's latest proof-of-display records (newest first, at most `limit`), with the
/// bulletin's title in its first language.
pub async fn recent_displays(store: &Store, id: &str, limit: i64) -> Result<Vec<RecentDisplay>> {
    let rows = sqlx::query(
        "SELECT x.bulletin_id, x.shown_from, x.shown_to, \
         (SELECT v.title FROM bulletin_variants v WHERE v.bulletin_id = x.bulletin_id ORDER BY CASE WHEN v.language = 'vi' THEN 0 ELSE 1 END, v.language LIMIT 1) AS title \
         FROM displays x WHERE x.device_id = $1 ORDER BY x.shown_from DESC LIMIT $2",
    )
    .bind(id.to_string())
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RecentDisplay {
                bulletin_id: r.try_get("bulletin_id")?,
                title: r.try_get::<Option<String>, _>("title")?.unwrap_or_default(),
                shown_from: r.try_get("shown_from")?,
                shown_to: r.try_get("shown_to")?,
            })
        })
        .collect()
}

/// A proof-of-display record as the device page lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecentDisplay {
    /// Bulletin.
    pub bulletin_id: String,
    /// Its title (empty when the bulletin is gone).
    pub title: String,
    /// Shown from (unix ms).
    pub shown_from: i64,
    /// Shown until (unix ms).
    pub shown_to: i64,
}

/// Store one proof-of-display record of board `device_id` received at `now`; `false` when a
/// record with its uuid is already stored.
pub async fn insert_display(store: &Store, device_id: &str, d: &DisplayIn, now: i64) -> Result<bool> {
    let r = sqlx::query(
        "INSERT INTO displays (id, device_id, bulletin_id, shown_from, shown_to, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
    )
    .bind(d.id.to_lowercase())
    .bind(device_id.to_string())
    .bind(d.bulletin_id.clone())
    .bind(d.shown_from)
    .bind(d.shown_to)
    .bind(now)
    .execute(&store.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}
