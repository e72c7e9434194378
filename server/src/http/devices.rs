//! The device API: the registry under `/api/v1/devices` (devices with live status), the
//! idempotent registration import `POST /api/v1/fleet/import` (the `nguon-provision` registry
//! file), and a device's status history `GET /api/v1/devices/{id}/status-history`. Writes go
//! through `services::devices`; plain reads come from `store::devices`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{self, post};
use axum::{Json, Router};
use nguon_provision::registry::Registry;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::domain::device::{Device, DevicePatch, FleetImportSummary, NewDevice};
use crate::domain::presence::{Availability, EndedBy, Interval, StatusHistory};
use crate::error::{Error, Result};
use crate::http::auth::{Admin, Caller};
use crate::services::{self, AppState};
use crate::store;

/// OpenAPI description of the device endpoints (merged in `openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        create_device,
        list_devices,
        get_device,
        patch_device,
        import_fleet,
        status_history
    ),
    components(schemas(
        Device,
        NewDevice,
        DevicePatch,
        FleetImportSummary,
        StatusHistory,
        Interval,
        EndedBy,
        Availability
    ))
)]
pub struct Doc;

/// Routes of the device API.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/devices", post(create_device).get(list_devices))
        .route(
            "/api/v1/devices/{id}",
            routing::get(get_device).patch(patch_device),
        )
        .route(
            "/api/v1/devices/{id}/status-history",
            routing::get(status_history),
        )
        .route("/api/v1/fleet/import", post(import_fleet))
}

/// Filter of `GET /api/v1/devices`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct DeviceFilter {
    /// Only devices in this area or its descendants.
    pub area: Option<String>,
    /// `loudspeaker` or `board`.
    pub kind: Option<String>,
    /// Only online (true) or offline (false) devices.
    pub online: Option<bool>,
}

/// Register a device.
#[utoipa::path(post, path = "/api/v1/devices", tag = "devices", request_body = NewDevice,
    responses((status = 201, body = Device), (status = 400, description = "invalid field"),
              (status = 409, description = "id exists"), (status = 422, description = "unknown area or weak password")))]
async fn create_device(
    Admin(caller): Admin,
    State(state): State<AppState>,
    Json(b): Json<NewDevice>,
) -> Result<(StatusCode, Json<Device>)> {
    let d = services::devices::create(&state, &caller, b).await?;
    Ok((StatusCode::CREATED, Json(d)))
}

/// List devices with live status; `?area=` includes descendant areas.
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices", params(DeviceFilter),
    responses((status = 200, body = [Device])))]
async fn list_devices(
    caller: Caller,
    State(state): State<AppState>,
    Query(f): Query<DeviceFilter>,
) -> Result<Json<Vec<Device>>> {
    let filter = store::devices::Filter {
        area: f.area,
        kind: f.kind,
        online: f.online,
    };
    Ok(Json(store::devices::list(&state.store, &caller, &filter).await?))
}

/// One device with live status.
#[utoipa::path(get, path = "/api/v1/devices/{id}", tag = "devices", params(("id" = String, Path)),
    responses((status = 200, body = Device), (status = 404)))]
async fn get_device(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Device>> {
    services::auth::check_device(&state, &caller, &id).await?;
    Ok(Json(
        store::devices::get(&state.store, &id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("device `{id}`")))?,
    ))
}

/// Change a device: enable/disable, move, rename, volume, credential, key. An admin may change
/// everything; an operator may change the name, area, position and enabled flag of a device in
/// their scope, moving it only inside their scope.
#[utoipa::path(patch, path = "/api/v1/devices/{id}", tag = "devices", params(("id" = String, Path)), request_body = DevicePatch,
    responses((status = 200, body = Device), (status = 403, description = "outside your scope or an admin-only field"),
              (status = 404), (status = 422, description = "unknown area or weak password")))]
async fn patch_device(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(p): Json<DevicePatch>,
) -> Result<Json<Device>> {
    Ok(Json(
        services::devices::update(&state, &caller, &id, p).await?.after,
    ))
}

/// Import a `nguon-provision` registry file: upsert areas, then devices (by id), then disable the
/// ids in `disabled`. Idempotent: importing the same file again changes nothing.
#[utoipa::path(post, path = "/api/v1/fleet/import", tag = "devices",
    request_body(content = Object, description = "nguon-provision registry.json"),
    responses((status = 200, body = FleetImportSummary), (status = 422, description = "invalid_registry: every problem listed")))]
async fn import_fleet(
    Admin(caller): Admin,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<FleetImportSummary>> {
    let r: Registry = serde_json::from_slice(&body)
        .map_err(|e| Error::unprocessable("invalid_registry", format!("not a registry file: {e}")))?;
    Ok(Json(
        services::devices::import_registry(&state, &caller, &r).await?,
    ))
}

/// Period of `GET /api/v1/devices/{id}/status-history`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct HistoryQuery {
    /// Period start, RFC 3339 or unix ms (default: `to` − 30 days).
    pub from: Option<String>,
    /// Period end, exclusive, RFC 3339 or unix ms (default: now).
    pub to: Option<String>,
}

/// A device's online intervals and availability over `[from, to)`.
#[utoipa::path(get, path = "/api/v1/devices/{id}/status-history", tag = "devices",
    params(("id" = String, Path), HistoryQuery),
    responses((status = 200, body = StatusHistory), (status = 400, description = "bad `from`/`to`"),
              (status = 403, description = "device outside the caller's scope"), (status = 404)))]
async fn status_history(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<StatusHistory>> {
    Ok(Json(
        services::devices::status_history(&state, &caller, &id, q.from.as_deref(), q.to.as_deref()).await?,
    ))
}
