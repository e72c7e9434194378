//! TODO(report): stub awaiting implementation.

use axum::Router;

use crate::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
}
