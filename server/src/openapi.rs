//! The HTTP surface that is not a domain: the merged OpenAPI document (`GET /api/openapi.json`),
//! Swagger UI (`/api/docs`), the health check (`GET /healthz`, pings the database and carries
//! `X-Server-Time-Ms` so agents can estimate their clock offset), Prometheus metrics
//! (`GET /metrics`) and the server's public signing key (`GET /api/v1/keys/server`, no auth).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

use crate::AppState;
use crate::error::Result;
use crate::store::now_ms;

/// Paths of this module.
#[derive(OpenApi)]
#[openapi(
    info(title = "nguon-server API", description = "Provincial source-information system: areas, devices, media, schedules, commands, reports. All `/api/v1/*` endpoints need `Authorization: Bearer <admin token>` except `GET /api/v1/keys/server`."),
    paths(healthz, server_key, metrics),
    components(schemas(Health, ServerKeyInfo)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct Doc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The whole API description: this module's document with every domain module's merged in.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Doc::openapi();
    doc.merge(crate::http::areas::Doc::openapi());
    doc.merge(crate::http::devices::Doc::openapi());
    doc.merge(crate::http::media::Doc::openapi());
    doc.merge(crate::http::schedules::Doc::openapi());
    doc.merge(crate::command::Doc::openapi());
    doc.merge(crate::http::reports::Doc::openapi());
    doc.merge(crate::http::speech::Doc::openapi());
    doc.merge(crate::http::bulletins::Doc::openapi());
    doc.merge(crate::board::Doc::openapi());
    doc
}

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/keys/server", get(server_key))
        .merge(SwaggerUi::new("/api/docs").url("/api/openapi.json", document()))
}

/// Health check body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: &'static str,
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
    let ok = sqlx::query("SELECT 1").execute(&state.store.pool).await.is_ok();
    let (status, body) = if ok {
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

/// Prometheus text metrics.
#[utoipa::path(get, path = "/metrics", tag = "system", security(()),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> Result<Response> {
    let online = count(
        &state,
        "SELECT COUNT(*) AS n FROM device_status s JOIN devices d ON d.id = s.device_id WHERE s.online = 1",
    )
    .await?;
    let total = count(&state, "SELECT COUNT(*) AS n FROM devices").await?;
    let body = state.metrics.render(online, total);
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response())
}

async fn count(state: &AppState, sql: &'static str) -> Result<i64> {
    use sqlx::Row;
    let row = sqlx::query(sql).fetch_one(&state.store.pool).await?;
    Ok(row.try_get::<i64, _>("n")?)
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
