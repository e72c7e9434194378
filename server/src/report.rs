//! Reports: proof of play (`GET /api/v1/plays`), other device events (`GET /api/v1/events`) and
//! the acks of one command (`GET /api/v1/commands/{id}`); and the signed receipts that tell a
//! device which of its events the server holds ([`send_receipts`]).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use nguon_protocol::{Audience, DeviceId, Receipt, ServerBody};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use crate::http::auth::Admin;
use crate::store::from_ms;
use crate::{AppState, Error, Result};

/// How long a receipt may be acted on.
const RECEIPT_TTL: chrono::Duration = chrono::Duration::minutes(10);

/// After ingest committed a burst: tell each device which of its events are stored, with one
/// signed receipt on `d/{id}/receipt` (QoS 1). The device keeps every event until a receipt names
/// it, so nothing a broker drops on the way (queue limits, the server restarting) is lost; a lost
/// receipt only makes the device send the events again, and ingest stores each id once. Published
/// from a task of its own so that ingest does not wait for the broker.
pub fn send_receipts(state: &AppState, receipts: HashMap<DeviceId, Vec<uuid::Uuid>>) {
    if receipts.is_empty() {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        for (device, events) in receipts {
            let topic = nguon_protocol::topic::receipt(&device);
            let bytes = state.signer.sign(
                Audience::Device(device),
                RECEIPT_TTL,
                ServerBody::Receipt(Receipt { events }),
            );
            if let Err(e) = state.link.publish(&topic, bytes, false).await {
                tracing::warn!(error = %e, "cannot publish a receipt; the device will send its events again");
            }
        }
    });
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

/// One proof of play.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PlayRecord {
    /// Event uuid.
    pub event_id: String,
    /// Device.
    pub device_id: String,
    /// Occurrence (manifest item) id, or command id.
    pub item_id: String,
    /// Schedule (empty for play-now).
    pub schedule_id: String,
    /// Scheduled instant.
    pub occurrence_at: DateTime<Utc>,
    /// First media file.
    pub sha256: String,
    /// Priority.
    pub priority: String,
    /// Started.
    pub started_at: Option<DateTime<Utc>>,
    /// Ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// played | interrupted | resumed | skipped_quiet_hours | missed | failed.
    pub outcome: String,
    /// Why.
    pub reason: Option<String>,
    /// When the server stored it.
    pub received_at: DateTime<Utc>,
}

fn limit(l: Option<u32>) -> i64 {
    l.unwrap_or(100).clamp(1, 1000) as i64
}

/// Proof of play, newest occurrence first.
#[utoipa::path(get, path = "/api/v1/plays", tag = "reports", params(PlayQuery), responses((status = 200, body = [PlayRecord])))]
async fn plays(
    _: Admin,
    State(state): State<AppState>,
    Query(q): Query<PlayQuery>,
) -> Result<Json<Vec<PlayRecord>>> {
    let mut sql = String::from(
        "SELECT event_id, device_id, item_id, schedule_id, occurrence_at, sha256, priority, started_at, ended_at, \
         outcome, reason, received_at FROM plays WHERE 1 = 1",
    );
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if q.device.is_some() {
        sql.push_str(&format!(" AND device_id = {}", next()));
    }
    if q.schedule.is_some() {
        sql.push_str(&format!(" AND schedule_id = {}", next()));
    }
    if q.since.is_some() {
        sql.push_str(&format!(" AND occurrence_at >= {}", next()));
    }
    if q.until.is_some() {
        sql.push_str(&format!(" AND occurrence_at < {}", next()));
    }
    sql.push_str(&format!(
        " ORDER BY occurrence_at DESC, event_id LIMIT {}",
        next()
    ));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    if let Some(d) = &q.device {
        query = query.bind(d.clone());
    }
    if let Some(s) = &q.schedule {
        query = query.bind(s.clone());
    }
    if let Some(t) = q.since {
        query = query.bind(t.timestamp_millis());
    }
    if let Some(t) = q.until {
        query = query.bind(t.timestamp_millis());
    }
    query = query.bind(limit(q.limit));
    let rows = query.fetch_all(&state.store.pool).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(PlayRecord {
            event_id: r.try_get("event_id")?,
            device_id: r.try_get("device_id")?,
            item_id: r.try_get("item_id")?,
            schedule_id: r.try_get("schedule_id")?,
            occurrence_at: from_ms(r.try_get("occurrence_at")?),
            sha256: r.try_get("sha256")?,
            priority: r.try_get("priority")?,
            started_at: r.try_get::<Option<i64>, _>("started_at")?.map(from_ms),
            ended_at: r.try_get::<Option<i64>, _>("ended_at")?.map(from_ms),
            outcome: r.try_get("outcome")?,
            reason: r.try_get("reason")?,
            received_at: from_ms(r.try_get("received_at")?),
        });
    }
    Ok(Json(out))
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

