//! The report API (admin only): proof of play (`GET /api/v1/plays`), other device events
//! (`GET /api/v1/events`) and one command with its acks (`GET /api/v1/commands/{id}`). Reads of
//! `store::reports`; the records are `domain::report::records`.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::domain::report::records::{CommandReport, EventRecord, PlayRecord, page_limit};
use crate::error::Result;
use crate::http::auth::Admin;
use crate::services::AppState;
use crate::store::reports::{self, EventFilter, PlayFilter};

/// Filters of `GET /api/v1/plays`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PlayQuery {
    /// Device id.
    pub device: Option<String>,
    /// Schedule id.
    pub schedule: Option<String>,
    /// Occurrences at or after (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Occurrences before (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// At most this many (default 100, max 1000).
    pub limit: Option<u32>,
}

/// Proof of play, newest occurrence first.
#[utoipa::path(get, path = "/api/v1/plays", tag = "reports", params(PlayQuery), responses((status = 200, body = [PlayRecord])))]
async fn plays(
    _: Admin,
    State(state): State<AppState>,
    Query(q): Query<PlayQuery>,
) -> Result<Json<Vec<PlayRecord>>> {
    let filter = PlayFilter {
        device: q.device,
        schedule: q.schedule,
        since_ms: q.since.map(|t| t.timestamp_millis()),
        until_ms: q.until.map(|t| t.timestamp_millis()),
        limit: page_limit(q.limit),
    };
    Ok(Json(reports::plays(&state.store, &filter).await?))
}

/// Filters of `GET /api/v1/events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct EventQuery {
    /// Device id.
    pub device: Option<String>,
    /// ack | rejected | media_error.
    pub kind: Option<String>,
    /// At most this many (default 100, max 1000).
    pub limit: Option<u32>,
}

/// Device events, newest first.
#[utoipa::path(get, path = "/api/v1/events", tag = "reports", params(EventQuery), responses((status = 200, body = [EventRecord])))]
async fn events(
    _: Admin,
    State(state): State<AppState>,
    Query(q): Query<EventQuery>,
) -> Result<Json<Vec<EventRecord>>> {
    let filter = EventFilter {
        device: q.device,
        kind: q.kind,
        limit: page_limit(q.limit),
    };
    Ok(Json(reports::events(&state.store, &filter).await?))
}

/// One command with its acks per device and its delivery tracking: the devices it covered when
/// it was issued, counts per state (`pending`, `offline_pending`, `delivered`, `playing`,
/// `played`, `played_late`, `interrupted`, `failed`, `cancelled`, `expired`) and each target's
/// state with the time of every change.
#[utoipa::path(get, path = "/api/v1/commands/{id}", tag = "reports", params(("id" = String, Path)),
    responses((status = 200, body = CommandReport), (status = 404)))]
async fn command(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CommandReport>> {
    Ok(Json(crate::services::commands::report(&state, &id).await?))
}

/// OpenAPI description of the report endpoints (merged in the API document).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(plays, events, command),
    components(schemas(
        PlayRecord,
        EventRecord,
        CommandReport,
        crate::domain::tracking::Tracking,
        crate::domain::tracking::TargetReport,
        crate::domain::tracking::StateChange,
        crate::domain::tracking::TargetState
    ))
)]
pub struct Doc;

/// Routes of the report API.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/plays", get(plays))
        .route("/api/v1/events", get(events))
        .route("/api/v1/commands/{id}", get(command))
}
