//! The commune autonomy API (Circular 39, issue 16; docs/autonomy.md):
//! `GET/PUT /api/v1/areas/{code}/autonomy` (a commune's setting; changed by an admin),
//! `GET /api/v1/autonomy/requests` (the questions put to communes in the caller's scope),
//! `GET /api/v1/autonomy/requests/{id}` and `POST /api/v1/autonomy/requests/{id}/answer`
//! (accept, decline with a reason, choose another slot, or order a clash; the commune's
//! operator). Audited; the use cases are `services::autonomy`.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::domain::autonomy::{
    Answer, Decision, First, Kind, Request, Setting, SettingIn, State as QuestionState, Unanswered,
};
use crate::error::Result;
use crate::http::auth::Caller;
use crate::http::json::ApiJson;
use crate::services::AppState;
use crate::services::autonomy::{self, ListQuery};

/// OpenAPI description of this module's endpoints (merged in `http::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(get_setting, put_setting, list_requests, get_request, answer),
    components(schemas(
        Setting,
        SettingIn,
        Unanswered,
        Request,
        Kind,
        QuestionState,
        First,
        Answer,
        Decision
    ))
)]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/areas/{code}/autonomy", get(get_setting).put(put_setting))
        .route("/api/v1/autonomy/requests", get(list_requests))
        .route("/api/v1/autonomy/requests/{id}", get(get_request))
        .route("/api/v1/autonomy/requests/{id}/answer", post(answer))
}

/// A commune's autonomy setting (off unless set).
#[utoipa::path(get, path = "/api/v1/areas/{code}/autonomy", tag = "autonomy", params(("code" = String, Path)),
    responses((status = 200, body = Setting), (status = 403), (status = 404)))]
async fn get_setting(
    caller: Caller,
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<Setting>> {
    Ok(Json(autonomy::setting(&state, &caller, &code).await?))
}

/// Turn a commune's decisions on province content on or off (admin; audited `area.autonomy`).
///
/// `unanswered` chooses what happens to normal content it does not answer in time.
#[utoipa::path(put, path = "/api/v1/areas/{code}/autonomy", tag = "autonomy", params(("code" = String, Path)),
    request_body = SettingIn, responses((status = 200, body = Setting), (status = 403), (status = 404)))]
async fn put_setting(
    caller: Caller,
    State(state): State<AppState>,
    Path(code): Path<String>,
    ApiJson(req): ApiJson<SettingIn>,
) -> Result<Json<Setting>> {
    Ok(Json(autonomy::set_setting(&state, &caller, &code, req).await?))
}

/// The questions put to the communes in the caller's scope, newest first.
#[utoipa::path(get, path = "/api/v1/autonomy/requests", tag = "autonomy", params(ListQuery),
    responses((status = 200, body = [Request])))]
async fn list_requests(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<Request>>> {
    Ok(Json(autonomy::list(&state, &caller, &q).await?))
}

/// One question (404 outside the caller's scope).
#[utoipa::path(get, path = "/api/v1/autonomy/requests/{id}", tag = "autonomy", params(("id" = String, Path)),
    responses((status = 200, body = Request), (status = 404)))]
async fn get_request(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Request>> {
    Ok(Json(autonomy::get(&state, &caller, &id).await?))
}

/// Answer a question (the commune's operator; audited `autonomy.<decision>`).
///
/// `accept`, `decline` (with `reason`), `reslot` (with `slot_at`) or, for a clash, `order`
/// (with `first`).
#[utoipa::path(post, path = "/api/v1/autonomy/requests/{id}/answer", tag = "autonomy", params(("id" = String, Path)),
    request_body = Answer,
    responses((status = 200, body = Request), (status = 403), (status = 404), (status = 422, description = "the answer does not fit the question (named)")))]
async fn answer(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Answer>,
) -> Result<Json<Request>> {
    Ok(Json(autonomy::answer(&state, &caller, &id, req).await?))
}
