//! The media library. Uploads (`POST /api/v1/media`, multipart field `file`, optional `title`)
//! stream to `data_dir/tmp` while being hashed, are probed ([`probe`]: content sniffing,
//! symphonia, exact duration, truncation checks) and then renamed atomically to
//! `data_dir/media/<sha256>` (content address) with a `draft` row; the same content again is a
//! duplicate (200, `"duplicate": true`). A refused upload leaves nothing behind.
//!
//! Scope: a media row has an owning `area` (NULL = province-wide). An upload by a user scoped to
//! areas belongs to their first scope area (or to the `area` form field, inside their scope); an
//! unscoped user's upload is province-wide unless it names an `area`. A scoped user lists, reads,
//! reviews and schedules province-wide media and media of their subtree only; anything else is
//! 404, exactly as if it did not exist ([`visible_sql`], [`require_visible`]).
//!
//! Approval: `draft → pending → approved | rejected` (`/submit`, `/approve`, `/reject`); the
//! admin may approve or reject a draft directly; a rejected file may be submitted again; other
//! transitions are 409. Devices fetch files without auth at `GET /media/{sha256}` (Range, ETag,
//! immutable caching).

pub mod probe;

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Path as UrlPath, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{self, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::domain::change::Change;
use crate::domain::scope::Role;
use crate::error::{Error, Result};
use crate::http::auth::Caller;
use crate::metrics::Metrics;
use crate::store::{Store, now_ms};

pub use probe::{AudioInfo, ProbeError, probe_file};

/// OpenAPI description of this module's endpoints (merged in `openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(upload, list_media, get_media, submit, approve, reject, serve_file),
    components(schemas(MediaRow, MediaResponse, UploadForm, ReviewNote))
)]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/media",
            post(upload).get(list_media).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/media/{sha256}", routing::get(get_media))
        .route("/api/v1/media/{sha256}/submit", post(submit))
        .route("/api/v1/media/{sha256}/approve", post(approve))
        .route("/api/v1/media/{sha256}/reject", post(reject))
        .route("/media/{sha256}", routing::get(serve_file))
}

/// A stored media file.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct MediaRow {
    /// Lowercase hex sha256 of the content (its address).
    pub sha256: String,
    /// Original file name.
    pub filename: String,
    /// Title (defaults to the file name).
    pub title: String,
    /// Bytes.
    pub size: i64,
    /// Container: `mp3`, `wav`, `ogg`, `flac`, `isomp4`...
    pub container: String,
    /// Codec: `mp3`, `pcm_s16le`, `vorbis`, `flac`, `aac`...
    pub codec: String,
    /// Hz.
    pub sample_rate: i64,
    /// Channels.
    pub channels: i64,
    /// Exact playable duration in ms.
    pub duration_ms: i64,
    /// `draft`, `pending`, `approved`, `rejected`.
    pub status: String,
    /// Note of the last review.
    pub status_note: Option<String>,
    /// Owning area; null = province-wide.
    pub area: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// A media record as the API returns it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MediaResponse {
    /// The record.
    #[serde(flatten)]
    pub media: MediaRow,
    /// Path devices fetch it from (`/media/<sha256>`).
    pub url: String,
    /// True when this upload matched content already stored.
    pub duplicate: bool,
}

/// Multipart form of `POST /api/v1/media`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The audio file (MP3, WAV, OGG Vorbis, FLAC, M4A/AAC).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// Optional title.
    title: Option<String>,
    /// Optional owning area (inside the uploader's scope); default: the uploader's first scope
    /// area, or province-wide for an unscoped uploader.
    area: Option<String>,
}

/// Body of `/approve`, `/reject`, `/submit` (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ReviewNote {
    /// Reviewer's note.
    #[serde(default)]
    pub note: Option<String>,
}

/// Filter of `GET /api/v1/media`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct MediaFilter {
    /// Only this status.
    pub status: Option<String>,
}

const COLUMNS: &str = "sha256, filename, title, size, container, codec, sample_rate, channels, duration_ms, status, status_note, area, created_at, updated_at";

