//! Relays (tiếp sóng, issue 17; `services::relay`): `GET /relay/{schedule_id}` is the stream
//! devices play in `proxy` mode (one upstream connection per relay fanned out to every device; no
//! credentials, like media fetched by its hash: the id is a uuid), and `GET /api/v1/relays` lists
//! the relays proxied now and how many upstream connections the process opened.

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Result;
use crate::http::auth::Caller;
use crate::services::AppState;
use crate::services::relay;

/// OpenAPI description of this module's endpoints (merged in `http::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(active), components(schemas(Relays, Proxied)))]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/relays", get(active))
        .route("/relay/{id}", get(stream))
}

/// The relays proxied now.
#[derive(Debug, Serialize, ToSchema)]
pub struct Relays {
    /// Upstream connections this process opened since it started.
    pub upstreams_opened: u64,
    /// Each relay with an upstream connection now.
    pub active: Vec<Proxied>,
}

/// One proxied relay.
#[derive(Debug, Serialize, ToSchema)]
pub struct Proxied {
    /// The relay schedule.
    pub schedule_id: String,
    /// Devices listening now.
    pub listeners: usize,
    /// The last `StreamTitle` of its ICY metadata.
    pub title: Option<String>,
}

/// The relays proxied now (any signed-in role).
#[utoipa::path(get, path = "/api/v1/relays", tag = "relays", responses((status = 200, body = Relays)))]
async fn active(_caller: Caller, State(state): State<AppState>) -> Json<Relays> {
    let active = state
        .relays
        .active()
        .into_iter()
        .map(|(schedule_id, listeners, title)| Proxied {
            schedule_id,
            listeners,
            title,
        })
        .collect();
    Json(Relays {
        upstreams_opened: state.relays.upstreams_opened(),
        active,
    })
}

async fn stream(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    let (content_type, s) = relay::listen(&state, &id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(s),
    )
        .into_response())
}
