//! The media library's API: upload (`POST /api/v1/media`, multipart field `file`, optional
//! `title` and `area`; streamed to the service, never held in memory), list and read, the review
//! steps (`/submit`, `/approve`, `/reject`), and the files at `GET /media/{sha256}` (Range,
//! ETag; approved files without auth and cached immutably, as devices fetch them; others only
//! for a caller who sees them). The use cases are `services::media`.

use axum::body::Body;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{DefaultBodyLimit, Multipart, Path as UrlPath, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{self, post};
use axum::{Json, Router};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::media::{self, LoudnessRendition, Media, MediaLoudness};
use crate::domain::range::{self, Unsatisfiable};
use crate::domain::review::ReviewStatus;
use crate::domain::scope::Role;
use crate::error::{Error, Result};
use crate::http::auth::Caller;
use crate::http::multipart;
use crate::services::AppState;
use crate::services::media::{self as library, Staged, files};
use crate::store;

/// OpenAPI description of this module's endpoints (merged in `openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(upload, list_media, get_media, submit, approve, reject, serve_file),
    components(schemas(
        Media,
        MediaResponse,
        MediaLoudness,
        LoudnessRendition,
        UploadForm,
        ReviewNote
    ))
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

/// A media record as the API returns it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MediaResponse {
    /// The record.
    #[serde(flatten)]
    pub media: Media,
    /// Path devices fetch it from (`/media/<sha256>`).
    pub url: String,
    /// True when this upload matched content already stored.
    pub duplicate: bool,
    /// The upload's measured loudness and the normalised rendition devices play (null for
    /// speech and for files stored before loudness was measured).
    pub loudness: Option<MediaLoudness>,
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

fn respond_with(media: Media, duplicate: bool, loudness: Option<MediaLoudness>) -> MediaResponse {
    MediaResponse {
        url: media::url_path(&media.sha256),
        media,
        duplicate,
        loudness,
    }
}

/// The answer for one record, with its loudness row.
async fn respond(state: &AppState, media: Media, duplicate: bool) -> Result<MediaResponse> {
    let mut l = store::loudness::of(&state.store, std::slice::from_ref(&media.sha256)).await?;
    let loudness = l.remove(&media.sha256);
    Ok(respond_with(media, duplicate, loudness))
}

/// The answer to a broken multipart body: 413 past the body limit, else 400 `bad_multipart`.
fn multipart_error(state: &AppState, e: &MultipartError) -> Error {
    multipart::error(state.settings.max_upload_mb, e)
}

/// A small text field, refused past `max` bytes.
async fn small_field(state: &AppState, mut field: Field<'_>, name: &str, max: usize) -> Result<Vec<u8>> {
    let mut raw = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(state, &e))? {
        if raw.len() + chunk.len() > max {
            return Err(media::field_too_long(name, max));
        }
        raw.extend_from_slice(&chunk);
    }
    Ok(raw)
}

/// Stage the `file` field: its stream is read by the service as an `AsyncRead`; a multipart
/// error inside it comes back as the refusal it is.
async fn stage_field(state: &AppState, field: Field<'_>) -> Result<Staged> {
    let reader = tokio_util::io::StreamReader::new(field.map_err(std::io::Error::other));
    library::stage(state, reader).await.map_err(|e| match &e {
        Error::Io(io) => match io.get_ref().and_then(|i| i.downcast_ref::<MultipartError>()) {
            Some(m) => multipart_error(state, m),
            None => e,
        },
        _ => e,
    })
}

/// Upload an audio file (multipart `file`, optional `title` and `area`). The file's limit is
/// `max_upload_mb`, the whole body's that plus 1 MiB, any other field's 64 KiB
/// (`http::multipart`); the content decides the format, not the file name.
#[utoipa::path(post, path = "/api/v1/media", tag = "media",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, description = "stored as draft", body = MediaResponse),
              (status = 200, description = "same content already stored (`duplicate: true`)", body = MediaResponse),
              (status = 400, description = "`empty` or `missing_file`"),
              (status = 413, description = "`too_large`"),
              (status = 415, description = "`not_audio` or `unsupported_codec`"),
              (status = 422, description = "`corrupt`: truncated or damaged; `undecodable_audio`: its loudness cannot be measured")))]
async fn upload(
    caller: Caller,
    State(state): State<AppState>,
    mut mp: Multipart,
) -> Result<(StatusCode, Json<MediaResponse>)> {
    caller.require(Role::Editor)?;
    let mut staged: Option<(Staged, String)> = None;
    let mut title: Option<String> = None;
    let mut area: Option<String> = None;
    while let Some(field) = mp.next_field().await.map_err(|e| multipart_error(&state, &e))? {
        match field.name() {
            Some("file") if staged.is_none() => {
                let filename = field.file_name().unwrap_or("upload").to_string();
                staged = Some((stage_field(&state, field).await?, filename));
            }
            Some("title") => {
                let raw = small_field(&state, field, "title", media::TITLE_FIELD_MAX_BYTES).await?;
                title = Some(media::title_field(&raw));
            }
            Some("area") => {
                let raw = small_field(&state, field, "area", media::AREA_FIELD_MAX_BYTES).await?;
                area = media::area_field(&raw);
            }
            _ => multipart::skip_field(state.settings.max_upload_mb, field).await?,
        }
    }
    let Some((staged, filename)) = staged else {
        return Err(Error::bad("missing_file", "multipart field `file` is missing"));
    };
    let (m, duplicate) = library::upload(&state, &caller, staged, &filename, title.as_deref(), area).await?;
    let status = if duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(respond(&state, m, duplicate).await?)))
}