fn row_to_media(r: &AnyRow) -> Result<MediaRow> {
    Ok(MediaRow {
        sha256: r.try_get("sha256")?,
        filename: r.try_get("filename")?,
        title: r.try_get("title")?,
        size: r.try_get("size")?,
        container: r.try_get("container")?,
        codec: r.try_get("codec")?,
        sample_rate: r.try_get("sample_rate")?,
        channels: r.try_get("channels")?,
        duration_ms: r.try_get("duration_ms")?,
        status: r.try_get("status")?,
        status_note: r.try_get("status_note")?,
        area: r.try_get("area")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn respond(media: MediaRow, duplicate: bool) -> MediaResponse {
    let url = format!("/media/{}", media.sha256);
    MediaResponse {
        media,
        url,
        duplicate,
    }
}

/// One media record.
pub async fn get(store: &Store, sha: &str) -> Result<Option<MediaRow>> {
    let sql = format!("SELECT {COLUMNS} FROM media WHERE sha256 = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(sha.to_string())
        .fetch_optional(&store.pool)
        .await?;
    row.as_ref().map(row_to_media).transpose()
}

/// The SQL condition keeping media rows (column `{prefix}area`) the caller may see:
/// province-wide ones and those of the caller's subtree (see [`Caller::scope_sql`]).
pub fn visible_sql(caller: &Caller, prefix: &str, start: usize) -> crate::store::scope::ScopeSql {
    let mut f = crate::store::scope::scope_sql(caller, &format!("{prefix}area"), start);
    if caller.scope_areas.is_some() {
        f.sql = format!("({prefix}area IS NULL OR {})", f.sql);
    }
    f
}

/// One media record the caller may see; 404 (as if it did not exist) otherwise.
pub async fn get_visible(store: &Store, caller: &Caller, sha: &str) -> Result<MediaRow> {
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

/// Whether the media exists and is approved for broadcast.
pub async fn is_approved(store: &Store, sha: &str) -> Result<bool> {
    Ok(get(store, sha).await?.is_some_and(|m| m.status == "approved"))
}

/// Where a media file lives.
pub fn media_path(data_dir: &Path, sha: &str) -> PathBuf {
    data_dir.join("media").join(sha)
}

fn is_sha(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A temp file removed on drop unless [`TempFile::keep`] moved it.
struct TempFile {
    path: Option<PathBuf>,
}

impl TempFile {
    async fn create(data_dir: &Path) -> Result<(TempFile, tokio::fs::File)> {
        let dir = data_dir.join("tmp");
        tokio::fs::create_dir_all(&dir).await?;
        let mut b = [0u8; 12];
        getrandom::fill(&mut b).map_err(Error::context("random file name"))?;
        let path = dir.join(format!("upload-{}", hex::encode(b)));
        let f = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        Ok((TempFile { path: Some(path) }, f))
    }
    fn path(&self) -> &Path {
        self.path.as_deref().expect("temp file present")
    }
    /// Rename into place (atomic on one file system).
    async fn persist(mut self, to: &Path) -> Result<()> {
        let from = self.path.take().expect("temp file present");
        if let Some(dir) = to.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        if let Err(e) = tokio::fs::rename(&from, to).await {
            let _ = std::fs::remove_file(&from);
            return Err(e.into());
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// An incoming file written to a temp file with its hash and size.
struct Staged {
    tmp: TempFile,
    sha256: String,
    size: u64,
}

/// Hash a file with sha256 (streaming, 256 KiB buffer).
pub fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex::encode(h.finalize()), n))
}

fn limit_bytes(state: &AppState) -> u64 {
    state.settings.max_upload_mb.saturating_mul(1024 * 1024)
}

fn too_large(state: &AppState) -> Error {
    Error::TooLarge(format!(
        "the file is larger than the limit of {} MB",
        state.settings.max_upload_mb
    ))
}

/// Copy a reader into a temp file while hashing and counting; refuse past the size limit.
async fn stage_reader(state: &AppState, mut src: impl tokio::io::AsyncRead + Unpin) -> Result<Staged> {
    let (tmp, mut f) = TempFile::create(&state.settings.data_dir).await?;
    let limit = limit_bytes(state);
    let mut h = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        let k = src.read(&mut buf).await?;
        if k == 0 {
            break;
        }
        size += k as u64;
        if size > limit {
            return Err(too_large(state));
        }
        h.update(&buf[..k]);
        f.write_all(&buf[..k]).await?;
    }
    f.sync_all().await?;
    Ok(Staged {
        tmp,
        sha256: hex::encode(h.finalize()),
        size,
    })
}

/// Store a file from disk through the same path as an upload (copy, hash, probe, dedupe,
/// rename, row). Returns the record and whether it was already stored.
pub async fn ingest_file(
    state: &AppState,
    src: &Path,
    filename: &str,
    title: Option<&str>,
) -> Result<(MediaRow, bool)> {
    let f = tokio::fs::File::open(src).await?;
    let staged = stage_reader(state, f).await?;
    finish(state, staged, filename, title, None).await
}

/// Store bytes through the same path as an upload.
pub async fn ingest_bytes(
    state: &AppState,
    bytes: &[u8],
    filename: &str,
    title: Option<&str>,
) -> Result<(MediaRow, bool)> {
    let staged = stage_reader(state, bytes).await?;
    finish(state, staged, filename, title, None).await
}

fn probe_error(e: ProbeError) -> Error {
    let message = e.to_string();
    match e {
        ProbeError::Empty => Error::bad("empty", message),
        ProbeError::NotAudio(_) => Error::Unsupported {
            code: "not_audio",
            message,
        },
        ProbeError::UnsupportedCodec(_) => Error::Unsupported {
            code: "unsupported_codec",
            message,
        },
        ProbeError::Corrupt(_) => Error::unprocessable("corrupt", message),
        ProbeError::Io(m) => Error::internal(format!("probe: {m}")),
    }
}

fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name).trim();
    let s: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    if s.is_empty() { "upload".into() } else { s }
}

/// Probe a staged file, dedupe, move it into place and insert the row.
async fn finish(
    state: &AppState,
    staged: Staged,
    filename: &str,
    title: Option<&str>,
    area: Option<&str>,
) -> Result<(MediaRow, bool)> {
    let result = finish_inner(state, staged, filename, title, area).await;
    if let Err(e) = &result
        && !matches!(e, Error::Db(_) | Error::Io(_) | Error::Internal { .. })
    {
        Metrics::inc(&state.metrics.uploads_rejected);
    }
    result
}

async fn finish_inner(
    state: &AppState,
    staged: Staged,
    filename: &str,
    title: Option<&str>,
    area: Option<&str>,
) -> Result<(MediaRow, bool)> {
    if staged.size == 0 {
        return Err(Error::bad("empty", "the file is empty"));
    }
    if let Some(existing) = get(&state.store, &staged.sha256).await? {
        return Ok((existing, true));
    }
    let path = staged.tmp.path().to_path_buf();
    let info = tokio::task::spawn_blocking(move || probe_file(&path))
        .await
        .map_err(Error::context("probe task"))?
        .map_err(probe_error)?;
    let filename = clean_name(filename);
    let title = title
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| filename.clone());
    let dest = media_path(&state.settings.data_dir, &staged.sha256);
    let sha = staged.sha256.clone();
    staged.tmp.persist(&dest).await?;
    let now = now_ms();
    let res = sqlx::query(
        "INSERT INTO media (sha256, filename, title, size, container, codec, sample_rate, channels, duration_ms, status, status_note, created_at, updated_at, area) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'draft', NULL, $10, $11, $12)",
    )
    .bind(sha.clone())
    .bind(filename)
    .bind(title)
    .bind(staged.size as i64)
    .bind(info.container.clone())
    .bind(info.codec.clone())
    .bind(info.sample_rate as i64)
    .bind(info.channels as i64)
    .bind(info.duration_ms)
    .bind(now)
    .bind(now)
    .bind(area.map(str::to_string))
    .execute(&state.store.pool)
    .await;
    match res {
        Ok(_) => {}
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
            // A concurrent upload of the same content won the race.
            let m = get(&state.store, &sha)
                .await?
                .ok_or_else(|| Error::internal("media row vanished"))?;
            return Ok((m, true));
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&dest).await;
            return Err(e.into());
        }
    }
    let m = get(&state.store, &sha)
        .await?
        .ok_or_else(|| Error::internal("media row vanished"))?;
    tracing::info!(sha256 = %m.sha256, duration_ms = m.duration_ms, codec = %m.codec, "media stored");
    Ok((m, false))
}

