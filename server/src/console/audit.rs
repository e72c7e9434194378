//! The audit log page (admin): the latest changes, who made them, and the JSON before and after.

use axum::extract::State;
use serde_json::json;

use super::{Console, PageError, PageResult};
use crate::domain::scope::Role;
use crate::services::AppState;

pub(super) async fn audit_page(c: Console, State(state): State<AppState>) -> PageResult {
    c.caller.require(Role::Admin).map_err(|e| PageError(e, c.lang))?;
    let entries = crate::store::audit::recent(&state.store, 300).await?;
    c.page("audit.html", json!({"entries": entries}))
}
