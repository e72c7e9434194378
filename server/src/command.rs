//! Immediate commands: play now, stop, volume, sync. Each becomes a signed `ServerMessage` (stream
//! `cmd`, ttl 5 minutes) published at QoS 1, not retained, on `d/{id}/cmd` for one device or
//! `a/{code}/cmd` for an area (the broker fans it out to the devices subscribed to it). The
//! command id is the envelope id, so acks (`EventBody::Ack.message_id`) join the `commands` row.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use nguon_protocol::{
    AreaCode, Audience, Command, DeviceId, ManifestItem, MediaRef, OnPreempt, Priority, ServerBody, topic,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::scope::Role;
use crate::http::auth::Caller;
use crate::http::json::ApiJson;
use crate::services::schedules::require_approved;
use crate::{AppState, Error, Result};

/// How long a command may be acted on after it is issued.
pub const COMMAND_TTL_SECS: i64 = 300;

/// A command as a client asks for it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum CommandRequest {
    /// Play approved media now.
    PlayNow {
        /// Playlist by sha256 (each approved).
        media: Vec<String>,
        /// Priority (default `priority`; `emergency` preempts everything).
        #[serde(default)]
        #[schema(value_type = Option<String>)]
        priority: Option<Priority>,
        /// Volume 0–100 (default 80).
        #[serde(default)]
        volume: Option<u8>,
        /// Title shown in telemetry.
        #[serde(default)]
        title: Option<String>,
    },
    /// Stop one item, or everything.
    Stop {
        /// Item to stop.
        #[serde(default)]
        item_id: Option<String>,
    },
    /// Set the default volume.
    Volume {
        /// 0–100.
        level: u8,
    },
    /// Re-read desired state and report telemetry now.
    Sync,
}

/// The `202` answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Issued {
    /// Command id (= envelope id; acks carry it).
    pub command_id: String,
    /// Topic it was published on.
    pub topic: String,
    /// Issue instant.
    pub issued_at: DateTime<Utc>,
}

async fn build(state: &AppState, req: CommandRequest, id: uuid::Uuid) -> Result<Command> {
    Ok(match req {
        CommandRequest::PlayNow {
            media,
            priority,
            volume,
            title,
        } => {
            let info = require_approved(&state.store, &media).await?;
            let volume = volume.unwrap_or(80);
            if volume > 100 {
                return Err(Error::bad("invalid_volume", "`volume` must be 0–100"));
            }
            let refs = media
                .iter()
                .map(|sha| {
                    let m = info[sha];
                    MediaRef {
                        sha256: sha.clone(),
                        size: m.size.max(0) as u64,
                        url: format!("{}/media/{sha}", state.public_url),
                        duration_ms: m.duration_ms.max(0) as u64,
                    }
                })
                .collect::<Vec<_>>();
            let mut seen = std::collections::HashSet::new();
            let refs = refs
                .into_iter()
                .filter(|r| seen.insert(r.sha256.clone()))
                .collect();
            Command::PlayNow {
                item: ManifestItem {
                    id: id.to_string(),
                    schedule_id: String::new(),
                    title: title.unwrap_or_else(|| "play now".into()),
                    starts_at: Utc::now(),
                    priority: priority.unwrap_or(Priority::Priority),
                    volume,
                    media,
                    repeat: 1,
                    on_preempt: OnPreempt::Interrupt,
                },
                media: refs,
            }
        }
        CommandRequest::Stop { item_id } => Command::Stop { item_id },
        CommandRequest::Volume { level } => {
            if level > 100 {
                return Err(Error::bad("invalid_volume", "`level` must be 0–100"));
            }
            Command::Volume { level }
        }
        CommandRequest::Sync => Command::Sync,
    })
}

fn action(c: &Command) -> &'static str {
    match c {
        Command::PlayNow { .. } => "play_now",
        Command::Stop { .. } => "stop",
        Command::Volume { .. } => "volume",
        Command::Sync => "sync",
        Command::LiveStart { .. } => "live_start",
        Command::LiveStop { .. } => "live_stop",
    }
}

/// Sign, record and publish a command for `audience`.
pub async fn issue(state: &AppState, audience: Audience, req: CommandRequest) -> Result<Issued> {
    let id = uuid::Uuid::new_v4();
    let cmd = build(state, req, id).await?;
    let (kind, target, topic) = match &audience {
        Audience::Device(d) => ("device", d.as_str().to_string(), topic::cmd(d)),
        Audience::Area(a) => ("area", a.as_str().to_string(), topic::area_cmd(a)),
    };
    let mut msg = state.signer.numbered(
        audience,
        chrono::Duration::seconds(COMMAND_TTL_SECS),
        ServerBody::Command(cmd.clone()),
    );
    msg.id = id;
    let seq = msg.seq;
    let bytes = state.signer.sign_message(&msg);
    sqlx::query(
        "INSERT INTO commands (id, target_kind, target, topic, action, body, seq, issued_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id.to_string())
    .bind(kind)
    .bind(target)
    .bind(topic.clone())
    .bind(action(&cmd))
    .bind(serde_json::to_string(&cmd).map_err(Error::context("command json"))?)
    .bind(seq as i64)
    .bind(msg.issued_at.timestamp_millis())
    .bind(msg.expires_at.timestamp_millis())
    .execute(&state.store.pool)
    .await?;
    state.link.publish(&topic, bytes, false).await?;
    crate::metrics::Metrics::inc(&state.metrics.commands_published);
    Ok(Issued {
        command_id: id.to_string(),
        topic,
        issued_at: msg.issued_at,
    })
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
    caller.require(Role::Operator)?;
    crate::services::auth::check_device(&state, &caller, &id).await?;
    let did = DeviceId::parse(id.clone()).map_err(|e| Error::bad("invalid_device_id", e.to_string()))?;
    let found = sqlx::query("SELECT id FROM devices WHERE id = $1")
        .bind(id.clone())
        .fetch_optional(&state.store.pool)
        .await?;
    if found.is_none() {
        return Err(Error::NotFound(format!("device {id}")));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(issue(&state, Audience::Device(did), req).await?),
    ))
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
    caller.require(Role::Operator)?;
    caller.check_area(&code)?;
    let area = AreaCode::parse(code.clone()).map_err(|e| Error::bad("invalid_area_code", e.to_string()))?;
    if !crate::store::areas::exists(&state.store, &code).await? {
        return Err(Error::NotFound(format!("area {code}")));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(issue(&state, Audience::Area(area), req).await?),
    ))
}

/// OpenAPI description of this module's endpoints (merged in `openapi`).
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
