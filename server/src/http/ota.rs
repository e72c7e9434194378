//! The API of signed agent updates (issue 16, docs/ota.md): agent releases
//! (`POST /api/v1/agent-releases`, an admin's multipart upload of `version`, `arch`, `binary` and
//! optional `notes`; `GET` lists them), the binaries devices fetch (`GET /agent-releases/{sha256}`,
//! no auth: the address is the content and the device checks the server's signature), and
//! rollouts (`POST`/`GET /api/v1/rollouts`, `GET`/`PATCH /api/v1/rollouts/{id}`). The use cases
//! are `services::ota`.

use axum::extract::multipart::Field;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{self, post};
use axum::{Json, Router};
use utoipa::ToSchema;

use crate::domain::ota::{
    DeviceProgress, NewRollout, Release, Rollout, RolloutPatch, RolloutProgress, RolloutState,
};
use crate::error::{Error, Result};
use crate::http::auth::{Admin, Caller};
use crate::http::multipart;
use crate::services::media::{self as library, files};
use crate::services::{AppState, ota};
use crate::store;

/// OpenAPI description of this module's endpoints (merged in `openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        upload_release,
        list_releases,
        serve_binary,
        create_rollout,
        list_rollouts,
        get_rollout,
        patch_rollout
    ),
    components(schemas(
        Release,
        ReleaseForm,
        Rollout,
        RolloutState,
        NewRollout,
        RolloutPatch,
        RolloutProgress,
        DeviceProgress
    ))
)]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/agent-releases",
            post(upload_release)
                .get(list_releases)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/agent-releases/{sha256}", routing::get(serve_binary))
        .route("/api/v1/rollouts", post(create_rollout).get(list_rollouts))
        .route(
            "/api/v1/rollouts/{id}",
            routing::get(get_rollout).patch(patch_rollout),
        )
}

/// Multipart form of `POST /api/v1/agent-releases`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ReleaseForm {
    /// The version the binary reports (1–64 characters of `A–Z a–z 0–9 . _ + -`).
    version: String,
    /// `x86_64`, `aarch64` or `armv7`; the binary must be an ELF of it.
    arch: String,
    /// The agent binary, at most `[ota] max_binary_mb`.
    #[schema(value_type = String, format = Binary)]
    binary: Vec<u8>,
    /// Optional notes.
    notes: Option<String>,
}

async fn read_field(state: &AppState, mut field: Field<'_>, name: &str, max: usize) -> Result<Vec<u8>> {
    let mut raw = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| multipart::error(state.settings.max_upload_mb, &e))?
    {
        if raw.len() + chunk.len() > max {
            return Err(Error::TooLarge(format!(
                "`{name}` is larger than {max} bytes{}",
                if name == "binary" {
                    " (`[ota] max_binary_mb`)"
                } else {
                    ""
                }
            )));
        }
        raw.extend_from_slice(&chunk);
    }
    Ok(raw)
}

fn text(raw: Vec<u8>, name: &str) -> Result<String> {
    String::from_utf8(raw).map_err(|_| Error::unprocessable("invalid_text", format!("`{name}` is not UTF-8")))
}

/// Upload an agent binary for one version and architecture (admin, multipart).
/// The server keeps it under its sha256; the dispatcher signs `(version, arch, sha256)` with the
/// server key when a rollout puts it in a manifest.
#[utoipa::path(post, path = "/api/v1/agent-releases", tag = "ota",
    request_body(content = ReleaseForm, content_type = "multipart/form-data"),
    responses((status = 201, body = Release),
              (status = 409, description = "the version has a build for this architecture already"),
              (status = 413, description = "`binary` over `[ota] max_binary_mb`"),
              (status = 422, description = "`missing_field`, `invalid_version`, `invalid_arch`, `not_an_executable` or `wrong_arch`, naming the field")))]
