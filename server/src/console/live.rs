//! The live broadcast page (issue 17), `/console/live` ("Phát trực tiếp"): the operator ticks
//! areas and loudspeakers of their scope, chooses the priority and presses talk; the page
//! (`static/live.js`) captures the microphone with an AudioWorklet (`static/live-worklet.js`:
//! 16-bit PCM in 20 ms frames), opens the session with `POST /api/v1/live` (a 409 shows who is
//! live), streams the frames over the WebSocket, draws a level meter, lists the loudspeakers
//! and their state from `GET /api/v1/live/{id}` every 1.5 s, and stops with `stop`. One column on
//! a phone, two on a desktop (console.css).

use axum::extract::State;
use serde_json::json;

use super::{Console, PageError, PageResult, all_areas, scoped_devices};
use crate::domain::scope::Role;
use crate::services::{AppState, live};

/// `GET /console/live`.
pub(super) async fn live_page(c: Console, State(state): State<AppState>) -> PageResult {
    c.caller
        .require(Role::Operator)
        .map_err(|e| PageError(e, c.lang))?;
    let areas = all_areas(&state).await.map_err(|e| PageError(e, c.lang))?;
    let areas: Vec<_> = areas
        .values()
        .filter(|a| c.caller.in_scope(&a.code))
        .map(|a| json!({"code": a.code, "name": a.name, "level": a.level}))
        .collect();
    let devices: Vec<_> = scoped_devices(&state, &c.caller)
        .await
        .map_err(|e| PageError(e, c.lang))?
        .into_iter()
        .filter(|d| d.kind == "loudspeaker")
        .map(|d| json!({"id": d.id, "name": d.name, "area": d.area, "online": d.online}))
        .collect();
    let active: Vec<_> = live::active(&state, &c.caller)
        .into_iter()
        .map(|(id, by, priority, title)| json!({"id": id, "by": by, "priority": priority, "title": title}))
        .collect();
    c.page(
        "live.html",
        json!({"areas": areas, "devices": devices, "active": active}),
    )
}
