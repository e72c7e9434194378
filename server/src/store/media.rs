//! Table `media`: the library's records. Reads ([`get`], [`list_visible`], [`is_approved`],
//! [`info`], [`all_info`]), the scope rule in SQL ([`visible_sql`]: province-wide media and the
//! caller's subtree), and the insert that tells a duplicate apart ([`insert`]); a review's
//! status update is `store::review`.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::media::{Delivered, Media, MediaInfo};
use crate::domain::review::ReviewStatus;
use crate::domain::scope::Caller;
use crate::error::{Error, Result};
use crate::store::scope::{ScopeSql, scope_sql};
use crate::store::{Conn, Store};

const COLUMNS: &str = "sha256, filename, title, size, container, codec, sample_rate, channels, duration_ms, status, status_note, area, created_at, updated_at";

fn row_to_media(r: &AnyRow) -> Result<Media> {
    let status: String = r.try_get("status")?;
    Ok(Media {
        sha256: r.try_get("sha256")?,
        filename: r.try_get("filename")?,
        title: r.try_get("title")?,
        size: r.try_get("size")?,
        container: r.try_get("container")?,
        codec: r.try_get("codec")?,
        sample_rate: r.try_get("sample_rate")?,
        channels: r.try_get("channels")?,
        duration_ms: r.try_get("duration_ms")?,
        status: ReviewStatus::parse(&status)
            .map_err(|_| Error::internal(format!("media row with status `{status}`")))?,
        status_note: r.try_get("status_note")?,
        area: r.try_get("area")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// One media record.
pub async fn get(store: &Store, sha: &str) -> Result<Option<Media>> {
    let mut conn = store.pool.acquire().await?;
    get_in(&mut conn, sha).await
}

/// One media record, read on `conn` (inside a use case's transaction).
pub async fn get_in(conn: &mut Conn, sha: &str) -> Result<Option<Media>> {
    let sql = format!("SELECT {COLUMNS} FROM media WHERE sha256 = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(sha.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(row_to_media).transpose()
}

/// The SQL condition keeping media rows (column `{prefix}area`) the caller may see:
/// province-wide ones and those of the caller's subtree (see [`scope_sql`]).
pub fn visible_sql(caller: &Caller, prefix: &str, start: usize) -> ScopeSql {
    let mut f = scope_sql(caller, &format!("{prefix}area"), start);
    if caller.scope_areas.is_some() {
        f.sql = format!("({prefix}area IS NULL OR {})", f.sql);
    }
    f
}

/// One media record the caller may see; 404 (as if it did not exist) otherwise.
pub async fn get_visible(store: &Store, caller: &Caller, sha: &str) -> Result<Media> {
    get(store, sha)
        .await?
        .filter(|m| caller.sees_media(m.area.as_deref()))
        .ok_or_else(|| Error::NotFound(format!("media `{sha}`")))
}

/// 404 naming the first of `shas` that the caller may not see (other communes' media are
/// treated as absent); unknown ones are left to the caller's own check.
pub async fn require_visible(store: &Store, caller: &Caller, shas: &[String]) -> Result<()> {
    if caller.scope_areas.is_none() {
        return Ok(());
    }
    for sha in shas {
        if let Some(m) = get(store, sha).await?
            && !caller.sees_media(m.area.as_deref())
        {
            return Err(Error::NotFound(format!(
                "media `{sha}` (it belongs to an area outside your scope)"
            )));
        }
    }
    Ok(())
}

/// The media the caller may see (province-wide and their subtree's), optionally of one status,
/// newest first; filtered in SQL.
pub async fn list_visible(
    store: &Store,
    caller: &Caller,
    status: Option<ReviewStatus>,
) -> Result<Vec<Media>> {
    let scope = visible_sql(caller, "", 1);
    let mut sql = format!("SELECT {COLUMNS} FROM media WHERE {}", scope.sql);
    if status.is_some() {
        sql.push_str(&format!(" AND status = ${}", scope.next(1)));
    }
    sql.push_str(" ORDER BY created_at DESC, sha256");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in &scope.binds {
        q = q.bind(b.clone());
    }
    if let Some(s) = status {
        q = q.bind(s.as_str());
    }
    let rows = q.fetch_all(&store.pool).await?;
    rows.iter().map(row_to_media).collect()
}

/// Whether the media exists and is approved for broadcast.
pub async fn is_approved(store: &Store, sha: &str) -> Result<bool> {
    Ok(get(store, sha)
        .await?
        .is_some_and(|m| m.status == ReviewStatus::Approved))
}

/// The columns of [`MediaInfo`], `m` being `media` and `l` its `media_loudness` row (LEFT JOIN).
const INFO_COLUMNS: &str = "m.sha256, m.size, m.duration_ms, m.status, l.rendition_sha256, \
     l.rendition_size, l.rendition_duration_ms";

fn row_to_info(r: &AnyRow) -> Result<MediaInfo> {
    let status: String = r.try_get("status")?;
    let rendition = match r.try_get::<Option<String>, _>("rendition_sha256")? {
        Some(sha256) => Some(Delivered {
            sha256,
            size: r.try_get::<Option<i64>, _>("rendition_size")?.unwrap_or(0),
            duration_ms: r.try_get::<Option<i64>, _>("rendition_duration_ms")?.unwrap_or(0),
        }),
        None => None,
    };
    Ok(MediaInfo {
        size: r.try_get("size")?,
        duration_ms: r.try_get("duration_ms")?,
        approved: status == ReviewStatus::Approved.as_str(),
        rendition,
    })
}

/// What schedules need of each of `shas` that exists (size, duration, approval, and the
/// normalised rendition devices fetch instead).
pub async fn info(store: &Store, shas: &[String]) -> Result<HashMap<String, MediaInfo>> {
    let mut out = HashMap::new();
    let sql = format!(
        "SELECT {INFO_COLUMNS} FROM media m LEFT JOIN media_loudness l ON l.sha256 = m.sha256 \
         WHERE m.sha256 = $1"
    );
    for sha in shas {
        if out.contains_key(sha) {
            continue;
        }
        if let Some(r) = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(sha.clone())
            .fetch_optional(&store.pool)
            .await?
        {
            out.insert(sha.clone(), row_to_info(&r)?);
        }
    }
    Ok(out)
}

/// [`info`] of every media file (the dispatcher's view of the library).
pub async fn all_info(store: &Store) -> Result<HashMap<String, MediaInfo>> {
    let sql = format!("SELECT {INFO_COLUMNS} FROM media m LEFT JOIN media_loudness l ON l.sha256 = m.sha256");
    let mut out = HashMap::new();
    for r in sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&store.pool)
        .await?
    {
        out.insert(r.try_get("sha256")?, row_to_info(&r)?);
    }
    Ok(out)
}

/// Insert a new record; `false` (nothing written) when a record with its sha256 exists already
/// (a concurrent upload of the same content won).
pub async fn insert(conn: &mut Conn, m: &Media) -> Result<bool> {
    let res = sqlx::query(
        "INSERT INTO media (sha256, filename, title, size, container, codec, sample_rate, channels, duration_ms, status, status_note, created_at, updated_at, area) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(m.sha256.clone())
    .bind(m.filename.clone())
    .bind(m.title.clone())
    .bind(m.size)
    .bind(m.container.clone())
    .bind(m.codec.clone())
    .bind(m.sample_rate)
    .bind(m.channels)
    .bind(m.duration_ms)
    .bind(m.status.as_str())
    .bind(m.status_note.clone())
    .bind(m.created_at)
    .bind(m.updated_at)
    .bind(m.area.clone())
    .execute(conn)
    .await?;
    Ok(res.rows_affected() == 1)
}