/// Upload an audio file (multipart `file`, optional `title`). The body limit is
/// `max_upload_mb`; the content decides the format, not the file name.
#[utoipa::path(post, path = "/api/v1/media", tag = "media",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, description = "stored as draft", body = MediaResponse),
              (status = 200, description = "same content already stored (`duplicate: true`)", body = MediaResponse),
              (status = 400, description = "`empty` or `missing_file`"),
              (status = 413, description = "`too_large`"),
              (status = 415, description = "`not_audio` or `unsupported_codec`"),
              (status = 422, description = "`corrupt`: truncated or damaged")))]
async fn upload(
    caller: Caller,
    State(state): State<AppState>,
    mut mp: Multipart,
) -> Result<(StatusCode, Json<MediaResponse>)> {
    caller.require(Role::Editor)?;
    let mut staged: Option<(Staged, String)> = None;
    let mut title: Option<String> = None;
    let mut area: Option<String> = None;
    let limit = limit_bytes(&state);
    let bad_multipart = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(&state)
        } else {
            Error::bad("bad_multipart", e.body_text())
        }
    };
    while let Some(mut field) = mp.next_field().await.map_err(bad_multipart)? {
        match field.name() {
            Some("file") if staged.is_none() => {
                let filename = field.file_name().unwrap_or("upload").to_string();
                let (tmp, mut f) = TempFile::create(&state.settings.data_dir).await?;
                let mut h = Sha256::new();
                let mut size = 0u64;
                while let Some(chunk) = field.chunk().await.map_err(bad_multipart)? {
                    size += chunk.len() as u64;
                    if size > limit {
                        Metrics::inc(&state.metrics.uploads_rejected);
                        return Err(too_large(&state));
                    }
                    h.update(&chunk);
                    f.write_all(&chunk).await?;
                }
                f.sync_all().await?;
                drop(f);
                staged = Some((
                    Staged {
                        tmp,
                        sha256: hex::encode(h.finalize()),
                        size,
                    },
                    filename,
                ));
            }
            Some("title") => {
                let mut raw = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(bad_multipart)? {
                    if raw.len() + chunk.len() > 4096 {
                        return Err(Error::bad("invalid_field", "`title` is longer than 4096 bytes"));
                    }
                    raw.extend_from_slice(&chunk);
                }
                title = Some(String::from_utf8_lossy(&raw).chars().take(300).collect());
            }
            Some("area") => {
                let mut raw = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(bad_multipart)? {
                    if raw.len() + chunk.len() > 256 {
                        return Err(Error::bad("invalid_field", "`area` is longer than 256 bytes"));
                    }
                    raw.extend_from_slice(&chunk);
                }
                area = Some(String::from_utf8_lossy(&raw).trim().to_string()).filter(|a| !a.is_empty());
            }
            _ => {
                // Drain and ignore unknown fields (bounded by the body limit).
                while field.chunk().await.map_err(bad_multipart)?.is_some() {}
            }
        }
    }
    let Some((staged, filename)) = staged else {
        return Err(Error::bad("missing_file", "multipart field `file` is missing"));
    };
    let area = upload_area(&state, &caller, area).await?;
    let (m, duplicate) = finish(&state, staged, &filename, title.as_deref(), area.as_deref()).await?;
    if duplicate && !caller.sees_media(m.area.as_deref()) {
        return Err(Error::Conflict(
            "this audio is already stored in the library of an area outside your scope; ask a \
             province user to share it"
                .into(),
        ));
    }
    if !duplicate {
        let after = serde_json::to_value(&m).ok();
        crate::store::audit::record_outside(
            &state.store,
            &caller.username,
            "media.upload",
            &format!("media:{}", m.sha256),
            None,
            after,
        )
        .await;
    }
    let status = if duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(respond(m, duplicate))))
}

