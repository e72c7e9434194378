//! TODO(area): stub awaiting implementation.

use axum::Router;

use crate::AppState;

/// OpenAPI description of this module's endpoints (merged in `openapi`).
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
}
