//! The command use case: an operator sends play now, stop, volume or sync to one device or to an
//! area. [`issue`] checks the caller (role `operator`, the target inside their scope), validates
//! the request (the target exists, play-now media is visible in the caller's scope (404 otherwise,
//! as everywhere) and approved, volumes are 0–100), and runs ONE
//! transaction that records the command unpublished with its issuer (`store::commands`, the command outbox) and
//! its audit entry (`device.command.<action>` or `area.command.<action>`); after the commit it
//! wakes the command sender (`workers::commands`), which signs and publishes it. A command the
//! sender cannot publish before it expires ([`COMMAND_TTL_SECS`], or its validity window) is
//! never sent.
//!
//! The same transaction records the devices the command covers now (`command_targets`: the
//! delivery tracking of `GET /api/v1/commands/{id}`). An emergency or priority play-now with a
//! validity window is also desired state: a dispatch outbox row makes the dispatcher put it in
//! each target's manifest until it expires, so a device that was offline plays it when it comes
//! back. A stop cancels those messages for the devices it covers (they leave the manifests and
//! are listed there as cancelled while their window lasts).

use std::collections::HashMap;

use nguon_protocol::{AreaCode, Audience, Command, DeviceId, MediaRef, Priority, Repetition};

use crate::domain::change::Change;
use crate::domain::command::{self, Addressed, COMMAND_TTL_SECS, CommandRequest, Issued};
use crate::domain::repetition;
use crate::domain::report::records::CommandReport;
use crate::domain::scope::{Caller, Role};
use crate::domain::tracking;
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::services::auth::check_device;
use crate::services::schedules::require_approved;
use crate::services::speech;
use crate::store::{self, audit, commands::NewCommand, from_ms, now_ms, outbox};

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
    let audience = audience_of(state, caller, &target).await?;
    let media = match &req {
        CommandRequest::PlayNow { media, .. } => {
            // Media outside the caller's scope answers 404 as on every other endpoint.
            store::media::require_visible(&state.store, caller, media).await?;
            require_approved(&state.store, media).await?
        }
        _ => HashMap::new(),
    };
    let repetition = match &req {
        CommandRequest::PlayNow {
            repetition: Some(r),
            priority,
            ..
        } => Some(repetition::resolve(
            r,
            priority.unwrap_or(Priority::Priority),
            state.settings.min_repeat_every_s,
        )?),
        _ => None,
    };
    let id = uuid::Uuid::new_v4();
    let issued_at = now_ms();
    let settings = state.settings.clone();
    let mut built = command::build(req, id, from_ms(issued_at), &media, &state.public_url, |p| {
        settings.late_window(p)
    })?;
    let mut cmd = built.command.clone();
    if let (Some(r), Command::PlayNow { item, media }) = (repetition, &mut cmd) {
        if !built.catch_up {
            return Err(Error::unprocessable(
                "invalid_repetition",
                "`repetition`: a repeating emergency needs a validity window (`valid_for_s` or `expires_at`)",
            ));
        }
        item.repetition = Some(with_preamble(state, r, issued_at, media).await);
    }
    built.command = cmd;
    record(state, caller, &target, &audience, built, id, issued_at).await
}

/// The recording part of [`issue`] and [`issue_built`]: one transaction with the command, its
/// targets, a stop's cancellations, the dispatch outbox row if needed and the audit entry; then
/// the wake-ups.
async fn record(
    state: &AppState,
    caller: &Caller,
    target: &Target,
    audience: &Audience,
    built: command::Built,
    id: uuid::Uuid,
    issued_at: i64,
) -> Result<Issued> {
    let cmd = built.command;
    let to = Addressed::of(audience);
    let action = command::action(&cmd);
    let (areas, devices, change) = match target {
        Target::Device(d) => (Vec::new(), vec![d.clone()], Change::Devices(vec![d.clone()])),
        Target::Area(a) => (
            store::areas::subtree(&state.store, std::slice::from_ref(a)).await?,
            Vec::new(),
            Change::Areas(vec![a.clone()]),
        ),
    };
    let row = NewCommand {
        id: id.to_string(),
        target_kind: to.kind.to_string(),
        target: to.target.clone(),
        topic: to.topic.clone(),
        action: action.to_string(),
        body: serde_json::to_string(&cmd).map_err(Error::context("command json"))?,
        issued_at,
        expires_at: built.expires_at.timestamp_millis(),
        catch_up: built.catch_up,
        issued_by: caller.username.clone(),
    };
    debug_assert!(built.catch_up || row.expires_at == issued_at + COMMAND_TTL_SECS * 1000);
    let mut tx = state.store.begin_write().await?;
    store::commands::insert_in(&mut tx, &row).await?;
    // The targets are recorded by the database (a province is 100,000 rows: none of them is read
    // into the server, and the publish waits for this commit).
    let (targets, online) = store::commands::record_targets_in(&mut tx, &row.id, &areas, &devices).await?;
    let issued = Issued {
        command_id: row.id.clone(),
        topic: row.topic.clone(),
        issued_at: from_ms(issued_at),
        expires_at: built.expires_at,
        targets,
        online,
    };
    let mut dispatch = built.catch_up;
    if let Command::Stop { item_id } = &cmd {
        let n = store::commands::cancel_for_targets_of(
            &mut tx,
            item_id.as_deref(),
            &issued.command_id,
            issued_at,
        )
        .await?;
        dispatch |= n > 0;
    }
    if dispatch {
        outbox::insert(&mut tx, &change).await?;
    }
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
    if dispatch {
        state.wake.dispatch();
    }
    Ok(issued)
}

