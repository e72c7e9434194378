//! The command use case: an operator sends play now, stop, volume or sync to one device or to an
//! area. [`issue`] checks the caller (role `operator`, the target inside their scope), validates
//! the request (the target exists, play-now media is visible in the caller's scope (404 otherwise,
//! as everywhere) and approved, volumes are 0–100), and runs ONE
//! transaction that records the command unpublished with its issuer (`store::commands`, the command outbox) and
//! its audit entry (`device.command.<action>` or `area.command.<action>`); after the commit it
//! wakes the command sender (`workers::commands`), which signs and publishes it. A command the
//! sender cannot publish before it expires ([`COMMAND_TTL_SECS`]) is never sent.

use std::collections::HashMap;

use nguon_protocol::{AreaCode, Audience, DeviceId};

use crate::domain::command::{self, Addressed, COMMAND_TTL_SECS, CommandRequest, Issued};
use crate::domain::scope::{Caller, Role};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::services::auth::check_device;
use crate::services::schedules::require_approved;
use crate::store::{self, audit, commands::NewCommand, from_ms, now_ms};

/// Whom a command is for, as the caller names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One device, by id.
    Device(String),
    /// Every device of an area (and of the areas below it), by code.
    Area(String),
}

/// Record `req` for `target` as `caller`, with its audit entry, and wake the command sender. The
/// answer names the command (its id is the envelope id devices ack) and its topic.
pub async fn issue(state: &AppState, caller: &Caller, target: Target, req: CommandRequest) -> Result<Issued> {
    caller.require(Role::Operator)?;
    let audience = match &target {
        Target::Device(id) => {
            check_device(state, caller, id).await?;
            let d =
                DeviceId::parse(id.clone()).map_err(|e| Error::bad("invalid_device_id", e.to_string()))?;
            if store::devices::area_of(&state.store, id).await?.is_none() {
                return Err(Error::NotFound(format!("device {id}")));
            }
            Audience::Device(d)
        }
        Target::Area(code) => {
            caller.check_area(code)?;
            let a =
                AreaCode::parse(code.clone()).map_err(|e| Error::bad("invalid_area_code", e.to_string()))?;
            if !store::areas::exists(&state.store, code).await? {
                return Err(Error::NotFound(format!("area {code}")));
            }
            Audience::Area(a)
        }
    };
    let media = match &req {
        CommandRequest::PlayNow { media, .. } => {
            // Media outside the caller's scope answers 404 as on every other endpoint.
            store::media::require_visible(&state.store, caller, media).await?;
            require_approved(&state.store, media).await?
        }
        _ => HashMap::new(),
    };
    let id = uuid::Uuid::new_v4();
    let issued_at = now_ms();
    let cmd = command::build(req, id, from_ms(issued_at), &media, &state.public_url)?;
    let to = Addressed::of(&audience);
    let action = command::action(&cmd);
    let row = NewCommand {
        id: id.to_string(),
        target_kind: to.kind.to_string(),
        target: to.target.clone(),
        topic: to.topic.clone(),
        action: action.to_string(),
        body: serde_json::to_string(&cmd).map_err(Error::context("command json"))?,
        issued_at,
        expires_at: issued_at + COMMAND_TTL_SECS * 1000,
        issued_by: caller.username.clone(),
    };
    let issued = Issued {
        command_id: row.id.clone(),
        topic: row.topic.clone(),
        issued_at: from_ms(issued_at),
    };
    let mut tx = state.store.begin_write().await?;
    store::commands::insert_in(&mut tx, &row).await?;
    audit::record(
        &mut tx,
        &caller.username,
        &format!("{}.command.{action}", to.kind),
        &format!("{}:{}", to.kind, to.target),
        None,
        serde_json::to_value(&issued).ok(),
    )
    .await?;
    tx.commit().await?;
    state.wake.commands();
    Ok(issued)
}
