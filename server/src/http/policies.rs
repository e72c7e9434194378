//! The policy API (issue 15): `GET/POST /api/v1/policies`, `GET/PATCH /api/v1/policies/{id}`,
//! `POST /api/v1/policies/{id}/publish` and `/unpublish` (approver: the public site),
//! `POST/DELETE /api/v1/policies/{id}/links` (content communicating a stage) and
//! `GET /api/v1/policies/{id}/coverage` (each stage's plays, displays and public items, and the
//! gaps). Scoped by area like the other resources and audited; the use cases are
//! `services::policies`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::domain::policy::{Link, LinkKind, Policy, PolicyIn, Stage, StageCoverage, StageDates};
use crate::error::Result;
use crate::http::auth::Caller;
use crate::http::json::ApiJson;
use crate::services::AppState;
use crate::services::policies::{self, Coverage, LinkReach};

/// OpenAPI description of this module's endpoints (merged in `http::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list_policies,
        create_policy,
        get_policy,
        patch_policy,
        publish,
        unpublish,
        add_link,
        remove_link,
        get_coverage
    ),
    components(schemas(
        Policy,
        PolicyIn,
        Stage,
        StageDates,
        Link,
        LinkKind,
        Coverage,
        StageCoverage,
        LinkReach
    ))
)]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/policies", get(list_policies).post(create_policy))
        .route("/api/v1/policies/{id}", get(get_policy).patch(patch_policy))
        .route("/api/v1/policies/{id}/publish", post(publish))
        .route("/api/v1/policies/{id}/unpublish", post(unpublish))
        .route("/api/v1/policies/{id}/links", post(add_link).delete(remove_link))
        .route("/api/v1/policies/{id}/coverage", get(get_coverage))
}

/// The policies whose areas reach the caller's scope, newest first.
#[utoipa::path(get, path = "/api/v1/policies", tag = "policies", responses((status = 200, body = [Policy])))]
async fn list_policies(caller: Caller, State(state): State<AppState>) -> Result<Json<Vec<Policy>>> {
    Ok(Json(policies::list(&state.store, &caller).await?))
}

/// Create a policy (editor or approver; its areas in the caller's scope).
#[utoipa::path(post, path = "/api/v1/policies", tag = "policies", request_body = PolicyIn,
    responses((status = 201, body = Policy), (status = 403), (status = 422, description = "a field is missing or invalid (named)")))]
async fn create_policy(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<PolicyIn>,
) -> Result<(StatusCode, Json<Policy>)> {
    Ok((
        StatusCode::CREATED,
        Json(policies::create(&state.store, &caller, req).await?),
    ))
}

/// One policy.
#[utoipa::path(get, path = "/api/v1/policies/{id}", tag = "policies", params(("id" = String, Path)),
    responses((status = 200, body = Policy), (status = 404)))]
async fn get_policy(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Policy>> {
    Ok(Json(policies::get(&state.store, &caller, &id).await?))
}

/// Change a policy: only the fields sent (`stages` replaces the stage dates).
#[utoipa::path(patch, path = "/api/v1/policies/{id}", tag = "policies", params(("id" = String, Path)), request_body = PolicyIn,
    responses((status = 200, body = Policy), (status = 403), (status = 404), (status = 422)))]
async fn patch_policy(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PolicyIn>,
) -> Result<Json<Policy>> {
    Ok(Json(policies::update(&state.store, &caller, &id, req).await?))
}

/// Put the policy on the public site (approver).
#[utoipa::path(post, path = "/api/v1/policies/{id}/publish", tag = "policies", params(("id" = String, Path)),
    responses((status = 200, body = Policy), (status = 403), (status = 404)))]
async fn publish(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Policy>> {
    Ok(Json(
        policies::set_published(&state.store, &caller, &id, true).await?,
    ))
}

/// Take the policy off the public site (approver).
#[utoipa::path(post, path = "/api/v1/policies/{id}/unpublish", tag = "policies", params(("id" = String, Path)),
    responses((status = 200, body = Policy), (status = 403), (status = 404)))]
async fn unpublish(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Policy>> {
    Ok(Json(
        policies::set_published(&state.store, &caller, &id, false).await?,
    ))
}

/// Link content (a bulletin, media, command or CAP message) to a stage of the policy: 201 when
/// new, 200 when it was linked already, 422 when the content does not exist.
#[utoipa::path(post, path = "/api/v1/policies/{id}/links", tag = "policies", params(("id" = String, Path)), request_body = Link,
    responses((status = 201, body = Link), (status = 200, body = Link), (status = 404), (status = 422)))]
async fn add_link(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(l): ApiJson<Link>,
) -> Result<(StatusCode, Json<Link>)> {
    let new = policies::link(&state.store, &caller, &id, l.clone(), true).await?;
    Ok((if new { StatusCode::CREATED } else { StatusCode::OK }, Json(l)))
}

/// Remove a link (204; 404 when there was none).
#[utoipa::path(delete, path = "/api/v1/policies/{id}/links", tag = "policies", params(("id" = String, Path)), request_body = Link,
    responses((status = 204), (status = 404)))]
async fn remove_link(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(l): ApiJson<Link>,
) -> Result<StatusCode> {
    if policies::link(&state.store, &caller, &id, l, false).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(crate::error::Error::NotFound("link".into()))
    }
}

/// Each stage's coverage (proof of play and display of the linked content, public items) and
/// the gaps: stages reached that nothing communicated.
#[utoipa::path(get, path = "/api/v1/policies/{id}/coverage", tag = "policies", params(("id" = String, Path)),
    responses((status = 200, body = Coverage), (status = 404)))]
async fn get_coverage(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Coverage>> {
    Ok(Json(policies::coverage_for(&state.store, &caller, &id).await?))
}
