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

use std::time::Duration;

use chrono::{DateTime, Utc};
use nguon_tests::commands::{count, emergency, history, plays_of, state, target, wait_play, wait_tracking};
use nguon_tests::net::eventually;
use nguon_tests::province::{POLL, Province, instant};
use serde_json::{Value, json};

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
    p.stop_agent(0).await;

    let (issued, id) = emergency(&p, &commune, &sha, "Cảnh báo lũ quét").await;
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
    p.settle_after_restart(0).await;
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
    p.stop_agent(0).await;
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
    p.stop_agent(0).await;
    p.stop_agent(2).await;
    let (_, id) = emergency(&p, &commune, &sha, "Cảnh báo").await;
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
    p.settle_after_restart(0).await;
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
    p.stop_agent(0).await;
    let (_, id) = emergency(&p, &commune, &sha, "Cảnh báo").await;
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
    p.settle_after_restart(0).await;
    // Long enough for a second play of the 12 s clip to have ended and been reported.
    tokio::time::sleep(Duration::from_secs(14)).await;
    let by = plays_of(&p, &id).await;
    assert_eq!(by.get(&device).map(Vec::len), Some(1), "{by:?}");
}

/// Issue 12 §3: an emergency repeats at a shortened interval (this server allows 5 s instead of
/// 60): each agent plays the message and its replays `{id}#1`, `{id}#2`, one proof each with its
/// own id; each replay starts with the spoken issue time (its WAV is longer than the first play
/// by the preamble); `GET /api/v1/commands/{id}` tracks each replay like the first; a stop ends
/// the replays on every agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_repeats_at_its_interval_each_replay_with_its_own_id_and_tracking_until_a_stop() {
    let mut p = Province::new_with(None, 1, 2, &[("NGUON_MIN_REPEAT_EVERY_S", "5")]).await;
    p.start_agents(|_| None).await;
    p.wait_online().await;
    let (_, sha) = p.clip(1.0).await;
    let commune = p.commune(1);
    let devices: Vec<String> = p.agents.iter().map(|a| a.device.id.to_string()).collect();
    let path = format!("/api/v1/areas/{commune}/commands");
    // Refused: an interval below the server's minimum, a repeating non-emergency.
    for (body, field) in [
        (json!({"offsets_s": [0], "every_s": 2}), "repetition.every_s"),
        (json!("hourly"), "repetition"),
    ] {
        let e = p
            .api()
            .post(
                &path,
                &json!({"action": "play_now", "priority": "emergency", "media": [sha], "repetition": body}),
            )
            .await
            .expect_err("refused");
        assert!(
            format!("{e:#}").contains("422") && format!("{e:#}").contains(field),
            "{e:#}"
        );
    }
    let issued = p
        .api()
        .post(
            &path,
            &json!({"action": "play_now", "priority": "emergency", "media": [sha], "title": "Lũ quét",
                    "volume": 100, "valid_for_s": 600, "repetition": {"offsets_s": [0], "every_s": 10}}),
        )
        .await
        .unwrap_or_else(|e| panic!("emergency: {e:#}\n{}", p.logs()));
    let id = issued
        .get("command_id")
        .and_then(Value::as_str)
        .expect("command id")
        .to_string();
    let items = [id.clone(), format!("{id}#1"), format!("{id}#2")];
    for d in &devices {
        for item in &items {
            let play = wait_play(&p, item, d, Duration::from_secs(60)).await;
            assert_eq!(
                play.get("outcome").and_then(Value::as_str),
                Some("played"),
                "{play}"
            );
        }
    }
    // One proof per device and replay, each with its own id.
    for item in &items {
        let by = plays_of(&p, item).await;
        assert_eq!(
            devices
                .iter()
                .map(|d| by.get(d).map_or(0, Vec::len))
                .collect::<Vec<_>>(),
            [1, 1],
            "{item}: {by:?}"
        );
    }
    // The replays start with the spoken issue time: longer than the first play by it.
    let frames = |a: &nguon_tests::harness::AgentProc, item: &str| {
        let f = a.dir.join("wav").join(format!("{}.wav", item.replace('#', "_")));
        let pcm = nguon_tests::audio::read_wav(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        pcm.samples.len() as f64 / pcm.channels as f64 / pcm.rate as f64
    };
    let (first, replay) = (frames(&p.agents[0], &id), frames(&p.agents[0], &items[1]));
    assert!(
        replay > first + 1.0,
        "replay {replay:.2} s, first play {first:.2} s"
    );
    // Tracking: the first play and each replay, counted from their proofs.
    let c = wait_tracking(&p, &id, "two replays played on both agents", |c| {
        let reps = c
            .get("repetitions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        count(c, "played") == 2
            && reps.len() >= 2
            && reps[..2]
                .iter()
                .all(|r| r.pointer("/tracking/counts/played") == Some(&json!(2)))
    })
    .await;
    let reps = c["repetitions"].as_array().expect("repetitions");
    assert_eq!(reps[0]["item_id"], json!(items[1]), "{c}");
    assert_eq!(reps[1]["item_id"], json!(items[2]), "{c}");
    assert_eq!(
        history(&reps[1], &devices[0]),
        ["pending", "delivered", "playing", "played"],
        "{c}"
    );
    // A stop ends the replays: none due after it plays anywhere.
    let stopped_at = Utc::now();
    p.api()
        .post(&path, &json!({"action": "stop", "item_id": id}))
        .await
        .expect("stop");
    tokio::time::sleep(Duration::from_secs(25)).await;
    for k in 1..12 {
        for (d, plays) in plays_of(&p, &format!("{id}#{k}")).await {
            for play in plays {
                let at = instant(&play, "occurrence_at").expect("occurrence_at");
                assert!(
                    at < stopped_at + chrono::Duration::seconds(1),
                    "{d} played replay {k} due after the stop: {play}"
                );
            }
        }
    }
}

/// Issue 12 §3 for schedules: an emergency schedule with a repetition (a custom 5 s interval,
/// which this server allows) is carried in the agents' manifests and each agent expands it: the
/// occurrence `{schedule}@{t}` and its replays `#1`, `#2` play, one proof each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_emergency_with_a_repetition_is_replayed_by_the_agent() {
    let mut p = Province::new_with(None, 1, 1, &[("NGUON_MIN_REPEAT_EVERY_S", "5")]).await;
    p.start_agents(|_| None).await;
    p.wait_online().await;
    let (_, sha) = p.clip(1.0).await;
    let commune = p.commune(1);
    let device = p.agents[0].device.id.to_string();
    let (local, at) = nguon_tests::province::local_in(8);
    let s = p
        .api()
        .post(
            "/api/v1/schedules",
            &json!({"title": "Lũ quét", "media": [sha], "targets": {"areas": [commune]},
                    "priority": "emergency", "rule": {"kind": "once", "at": local}, "volume": 100,
                    "valid_for_s": 600, "repetition": {"offsets_s": [0], "every_s": 5}}),
        )
        .await
        .unwrap_or_else(|e| panic!("schedule: {e:#}\n{}", p.logs()));
    let schedule = s
        .pointer("/schedule/id")
        .and_then(Value::as_str)
        .expect("schedule id")
        .to_string();
    let id = format!("{schedule}@{}", at.timestamp());
    for item in [id.clone(), format!("{id}#1"), format!("{id}#2")] {
        let play = wait_play(&p, &item, &device, Duration::from_secs(60)).await;
        assert_eq!(
            play.get("outcome").and_then(Value::as_str),
            Some("played"),
            "{item}: {play}"
        );
        assert_eq!(
            plays_of(&p, &item).await.get(&device).map_or(0, Vec::len),
            1,
            "{item}"
        );
    }
}