async fn upload_release(
    Admin(caller): Admin,
    State(state): State<AppState>,
    mut mp: Multipart,
) -> Result<(StatusCode, Json<Release>)> {
    let max_binary = (state.settings.ota.max_binary_mb * 1024 * 1024) as usize;
    let mut u = ota::Upload::default();
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|e| multipart::error(state.settings.max_upload_mb, &e))?
    {
        match field.name() {
            Some("binary") => u.binary = Some(read_field(&state, field, "binary", max_binary).await?),
            Some("version") => {
                u.version = Some(text(read_field(&state, field, "version", 256).await?, "version")?)
            }
            Some("arch") => u.arch = Some(text(read_field(&state, field, "arch", 64).await?, "arch")?),
            Some("notes") => {
                u.notes = Some(text(
                    read_field(&state, field, "notes", 16 * 1024).await?,
                    "notes",
                )?)
            }
            _ => multipart::skip_field(state.settings.max_upload_mb, field).await?,
        }
    }
    let r = ota::upload(&state, &caller, u).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

/// Every agent release, newest first.
#[utoipa::path(get, path = "/api/v1/agent-releases", tag = "ota",
    responses((status = 200, body = [Release])))]
async fn list_releases(Admin(_caller): Admin, State(state): State<AppState>) -> Result<Json<Vec<Release>>> {
    Ok(Json(store::ota::releases(&state.store).await?))
}

/// An agent binary by sha256, for devices (no auth; `Range` supported).
/// Only the binaries of stored releases are served.
#[utoipa::path(get, path = "/agent-releases/{sha256}", tag = "ota", security(()), params(("sha256" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream"), (status = 206), (status = 404)))]
async fn serve_binary(
    State(state): State<AppState>,
    Path(sha): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let valid = sha.len() == 64
        && sha
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if !valid || !store::ota::has_binary(&state.store, &sha).await? {
        return Err(Error::NotFound(format!("agent binary `{sha}`")));
    }
    let Some(file) = files::open_at(&ota::binary_file(&state, &sha)).await? else {
        return Err(Error::NotFound(format!("agent binary `{sha}`")));
    };
    let octets = HeaderValue::from_static("application/octet-stream");
    crate::http::media::send_file(file, &sha, library::Fetch::Public, octets, &headers).await
}

/// Start a rollout of a release to a share of the devices of some areas (admin).
/// The devices of `areas` whose hash falls in `percent` are asked to run `release`.
#[utoipa::path(post, path = "/api/v1/rollouts", tag = "ota", request_body = NewRollout,
    responses((status = 201, body = Rollout),
              (status = 422, description = "`unknown_release`, `unknown_area`, `invalid_areas`, `invalid_percent` or `invalid_confirm_minutes`")))]
async fn create_rollout(
    Admin(caller): Admin,
    State(state): State<AppState>,
    Json(n): Json<NewRollout>,
) -> Result<(StatusCode, Json<Rollout>)> {
    Ok((StatusCode::CREATED, Json(ota::create(&state, &caller, n).await?)))
}

/// Every rollout, newest first.
#[utoipa::path(get, path = "/api/v1/rollouts", tag = "ota", responses((status = 200, body = [Rollout])))]
async fn list_rollouts(caller: Caller, State(state): State<AppState>) -> Result<Json<Vec<Rollout>>> {
    caller.require(crate::domain::scope::Role::Operator)?;
    Ok(Json(store::ota::rollouts(&state.store).await?))
}

/// A rollout with each device's last reported step and the count per step.
/// A device that has not reported is `pending`.
#[utoipa::path(get, path = "/api/v1/rollouts/{id}", tag = "ota", params(("id" = String, Path)),
    responses((status = 200, body = RolloutProgress), (status = 404)))]
async fn get_rollout(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RolloutProgress>> {
    Ok(Json(ota::progress(&state, &caller, &id).await?))
}

/// Raise a rollout's share, or pause, resume (`active`) or cancel it (admin).
#[utoipa::path(patch, path = "/api/v1/rollouts/{id}", tag = "ota", params(("id" = String, Path)), request_body = RolloutPatch,
    responses((status = 200, body = Rollout), (status = 404), (status = 409, description = "cancelled"),
              (status = 422, description = "`invalid_percent`: outside 1–100 or below the current share")))]
async fn patch_rollout(
    Admin(caller): Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(p): Json<RolloutPatch>,
) -> Result<Json<Rollout>> {
    Ok(Json(ota::update(&state, &caller, &id, p).await?))
}
