//! The console's agent updates (issue 16, docs/ota.md): `/console/rollouts` lists the agent
//! releases and the rollouts with the count of devices per step; `/console/rollouts/{id}` shows a
//! rollout's devices, each with its last reported step (pending, downloading … confirmed,
//! rolled back, failed with the reason) and the agent version of its last heartbeat. Read-only:
//! releases and rollouts are made through the API (`POST /api/v1/agent-releases`,
//! `/api/v1/rollouts`), which audits them.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use serde_json::json;

use crate::console::{Console, PageError, PageResult};
use crate::domain::scope::Role;
use crate::services::{AppState, ota};

/// Routes of the rollout pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/rollouts", get(rollouts_page))
        .route("/console/rollouts/{id}", get(rollout_page))
}

async fn rollouts_page(c: Console, State(state): State<AppState>) -> PageResult {
    let lang = c.lang;
    c.caller.require(Role::Operator).map_err(|e| PageError(e, lang))?;
    let releases = crate::store::ota::releases(&state.store).await?;
    let mut rows = Vec::new();
    for r in crate::store::ota::rollouts(&state.store).await? {
        let p = ota::progress(&state, &c.caller, &r.id)
            .await
            .map_err(|e| PageError(e, lang))?;
        rows.push(json!({"rollout": r, "counts": p.counts, "devices": p.devices.len()}));
    }
    c.page("rollouts.html", json!({"releases": releases, "rollouts": rows}))
}

async fn rollout_page(c: Console, State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    let lang = c.lang;
    let p = ota::progress(&state, &c.caller, &id)
        .await
        .map_err(|e| PageError(e, lang))?;
    c.page("rollout.html", json!({"p": p}))
}
