//! The area API under `/api/v1/areas`: CRUD of the area tree and the CSV import, which reports
//! every bad line and writes nothing unless all are valid. Writes go through `services::areas`;
//! reads come from `store::areas`.

use std::collections::HashSet;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{self, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;

use crate::domain::area::{Area, AreaPatch, ImportSummary, LineError, NewArea};
use crate::error::{Error, Result};
use crate::http::auth::{Admin, Caller};
use crate::services::{self, AppState};
use crate::store;

/// OpenAPI description of the area endpoints (merged in `openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(create_area, list_areas, get_area, patch_area, delete_area, import_csv),
    components(schemas(Area, NewArea, AreaPatch, ImportSummary, LineError))
)]
pub struct Doc;

/// Routes of the area API.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/areas", post(create_area).get(list_areas))
        .route("/api/v1/areas/import", post(import_csv))
        .route(
            "/api/v1/areas/{code}",
            routing::get(get_area).patch(patch_area).delete(delete_area),
        )
}

/// Filter of `GET /api/v1/areas`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AreaFilter {
    /// Only this area and its descendants.
    pub under: Option<String>,
}

/// Create an area.
#[utoipa::path(post, path = "/api/v1/areas", tag = "areas", request_body = NewArea,
    responses((status = 201, body = Area), (status = 400, description = "invalid code or empty field"),
              (status = 409, description = "code exists"), (status = 422, description = "unknown parent")))]
async fn create_area(
    Admin(caller): Admin,
    State(state): State<AppState>,
    Json(body): Json<NewArea>,
) -> Result<(StatusCode, Json<Area>)> {
    let area = services::areas::create(&state, &caller, body).await?;
    Ok((StatusCode::CREATED, Json(area)))
}

/// List areas (all, or one subtree with `?under=CODE`), ordered by code.
#[utoipa::path(get, path = "/api/v1/areas", tag = "areas", params(AreaFilter),
    responses((status = 200, body = [Area])))]
async fn list_areas(
    caller: Caller,
    State(state): State<AppState>,
    Query(f): Query<AreaFilter>,
) -> Result<Json<Vec<Area>>> {
    let mut areas = store::areas::list(&state.store, &caller).await?;
    if let Some(under) = f.under {
        let keep: HashSet<String> = store::areas::subtree(&state.store, &[under])
            .await?
            .into_iter()
            .collect();
        areas.retain(|a| keep.contains(&a.code));
    }
    Ok(Json(areas))
}

/// One area with its direct children codes.
#[utoipa::path(get, path = "/api/v1/areas/{code}", tag = "areas", params(("code" = String, Path)),
    responses((status = 200, body = Area), (status = 404)))]
async fn get_area(
    caller: Caller,
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<serde_json::Value>> {
    caller.check_area(&code)?;
    let area = store::areas::get(&state.store, &code)
        .await?
        .ok_or_else(|| Error::NotFound(format!("area `{code}`")))?;
    let children = store::areas::children(&state.store, &code).await?;
    let mut v = serde_json::to_value(&area).map_err(|e| Error::internal_from("area json", e))?;
    v["children"] = json!(children);
    Ok(Json(v))
}

/// Change an area's name, level or parent.
#[utoipa::path(patch, path = "/api/v1/areas/{code}", tag = "areas", params(("code" = String, Path)), request_body = AreaPatch,
    responses((status = 200, body = Area), (status = 404), (status = 422, description = "unknown parent or cycle")))]
async fn patch_area(
    Admin(caller): Admin,
    State(state): State<AppState>,
    Path(code): Path<String>,
    Json(body): Json<AreaPatch>,
) -> Result<Json<Area>> {
    let updated = services::areas::update(&state, &caller, &code, body).await?;
    Ok(Json(updated.after))
}

/// Delete an area that has no children and no devices.
#[utoipa::path(delete, path = "/api/v1/areas/{code}", tag = "areas", params(("code" = String, Path)),
    responses((status = 204), (status = 404), (status = 409, description = "has children or devices")))]
async fn delete_area(
    Admin(caller): Admin,
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<StatusCode> {
    services::areas::delete(&state, &caller, &code).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Import areas from CSV (`text/csv`, header `code,name,parent,level`): upsert by code. If any
/// line is bad, nothing is written and the 422 lists every bad line in `error.lines`.
#[utoipa::path(post, path = "/api/v1/areas/import", tag = "areas",
    request_body(content = String, content_type = "text/csv", description = "code,name,parent,level"),
    responses((status = 200, body = ImportSummary),
              (status = 422, description = "`error.code` = `invalid_csv`, `error.lines` = [{line, reason}]")))]
async fn import_csv(Admin(caller): Admin, State(state): State<AppState>, body: String) -> Result<Response> {
    match services::areas::import(&state, &caller, &body).await? {
        Ok(s) => Ok(Json(s).into_response()),
        Err(lines) => {
            let msg = format!("{} bad line(s); nothing was imported", lines.len());
            let body = json!({ "error": { "code": "invalid_csv", "message": msg, "lines": lines } });
            Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response())
        }
    }
}
