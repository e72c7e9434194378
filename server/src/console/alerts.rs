//! CAP alerts in the console (issue 12 §4): `/console/alerts` lists the received CAP messages
//! (newest first; those waiting for approval on top), `/console/alerts/{message}` renders one —
//! its infos (headline, description, instruction, areas), its state, the tracking of the command
//! it issued — with the approver's buttons while it waits (`POST …/approve`, `…/reject`, which
//! call `services::cap::decide`). Labels: `i18n/alerts.rs`.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::{Console, PageError, PageForm, PageResult};
use crate::domain::cap;
use crate::domain::scope::Role;
use crate::error::Error;
use crate::services::AppState;
use crate::services::cap as alerts;

/// Routes of the alert pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/alerts", get(list_page))
        .route("/console/alerts/{id}", get(detail_page))
        .route("/console/alerts/{id}/approve", post(approve))
        .route("/console/alerts/{id}/reject", post(reject))
        .route(
            "/console/areas/{code}/cap",
            post(super::admin_areas::area_cap_save),
        )
}

async fn list_page(c: Console, State(state): State<AppState>) -> PageResult {
    let all = alerts::recent(&state, &c.caller, None, 200)
        .await
        .map_err(|e| PageError(e, c.lang))?;
    let (pending, rest): (Vec<_>, Vec<_>) = all.into_iter().partition(|m| m.state == "pending_approval");
    let view = |m: &crate::store::cap::Message| {
        json!({"id": m.id, "alert_id": m.alert_id, "identifier": m.identifier, "sender": m.sender,
               "status": m.status, "msg_type": m.msg_type, "headline": m.headline, "state": m.state,
               "devices": m.target_devices, "areas": m.target_areas, "received_at": m.received_at,
               "command_id": m.command_id})
    };
    c.page(
        "alerts.html",
        json!({"pending": pending.iter().map(view).collect::<Vec<_>>(),
               "alerts": rest.iter().map(view).collect::<Vec<_>>()}),
    )
}

async fn detail_page(c: Console, State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    let lang = c.lang;
    c.caller.require(Role::Operator).map_err(|e| PageError(e, lang))?;
    let m = crate::store::cap::get(&state.store, &id)
        .await
        .map_err(|e| PageError(e, lang))?
        .ok_or_else(|| PageError(Error::NotFound(format!("CAP message {id}")), lang))?;
    let alert = cap::parse(m.xml.as_bytes()).map_err(|e| PageError(e, lang))?;
    let infos: Vec<_> = alert
        .infos
        .iter()
        .map(|i| {
            json!({"language": i.language, "event": i.event, "headline": i.headline,
                   "description": i.description, "instruction": i.instruction,
                   "urgency": i.urgency.as_str(), "severity": i.severity.as_str(),
                   "certainty": i.certainty.as_str(), "expires": i.expires.map(|e| e.to_rfc3339()),
                   "areas": i.areas.iter().map(|a| json!({"desc": a.desc,
                        "polygons": a.polygons.len(), "circles": a.circles.len(),
                        "geocodes": a.geocodes.iter().map(|g| g.key()).collect::<Vec<_>>()}))
                        .collect::<Vec<_>>()})
        })
        .collect();
    let tracking = match &m.command_id {
        Some(_) => crate::services::cap::report_of(&state, &m).await.ok().map(|r| {
            json!({"counts": r.tracking.counts, "reached": r.tracking.reached,
                         "targets": r.tracking.targets.len()})
        }),
        None => None,
    };
    c.page(
        "alert.html",
        json!({"m": {"id": m.id, "alert_id": m.alert_id, "identifier": m.identifier,
                     "sender": m.sender, "sent": m.sent, "status": m.status, "msg_type": m.msg_type,
                     "state": m.state, "devices": m.target_devices, "areas": m.target_areas,
                     "received_by": m.received_by, "decided_by": m.decided_by,
                     "command_id": m.command_id, "note": alert.note},
               "infos": infos, "tracking": tracking,
               "can_approve": c.caller.grants(Role::Approver) && m.state == "pending_approval"}),
    )
}

/// The approve/reject form: only the CSRF token.
#[derive(Debug, Deserialize)]
pub struct Decision {}

async fn approve(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(_): PageForm<Decision>,
) -> PageResult {
    alerts::decide(&state, &c.caller, &id, true)
        .await
        .map_err(|e| PageError(e, c.lang))?;
    Ok(super::done(&format!("/console/alerts/{id}"), "approved"))
}

async fn reject(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(_): PageForm<Decision>,
) -> PageResult {
    alerts::decide(&state, &c.caller, &id, false)
        .await
        .map_err(|e| PageError(e, c.lang))?;
    Ok(super::done(&format!("/console/alerts/{id}"), "rejected"))
}