/// List media, newest first.
#[utoipa::path(get, path = "/api/v1/media", tag = "media", params(MediaFilter),
    responses((status = 200, body = [MediaResponse])))]
async fn list_media(
    caller: Caller,
    State(state): State<AppState>,
    Query(f): Query<MediaFilter>,
) -> Result<Json<Vec<MediaResponse>>> {
    let status = match f.status.as_deref().map(ReviewStatus::parse) {
        None => None,
        Some(Ok(s)) => Some(s),
        // No record has a status that does not exist.
        Some(Err(_)) => return Ok(Json(Vec::new())),
    };
    let list = store::media::list_visible(&state.store, &caller, status).await?;
    let shas: Vec<String> = list.iter().map(|m| m.sha256.clone()).collect();
    let mut loudness = store::loudness::of(&state.store, &shas).await?;
    let out = list
        .into_iter()
        .map(|m| {
            let l = loudness.remove(&m.sha256);
            respond_with(m, false, l)
        })
        .collect();
    Ok(Json(out))
}

/// One media record.
#[utoipa::path(get, path = "/api/v1/media/{sha256}", tag = "media", params(("sha256" = String, Path)),
    responses((status = 200, body = MediaResponse), (status = 404)))]
async fn get_media(
    caller: Caller,
    State(state): State<AppState>,
    UrlPath(sha): UrlPath<String>,
) -> Result<Json<MediaResponse>> {
    let m = store::media::get_visible(&state.store, &caller, &sha).await?;
    Ok(Json(respond(&state, m, false).await?))
}

async fn review_step(
    state: &AppState,
    caller: &Caller,
    sha: &str,
    step: &str,
    body: Option<Json<ReviewNote>>,
) -> Result<Json<MediaResponse>> {
    let note = media::clean_note(body.and_then(|Json(b)| b.note));
    let m = library::review(state, caller, sha, step, note).await?;
    Ok(Json(respond(state, m, false).await?))
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
    review_step(&state, &caller, &sha, "submit", body).await
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
    review_step(&state, &caller, &sha, "approve", body).await
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
    review_step(&state, &caller, &sha, "reject", body).await
}

/// Fetch a media file by content hash. Approved media needs no auth (devices fetch it by
/// hash) and is cached forever since the address is the content; a draft, pending or rejected
/// file is served only to a caller who may see it (`private, no-store`), else 404. Supports
/// `Range` (206/416), `ETag` and `If-None-Match` (304).
#[utoipa::path(get, path = "/media/{sha256}", tag = "media", security(()), params(("sha256" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream"), (status = 206), (status = 304), (status = 404), (status = 416)))]
async fn serve_file(
    caller: Result<Caller, Error>,
    State(state): State<AppState>,
    UrlPath(sha): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let access = library::fetch_access(&state, caller.as_ref().ok(), &sha).await?;
    let file = match access {
        // Approved files every device may fetch at once: from memory (`services::media::hot`).
        library::Fetch::Public => state.hot_media.open(&state.settings.data_dir, &sha).await?,
        library::Fetch::Private => files::open(&state.settings.data_dir, &sha).await?,
    };
    let Some(file) = file else {
        return Err(Error::NotFound(format!("media `{sha}`")));
    };
    let octets = HeaderValue::from_static("application/octet-stream");
    send_file(file, &sha, access, octets, &headers).await
}

/// The answer to a GET of the stored `file` with content address `sha`: its bytes whole (200)
/// or one range (206, `Range`/`If-Range`; 416 outside the file), 304 for a matching
/// `If-None-Match`, a strong ETag, and caching as `access` says (public forever: the address is
/// the content; private: never stored). `GET /media/{sha256}` and `GET /files/{sha256}`.
pub async fn send_file(
    file: files::MediaFile,
    sha: &str,
    access: library::Fetch,
    content_type: HeaderValue,
    headers: &HeaderMap,
) -> Result<Response> {
    let len = file.len;
    let etag = range::etag(sha);
    let mut base = HeaderMap::new();
    base.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).map_err(Error::context("etag header"))?,
    );
    base.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    base.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(match access {
            library::Fetch::Public => "public, max-age=31536000, immutable",
            library::Fetch::Private => "private, no-store",
        }),
    );
    let text = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    if text(header::IF_NONE_MATCH).is_some_and(|inm| range::none_match(inm, &etag)) {
        return Ok((StatusCode::NOT_MODIFIED, base).into_response());
    }
    base.insert(header::CONTENT_TYPE, content_type);
    let wanted = match text(header::RANGE) {
        Some(r) if range::if_range_allows(text(header::IF_RANGE), &etag) => range::parse_range(r, len),
        _ => Ok(None),
    };
    let part = match wanted {
        Err(Unsatisfiable) => {
            base.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"),
            );
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, base).into_response());
        }
        Ok(part) => part,
    };
    let (status, n) = match part {
        None => (StatusCode::OK, len),
        Some(r) => {
            base.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {}-{}/{len}", r.start, r.end)).expect("ascii"),
            );
            (StatusCode::PARTIAL_CONTENT, r.len())
        }
    };
    base.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    let body = Body::from_stream(file.stream(part).await?);
    Ok((status, base, body).into_response())
}