/// The owning area of an upload: the `area` field if given (it must exist and be inside the
/// caller's scope), else the caller's first scope area, else province-wide (`None`).
async fn upload_area(state: &AppState, caller: &Caller, asked: Option<String>) -> Result<Option<String>> {
    match asked {
        Some(a) => {
            if !crate::store::areas::exists(&state.store, &a).await? {
                return Err(Error::unprocessable(
                    "unknown_area",
                    format!("area `{a}` does not exist"),
                ));
            }
            caller.check_area(&a)?;
            Ok(Some(a))
        }
        None => Ok(caller.scope_roots.as_ref().and_then(|r| r.first().cloned())),
    }
}

/// The body limit layer for the upload route: the configured limit plus room for the multipart
/// framing. The handler enforces the exact limit on the file itself.
pub fn body_limit(settings: &crate::Settings) -> DefaultBodyLimit {
    DefaultBodyLimit::max((settings.max_upload_mb.saturating_mul(1024 * 1024) + 64 * 1024) as usize)
}

/// List media, newest first.
#[utoipa::path(get, path = "/api/v1/media", tag = "media", params(MediaFilter),
    responses((status = 200, body = [MediaResponse])))]
async fn list_media(
    caller: Caller,
    State(state): State<AppState>,
    Query(f): Query<MediaFilter>,
) -> Result<Json<Vec<MediaResponse>>> {
    let out = list_visible(&state.store, &caller, f.status.as_deref())
        .await?
        .into_iter()
        .map(|m| respond(m, false))
        .collect();
    Ok(Json(out))
}

