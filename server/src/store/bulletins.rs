//! Tables `bulletins`, `bulletin_variants`, `bulletin_files`, `files`, `bulletin_targets`,
//! `bulletin_speech`, `area_languages` and (read side) `displays`: every query of the bulletin
//! use cases. Functions taking a [`Conn`] run inside the caller's transaction (or on a pooled
//! connection for a read); those taking a [`Store`] read on the pool.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::bulletin::{Bulletin, DisplayRow, FileRef, Variant, VariantIn, order_variants};
use crate::domain::review::ReviewStatus;
use crate::error::{Error, Result};
use crate::store::{Conn, Store};

/// One bulletin with its variants, files and published areas, on `conn`.
pub async fn load(conn: &mut Conn, id: &str) -> Result<Option<Bulletin>> {
    let Some(row) = sqlx::query("SELECT * FROM bulletins WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let mut b = row_to_bulletin(&row)?;
    b.variants = variants(conn, id).await?;
    b.files = files(conn, id).await?;
    b.published_areas = published_areas(conn, id).await?;
    Ok(Some(b))
}

/// [`load`] on a pooled connection.
pub async fn get(store: &Store, id: &str) -> Result<Option<Bulletin>> {
    let mut conn = store.pool.acquire().await?;
    load(&mut conn, id).await
}

fn row_to_bulletin(r: &AnyRow) -> Result<Bulletin> {
    let areas: String = r.try_get("areas")?;
    let status: String = r.try_get("status")?;
    Ok(Bulletin {
        id: r.try_get("id")?,
        category: r.try_get("category")?,
        priority: r.try_get("priority")?,
        status: ReviewStatus::parse(&status)
            .map_err(|_| Error::internal(format!("bulletin status `{status}` in the database")))?,
        status_note: r.try_get("status_note")?,
        valid_from: r.try_get("valid_from")?,
        valid_until: r.try_get("valid_until")?,
        areas: serde_json::from_str(&areas).unwrap_or_default(),
        dwell_s: r.try_get("dwell_s")?,
        published_areas: Vec::new(),
        published_at: r.try_get("published_at")?,
        variants: Vec::new(),
        files: Vec::new(),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Variants of a bulletin, `vi` first.
pub async fn variants(conn: &mut Conn, id: &str) -> Result<Vec<Variant>> {
    let rows = sqlx::query(
        "SELECT language, title, body, audio_sha256 FROM bulletin_variants WHERE bulletin_id = $1 ORDER BY language",
    )
    .bind(id.to_string())
    .fetch_all(conn)
    .await?;
    let mut out: Vec<Variant> = rows
        .iter()
        .map(|r| {
            Ok(Variant::new(
                r.try_get("language")?,
                r.try_get("title")?,
                r.try_get("body")?,
                r.try_get("audio_sha256")?,
            ))
        })
        .collect::<Result<_>>()?;
    order_variants(&mut out);
    Ok(out)
}

/// Files of a bulletin in upload order.
pub async fn files(conn: &mut Conn, id: &str) -> Result<Vec<FileRef>> {
    let rows = sqlx::query(
        "SELECT bf.sha256, bf.kind, bf.filename, f.mime, f.size, f.width, f.height FROM bulletin_files bf \
         JOIN files f ON f.sha256 = bf.sha256 WHERE bf.bulletin_id = $1 ORDER BY bf.position",
    )
    .bind(id.to_string())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let sha: String = r.try_get("sha256")?;
            Ok(FileRef {
                url: format!("/files/{sha}"),
                sha256: sha,
                kind: r.try_get("kind")?,
                mime: r.try_get("mime")?,
                filename: r.try_get("filename")?,
                size: r.try_get("size")?,
                width: r.try_get("width")?,
                height: r.try_get("height")?,
            })
        })
        .collect()
}

/// Areas whose boards show the bulletin.
pub async fn published_areas(conn: &mut Conn, id: &str) -> Result<Vec<String>> {
    sqlx::query("SELECT area FROM bulletin_targets WHERE bulletin_id = $1 ORDER BY area")
        .bind(id.to_string())
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| Ok(r.try_get("area")?))
        .collect()
}

/// Ids of the latest 500 bulletins (of one status), newest first.
pub async fn latest_ids(store: &Store, status: Option<ReviewStatus>) -> Result<Vec<String>> {
    let rows = match status {
        Some(s) => {
            sqlx::query(
                "SELECT id FROM bulletins WHERE status = $1 ORDER BY created_at DESC, id DESC LIMIT 500",
            )
            .bind(s.as_str())
            .fetch_all(&store.pool)
            .await?
        }
        None => {
            sqlx::query("SELECT id FROM bulletins ORDER BY created_at DESC, id DESC LIMIT 500")
                .fetch_all(&store.pool)
                .await?
        }
    };
    rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
}

/// Ids of the pending bulletins, longest waiting first (the approval queue).
pub async fn pending_ids(store: &Store) -> Result<Vec<String>> {
    sqlx::query("SELECT id FROM bulletins WHERE status = 'pending' ORDER BY updated_at, id")
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(|r| Ok(r.try_get("id")?))
        .collect()
}

/// The columns of a bulletin a create or an edit writes.
#[derive(Debug, Clone)]
pub struct Fields {
    /// Category.
    pub category: String,
    /// Stored priority name.
    pub priority: String,
    /// Unix ms.
    pub valid_from: Option<i64>,
    /// Unix ms.
    pub valid_until: Option<i64>,
    /// Target areas.
    pub areas: Vec<String>,
    /// Seconds on screen.
    pub dwell_s: Option<i64>,
}

fn areas_json(areas: &[String]) -> String {
    serde_json::to_string(areas).unwrap_or_else(|_| "[]".into())
}

/// Insert a draft bulletin.
pub async fn insert(conn: &mut Conn, id: &str, f: &Fields, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO bulletins (id, category, priority, status, status_note, valid_from, valid_until, areas, dwell_s, \
         published_at, created_at, updated_at) VALUES ($1, $2, $3, 'draft', NULL, $4, $5, $6, $7, NULL, $8, $9)",
    )
    .bind(id.to_string())
    .bind(f.category.clone())
    .bind(f.priority.clone())
    .bind(f.valid_from)
    .bind(f.valid_until)
    .bind(areas_json(&f.areas))
    .bind(f.dwell_s)
    .bind(now)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Write an edit: the fields, back to `draft` without note, unpublished.
pub async fn update_to_draft(conn: &mut Conn, id: &str, f: &Fields, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE bulletins SET category = $1, priority = $2, valid_from = $3, valid_until = $4, areas = $5, dwell_s = $6, \
         status = 'draft', status_note = NULL, published_at = NULL, updated_at = $7 WHERE id = $8",
    )
    .bind(f.category.clone())
    .bind(f.priority.clone())
    .bind(f.valid_from)
    .bind(f.valid_until)
    .bind(areas_json(&f.areas))
    .bind(f.dwell_s)
    .bind(now)
    .bind(id.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

/// Replace the variants of a bulletin.
pub async fn write_variants(conn: &mut Conn, id: &str, vs: &[VariantIn]) -> Result<()> {
    sqlx::query("DELETE FROM bulletin_variants WHERE bulletin_id = $1")
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    for v in vs {
        sqlx::query(
            "INSERT INTO bulletin_variants (bulletin_id, language, title, body, audio_sha256) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id.to_string())
        .bind(v.language.clone())
        .bind(v.title.trim().to_string())
        .bind(v.body.clone())
        .bind(v.audio_sha256.clone())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Take a bulletin off every board.
pub async fn clear_targets(conn: &mut Conn, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM bulletin_targets WHERE bulletin_id = $1")
        .bind(id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// The status of a bulletin (`None`: no such bulletin).
pub async fn status(conn: &mut Conn, id: &str) -> Result<Option<ReviewStatus>> {
    match sqlx::query("SELECT status FROM bulletins WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?
    {
        Some(r) => Ok(Some(ReviewStatus::parse(&r.try_get::<String, _>("status")?)?)),
        None => Ok(None),
    }
}

/// A received file to attach to a bulletin.
#[derive(Debug, Clone)]
pub struct NewFile {
    /// Content hash.
    pub sha256: String,
    /// Sniffed MIME type.
    pub mime: String,
    /// `image`, `video` or `attachment`.
    pub kind: String,
    /// Bytes.
    pub size: i64,
    /// Image width.
    pub width: Option<i64>,
    /// Image height.
    pub height: Option<i64>,
    /// Name as uploaded.
    pub filename: String,
}

/// Record a stored file (once per content) and attach it to a bulletin at `position` (once per
/// bulletin); the bulletin's `updated_at` moves.
pub async fn attach_file(conn: &mut Conn, id: &str, f: &NewFile, position: i64, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO files (sha256, mime, size, width, height, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(f.sha256.clone())
    .bind(f.mime.clone())
    .bind(f.size)
    .bind(f.width)
    .bind(f.height)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO bulletin_files (bulletin_id, sha256, kind, filename, position, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (bulletin_id, sha256) DO NOTHING",
    )
    .bind(id.to_string())
    .bind(f.sha256.clone())
    .bind(f.kind.clone())
    .bind(f.filename.clone())
    .bind(position)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE bulletins SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The MIME type of a stored file.
pub async fn file_mime(store: &Store, sha256: &str) -> Result<Option<String>> {
    match sqlx::query("SELECT mime FROM files WHERE sha256 = $1")
        .bind(sha256.to_string())
        .fetch_optional(&store.pool)
        .await?
    {
        Some(r) => Ok(Some(r.try_get("mime")?)),
        None => Ok(None),
    }
}

/// A bulletin holding a stored file, as far as the file's access rule needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHolder {
    /// The bulletin's id.
    pub id: String,
    /// Its target areas.
    pub areas: Vec<String>,
    /// Approved and on at least one area's boards.
    pub published: bool,
}

/// The bulletins that hold file `sha256`.
pub async fn file_holders(store: &Store, sha256: &str) -> Result<Vec<FileHolder>> {
    let rows = sqlx::query(
        "SELECT b.id, b.areas, b.status, \
         (SELECT COUNT(*) FROM bulletin_targets t WHERE t.bulletin_id = b.id) AS targets \
         FROM bulletin_files bf JOIN bulletins b ON b.id = bf.bulletin_id WHERE bf.sha256 = $1 ORDER BY b.id",
    )
    .bind(sha256.to_string())
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let areas: String = r.try_get("areas")?;
            let status: String = r.try_get("status")?;
            let targets: i64 = r.try_get("targets")?;
            Ok(FileHolder {
                id: r.try_get("id")?,
                areas: serde_json::from_str(&areas).unwrap_or_default(),
                published: status == ReviewStatus::Approved.as_str() && targets > 0,
            })
        })
        .collect()
}

/// The languages set on one area (not inherited), in order of preference.
pub async fn area_languages(store: &Store, area: &str) -> Result<Vec<String>> {
    sqlx::query("SELECT language FROM area_languages WHERE area = $1 ORDER BY position, language")
        .bind(area.to_string())
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(|r| Ok(r.try_get("language")?))
        .collect()
}

/// Every area's own languages (areas that list none are absent), each list in order.
pub async fn all_area_languages(store: &Store) -> Result<HashMap<String, Vec<String>>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let rows = sqlx::query("SELECT area, language FROM area_languages ORDER BY area, position, language")
        .fetch_all(&store.pool)
        .await?;
    for r in rows {
        out.entry(r.try_get("area")?)
            .or_default()
            .push(r.try_get("language")?);
    }
    Ok(out)
}

/// The languages of an area, on `conn` (inside the caller's transaction).
pub async fn area_languages_in(conn: &mut Conn, area: &str) -> Result<Vec<String>> {
    sqlx::query("SELECT language FROM area_languages WHERE area = $1 ORDER BY position, language")
        .bind(area.to_string())
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| Ok(r.try_get("language")?))
        .collect()
}

/// Replace the languages of an area (empty: inherit).
pub async fn set_area_languages(conn: &mut Conn, area: &str, languages: &[String]) -> Result<()> {
    sqlx::query("DELETE FROM area_languages WHERE area = $1")
        .bind(area.to_string())
        .execute(&mut *conn)
        .await?;
    for (i, l) in languages.iter().enumerate() {
        sqlx::query("INSERT INTO area_languages (area, language, position) VALUES ($1, $2, $3)")
            .bind(area.to_string())
            .bind(l.clone())
            .bind(i as i64)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The speech of one area and language of a published bulletin.
#[derive(Debug, Clone)]
pub struct Speech {
    /// Area.
    pub area: String,
    /// Language.
    pub language: String,
    /// Media played.
    pub media_sha256: String,
    /// `recorded` or `tts`.
    pub source: String,
    /// Schedule that plays it.
    pub schedule_id: String,
}

/// The loudspeaker schedules made by earlier publications of bulletin `id` in `area`.
pub async fn speech_schedules(conn: &mut Conn, id: &str, area: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT DISTINCT schedule_id FROM bulletin_speech WHERE bulletin_id = $1 AND area = $2 AND schedule_id IS NOT NULL",
    )
    .bind(id.to_string())
    .bind(area.to_string())
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| Ok(r.try_get("schedule_id")?)).collect()
}

/// Record (replace) the speech of one area and language of a bulletin.
pub async fn replace_speech(conn: &mut Conn, id: &str, s: &Speech, now: i64) -> Result<()> {
    sqlx::query("DELETE FROM bulletin_speech WHERE bulletin_id = $1 AND area = $2 AND language = $3")
        .bind(id.to_string())
        .bind(s.area.clone())
        .bind(s.language.clone())
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO bulletin_speech (bulletin_id, area, language, media_sha256, source, schedule_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id.to_string())
    .bind(s.area.clone())
    .bind(s.language.clone())
    .bind(s.media_sha256.clone())
    .bind(s.source.clone())
    .bind(s.schedule_id.clone())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Show a bulletin on the boards of `areas` (each once) and stamp `published_at`.
pub async fn publish(conn: &mut Conn, id: &str, areas: &[String], now: i64) -> Result<()> {
    for area in areas {
        sqlx::query("DELETE FROM bulletin_targets WHERE bulletin_id = $1 AND area = $2")
            .bind(id.to_string())
            .bind(area.clone())
            .execute(&mut *conn)
            .await?;
        sqlx::query("INSERT INTO bulletin_targets (bulletin_id, area, created_at) VALUES ($1, $2, $3)")
            .bind(id.to_string())
            .bind(area.clone())
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("UPDATE bulletins SET published_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// Where and when a bulletin was shown (at most 10,000 records, oldest first).
pub async fn displays(store: &Store, id: &str) -> Result<Vec<DisplayRow>> {
    let rows = sqlx::query(
        "SELECT id, device_id, shown_from, shown_to FROM displays WHERE bulletin_id = $1 ORDER BY shown_from LIMIT 10000",
    )
    .bind(id.to_string())
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DisplayRow {
                id: r.try_get("id")?,
                device_id: r.try_get("device_id")?,
                shown_from: r.try_get("shown_from")?,
                shown_to: r.try_get("shown_to")?,
            })
        })
        .collect()
}
