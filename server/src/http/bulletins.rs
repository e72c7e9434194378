//! The bulletin API (`/api/v1/bulletins…`, `/api/v1/areas/{code}/languages`) and the bulletin
//! files (`GET /files/{sha256}`). Each handler extracts, calls one use case of
//! [`crate::services::bulletins`] and maps its answer.
//!
//! Publishing (`POST /api/v1/bulletins/{id}/publish`, alias `/schedule`) makes an approved bulletin
//! visible on the areas' boards and, per area language, obtains speech and creates a schedule on
//! the area's loudspeakers.

use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::TryStreamExt;

use crate::domain::bulletin::{
    AreaLanguages, Bulletin, BulletinPatch, Decision, DisplayRow, FileRef, NewBulletin, PublishRequest,
    Published, SpeechItem, Variant, VariantIn,
};
use crate::domain::media::is_sha;
use crate::domain::review::ReviewAction;
use crate::error::{Error, Result};
use crate::http::auth::{Admin, Caller};
use crate::services::AppState;
use crate::services::bulletins::{self, AudioRule, files};

/// OpenAPI description of this module's endpoints (merged in `openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        create_bulletin,
        list_bulletins,
        get_bulletin,
        patch_bulletin,
        submit,
        approve,
        reject,
        upload_file,
        publish,
        unpublish,
        get_area_languages,
        put_area_languages,
        list_displays
    ),
    components(schemas(
        Bulletin,
        NewBulletin,
        BulletinPatch,
        VariantIn,
        Variant,
        FileRef,
        Decision,
        PublishRequest,
        Published,
        SpeechItem,
        AreaLanguages,
        DisplayRow
    ))
)]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/bulletins", post(create_bulletin).get(list_bulletins))
        .route("/api/v1/bulletins/{id}", get(get_bulletin).patch(patch_bulletin))
        .route("/api/v1/bulletins/{id}/submit", post(submit))
        .route("/api/v1/bulletins/{id}/approve", post(approve))
        .route("/api/v1/bulletins/{id}/reject", post(reject))
        .route(
            "/api/v1/bulletins/{id}/files",
            post(upload_file).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/bulletins/{id}/publish", post(publish))
        .route("/api/v1/bulletins/{id}/schedule", post(publish))
        .route("/api/v1/bulletins/{id}/unpublish", post(unpublish))
        .route("/api/v1/bulletins/{id}/displays", get(list_displays))
        .route(
            "/api/v1/areas/{code}/languages",
            get(get_area_languages).put(put_area_languages),
        )
        .route("/files/{sha256}", get(serve_file))
}

/// Create a draft bulletin.
#[utoipa::path(post, path = "/api/v1/bulletins", tag = "bulletins", request_body = NewBulletin,
    responses((status = 201, body = Bulletin), (status = 400, description = "Invalid field"),
              (status = 422, description = "Unknown area or unapproved audio")))]
async fn create_bulletin(
    Admin(c): Admin,
    State(state): State<AppState>,
    Json(req): Json<NewBulletin>,
) -> Result<Response> {
    let b = bulletins::create(&state, &c.username, req, AudioRule::Approved, Vec::new()).await?;
    Ok((StatusCode::CREATED, Json(b)).into_response())
}

/// List bulletins, newest first.
#[utoipa::path(get, path = "/api/v1/bulletins", tag = "bulletins", responses((status = 200, body = [Bulletin])))]
async fn list_bulletins(_: Admin, State(state): State<AppState>) -> Result<Json<Vec<Bulletin>>> {
    Ok(Json(bulletins::list(&state.store, None).await?))
}

/// One bulletin.
#[utoipa::path(get, path = "/api/v1/bulletins/{id}", tag = "bulletins",
    responses((status = 200, body = Bulletin), (status = 404, description = "No such bulletin")))]
async fn get_bulletin(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Bulletin>> {
    Ok(Json(bulletins::get(&state.store, &id).await?))
}

/// Edit a bulletin; it goes back to `draft` and off the boards.
#[utoipa::path(patch, path = "/api/v1/bulletins/{id}", tag = "bulletins", request_body = BulletinPatch,
    responses((status = 200, body = Bulletin)))]
async fn patch_bulletin(
    Admin(c): Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(p): Json<BulletinPatch>,
) -> Result<Json<Bulletin>> {
    Ok(Json(
        bulletins::update(&state, &c.username, &id, p, AudioRule::Approved, Vec::new()).await?,
    ))
}

/// Submit a draft (or rejected) bulletin for approval.
#[utoipa::path(post, path = "/api/v1/bulletins/{id}/submit", tag = "bulletins",
    responses((status = 200, body = Bulletin), (status = 409, description = "Not a draft")))]
async fn submit(
    Admin(c): Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Bulletin>> {
    Ok(Json(
        bulletins::review(&state, &c, &id, ReviewAction::Submit, None).await?,
    ))
}

/// Approve a pending bulletin.
#[utoipa::path(post, path = "/api/v1/bulletins/{id}/approve", tag = "bulletins",
    responses((status = 200, body = Bulletin), (status = 409, description = "Not pending (also when another approver got there first)")))]
async fn approve(
    Admin(c): Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Bulletin>> {
    Ok(Json(
        bulletins::review(&state, &c, &id, ReviewAction::Approve, None).await?,
    ))
}

/// Reject a pending bulletin with a reason.
#[utoipa::path(post, path = "/api/v1/bulletins/{id}/reject", tag = "bulletins", request_body = Decision,
    responses((status = 200, body = Bulletin), (status = 400, description = "No reason"), (status = 409, description = "Not pending")))]
