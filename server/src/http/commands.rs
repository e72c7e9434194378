//! The command API: `POST /api/v1/devices/{id}/commands` and `POST /api/v1/areas/{code}/commands`
//! (play now, stop, volume, sync), answered `202` once the command is recorded; the command
//! sender publishes it (`services::commands`, `workers::commands`). A command and its acks are
//! read at `GET /api/v1/commands/{id}` (`http::reports`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};

use crate::domain::command::{CommandRequest, Issued};
use crate::error::Result;
use crate::http::auth::Caller;
use crate::http::json::ApiJson;
use crate::services::AppState;
use crate::services::commands::{self, Target};

/// OpenAPI description of this module's endpoints (merged in `http::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(device_command, area_command),
    components(schemas(CommandRequest, Issued))
)]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/devices/{id}/commands", post(device_command))
        .route("/api/v1/areas/{code}/commands", post(area_command))
}

/// Send a command to one device.
#[utoipa::path(post, path = "/api/v1/devices/{id}/commands", tag = "commands", params(("id" = String, Path)),
    request_body = CommandRequest,
    responses((status = 202, body = Issued), (status = 404), (status = 422, description = "media not approved")))]
async fn device_command(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CommandRequest>,
) -> Result<(StatusCode, Json<Issued>)> {
    let issued = commands::issue(&state, &caller, Target::Device(id), req).await?;
    Ok((StatusCode::ACCEPTED, Json(issued)))
}

/// Send a command to every device in an area (broker fan-out on `a/{code}/cmd`).
#[utoipa::path(post, path = "/api/v1/areas/{code}/commands", tag = "commands", params(("code" = String, Path)),
    request_body = CommandRequest,
    responses((status = 202, body = Issued), (status = 404), (status = 422, description = "media not approved")))]
async fn area_command(
    caller: Caller,
    State(state): State<AppState>,
    Path(code): Path<String>,
    ApiJson(req): ApiJson<CommandRequest>,
) -> Result<(StatusCode, Json<Issued>)> {
    let issued = commands::issue(&state, &caller, Target::Area(code), req).await?;
    Ok((StatusCode::ACCEPTED, Json(issued)))
}