/// The media the caller may see (province-wide and their subtree's), optionally of one status,
/// newest first; filtered in SQL.
pub async fn list_visible(store: &Store, caller: &Caller, status: Option<&str>) -> Result<Vec<MediaRow>> {
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
        q = q.bind(s.to_string());
    }
    let rows = q.fetch_all(&store.pool).await?;
    rows.iter().map(row_to_media).collect()
}

/// One media record.
#[utoipa::path(get, path = "/api/v1/media/{sha256}", tag = "media", params(("sha256" = String, Path)),
    responses((status = 200, body = MediaResponse), (status = 404)))]
async fn get_media(
    caller: Caller,
    State(state): State<AppState>,
    UrlPath(sha): UrlPath<String>,
) -> Result<Json<MediaResponse>> {
    let m = get_visible(&state.store, &caller, &sha).await?;
    Ok(Json(respond(m, false)))
}

/// Move media from one of `from` to `to`; 404 if unknown, 409 if in another state.
pub async fn transition(
    state: &AppState,
    sha: &str,
    from: &[&str],
    to: &str,
    note: Option<String>,
) -> Result<MediaRow> {
    let sql = format!(
        "UPDATE media SET status = $1, status_note = $2, updated_at = $3 WHERE sha256 = $4 AND status IN ({})",
        crate::store::placeholders(5, from.len())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(to.to_string())
        .bind(note)
        .bind(now_ms())
        .bind(sha.to_string());
    for f in from {
        q = q.bind(f.to_string());
    }
    let res = q.execute(&state.store.pool).await?;
    let m = get(&state.store, sha)
        .await?
        .ok_or_else(|| Error::NotFound(format!("media `{sha}`")))?;
    if res.rows_affected() == 0 {
        return Err(Error::Conflict(format!(
            "media `{sha}` is `{}`; `{to}` needs it to be {}",
            m.status,
            from.iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        )));
    }
    Ok(m)
}

fn note_of(body: Option<Json<ReviewNote>>) -> Option<String> {
    body.and_then(|Json(b)| b.note)
        .map(|n| n.trim().chars().take(2000).collect::<String>())
        .filter(|n| !n.is_empty())
}

/// Submit for approval: `draft` or `rejected` → `pending`.
#[utoipa::path(post, path = "/api/v1/media/{sha256}/submit", tag = "media", params(("sha256" = String, Path)),
    request_body(content = Option<ReviewNote>), responses((status = 200, body = MediaResponse), (status = 404), (status = 409)))]
async fn submit(
    caller: Caller,
    State(state): State<AppState>,
    UrlPath(sha): UrlPath<String>,
    body: Option<Json<ReviewNote>>,
) -> Result<Json<MediaResponse>> {
    let m = review(&state, &caller, &sha, "submit", note_of(body)).await?;
    Ok(Json(respond(m, false)))
}

/// One review step by a caller: `submit` (editor: draft|rejected → pending), `approve` (approver:
/// pending → approved; the admin also from draft), `reject` (approver: pending → rejected; the
/// admin also from draft). Audited; approval tells the dispatcher.
pub async fn review(
    state: &AppState,
    caller: &Caller,
    sha: &str,
    step: &str,
    note: Option<String>,
) -> Result<MediaRow> {
    let admin = caller.role == Role::Admin;
    let (from, to): (&[&str], &str) = match step {
        "submit" => {
            caller.require(Role::Editor)?;
            (&["draft", "rejected"], "pending")
        }
        "approve" => {
            caller.require(Role::Approver)?;
            (
                if admin {
                    &["pending", "draft"]
                } else {
                    &["pending"]
                },
                "approved",
            )
        }
        "reject" => {
            caller.require(Role::Approver)?;
            (
                if admin {
                    &["pending", "draft"]
                } else {
                    &["pending"]
                },
                "rejected",
            )
        }
        _ => {
            return Err(Error::bad(
                "invalid_step",
                format!("unknown review step `{step}`"),
            ));
        }
    };
    let before = Some(get_visible(&state.store, caller, sha).await?);
    let m = transition(state, sha, from, to, note).await?;
    if to == "approved" {
        crate::services::changes::changed(state, Change::All).await;
    }
    let after = get(&state.store, sha).await?;
    crate::store::audit::record_outside(
        &state.store,
        &caller.username,
        &format!("media.{step}"),
        &format!("media:{sha}"),
        before.and_then(|b| serde_json::to_value(b).ok()),
        after.and_then(|a| serde_json::to_value(a).ok()),
    )
    .await;
    Ok(m)
}

