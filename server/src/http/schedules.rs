//! `/api/v1/schedules`: create, list, read, replace, enable/disable and delete schedules, and the
//! occurrences of one in a range. Handlers extract, call `services::schedules` (or a store read)
//! and map the answer; the OpenAPI description is [`Doc`].

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::schedule::{
    Created, NewSchedule, Occurrence, Overlap, RuleSpec, Schedule, Targets, Warnings, occurrence,
};
use crate::error::{Error, Result};
use crate::http::auth::{Admin, Caller};
use crate::http::json::ApiJson;
use crate::services::{self, AppState};
use crate::store;

/// Create a schedule.
#[utoipa::path(post, path = "/api/v1/schedules", request_body = NewSchedule, tag = "schedules",
    responses((status = 201, body = Created), (status = 400, description = "invalid rule, time zone or value"),
              (status = 422, description = "unknown target or media not approved")))]
async fn post_schedule(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<NewSchedule>,
) -> Result<(StatusCode, Json<Created>)> {
    let created = services::schedules::create(&state, &caller, req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Replace a schedule's content (title, media, targets, priority, rule, validity, volume...);
/// the old and new targets' manifests are re-published.
#[utoipa::path(put, path = "/api/v1/schedules/{id}", request_body = NewSchedule, tag = "schedules",
    params(("id" = String, Path)),
    responses((status = 200, body = Schedule), (status = 403, description = "old or new targets outside your scope"),
              (status = 404), (status = 422, description = "unknown target or media not approved")))]
async fn put_schedule(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<NewSchedule>,
) -> Result<Json<Schedule>> {
    let (_, after) = services::schedules::update(&state, &caller, &id, req, None).await?;
    Ok(Json(after))
}

/// List schedules, newest first.
#[utoipa::path(get, path = "/api/v1/schedules", tag = "schedules", responses((status = 200, body = [Schedule])))]
async fn list_schedules(caller: Caller, State(state): State<AppState>) -> Result<Json<Vec<Schedule>>> {
    Ok(Json(store::schedules::load_visible(&state.store, &caller).await?))
}

/// One schedule.
#[utoipa::path(get, path = "/api/v1/schedules/{id}", tag = "schedules", params(("id" = String, Path)),
    responses((status = 200, body = Schedule), (status = 404)))]
async fn get_schedule(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Schedule>> {
    Ok(Json(
        services::schedules::get_visible(&state, &caller, &id).await?,
    ))
}

/// `PATCH` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchSchedule {
    /// Enable or disable dispatching.
    pub enabled: bool,
}

/// Enable or disable a schedule.
#[utoipa::path(patch, path = "/api/v1/schedules/{id}", tag = "schedules", params(("id" = String, Path)),
    request_body = PatchSchedule, responses((status = 200, body = Schedule), (status = 404)))]
async fn patch_schedule(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(p): ApiJson<PatchSchedule>,
) -> Result<Json<Schedule>> {
    let (_, after) = services::schedules::set_enabled(&state, &caller, &id, p.enabled).await?;
    Ok(Json(after))
}

/// Delete a schedule (its future occurrences leave the manifests).
#[utoipa::path(delete, path = "/api/v1/schedules/{id}", tag = "schedules", params(("id" = String, Path)),
    responses((status = 204), (status = 404)))]
async fn delete_schedule(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    services::schedules::delete(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `from`/`to` of the occurrences query (RFC 3339; default now .. now + look-ahead).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct Range {
    /// Start (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// End (exclusive); at most 366 days after `from`.
    pub to: Option<DateTime<Utc>>,
}

/// Occurrences of a schedule in a range, UTC and local.
#[utoipa::path(get, path = "/api/v1/schedules/{id}/occurrences", tag = "schedules",
    params(("id" = String, Path), Range), responses((status = 200, body = [Occurrence]), (status = 404)))]
async fn get_occurrences(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(r): Query<Range>,
) -> Result<Json<Vec<Occurrence>>> {
    let s = store::schedules::get(&state.store, &id).await?;
    let from = r.from.unwrap_or_else(Utc::now);
    let to =
        r.to.unwrap_or(from + Duration::hours(state.settings.lookahead_hours as i64));
    if to <= from || to - from > Duration::days(366) {
        return Err(Error::bad(
            "invalid_range",
            "`to` must be after `from` and at most 366 days later",
        ));
    }
    let tz = s.tz.unwrap_or(chrono_tz::Asia::Ho_Chi_Minh);
    Ok(Json(
        s.occurrences(from, to)
            .into_iter()
            .map(|t| occurrence(tz, t))
            .collect(),
    ))
}

/// OpenAPI description of this module's endpoints (merged in `openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        post_schedule,
        put_schedule,
        list_schedules,
        get_schedule,
        patch_schedule,
        delete_schedule,
        get_occurrences
    ),
    components(schemas(
        NewSchedule,
        Targets,
        RuleSpec,
        Schedule,
        Created,
        Occurrence,
        Overlap,
        Warnings,
        PatchSchedule
    ))
)]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/schedules", get(list_schedules).post(post_schedule))
        .route(
            "/api/v1/schedules/{id}",
            get(get_schedule)
                .put(put_schedule)
                .patch(patch_schedule)
                .delete(delete_schedule),
        )
        .route("/api/v1/schedules/{id}/occurrences", get(get_occurrences))
}