/// One device event other than proof of play.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventRecord {
    /// Event uuid.
    pub event_id: String,
    /// Device.
    pub device_id: String,
    /// ack | rejected | media_error.
    pub kind: String,
    /// Envelope id it refers to (acks, rejections).
    pub message_id: Option<String>,
    /// The event body as sent.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    /// When it happened (device clock).
    pub at: DateTime<Utc>,
    /// When the server stored it.
    pub received_at: DateTime<Utc>,
}

fn event_row(r: &sqlx::any::AnyRow) -> Result<EventRecord> {
    let body: String = r.try_get("body")?;
    Ok(EventRecord {
        event_id: r.try_get("event_id")?,
        device_id: r.try_get("device_id")?,
        kind: r.try_get("kind")?,
        message_id: r.try_get("message_id")?,
        body: serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
        at: from_ms(r.try_get("at")?),
        received_at: from_ms(r.try_get("received_at")?),
    })
}

/// Device events, newest first.
#[utoipa::path(get, path = "/api/v1/events", tag = "reports", params(EventQuery), responses((status = 200, body = [EventRecord])))]
async fn events(
    _: Admin,
    State(state): State<AppState>,
    Query(q): Query<EventQuery>,
) -> Result<Json<Vec<EventRecord>>> {
    let mut sql = String::from(
        "SELECT event_id, device_id, kind, message_id, body, at, received_at FROM device_events WHERE 1 = 1",
    );
    let mut n = 0;
    if q.device.is_some() {
        n += 1;
        sql.push_str(&format!(" AND device_id = ${n}"));
    }
    if q.kind.is_some() {
        n += 1;
        sql.push_str(&format!(" AND kind = ${n}"));
    }
    sql.push_str(&format!(" ORDER BY at DESC, event_id LIMIT ${}", n + 1));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    if let Some(d) = &q.device {
        query = query.bind(d.clone());
    }
    if let Some(k) = &q.kind {
        query = query.bind(k.clone());
    }
    let rows = query.bind(limit(q.limit)).fetch_all(&state.store.pool).await?;
    Ok(Json(rows.iter().map(event_row).collect::<Result<_>>()?))
}

/// A command and the acks received for it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CommandReport {
    /// Command id.
    pub id: String,
    /// device | area.
    pub target_kind: String,
    /// Device id or area code.
    pub target: String,
    /// Topic.
    pub topic: String,
    /// play_now | stop | volume | sync.
    pub action: String,
    /// The command as sent.
    #[schema(value_type = Object)]
    pub command: serde_json::Value,
    /// Issued.
    pub issued_at: DateTime<Utc>,
    /// Expires.
    pub expires_at: DateTime<Utc>,
    /// Acks, one per device event.
    pub acks: Vec<EventRecord>,
}

/// One command with its acks per device.
#[utoipa::path(get, path = "/api/v1/commands/{id}", tag = "reports", params(("id" = String, Path)),
    responses((status = 200, body = CommandReport), (status = 404)))]
async fn command(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CommandReport>> {
    let r = sqlx::query(
        "SELECT id, target_kind, target, topic, action, body, issued_at, expires_at FROM commands WHERE id = $1",
    )
    .bind(id.clone())
    .fetch_optional(&state.store.pool)
    .await?
    .ok_or_else(|| Error::NotFound(format!("command {id}")))?;
    let acks = sqlx::query(
        "SELECT event_id, device_id, kind, message_id, body, at, received_at FROM device_events \
         WHERE message_id = $1 AND kind = 'ack' ORDER BY device_id, at",
    )
    .bind(id.clone())
    .fetch_all(&state.store.pool)
    .await?;
    let body: String = r.try_get("body")?;
    Ok(Json(CommandReport {
        id: r.try_get("id")?,
        target_kind: r.try_get("target_kind")?,
        target: r.try_get("target")?,
        topic: r.try_get("topic")?,
        action: r.try_get("action")?,
        command: serde_json::from_str(&body).unwrap_or_default(),
        issued_at: from_ms(r.try_get("issued_at")?),
        expires_at: from_ms(r.try_get("expires_at")?),
        acks: acks.iter().map(event_row).collect::<Result<_>>()?,
    }))
}

/// OpenAPI description of this module's endpoints (merged in `openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(plays, events, command),
    components(schemas(PlayRecord, EventRecord, CommandReport))
)]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/plays", get(plays))
        .route("/api/v1/events", get(events))
        .route("/api/v1/commands/{id}", get(command))
}
