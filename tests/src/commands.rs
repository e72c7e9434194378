//! A command as system tests follow it (issue 12): issue an emergency, wait for each device's
//! proof of play of it, wait for `GET /api/v1/commands/{id}` to say something, and read its
//! tracking (targets, states, histories, counts). Failures panic with the province's logs.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::net::eventually;
use crate::province::{POLL, Province};

/// Issue an emergency play-now of `sha` to `area`; returns the answer and the command id.
pub async fn emergency(p: &Province, area: &str, sha: &str, title: &str) -> (Value, String) {
    let issued = p
        .api()
        .emergency(area, sha, title)
        .await
        .unwrap_or_else(|e| panic!("emergency: {e:#}\n{}", p.logs()));
    let id = issued
        .get("command_id")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no command id: {issued}"))
        .to_string();
    (issued, id)
}

/// Proofs of play of item `item` (a command id) by device.
pub async fn plays_of(p: &Province, item: &str) -> BTreeMap<String, Vec<Value>> {
    let mut by: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for play in p.api().plays("").await.expect("plays") {
        if play.get("item_id").and_then(Value::as_str) == Some(item) {
            let d = play
                .get("device_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            by.entry(d).or_default().push(play);
        }
    }
    by
}

/// Wait until device `device` has a proof of play of `item`; returns it.
pub async fn wait_play(p: &Province, item: &str, device: &str, within: Duration) -> Value {
    let r = eventually(
        &format!("a proof of play of {item} from {device}"),
        within,
        POLL,
        || async {
            let by = plays_of(p, item).await;
            by.get(device)
                .and_then(|v| v.first().cloned())
                .ok_or_else(|| format!("plays of the message so far: {by:?}"))
        },
    )
    .await;
    r.unwrap_or_else(|e| panic!("{e}\n{}", p.logs()))
}

/// `GET /api/v1/commands/{id}` once `probe` accepts it.
pub async fn wait_tracking(p: &Province, id: &str, what: &str, probe: impl Fn(&Value) -> bool) -> Value {
    let r = eventually(what, Duration::from_secs(30), POLL, || async {
        let c = p
            .api()
            .get(&format!("/api/v1/commands/{id}"))
            .await
            .map_err(|e| e.to_string())?;
        if probe(&c) {
            Ok(c)
        } else {
            Err(format!("tracking: {}", c.get("tracking").unwrap_or(&Value::Null)))
        }
    })
    .await;
    r.unwrap_or_else(|e| panic!("{e}\n{}", p.logs()))
}

/// The tracked target of `device` in a command report.
pub fn target<'a>(c: &'a Value, device: &str) -> &'a Value {
    c.pointer("/tracking/targets")
        .and_then(Value::as_array)
        .and_then(|ts| {
            ts.iter()
                .find(|t| t.get("device_id").and_then(Value::as_str) == Some(device))
        })
        .unwrap_or_else(|| panic!("{device} is not a tracked target: {c}"))
}

/// The tracked state of `device`.
pub fn state(c: &Value, device: &str) -> String {
    target(c, device)
        .get("state")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The states `device` went through, in the order the report gives them.
pub fn history(c: &Value, device: &str) -> Vec<String> {
    target(c, device)
        .get("history")
        .and_then(Value::as_array)
        .map(|h| {
            h.iter()
                .filter_map(|x| x.get("state").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// How many targets are in `state` (`u64::MAX` when the report has no such count).
pub fn count(c: &Value, state: &str) -> u64 {
    c.pointer(&format!("/tracking/counts/{state}"))
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX)
}