/// Approve for broadcast: `pending` (or, for the admin, `draft`) → `approved`.
#[utoipa::path(post, path = "/api/v1/media/{sha256}/approve", tag = "media", params(("sha256" = String, Path)),
    request_body(content = Option<ReviewNote>), responses((status = 200, body = MediaResponse), (status = 404), (status = 409)))]
async fn approve(
    caller: Caller,
    State(state): State<AppState>,
    UrlPath(sha): UrlPath<String>,
    body: Option<Json<ReviewNote>>,
) -> Result<Json<MediaResponse>> {
    let m = review(&state, &caller, &sha, "approve", note_of(body)).await?;
    Ok(Json(respond(m, false)))
}

/// Reject: `pending` or `draft` → `rejected`, with a note.
#[utoipa::path(post, path = "/api/v1/media/{sha256}/reject", tag = "media", params(("sha256" = String, Path)),
    request_body(content = Option<ReviewNote>), responses((status = 200, body = MediaResponse), (status = 404), (status = 409)))]
async fn reject(
    caller: Caller,
    State(state): State<AppState>,
    UrlPath(sha): UrlPath<String>,
    body: Option<Json<ReviewNote>>,
) -> Result<Json<MediaResponse>> {
    let m = review(&state, &caller, &sha, "reject", note_of(body)).await?;
    Ok(Json(respond(m, false)))
}

/// Parse a single `bytes=` range against `len`: `Ok(None)` = whole file, `Err(())` = unsatisfiable.
fn parse_range(h: &str, len: u64) -> std::result::Result<Option<(u64, u64)>, ()> {
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // multiple ranges: serve the whole file
    }
    let (a, b) = spec.trim().split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 || len == 0 {
            return Err(());
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let s: u64 = a.parse().map_err(|_| ())?;
        let e: u64 = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            b.parse::<u64>().map_err(|_| ())?.min(len.saturating_sub(1))
        };
        (s, e)
    };
    if start >= len || start > end {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// Fetch a media file by content hash (no auth). Supports `Range` (206/416), `ETag` and
/// `If-None-Match` (304); cached forever since the address is the content.
#[utoipa::path(get, path = "/media/{sha256}", tag = "media", security(()), params(("sha256" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream"), (status = 206), (status = 304), (status = 404), (status = 416)))]
async fn serve_file(
    State(state): State<AppState>,
    UrlPath(sha): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response> {
    if !is_sha(&sha) {
        return Err(Error::NotFound(format!("media `{sha}`")));
    }
    let path = media_path(&state.settings.data_dir, &sha);
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound(format!("media `{sha}`")));
        }
        Err(e) => return Err(e.into()),
    };
    let len = file.metadata().await?.len();
    let etag = format!("\"{sha}\"");
    let mut base = HeaderMap::new();
    base.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).map_err(Error::context("etag header"))?,
    );
    base.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    base.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    if let Some(inm) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok())
        && inm.split(',').any(|t| {
            let t = t.trim();
            t == "*" || t == etag || t.strip_prefix("W/") == Some(etag.as_str())
        })
    {
        return Ok((StatusCode::NOT_MODIFIED, base).into_response());
    }
    base.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    // If-Range with another validator means: send the whole file.
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == etag);
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(r) if if_range_ok => parse_range(r, len),
        _ => Ok(None),
    };
    match range {
        Err(()) => {
            base.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"),
            );
            Ok((StatusCode::RANGE_NOT_SATISFIABLE, base).into_response())
        }
        Ok(None) => {
            base.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024));
            Ok((StatusCode::OK, base, body).into_response())
        }
        Ok(Some((start, end))) => {
            let n = end - start + 1;
            file.seek(SeekFrom::Start(start)).await?;
            base.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
            base.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")).expect("ascii"),
            );
            let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
                file.take(n),
                64 * 1024,
            ));
            Ok((StatusCode::PARTIAL_CONTENT, base, body).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges_are_parsed_and_clamped() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=50-500", 100), Ok(Some((50, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
    }
}
