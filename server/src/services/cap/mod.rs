//! CAP 1.2 intake (issue 12 §4, docs/cap.md). [`receive`] takes a CAP document from the API
//! (`POST /api/v1/alerts/cap`) or a polled feed, validates it (`domain::cap::parse`), refuses an
//! expired alert (422 `expired`) and a repeated sender + identifier (409), resolves its targets
//! ([`targets`]: loudspeakers inside a polygon or circle, plus the loudspeakers of areas whose
//! geocodes match an `<area>` drawn without one) and records it. Only `status=Actual` reaches
//! loudspeakers (`Exercise` only in areas that take exercises). A trusted sender's alert
//! (`cap.trusted_senders`) is issued at once; any other waits for an approver ([`decide`]).
//!
//! Issuing ([`issue`]) goes through the emergency command path: speech is an attention chime
//! then the normalised TTS of the headline, description and instruction of the infos in the
//! target area's languages ([`languages`]: Vietnamese first; a language no voice speaks is left
//! to the boards), stored as approved media; one emergency play-now command per group of targets
//! hearing the same infos (target kind `alert`: the sender publishes it to each target device's
//! topic; the message's `command_id` is the largest group's, `cap_message_commands` lists all)
//! with `command_targets` for tracking and a validity window up to the alert's `expires`, so
//! devices that were offline catch up. An `Update` stops the referenced
//! alert's play-now on its targets (cancelled in their manifests too) and issues the new one
//! under the same alert id; a `Cancel` stops it everywhere, offline devices included.

pub mod ack;
pub mod areas;
pub mod board;
pub mod feeds;
pub mod languages;
pub mod targets;

use chrono::Utc;
use nguon_protocol::Priority;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::cap::{self, Alert, MsgType, Status};
use crate::domain::change::Change;
use crate::domain::command::{self, CommandRequest, MAX_WINDOW_SECS, MIN_WINDOW_SECS};
use crate::domain::scope::{Caller, Role};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::services::schedules::require_approved;
use crate::store::commands::{NewCommand, TargetDevice};
use crate::store::{self, audit, cap::Message, now_ms, outbox};

/// The answer of an intake: 201 when issued or recorded, 202 while it waits for approval.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Received {
    /// The nguon alert id (an Update or Cancel answers the id of the alert it refers to).
    pub id: String,
    /// The message's `<identifier>`.
    pub identifier: String,
    /// `issued`, `pending_approval`, `not_played`, `cancelled`.
    pub state: String,
    /// What it targets.
    pub targets: TargetCount,
    /// The play-now (or stop) command it issued, tracked at `GET /api/v1/alerts/{id}`.
    pub command_id: Option<String>,
}

/// Target counts of a received alert.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TargetCount {
    /// Loudspeakers.
    pub devices: u64,
    /// The areas those are in.
    pub areas: Vec<String>,
}

impl Received {
    /// Whether it waits for an approver (202).
    pub fn pending(&self) -> bool {
        self.state == "pending_approval"
    }
}

/// 403 unless the caller may post CAP: the `operator` role with an unrestricted scope (an admin,
/// or an upstream system's account); a commune operator may not issue province-wide alerts.
pub fn require_sender(caller: &Caller) -> Result<()> {
    caller.require(Role::Operator)?;
    if caller.scope_areas.is_some() {
        return Err(Error::Forbidden(
            "CAP alerts need an operator without an area restriction".into(),
        ));
    }
    Ok(())
}

