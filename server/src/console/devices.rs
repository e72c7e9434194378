//! Device pages: the list with live status, one device with its recent plays and status history,
//! and the quick commands (stop, sync, volume).

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::json;

use super::queries::scoped_devices;
use super::{Console, PageError, PageForm, PageResult, now_playing_label, see_other};
use crate::domain::scope::Role;
use crate::error::Error;
use crate::services::AppState;
use crate::store::reports::RecentPlays;

pub(super) async fn devices_page(c: Console, State(state): State<AppState>) -> PageResult {
    let devices = scoped_devices(&state, &c.caller).await?;
    c.page(
        "devices.html",
        json!({"devices": devices, "can_edit": c.caller.role.grants(Role::Operator)}),
    )
}

pub(super) async fn device_page(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> PageResult {
    let lang = c.lang;
    crate::services::auth::check_device(&state, &c.caller, &id)
        .await
        .map_err(|e| PageError(e, lang))?;
    let d = crate::fleet::get(&state.store, &id)
        .await?
        .ok_or_else(|| PageError(Error::NotFound(format!("device `{id}`")), lang))?;
    let plays =
        crate::store::reports::recent_plays(&state.store, &c.caller, RecentPlays::All, 30, Some(&id)).await?;
    let now_playing = d.now_playing.as_ref().map(|v| now_playing_label(&v.to_string()));
    let history = crate::fleet::history::page_data(&state.store, &d.id, d.created_at, lang).await?;
    c.page(
        "device.html",
        json!({"d": d, "plays": plays, "now_playing": now_playing, "can_control": c.caller.role.grants(Role::Operator),
               "history": history}),
    )
}

#[derive(Deserialize)]
pub(super) struct CommandForm {
    action: String,
    #[serde(default)]
    level: Option<u8>,
}

pub(super) async fn device_command(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(f): PageForm<CommandForm>,
) -> PageResult {
    let lang = c.lang;
    let step = async {
        c.caller.require(Role::Operator)?;
        crate::services::auth::check_device(&state, &c.caller, &id).await?;
        let req = match f.action.as_str() {
            "stop" => crate::command::CommandRequest::Stop { item_id: None },
            "sync" => crate::command::CommandRequest::Sync,
            "volume" => crate::command::CommandRequest::Volume {
                level: f.level.unwrap_or(80).min(100),
            },
            other => return Err(Error::bad("invalid_action", format!("unknown action `{other}`"))),
        };
        let dev = nguon_protocol::DeviceId::parse(id.clone())
            .map_err(|e| Error::bad("invalid_device", e.to_string()))?;
        let issued = crate::command::issue(&state, nguon_protocol::Audience::Device(dev), req).await?;
        crate::store::audit::record_outside(
            &state.store,
            &c.caller.username,
            &format!("device.command.{}", f.action),
            &format!("device:{id}"),
            None,
            serde_json::to_value(&issued).ok(),
        )
        .await;
        Ok::<_, Error>(())
    };
    step.await.map_err(|e| PageError(e, lang))?;
    Ok(see_other(&format!("/console/devices/{id}")))
}
