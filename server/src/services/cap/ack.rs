//! CAP out. [`document`]: `GET /api/v1/alerts/{id}.cap` gives a CAP 1.2 document for every
//! emergency issued in nguon: for a CAP alert, its latest message as received (validated at
//! intake); for an emergency play-now typed in the console or sent through the command API (the
//! id is the command's), an `Alert` written from the command (`identifier` = the command id,
//! `sender` = `nguon@<public host>`, the area's name as `areaDesc` and its code and configured
//! geocodes as `<geocode>`s). [`ack`]: the `msgType=Ack` that references a received alert once
//! the share of its targets reached (delivered or further) is at least `cap.ack_threshold_pct`;
//! the first such read records the Ack's time (`cap_messages.acked_at`), which later reads
//! repeat as its `sent`.

use chrono::{FixedOffset, Utc};

use crate::domain::cap::{
    self, Alert, Area, Category, Certainty, Info, MsgType, NamedValue, Reference, Scope, Severity, Status,
    Urgency,
};
use crate::domain::scope::{Caller, Role};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::store::{self, from_ms, now_ms};

/// The sender nguon writes CAP as: `nguon@<host of the public URL>`.
pub fn own_sender(state: &AppState) -> String {
    let host = state
        .public_url
        .split("://")
        .nth(1)
        .unwrap_or(&state.public_url)
        .split(['/', ':'])
        .next()
        .unwrap_or("localhost")
        .to_string();
    format!("nguon@{host}")
}

fn utc(ms: i64) -> chrono::DateTime<FixedOffset> {
    from_ms(ms).with_timezone(&FixedOffset::east_opt(0).expect("zero offset"))
}

/// The CAP document of alert or emergency command `id` (404 otherwise).
pub async fn document(state: &AppState, caller: &Caller, id: &str) -> Result<String> {
    caller.require(Role::Operator)?;
    let messages = store::cap::of_alert(&state.store, id).await?;
    if let Some(last) = messages.last() {
        return Ok(last.xml.clone());
    }
    let report = crate::services::commands::tracked(state, caller, id).await?;
    let cmd: nguon_protocol::Command =
        serde_json::from_value(report.command.clone()).map_err(Error::context("stored command"))?;
    let nguon_protocol::Command::PlayNow { item, .. } = cmd else {
        return Err(Error::NotFound(format!("emergency {id}")));
    };
    if item.priority != nguon_protocol::Priority::Emergency {
        return Err(Error::NotFound(format!("emergency {id}")));
    }
    let mut area = Area {
        desc: report.target.clone(),
        polygons: Vec::new(),
        circles: Vec::new(),
        geocodes: Vec::new(),
        altitude: None,
        ceiling: None,
    };
    if report.target_kind == "area" {
        if let Some(a) = store::areas::get(&state.store, &report.target).await? {
            area.desc = a.name;
        }
        area.geocodes.push(NamedValue {
            name: "nguon-area".into(),
            value: report.target.clone(),
        });
        let caps = store::cap::area_caps(&state.store).await?;
        if let Some((_, c)) = caps.iter().find(|(a, _)| *a == report.target) {
            for g in &c.geocodes {
                if let Some((n, v)) = g.split_once('=') {
                    area.geocodes.push(NamedValue {
                        name: n.into(),
                        value: v.into(),
                    });
                }
            }
        }
    } else {
        area.desc = format!("Thiết bị {}", report.target);
    }
    let alert = Alert {
        identifier: report.id.clone(),
        sender: own_sender(state),
        sent: utc(report.issued_at.timestamp_millis()),
        status: Status::Actual,
        msg_type: MsgType::Alert,
        source: Some("nguon".into()),
        scope: Scope::Public,
        restriction: None,
        addresses: None,
        codes: Vec::new(),
        note: None,
        references: Vec::new(),
        incidents: None,
        infos: vec![Info {
            language: "vi-VN".into(),
            language_given: true,
            categories: vec![Category::Safety],
            event: "Phát khẩn cấp".into(),
            response_types: Vec::new(),
            urgency: Urgency::Immediate,
            severity: Severity::Severe,
            certainty: Certainty::Observed,
            audience: None,
            event_codes: Vec::new(),
            effective: None,
            onset: None,
            expires: Some(utc(report.expires_at.timestamp_millis())),
            sender_name: report.issued_by.clone(),
            headline: Some(item.title.clone()),
            description: None,
            instruction: None,
            web: None,
            contact: None,
            parameters: Vec::new(),
            resources: Vec::new(),
            areas: vec![area],
        }],
    };
    Ok(cap::write::to_xml(&alert))
}

/// The Ack of alert `id`'s current received message once delivery reached the threshold; 404
/// before (the message says how far delivery is), or for an alert nguon wrote itself.
pub async fn ack(state: &AppState, caller: &Caller, id: &str) -> Result<String> {
    caller.require(Role::Operator)?;
    let messages = store::cap::of_alert(&state.store, id).await?;
    let Some(msg) = messages
        .iter()
        .rev()
        .find(|m| m.command_id.is_some() && m.msg_type != "Cancel")
    else {
        return Err(Error::NotFound(format!("an issued alert {id}")));
    };
    let report = super::report_of(state, msg).await?;
    let total = report.tracking.targets.len() as u64;
    let reached = report.tracking.reached;
    let pct = state.settings.cap.ack_threshold_pct as u64;
    if total == 0 || reached * 100 < pct * total {
        return Err(Error::NotFound(format!(
            "the Ack of alert {id}: {reached} of {total} loudspeakers reached, {pct} % needed"
        )));
    }
    let at = match msg.acked_at {
        Some(t) => t,
        None => {
            let t = now_ms();
            store::cap::set_acked(&state.store, &msg.id, t).await?;
            t
        }
    };
    let received = cap::parse(msg.xml.as_bytes())?;
    let ack = Alert {
        identifier: format!("nguon-ack-{}", msg.id),
        sender: own_sender(state),
        sent: utc(at),
        status: received.status,
        msg_type: MsgType::Ack,
        source: Some("nguon".into()),
        scope: Scope::Public,
        restriction: None,
        addresses: None,
        codes: Vec::new(),
        note: Some(format!(
            "Delivered to {reached} of {total} loudspeakers ({} %)",
            reached * 100 / total
        )),
        references: vec![Reference {
            sender: received.sender.clone(),
            identifier: received.identifier.clone(),
            sent: cap::write::date_time(&received.sent),
        }],
        incidents: received.incidents.clone(),
        infos: Vec::new(),
    };
    debug_assert!(Utc::now() >= from_ms(at));
    Ok(cap::write::to_xml(&ack))
}