/// Take a CAP document from `actor` (API caller or `cap-feed`).
pub async fn receive(state: &AppState, actor: &str, bytes: &[u8]) -> Result<Received> {
    let alert = cap::parse(bytes)?;
    let xml = String::from_utf8_lossy(bytes).into_owned();
    if alert.expired_at(Utc::now()) {
        return Err(Error::unprocessable(
            "expired",
            format!(
                "/alert/info/expires: the alert expired at {}",
                alert.expires().map(|e| e.to_rfc3339()).unwrap_or_default()
            ),
        ));
    }
    if store::cap::by_identifier(&state.store, &alert.sender, &alert.identifier)
        .await?
        .is_some()
    {
        return Err(Error::Conflict(format!(
            "duplicate_cap: `{}` from `{}` was already received",
            alert.identifier, alert.sender
        )));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let alert_id = match alert.msg_type {
        MsgType::Alert | MsgType::Ack | MsgType::Error => id.clone(),
        MsgType::Update | MsgType::Cancel => referenced(state, &alert).await?.alert_id,
    };
    let found = targets::resolve(state, &alert).await?;
    let mut playable = playable(&alert, &found);
    if alert.msg_type == MsgType::Cancel {
        // A Cancel stops what the alert issued; an alert that issued nothing has nothing to stop.
        playable &= current_play(state, &alert_id).await?.is_some();
    }
    let trusted = state.settings.cap.trusts(&alert.sender);
    let msg_state = if !playable {
        "not_played"
    } else if trusted {
        "issued"
    } else {
        "pending_approval"
    };
    let mut msg = Message {
        id: id.clone(),
        alert_id,
        identifier: alert.identifier.clone(),
        sender: alert.sender.clone(),
        sent: cap::write::date_time(&alert.sent),
        status: alert.status.to_string(),
        msg_type: alert.msg_type.to_string(),
        headline: headline(&alert),
        state: msg_state.into(),
        command_id: None,
        target_devices: found.len() as i64,
        target_areas: areas_of(&found).join(","),
        xml,
        received_at: now_ms(),
        received_by: actor.to_string(),
        decided_by: None,
        decided_at: None,
        acked_at: None,
    };
    if msg_state == "issued" {
        msg.command_id = Some(issue(state, actor, &msg, &alert, &found, true).await?);
    } else {
        record(state, actor, &msg, "cap.received", true).await?;
    }
    Ok(answer(&msg, &found))
}

/// Write `msg` (a new message when `insert`, else its state and decider) and its audit entry
/// `action` by `actor` in one transaction: the one sequence of an intake that issues nothing and
/// of a rejection.
async fn record(state: &AppState, actor: &str, msg: &Message, action: &str, insert: bool) -> Result<()> {
    let mut tx = state.store.begin_write().await?;
    if insert {
        store::cap::insert_in(&mut tx, msg).await?;
    } else {
        store::cap::set_state_in(&mut tx, &msg.id, &msg.state, None, msg.decided_by.as_deref()).await?;
    }
    audit::record(
        &mut tx,
        actor,
        action,
        &format!("alert:{}", msg.alert_id),
        None,
        Some(summary(msg)),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

fn answer(msg: &Message, found: &[TargetDevice]) -> Received {
    Received {
        id: msg.alert_id.clone(),
        identifier: msg.identifier.clone(),
        state: msg.state.clone(),
        targets: TargetCount {
            devices: found.len() as u64,
            areas: areas_of(found),
        },
        command_id: msg.command_id.clone(),
    }
}

fn summary(m: &Message) -> serde_json::Value {
    serde_json::json!({
        "message": m.id, "identifier": m.identifier, "sender": m.sender, "status": m.status,
        "msg_type": m.msg_type, "state": m.state, "command_id": m.command_id,
        "target_devices": m.target_devices, "target_areas": m.target_areas,
    })
}

/// Whether a message does anything on loudspeakers: Actual (or an Exercise, whose targets are
/// already only the areas that take exercises) with targets; a Cancel of an issued alert always.
fn playable(alert: &Alert, found: &[TargetDevice]) -> bool {
    let status_ok = matches!(alert.status, Status::Actual | Status::Exercise);
    match alert.msg_type {
        MsgType::Alert | MsgType::Update => status_ok && !found.is_empty(),
        MsgType::Cancel => status_ok,
        MsgType::Ack | MsgType::Error => false,
    }
}

fn headline(a: &Alert) -> String {
    a.infos
        .first()
        .map(|i| i.headline.clone().unwrap_or_else(|| i.event.clone()))
        .or_else(|| a.note.clone())
        .unwrap_or_else(|| a.identifier.clone())
        .chars()
        .take(200)
        .collect()
}

fn areas_of(found: &[TargetDevice]) -> Vec<String> {
    let mut a: Vec<String> = found.iter().map(|t| t.area.clone()).collect();
    a.sort();
    a.dedup();
    a
}

/// The stored message an Update or Cancel refers to (the first of its references received
/// here); 422 `invalid_cap` naming `/alert/references` otherwise.
async fn referenced(state: &AppState, alert: &Alert) -> Result<Message> {
    if alert.references.is_empty() {
        return Err(cap::parse::invalid(
            "/alert/references",
            format!("a {} must reference the alert it changes", alert.msg_type),
        ));
    }
    for r in &alert.references {
        if let Some(m) = store::cap::by_identifier(&state.store, &r.sender, &r.identifier).await? {
            return Ok(m);
        }
    }
    Err(cap::parse::invalid(
        "/alert/references",
        "refers to no alert received here",
    ))
}

/// The latest message of alert `alert_id` that issued a play-now, if any.
async fn current_play(state: &AppState, alert_id: &str) -> Result<Option<Message>> {
    Ok(store::cap::of_alert(&state.store, alert_id)
        .await?
        .into_iter()
        .rfind(|m| m.msg_type != "Cancel" && m.command_id.is_some()))
}

/// Issue `msg` (parsed as `alert`, targeting `found`) through the command path, as `actor`;
/// `insert` records the message in the same transaction (else it exists and its state is set).
/// Returns the command id.
pub(crate) async fn issue(
    state: &AppState,
    actor: &str,
    msg: &Message,
    alert: &Alert,
    found: &[TargetDevice],
    insert: bool,
) -> Result<String> {
    let now = Utc::now();
    let previous = match alert.msg_type {
        MsgType::Update | MsgType::Cancel => current_play(state, &msg.alert_id).await?,
        _ => None,
    };
    let mut commands: Vec<(NewCommand, Vec<TargetDevice>)> = Vec::new();
    let mut cancel: Vec<(String, Vec<String>)> = Vec::new();
    if let Some(prev) = &previous {
        for cmd in store::cap::commands_of(&state.store, prev).await? {
            let old = store::cap::command_targets(&state.store, &cmd).await?;
            let ids: Vec<String> = old.iter().map(|t| t.device_id.clone()).collect();
            let stop = command::build(
                CommandRequest::Stop {
                    item_id: Some(cmd.clone()),
                },
                uuid::Uuid::new_v4(),
                now,
                &Default::default(),
                &state.public_url,
                |_| chrono::Duration::zero(),
            )?;
            commands.push((row(&msg.alert_id, stop, actor)?, old));
            cancel.push((cmd, ids));
        }
    }
    // The play-now of each group of targets hearing the same infos, the largest group first.
    let mut plays: Vec<(String, String)> = Vec::new();
    if alert.msg_type != MsgType::Cancel {
        let window = alert.expires().map(|e| {
            (e.with_timezone(&Utc) - now)
                .num_seconds()
                .clamp(MIN_WINDOW_SECS, MAX_WINDOW_SECS) as u32
        });
        for (infos, group) in languages::groups(state, alert, found).await? {
            let media = targets::speech(state, alert, &infos).await?;
            let info = require_approved(&state.store, &media).await?;
            let settings = state.settings.clone();
            let built = command::build(
                CommandRequest::PlayNow {
                    media,
                    priority: Some(Priority::Emergency),
                    volume: None,
                    title: Some(format!("CAP: {}", msg.headline)),
                    valid_for_s: window,
                    expires_at: None,
                    repetition: None,
                },
                uuid::Uuid::new_v4(),
                now,
                &info,
                &state.public_url,
                |p| settings.late_window(p),
            )?;
            let c = row(&msg.alert_id, built, actor)?;
            let list: Vec<String> = infos.iter().map(usize::to_string).collect();
            plays.push((c.id.clone(), list.join(",")));
            commands.push((c, group));
        }
    }
    let command_id = plays
        .first()
        .map(|(c, _)| c.clone())
        .or_else(|| commands.last().map(|(c, _)| c.id.clone()))
        .ok_or_else(|| Error::internal("a CAP message with nothing to issue"))?;
    let mut devices: Vec<String> = Vec::new();
    let mut tx = state.store.begin_write().await?;
    if insert {
        let mut m = msg.clone();
        m.state = "issued".into();
        m.command_id = Some(command_id.clone());
        store::cap::insert_in(&mut tx, &m).await?;
    } else {
        store::cap::set_state_in(&mut tx, &msg.id, "issued", Some(&command_id), None).await?;
    }
    for (c, infos) in &plays {
        store::cap::add_command_in(&mut tx, &msg.id, c, infos).await?;
    }
    for (c, targets) in &commands {
        store::commands::insert_in(&mut tx, c).await?;
        store::commands::insert_targets(&mut tx, state.store.backend, &c.id, targets).await?;
        devices.extend(targets.iter().map(|t| t.device_id.clone()));
    }
    for (cmd, ids) in &cancel {
        store::commands::cancel_in(&mut tx, Some(cmd), ids, now_ms()).await?;
    }
    if let Some(prev) = previous.as_ref().filter(|_| !cancel.is_empty()) {
        let to = if alert.msg_type == MsgType::Cancel {
            "cancelled"
        } else {
            "replaced"
        };
        store::cap::set_state_in(&mut tx, &prev.id, to, None, None).await?;
    }
    devices.sort();
    devices.dedup();
    outbox::insert(&mut tx, &Change::Devices(devices)).await?;
    let mut after = summary(msg);
    after["state"] = "issued".into();
    after["command_id"] = command_id.clone().into();
    audit::record(
        &mut tx,
        actor,
        if insert { "cap.issued" } else { "cap.approved" },
        &format!("alert:{}", msg.alert_id),
        None,
        Some(after),
    )
    .await?;
    tx.commit().await?;
    state.wake.commands();
    state.wake.dispatch();
    // Boards show current alerts (`board`): let them refresh.
    state.bulletins.bump();
    Ok(command_id)
}

fn row(alert_id: &str, built: command::Built, actor: &str) -> Result<NewCommand> {
    let id = match &built.command {
        nguon_protocol::Command::PlayNow { item, .. } => item.id.clone(),
        _ => uuid::Uuid::new_v4().to_string(),
    };
    let issued_at = now_ms();
    Ok(NewCommand {
        id,
        target_kind: "alert".into(),
        target: alert_id.to_string(),
        topic: format!("alert/{alert_id}"),
        action: command::action(&built.command).to_string(),
        body: serde_json::to_string(&built.command).map_err(Error::context("command json"))?,
        issued_at,
        expires_at: built.expires_at.timestamp_millis(),
        catch_up: built.catch_up,
        issued_by: actor.to_string(),
    })
}

/// An approver's decision on a message waiting for approval: `approve` issues it (targets
/// resolved again now), otherwise it is rejected. Audited with the approver.
pub async fn decide(state: &AppState, caller: &Caller, message_id: &str, approve: bool) -> Result<Received> {
    caller.require(Role::Approver)?;
    let msg = store::cap::get(&state.store, message_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("CAP message {message_id}")))?;
    if msg.state != "pending_approval" {
        return Err(Error::Conflict(format!(
            "CAP message {message_id} is {}, not waiting for approval",
            msg.state
        )));
    }
    let alert = cap::parse(msg.xml.as_bytes())?;
    let found = targets::resolve(state, &alert).await?;
    let mut msg = msg;
    if approve {
        if alert.expired_at(Utc::now()) {
            return Err(Error::unprocessable(
                "expired",
                "/alert/info/expires: the alert has expired",
            ));
        }
        let id = issue(state, &caller.username, &msg, &alert, &found, false).await?;
        let mut tx = state.store.begin_write().await?;
        store::cap::set_state_in(&mut tx, &msg.id, "issued", None, Some(&caller.username)).await?;
        tx.commit().await?;
        msg.state = "issued".into();
        msg.command_id = Some(id);
    } else {
        msg.state = "rejected".into();
        msg.decided_by = Some(caller.username.clone());
        record(state, &caller.username, &msg, "cap.rejected", false).await?;
    }
    Ok(answer(&msg, &found))
}

/// The messages of alert `id`, oldest first (404 when none), for a caller with the operator role.
pub async fn messages(state: &AppState, caller: &Caller, id: &str) -> Result<Vec<Message>> {
    caller.require(Role::Operator)?;
    let all = store::cap::of_alert(&state.store, id).await?;
    if all.is_empty() {
        return Err(Error::NotFound(format!("alert {id}")));
    }
    Ok(all)
}

/// The delivery tracking of alert `id`: the report of its current play-now command (the same
/// shape as `GET /api/v1/commands/{id}`); 404 when it issued none.
pub async fn tracked(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<crate::domain::report::records::CommandReport> {
    messages(state, caller, id).await?;
    let m = current_play(state, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("alert {id} has issued no command")))?;
    report_of(state, &m).await
}

/// The tracking of what message `m` issued: the report of its `command_id` (the largest group)
/// with the targets, counts and acks of its other groups' play-nows added.
pub async fn report_of(
    state: &AppState,
    m: &Message,
) -> Result<crate::domain::report::records::CommandReport> {
    let all = store::cap::commands_of(&state.store, m).await?;
    let first = all
        .first()
        .ok_or_else(|| Error::NotFound(format!("alert {} has issued no command", m.alert_id)))?;
    let mut report = crate::services::commands::report(state, first).await?;
    for other in &all[1..] {
        let r = crate::services::commands::report(state, other).await?;
        for (k, n) in r.tracking.counts {
            *report.tracking.counts.entry(k).or_default() += n;
        }
        report.tracking.reached += r.tracking.reached;
        report.tracking.targets.extend(r.tracking.targets);
        report.acks.extend(r.acks);
    }
    report
        .tracking
        .targets
        .sort_by(|a, b| a.device_id.cmp(&b.device_id));
    Ok(report)
}

/// The latest `limit` messages (only `state` when given), newest first, for operators.
pub async fn recent(
    state: &AppState,
    caller: &Caller,
    only: Option<&str>,
    limit: i64,
) -> Result<Vec<Message>> {
    caller.require(Role::Operator)?;
    store::cap::recent(&state.store, only, limit).await
}
