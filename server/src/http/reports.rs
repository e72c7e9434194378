//! The report API: the broadcast report for a period (`GET /api/v1/reports`, any signed-in
//! caller, scoped like the console; JSON, CSV or XLSX, the same figures as the console page from
//! `services::reports::file`), and for admins proof of play (`GET /api/v1/plays`), other device
//! events (`GET /api/v1/events`) and one command with its acks (`GET /api/v1/commands/{id}`).
//! Reads of `store::reports`; the records are `domain::report::records`.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::domain::report::period::parse_day;
use crate::domain::report::records::{CommandReport, EventRecord, PlayRecord, page_limit};
use crate::domain::scope::Caller;
use crate::error::{Error, Result};
use crate::http::auth::Admin;
use crate::services::AppState;
use crate::services::reports::{Filed, export, file, policy_export};
use crate::store::reports::{self, EventFilter, PlayFilter};

/// Parameters of `GET /api/v1/reports`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ReportQuery {
    /// First day, `YYYY-MM-DD` (Asia/Ho_Chi_Minh). The half-year report of 2026 is
    /// `from=2025-12-15&to=2026-06-14`, the annual one `from=2025-12-15&to=2026-12-14`.
    pub from: Option<String>,
    /// Last day, included.
    pub to: Option<String>,
    /// Narrow to this area's subtree (must be in the caller's scope).
    pub area: Option<String>,
    /// `json` (default), `csv` or `xlsx`.
    pub format: Option<String>,
    /// With `format=csv`: `communes` (default), `policy` (policy coverage and gaps), `reach`
    /// (public channel reach), `engagement` or `autonomy` (the communes' answers to province
    /// content).
    pub section: Option<String>,
}

/// The broadcast report for a period over the caller's scope: per commune and district, the
/// total (`scheduled`, `delivered`, `delivery_rate` 0..1, ...), bulletins and boards, and the
/// breakdown by language and category, the policy coverage and the public channel reach. `format=csv`
/// gives the commune table (`section=policy`, `reach`, `engagement` or `autonomy`: those sections), `format=xlsx` one
/// sheet per section.
#[utoipa::path(get, path = "/api/v1/reports", tag = "reports", params(ReportQuery),
    responses((status = 200, body = Filed), (status = 404, description = "Area not in scope"),
              (status = 422, description = "Bad date or format")))]
async fn report(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<ReportQuery>,
) -> Result<Response> {
    let day = |field: &str, v: &Option<String>| match v {
        Some(s) => parse_day(field, s),
        None => Err(Error::bad(
            "missing_date",
            format!("`{field}` is required (YYYY-MM-DD)"),
        )),
    };
    let (from, to) = (day("from", &q.from)?, day("to", &q.to)?);
    let format = q.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "csv" | "xlsx") {
        return Err(Error::bad(
            "invalid_format",
            format!("`format`: `{format}` is not one of json, csv, xlsx"),
        ));
    }
    let section = policy_export::Section::parse(q.section.as_deref())?;
    let f = file(&state, &caller, from, to, q.area.as_deref()).await?;
    Ok(match format {
        "csv" => download(
            "text/csv; charset=utf-8",
            &export::file_name(&f, "csv"),
            policy_export::csv(&f, section)?,
        ),
        "xlsx" => download(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            &export::file_name(&f, "xlsx"),
            export::xlsx(&f)?,
        ),
        _ => Json(f).into_response(),
    })
}

/// A file download response.
pub fn download(content_type: &str, name: &str, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

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
    paths(report, plays, events, command),
    components(schemas(
        Filed,
        crate::services::reports::Period,
        PlayRecord,
        crate::domain::report::records::RelayPlay,
        EventRecord,
        CommandReport,
        crate::domain::tracking::Tracking,
        crate::domain::tracking::TargetReport,
        crate::domain::tracking::StateChange,
        crate::domain::tracking::TargetState,
        crate::domain::repetition::RepetitionReport
    ))
)]
pub struct Doc;

/// Routes of the report API.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/reports", get(report))
        .route("/api/v1/plays", get(plays))
        .route("/api/v1/events", get(events))
        .route("/api/v1/commands/{id}", get(command))
}