async fn reject(
    Admin(c): Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(d): Json<Decision>,
) -> Result<Json<Bulletin>> {
    let note = d
        .note
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| Error::bad("note_required", "a rejection needs a `note`"))?;
    Ok(Json(
        bulletins::review(&state, &c, &id, ReviewAction::Reject, Some(note)).await?,
    ))
}

/// Upload an image, video or PDF (multipart field `file`); the type is read from the content.
#[utoipa::path(post, path = "/api/v1/bulletins/{id}/files", tag = "bulletins",
    request_body(content_type = "multipart/form-data", description = "field `file`"),
    responses((status = 201, body = FileRef), (status = 413, description = "Over the size limit"),
              (status = 415, description = "Not PNG, JPEG, WebP, GIF, MP4, WebM or PDF"),
              (status = 422, description = "Image dimensions over the limit")))]
async fn upload_file(
    Admin(c): Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    mut mp: Multipart,
) -> Result<Response> {
    bulletins::get(&state.store, &id).await?;
    let max_upload = state.settings.max_upload_mb * 1024 * 1024;
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|e| crate::http::multipart::error(state.settings.max_upload_mb, &e))?
    {
        if field.name() != Some("file") {
            crate::http::multipart::skip_field(state.settings.max_upload_mb, field).await?;
            continue;
        }
        let filename = field
            .file_name()
            .unwrap_or("file")
            .chars()
            .take(200)
            .collect::<String>();
        let stream = field.map_err(|e| Error::bad("bad_multipart", e.body_text()));
        let source = files::Source::Stream(Box::pin(stream));
        let stored = match files::receive(&state.settings.data_dir, max_upload, source).await {
            Ok(s) => s,
            Err(e) => {
                crate::metrics::Metrics::inc(&state.metrics.uploads_rejected);
                return Err(e);
            }
        };
        let f = bulletins::attach(&state, &c.username, &id, &stored, filename).await?;
        return Ok((StatusCode::CREATED, Json(f)).into_response());
    }
    Err(Error::bad("file_required", "multipart field `file` is missing"))
}

/// A stored bulletin file with its type (read from the content at upload), `Range`, a strong
/// ETag and `If-None-Match`. A file of a bulletin on the boards needs no auth (boards and
/// players fetch what their feed names) and is cached forever; any other file (a draft's, one in
/// review, one taken off the boards) is served only to a signed-in caller who sees one of its
/// bulletins (`private, no-store`), else 404 (`services::bulletins::file_access`).
async fn serve_file(
    caller: Result<Caller, Error>,
    State(state): State<AppState>,
    Path(sha): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let absent = || Error::NotFound(format!("file {sha}"));
    if !is_sha(&sha) {
        return Err(absent());
    }
    let access = bulletins::file_access(&state, caller.as_ref().ok(), &sha).await?;
    let mime = crate::store::bulletins::file_mime(&state.store, &sha)
        .await?
        .ok_or_else(absent)?;
    let file = files::open(&state.settings.data_dir, &sha)
        .await?
        .ok_or_else(absent)?;
    let content_type =
        HeaderValue::from_str(&mime).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    crate::http::media::send_file(file, &sha, access, content_type, &headers).await
}

/// The languages in effect for an area.
#[utoipa::path(get, path = "/api/v1/areas/{code}/languages", tag = "bulletins", responses((status = 200, body = AreaLanguages)))]
async fn get_area_languages(
    _: Admin,
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<AreaLanguages>> {
    Ok(Json(bulletins::area_languages(&state.store, &code).await?))
}

/// Set the languages an area receives (empty list: inherit).
#[utoipa::path(put, path = "/api/v1/areas/{code}/languages", tag = "bulletins", request_body = AreaLanguages,
    responses((status = 200, body = AreaLanguages)))]
async fn put_area_languages(
    Admin(c): Admin,
    State(state): State<AppState>,
    Path(code): Path<String>,
    Json(body): Json<AreaLanguages>,
) -> Result<Json<AreaLanguages>> {
    Ok(Json(
        bulletins::set_area_languages(&state, &c.username, &code, &body.languages).await?,
    ))
}

/// Publish an approved bulletin to boards and loudspeakers of its areas.
#[utoipa::path(post, path = "/api/v1/bulletins/{id}/publish", tag = "bulletins", request_body = PublishRequest,
    responses((status = 200, body = Published), (status = 422, description = "Not approved, expired, or no areas")))]
async fn publish(
    Admin(c): Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Option<Json<PublishRequest>>,
) -> Result<Json<Published>> {
    let req = body.map(|b| b.0).unwrap_or_default();
    Ok(Json(bulletins::publish(&state, &c.username, &id, req).await?))
}

/// Take a bulletin off all boards (schedules already created stay; disable them in `schedules`).
#[utoipa::path(post, path = "/api/v1/bulletins/{id}/unpublish", tag = "bulletins", responses((status = 200, body = Bulletin)))]
async fn unpublish(
    Admin(c): Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Bulletin>> {
    Ok(Json(bulletins::unpublish(&state, &c.username, &id).await?))
}

/// Where and when a bulletin was shown.
#[utoipa::path(get, path = "/api/v1/bulletins/{id}/displays", tag = "bulletins", responses((status = 200, body = [DisplayRow])))]
async fn list_displays(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<DisplayRow>>> {
    Ok(Json(bulletins::displays(&state.store, &id).await?))
}
