//! Emergencies reach every cluster, with proof of who heard them (issue 12 §1–2), with the real
//! `nguon-server` and `nguon-agent` binaries as processes (harness: `nguon_tests::province`):
//!
//! - an agent stopped while an emergency play-now is issued plays it once when it comes back
//!   inside the validity window, reported `played_late` with the delay; a `kill -9` and restart
//!   afterwards does not play it again; `GET /api/v1/commands/{id}` counts what the proofs say;
//! - an emergency schedule reached 20 s late plays late instead of being `missed`;
//! - a cancel (stop) reaches an agent that was offline: it never plays the message, while an
//!   agent offline beside it (not cancelled) does;
//! - an agent killed (`kill -9`) while it plays a caught-up emergency reports it interrupted once
//!   and does not play it a second time.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use nguon_tests::api::is_online;
use nguon_tests::net::eventually;
use nguon_tests::province::{POLL, Province, instant};
use serde_json::{Value, json};

/// Wait until the server sees device `i` of the province offline (its agent was stopped).
async fn wait_offline(p: &Province, i: usize) {
    let id = p.agents[i].device.id.to_string();
    let api = p.api().clone();
    eventually("the stopped agent offline", Duration::from_secs(30), POLL, || {
        let api = api.clone();
        let id = id.clone();
        async move {
            let devices = api.devices().await.map_err(|e| e.to_string())?;
            let d = devices
                .iter()
                .find(|d| d.get("id").and_then(Value::as_str) == Some(id.as_str()))
                .ok_or("device not listed")?;
            if is_online(d) {
                Err(format!("{id} still online"))
            } else {
                Ok(())
            }
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", p.logs()));
}

/// Proofs of play of item `item` (a command id) by device.
async fn plays_of(p: &Province, item: &str) -> BTreeMap<String, Vec<Value>> {
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
async fn wait_play(p: &Province, item: &str, device: &str, within: Duration) -> Value {
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
async fn wait_tracking(p: &Province, id: &str, what: &str, probe: impl Fn(&Value) -> bool) -> Value {
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
fn target<'a>(c: &'a Value, device: &str) -> &'a Value {
    c.pointer("/tracking/targets")
        .and_then(Value::as_array)
        .and_then(|ts| {
            ts.iter()
                .find(|t| t.get("device_id").and_then(Value::as_str) == Some(device))
        })
        .unwrap_or_else(|| panic!("{device} is not a tracked target: {c}"))
}

fn state(c: &Value, device: &str) -> String {
    target(c, device)
        .get("state")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn history(c: &Value, device: &str) -> Vec<String> {
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

fn count(c: &Value, state: &str) -> u64 {
    c.pointer(&format!("/tracking/counts/{state}"))
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX)
}

/// Wait until the current run of agent `i` has applied a manifest (it reconnected and read its
/// desired state), then a few seconds more for anything it would do with it.
async fn settle_after_restart(p: &Province, i: usize) {
    let agent = &p.agents[i];
    eventually(
        "the restarted agent to apply its manifest",
        Duration::from_secs(30),
        POLL,
        || async {
            if agent.log().contains("manifest applied") {
                Ok(())
            } else {
                Err("no `manifest applied` in its log yet".to_string())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", p.logs()));
    tokio::time::sleep(Duration::from_secs(6)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_stopped_during_an_emergency_plays_it_once_when_it_returns_inside_the_window() {
    let mut p = Province::new(None, 1, 2).await;
    p.start_agents(|_| None).await;
    p.wait_online().await;
    let (_, sha) = p.clip(2.0).await;
    let commune = p.commune(1);
    let (away, here) = (
        p.agents[0].device.id.to_string(),
        p.agents[1].device.id.to_string(),
    );
    p.agents[0].stop();
    wait_offline(&p, 0).await;

    let issued = p
        .api()
        .emergency(&commune, &sha, "Cảnh báo lũ quét")
        .await
        .expect("emergency issued");
    let id = issued
        .get("command_id")
        .and_then(Value::as_str)
        .expect("command id")
        .to_string();
    let issued_at: DateTime<Utc> = instant(&issued, "issued_at").expect("issued_at");
    // The online agent plays it now; the other one is away for 10 s, as in the field.
    wait_play(&p, &id, &here, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    p.agents[0].restart().expect("agent restarts");

    let late = wait_play(&p, &id, &away, Duration::from_secs(60)).await;
    assert_eq!(
        late.get("outcome").and_then(Value::as_str),
        Some("played_late"),
        "{late}"
    );
    let delay = (instant(&late, "started_at").expect("started_at") - issued_at).num_milliseconds();
    assert!(delay >= 10_000, "played {delay} ms after issue: {late}");
    assert_eq!(
        (issued.get("targets"), issued.get("online")),
        (Some(&json!(2)), Some(&json!(1))),
        "{issued}"
    );

    // Tracking agrees with the proofs: one on time, one late with its delay and history.
    let c = wait_tracking(&p, &id, "tracking of both plays", |c| {
        count(c, "played") == 1 && count(c, "played_late") == 1
    })
    .await;
    let by = plays_of(&p, &id).await;
    let played: Vec<&str> = by
        .values()
        .flatten()
        .filter_map(|x| x.get("outcome").and_then(Value::as_str))
        .collect();
    assert_eq!(played.len(), 2, "one proof per agent: {by:?}");
    for (s, n) in [("played", 1), ("played_late", 1)] {
        assert_eq!(
            count(&c, s),
            played.iter().filter(|o| **o == s).count() as u64,
            "{s}: {c}"
        );
        assert_eq!(count(&c, s), n);
    }
    assert_eq!(
        history(&c, &away),
        ["offline_pending", "delivered", "playing", "played_late"],
        "{c}"
    );
    assert_eq!(history(&c, &here)[0], "pending", "{c}");
    let tracked_delay = target(&c, &away)
        .get("delay_ms")
        .and_then(Value::as_i64)
        .expect("delay_ms");
    assert!(tracked_delay >= 10_000, "{c}");

    // kill -9 and restart after the play: the message is still in its desired state, and it is
    // not played twice.
    p.agents[0].kill9();
    p.agents[0].restart().expect("agent restarts");
    settle_after_restart(&p, 0).await;
    let by = plays_of(&p, &id).await;
    assert_eq!(by.get(&away).map(Vec::len), Some(1), "{by:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_schedule_reached_late_inside_its_window_plays_late_instead_of_missed() {
    let mut p = Province::new(None, 1, 1).await;
    p.start_agents(|_| None).await;
    p.wait_online().await;
    let (_, sha) = p.clip(2.0).await;
    let commune = p.commune(1);
    let device = p.agents[0].device.id.to_string();
    p.agents[0].stop();
    wait_offline(&p, 0).await;
    let (local, at) = nguon_tests::province::local_in(4);
    let s = p
        .api()
        .schedule_once("Cảnh báo bão", &sha, &[commune.as_str()], &local, "emergency")
        .await
        .expect("schedule");
    let schedule = s
        .pointer("/schedule/id")
        .or_else(|| s.get("id"))
        .and_then(Value::as_str)
        .expect("schedule id")
        .to_string();
    // Back 20 s after the start, like the agent that was reported `missed`.
    while Utc::now() < at + chrono::Duration::seconds(20) {
        tokio::time::sleep(POLL).await;
    }
    p.agents[0].restart().expect("agent restarts");
    let plays = p
        .wait_plays_any(&schedule, &device, Duration::from_secs(60))
        .await;
    assert_eq!(plays.len(), 1, "{plays:?}");
    assert_eq!(
        plays[0].get("outcome").and_then(Value::as_str),
        Some("played_late"),
        "{plays:?}"
    );
    let delay = (instant(&plays[0], "started_at").expect("started_at") - at).num_milliseconds();
    assert!(delay >= 20_000, "{delay} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_reaches_an_agent_that_was_offline_and_it_never_plays_the_message() {
    let mut p = Province::new(None, 1, 3).await;
    p.start_agents(|_| None).await;
    p.wait_online().await;
    let (_, sha) = p.clip(2.0).await;
    let commune = p.commune(1);
    let ids: Vec<String> = p.agents.iter().map(|a| a.device.id.to_string()).collect();
    // Agent 0 is offline and gets the cancel; agent 2 is offline and does not (the control);
    // agent 1 is online.
    p.agents[0].stop();
    p.agents[2].stop();
    wait_offline(&p, 0).await;
    wait_offline(&p, 2).await;
    let issued = p
        .api()
        .emergency(&commune, &sha, "Cảnh báo")
        .await
        .expect("emergency");
    let id = issued
        .get("command_id")
        .and_then(Value::as_str)
        .expect("command id")
        .to_string();
    wait_play(&p, &id, &ids[1], Duration::from_secs(30)).await;
    p.api()
        .post(
            &format!("/api/v1/devices/{}/commands", ids[0]),
            &json!({"action": "stop", "item_id": id}),
        )
        .await
        .expect("stop issued");
    // Away for longer than the agents' grace period (5 s): the control plays it late.
    tokio::time::sleep(Duration::from_secs(8)).await;
    p.agents[0].restart().expect("agent 0 restarts");
    p.agents[2].restart().expect("agent 2 restarts");

    let control = wait_play(&p, &id, &ids[2], Duration::from_secs(60)).await;
    assert_eq!(
        control.get("outcome").and_then(Value::as_str),
        Some("played_late"),
        "{control}"
    );
    settle_after_restart(&p, 0).await;
    let by = plays_of(&p, &id).await;
    assert!(!by.contains_key(&ids[0]), "the cancelled agent played: {by:?}");
    assert!(
        p.agents[0].wav_files().is_empty(),
        "{:?}",
        p.agents[0].wav_files()
    );
    let c = wait_tracking(&p, &id, "the cancel in the tracking", |c| {
        state(c, &ids[0]) == "cancelled"
    })
    .await;
    assert_eq!(history(&c, &ids[0]), ["offline_pending", "cancelled"], "{c}");
    assert_eq!(state(&c, &ids[2]), "played_late", "{c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_while_it_plays_a_caught_up_emergency_does_not_play_it_twice() {
    let mut p = Province::new(None, 1, 1).await;
    p.start_agents(|_| None).await;
    p.wait_online().await;
    let (_, sha) = p.clip(12.0).await;
    let commune = p.commune(1);
    let device = p.agents[0].device.id.to_string();
    p.agents[0].stop();
    wait_offline(&p, 0).await;
    let issued = p
        .api()
        .emergency(&commune, &sha, "Cảnh báo")
        .await
        .expect("emergency");
    let id = issued
        .get("command_id")
        .and_then(Value::as_str)
        .expect("command id")
        .to_string();
    p.agents[0].restart().expect("agent restarts");
    // Mid-way: its first sample went out (the store records the message as playing).
    let agent = &p.agents[0];
    eventually(
        "the agent to start playing",
        Duration::from_secs(30),
        POLL,
        || async {
            let state = std::fs::read(agent.dir.join("data").join("state.json")).unwrap_or_default();
            let state: Value = serde_json::from_slice(&state).unwrap_or_default();
            if state.pointer("/playing/item_id").and_then(Value::as_str) == Some(id.as_str()) {
                Ok(())
            } else {
                Err(format!(
                    "playing: {}",
                    state.get("playing").unwrap_or(&Value::Null)
                ))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", p.logs()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    p.agents[0].kill9();
    p.agents[0].restart().expect("agent restarts");
    let play = wait_play(&p, &id, &device, Duration::from_secs(60)).await;
    assert_eq!(
        play.get("outcome").and_then(Value::as_str),
        Some("interrupted"),
        "{play}"
    );
    settle_after_restart(&p, 0).await;
    // Long enough for a second play of the 12 s clip to have ended and been reported.
    tokio::time::sleep(Duration::from_secs(14)).await;
    let by = plays_of(&p, &id).await;
    assert_eq!(by.get(&device).map(Vec::len), Some(1), "{by:?}");
}