/// The audience of `target` for `caller`: 403 outside their scope, 404 for an unknown one.
async fn audience_of(state: &AppState, caller: &Caller, target: &Target) -> Result<Audience> {
    Ok(match target {
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
    })
}

/// Record a command built elsewhere (`live_start`, `live_stop`: `services::live`) for `target`
/// as `caller`, like [`issue`] (scope, the command outbox, the delivery tracking, the audit
/// entry), with the plain command expiry.
pub async fn issue_built(
    state: &AppState,
    caller: &Caller,
    target: Target,
    command: Command,
) -> Result<Issued> {
    caller.require(Role::Operator)?;
    let audience = audience_of(state, caller, &target).await?;
    let id = uuid::Uuid::new_v4();
    let issued_at = now_ms();
    let built = command::Built {
        command,
        expires_at: from_ms(issued_at) + chrono::Duration::seconds(COMMAND_TTL_SECS),
        catch_up: false,
    };
    record(state, caller, &target, &audience, built, id, issued_at).await
}

/// The spoken issue time each replay of a repeating message starts with ("Bản tin phát hành lúc
/// 14 giờ 05 ngày 3 tháng 12", in the server's time zone), synthesised with the default voice and
/// added to the command's media. It is made for any clip (speech or not). Without it (no speech
/// engine, a synthesis error) the replays play the clip alone; the error is logged, not
/// answered: an emergency is never refused for its preamble.
async fn with_preamble(
    state: &AppState,
    mut r: Repetition,
    issued_at: i64,
    media: &mut Vec<MediaRef>,
) -> Repetition {
    let tz: chrono_tz::Tz = state
        .settings
        .time_zone
        .parse()
        .unwrap_or(chrono_tz::Asia::Ho_Chi_Minh);
    let text = repetition::issue_time_text(&from_ms(issued_at).with_timezone(&tz));
    let made = async {
        let voice = speech::voice(state, None, None, None)?;
        speech::synthesize_to_media(state, &text, &voice, &text, true).await
    }
    .await;
    match made {
        Ok((_, m)) => {
            r.preamble = Some(m.sha256.clone());
            media.push(MediaRef {
                url: m.url.clone(),
                size: m.size.max(0) as u64,
                duration_ms: m.duration_ms.max(0) as u64,
                sha256: m.sha256,
            });
        }
        Err(e) => tracing::warn!(error = %e, "no spoken issue time for the replays"),
    }
    r
}

/// A command with its delivery tracking (`domain::tracking`), for a caller with the operator role
/// whose scope covers its target (403 otherwise, 404 for an unknown id).
pub async fn tracked(state: &AppState, caller: &Caller, id: &str) -> Result<CommandReport> {
    caller.require(Role::Operator)?;
    let report = report(state, id).await?;
    match report.target_kind.as_str() {
        "area" => caller.check_area(&report.target)?,
        // A CAP alert's command (services::cap): province-wide, read by any operator.
        "alert" => {}
        _ => check_device(state, caller, &report.target).await?,
    }
    Ok(report)
}

/// A command with its acks and its delivery tracking, whoever its target (404 for an unknown id);
/// callers check the scope.
pub async fn report(state: &AppState, id: &str) -> Result<CommandReport> {
    let mut report = store::reports::command(&state.store, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("command {id}")))?;
    if let Some((cmd, observed)) = store::tracking::load(&state.store, id).await? {
        let now = now_ms();
        report.tracking = tracking::derive(&cmd, &observed, now);
        if let Ok(Command::PlayNow { item, .. }) = serde_json::from_value::<Command>(report.command.clone())
            && let Some(r) = &item.repetition
        {
            let seen = store::tracking::replays_seen(&state.store, id).await?;
            report.repetitions = repetition::track(id, &cmd, r, item.starts_at, &observed, &seen, now);
        }
    }
    Ok(report)
}

/// The latest `limit` commands whose target is inside the caller's scope, newest first.
pub async fn recent(state: &AppState, caller: &Caller, limit: i64) -> Result<Vec<store::commands::Recent>> {
    caller.require(Role::Operator)?;
    let all = store::commands::recent(&state.store, limit * 4).await?;
    let mut out = Vec::new();
    for c in all {
        let area = match c.target_kind.as_str() {
            "area" => Some(c.target.clone()),
            _ => store::devices::area_of(&state.store, &c.target).await?,
        };
        if area.is_some_and(|a| caller.in_scope(&a)) {
            out.push(c);
        }
        if out.len() as i64 >= limit {
            break;
        }
    }
    Ok(out)
}
