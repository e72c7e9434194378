//! The system endpoints that belong to no domain: the health check (`GET /healthz`, pings the
//! database and carries `X-Server-Time-Ms` so agents can estimate their clock offset), readiness
//! for load balancers (`GET /readyz`: database, MQTT link, leader or follower), Prometheus
//! metrics (`GET /metrics`, the device gauges counted by `store::devices::counts`) and the
//! server's public signing key (`GET /api/v1/keys/server`, no auth).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Result;
use crate::services::AppState;
use crate::store::{self, now_ms};

/// OpenAPI description of this module's endpoints (merged in `http::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(healthz, readyz, server_key, metrics),
    components(schemas(Health, Readiness, ServerKeyInfo))
)]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/keys/server", get(server_key))
}

/// Health check body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: &'static str,
}

/// Readiness body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ok`, or `down` when the database does not answer.
    pub database: &'static str,
    /// `ok`, or `down` while the server's MQTT link holds no subscribed connection.
    pub mqtt: &'static str,
    /// `leader` while this instance holds the leader lease (it dispatches), else `follower`.
    pub role: &'static str,
    /// Present (true) while the server drains at a stop.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub draining: bool,
}

/// The server's public signing key.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerKeyInfo {
    /// Always `ed25519`.
    pub algorithm: &'static str,
    /// Base64 of the 32-byte public key.
    pub public_key: String,
}

/// Liveness and readiness: pings the database.
#[utoipa::path(get, path = "/healthz", tag = "system", security(()),
    responses((status = 200, description = "Healthy; header X-Server-Time-Ms carries the server clock", body = Health),
              (status = 503, description = "Database unreachable", body = Health)))]
async fn healthz(State(state): State<AppState>) -> Response {
    let (status, body) = if state.store.ping().await {
        (StatusCode::OK, Health { status: "ok" })
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Health {
                status: "unavailable",
            },
        )
    };
    let mut resp = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&now_ms().to_string()) {
        resp.headers_mut().insert("x-server-time-ms", v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Readiness for a load balancer: 200 when the database answers and the MQTT link is up, else 503
/// naming what is down (also 503 while draining at a stop). `role` says whether this instance is
/// the leader. Liveness is `/healthz`.
#[utoipa::path(get, path = "/readyz", tag = "system", security(()),
    responses((status = 200, description = "Ready", body = Readiness),
              (status = 503, description = "Database or MQTT link down, or draining", body = Readiness)))]
async fn readyz(State(state): State<AppState>) -> Response {
    use std::sync::atomic::Ordering;
    let up = |ok: bool| if ok { "ok" } else { "down" };
    let body = Readiness {
        database: up(state.store.ping().await),
        mqtt: up(*state.link_up.borrow()),
        role: if state.metrics.is_leader.load(Ordering::Relaxed) == 1 {
            "leader"
        } else {
            "follower"
        },
        draining: state.metrics.draining.load(Ordering::SeqCst),
    };
    let ready = body.database == "ok" && body.mqtt == "ok" && !body.draining;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Prometheus text metrics.
#[utoipa::path(get, path = "/metrics", tag = "system", security(()),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> Result<Response> {
    let n = store::devices::counts(&state.store).await?;
    let body = state.metrics.render(n.online, n.total);
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response())
}

/// The ed25519 public key that signs every server → device message (no auth).
#[utoipa::path(get, path = "/api/v1/keys/server", tag = "system", security(()),
    responses((status = 200, body = ServerKeyInfo)))]
async fn server_key(State(state): State<AppState>) -> Json<ServerKeyInfo> {
    Json(ServerKeyInfo {
        algorithm: "ed25519",
        public_key: state.server_public_key.to_string(),
    })
}
