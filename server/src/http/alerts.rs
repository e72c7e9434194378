//! The CAP 1.2 API (issue 12 §4, docs/cap.md): intake (`POST /api/v1/alerts/cap`, an
//! `application/cap+xml` or `application/xml` body; any other type is 415), the alerts
//! (`GET /api/v1/alerts`, `GET /api/v1/alerts/{id}`: the tracking of its command in the shape of
//! `GET /api/v1/commands/{id}`, `GET /api/v1/alerts/{id}.cap`: CAP 1.2 for every emergency,
//! `GET /api/v1/alerts/{id}/messages`, `GET /api/v1/alerts/{id}/ack`), the approvers' decision
//! on a waiting message, and an area's CAP settings (`GET`/`PUT /api/v1/areas/{code}/cap`).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::domain::report::records::CommandReport;
use crate::error::{Error, Result};
use crate::http::auth::Caller;
use crate::http::json::ApiJson;
use crate::services::AppState;
use crate::services::cap::{self, Received, TargetCount};
use crate::store::cap::{AreaCap, Message};

/// OpenAPI description of this module's endpoints (merged in `http::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        post_cap,
        list_alerts,
        get_alert,
        alert_messages,
        alert_ack,
        approve,
        reject,
        get_area_cap,
        put_area_cap
    ),
    components(schemas(Received, TargetCount, AreaCap, Message))
)]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/alerts/cap", post(post_cap))
        .route("/api/v1/alerts", get(list_alerts))
        .route("/api/v1/alerts/{id}", get(get_alert))
        .route("/api/v1/alerts/{id}/messages", get(alert_messages))
        .route("/api/v1/alerts/{id}/ack", get(alert_ack))
        .route("/api/v1/alerts/messages/{id}/approve", post(approve))
        .route("/api/v1/alerts/messages/{id}/reject", post(reject))
        .route("/api/v1/areas/{code}/cap", get(get_area_cap).put(put_area_cap))
}

const CAP_TYPE: &str = "application/cap+xml; charset=utf-8";

fn cap_response(xml: String) -> Response {
    ([(header::CONTENT_TYPE, CAP_TYPE)], xml).into_response()
}

/// Receive a CAP 1.2 alert. Trusted senders' alerts are issued at once (201), others wait for an
/// approver (202). Needs the operator role without an area restriction (admins, an upstream
/// system's account).
#[utoipa::path(post, path = "/api/v1/alerts/cap", tag = "alerts",
    request_body(content = String, content_type = "application/cap+xml", description = "A CAP 1.2 document (at most 1 MiB)"),
    responses((status = 201, body = Received), (status = 202, body = Received, description = "waiting for approval"),
        (status = 409, description = "identifier + sender already received"),
        (status = 413), (status = 415, description = "not application/cap+xml or application/xml"),
        (status = 422, description = "`invalid_cap` naming the element, or `expired`")))]
async fn post_cap(
    caller: Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Received>)> {
    cap::require_sender(&caller)?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if ct != "application/cap+xml" && ct != "application/xml" {
        return Err(Error::Unsupported {
            code: "unsupported_media_type",
            message: format!("a CAP alert is application/cap+xml or application/xml, not `{ct}`"),
        });
    }
    let r = cap::receive(&state, &caller.username, &body).await?;
    let status = if r.pending() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(r)))
}

/// Filter of the alert list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Only messages in this state (e.g. `pending_approval`).
    pub state: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// The latest received CAP messages, newest first.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", params(ListQuery),
    responses((status = 200, body = [Message])))]
async fn list_alerts(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<Message>>> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let all = cap::recent(&state, &caller, q.state.as_deref(), limit).await?;
    Ok(Json(all))
}

/// The delivery tracking of an alert (its current play-now command; the shape of
/// `GET /api/v1/commands/{id}`), or with `.cap` appended to the id its CAP 1.2 document (for
/// every emergency issued in nguon: an emergency command's id works too).
#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts", params(("id" = String, Path)),
    responses((status = 200, body = CommandReport), (status = 404)))]
async fn get_alert(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response> {
    if let Some(id) = id.strip_suffix(".cap") {
        return Ok(cap_response(cap::ack::document(&state, &caller, id).await?));
    }
    Ok(Json(cap::tracked(&state, &caller, &id).await?).into_response())
}

/// Every CAP message of an alert (Alert, Updates, Cancel), oldest first.
#[utoipa::path(get, path = "/api/v1/alerts/{id}/messages", tag = "alerts", params(("id" = String, Path)),
    responses((status = 200, body = [Message]), (status = 404)))]
async fn alert_messages(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<Message>>> {
    let all = cap::messages(&state, &caller, &id).await?;
    Ok(Json(all))
}

/// The `msgType=Ack` of a received alert, once its delivery reached `cap.ack_threshold_pct`
/// (404 before, saying how far it is).
#[utoipa::path(get, path = "/api/v1/alerts/{id}/ack", tag = "alerts", params(("id" = String, Path)),
    responses((status = 200, content_type = "application/cap+xml", body = String), (status = 404)))]
async fn alert_ack(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(cap_response(cap::ack::ack(&state, &caller, &id).await?))
}

/// Approve a CAP message waiting for approval: it is issued now (approver role).
#[utoipa::path(post, path = "/api/v1/alerts/messages/{id}/approve", tag = "alerts", params(("id" = String, Path)),
    responses((status = 201, body = Received), (status = 409, description = "not waiting"), (status = 404)))]
async fn approve(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Received>)> {
    let r = cap::decide(&state, &caller, &id, true).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

/// Reject a CAP message waiting for approval (approver role).
#[utoipa::path(post, path = "/api/v1/alerts/messages/{id}/reject", tag = "alerts", params(("id" = String, Path)),
    responses((status = 200, body = Received), (status = 409, description = "not waiting"), (status = 404)))]
async fn reject(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Received>> {
    Ok(Json(cap::decide(&state, &caller, &id, false).await?))
}

/// An area's CAP settings: geocodes and whether Exercise alerts play there.
#[utoipa::path(get, path = "/api/v1/areas/{code}/cap", tag = "alerts", params(("code" = String, Path)),
    responses((status = 200, body = AreaCap), (status = 404)))]
async fn get_area_cap(
    caller: Caller,
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<AreaCap>> {
    Ok(Json(cap::areas::get(&state, &caller, &code).await?))
}

/// Replace an area's CAP settings (admin; 422 `invalid_geocode` naming the entry).
#[utoipa::path(put, path = "/api/v1/areas/{code}/cap", tag = "alerts", params(("code" = String, Path)),
    request_body = AreaCap, responses((status = 200, body = AreaCap), (status = 404), (status = 422)))]
async fn put_area_cap(
    caller: Caller,
    State(state): State<AppState>,
    Path(code): Path<String>,
    ApiJson(body): ApiJson<AreaCap>,
) -> Result<Json<AreaCap>> {
    Ok(Json(cap::areas::put(&state, &caller, &code, &body).await?))
}
