//! Live broadcast end to end (issue 17), with the real `nguon-server` and two `nguon-agent`
//! processes writing WAV sinks: a priority message is playing in a commune; an operator goes
//! live to the commune and speaks (tone bursts as the microphone, over the WebSocket); the live
//! session preempts the message on both loudspeakers, the session page lists both as playing;
//! an emergency to one loudspeaker interrupts the live broadcast there while the other goes on;
//! stop ends it, each proof of play carries its duration, and every burst is found in the other
//! agent's WAV, to the sample, with its mouth → speaker latency printed (a figure, not asserted).

use std::time::Duration;

use nguon_tests::commands::{count, wait_play, wait_tracking};
use nguon_tests::live::{Microphone, latencies, open, played_onsets};
use nguon_tests::net::eventually;
use nguon_tests::province::{POLL, Province, instant};
use nguon_tests::stats::Summary;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_broadcast_preempts_a_message_and_an_emergency_interrupts_it_on_one_loudspeaker() {
    let mut p = Province::new(None, 1, 2).await;
    p.start_agents(|_| None).await;
    p.wait_online().await;
    let commune = p.commune(1);
    let (gone, kept) = (
        p.agents[0].device.id.to_string(),
        p.agents[1].device.id.to_string(),
    );
    let (_, sha) = p.clip(8.0).await;

    // A priority message is playing on both.
    let msg = p
        .api()
        .post(
            &format!("/api/v1/areas/{commune}/commands"),
            &json!({"action": "play_now", "media": [sha], "priority": "priority", "title": "Thông báo"}),
        )
        .await
        .expect("play now");
    let msg_id = msg["command_id"].as_str().expect("command id").to_string();
    wait_tracking(&p, &msg_id, "the message playing on both", |c| {
        count(c, "playing") == 2
    })
    .await;
    let message_playing = chrono::Utc::now();

    // Live to the commune.
    let id = open(p.api(), json!({"areas": [commune], "title": "Họp khẩn"}))
        .await
        .expect("open");
    let mut mic = Microphone::connect(p.api(), &id).await.expect("microphone");
    let mut sent = mic.bursts(5.0, Duration::from_secs(1)).await.expect("speak");
    // Both loudspeakers are listed as playing the session.
    let api = p.api().clone();
    let path = format!("/api/v1/live/{id}");
    let playing = eventually("both listed as playing", Duration::from_secs(10), POLL, || {
        let (api, path) = (api.clone(), path.clone());
        async move {
            let s = api.get(&path).await.map_err(|e| e.to_string())?;
            let n = s["playing"].as_array().map_or(0, Vec::len);
            if n == 2 { Ok(s) } else { Err(format!("{s}")) }
        }
    });
    // Keep speaking while the page is read (a live stream with no data stalls after 10 s).
    let (page, more) = tokio::join!(playing, mic.bursts(2.0, Duration::from_secs(1)));
    page.unwrap_or_else(|e| panic!("{e}\n{}", p.logs()));
    sent.extend(more.expect("speak"));

    // An emergency to one loudspeaker interrupts the live broadcast there.
    p.api()
        .post(
            &format!("/api/v1/devices/{gone}/commands"),
            &json!({"action": "play_now", "media": [sha], "priority": "emergency", "title": "Khẩn cấp"}),
        )
        .await
        .expect("emergency");
    sent.extend(mic.bursts(3.5, Duration::from_secs(1)).await.expect("speak"));
    mic.stop().await.expect("stop");

    let interrupted = wait_play(&p, &id, &gone, Duration::from_secs(30)).await;
    assert_eq!(interrupted["outcome"], json!("interrupted"), "{interrupted}");
    let reason = interrupted["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("emergency"), "{interrupted}");
    let played = wait_play(&p, &id, &kept, Duration::from_secs(30)).await;
    assert_eq!(played["outcome"], json!("played"), "{played}");
    // The live session preempted the 8 s message rather than waiting for its end.
    let live_started = instant(&played, "started_at").expect("started_at");
    assert!(
        (live_started - message_playing).num_milliseconds() < 6_000,
        "live started {live_started}, the message was playing at {message_playing}"
    );

    // The session: stopped, each device's play with its duration.
    let s = p.api().get(&path).await.expect("session");
    assert_eq!(s["live"], json!(false), "{s}");
    assert_eq!(s["session"]["end_reason"], json!("stopped"), "{s}");
    let plays = s["plays"].as_array().cloned().unwrap_or_default();
    let duration = |d: &str| -> i64 {
        plays
            .iter()
            .find(|x| x["device_id"] == json!(d))
            .and_then(|x| x["duration_ms"].as_i64())
            .unwrap_or_else(|| panic!("no duration for {d}: {s}"))
    };
    assert!(duration(&kept) > 6_000, "{s}");
    assert!(duration(&gone) < duration(&kept), "{s}");

    // Every burst reached the loudspeaker that stayed live, found to the sample in its WAV.
    let onsets = played_onsets(&p.agents[1].dir.join("wav"), &id, 0.1).expect("wav");
    let lat = latencies(&sent, &onsets);
    assert_eq!(
        lat.len(),
        sent.len(),
        "bursts sent at {sent:?}, onsets {onsets:?}"
    );
    let sum = Summary::of(&lat);
    eprintln!("live mouth -> speaker (loopback, dev profile): {sum}; all: {lat:?}");
    // 48 kb/s for about 10 s.
    assert!(s["session"]["stream_bytes"].as_i64().unwrap_or(0) > 40_000, "{s}");
}

/// The session's priority travels in `live_start` (issue 17): an emergency live session
/// interrupts an emergency message that plays, a priority message sent during it waits, and the
/// proof of play carries `emergency`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_live_broadcast_interrupts_an_emergency_message_and_nothing_lower_interrupts_it() {
    let mut p = Province::new(None, 1, 1).await;
    p.start_agents(|_| None).await;
    p.wait_online().await;
    let dev = p.agents[0].device.id.to_string();
    let (_, sha) = p.clip(20.0).await;

    let msg = p
        .api()
        .post(
            &format!("/api/v1/devices/{dev}/commands"),
            &json!({"action": "play_now", "media": [sha], "priority": "emergency", "title": "Lũ"}),
        )
        .await
        .expect("emergency");
    let msg_id = msg["command_id"].as_str().expect("command id").to_string();
    wait_tracking(&p, &msg_id, "the emergency playing", |c| count(c, "playing") == 1).await;
    let emergency_playing = chrono::Utc::now();

    let id = open(
        p.api(),
        json!({"devices": [dev], "priority": "emergency", "title": "Chỉ huy"}),
    )
    .await
    .expect("open");
    let mut mic = Microphone::connect(p.api(), &id).await.expect("microphone");
    mic.bursts(3.0, Duration::from_secs(1)).await.expect("speak");
    // The emergency message was stopped or held for the live session, long before its 20 s.
    let first = plays_of_now(&p, &msg_id, &dev).await;
    // A priority message during the session does not interrupt it.
    p.api()
        .post(
            &format!("/api/v1/devices/{dev}/commands"),
            &json!({"action": "play_now", "media": [sha], "priority": "priority", "title": "Thông báo"}),
        )
        .await
        .expect("priority message");
    mic.bursts(3.0, Duration::from_secs(1)).await.expect("speak");
    mic.stop().await.expect("stop");

    let live = wait_play(&p, &id, &dev, Duration::from_secs(30)).await;
    assert_eq!(live["outcome"], json!("played"), "{live}");
    assert_eq!(live["priority"], json!("emergency"), "{live}");
    let started = instant(&live, "started_at").expect("started_at");
    assert!(
        (started - emergency_playing).num_milliseconds() < 8_000,
        "the emergency live session waited for the 20 s emergency message: it started {started}, \
         the message was playing at {emergency_playing}"
    );
    let msg_play = match first {
        Some(p) => p,
        None => wait_play(&p, &msg_id, &dev, Duration::from_secs(40)).await,
    };
    let outcome = msg_play["outcome"].as_str().unwrap_or_default();
    assert!(outcome == "interrupted" || outcome == "resumed", "{msg_play}");
    if outcome == "interrupted" {
        let reason = msg_play["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("emergency live session"), "{msg_play}");
    }
}

/// The proof of play of `item` from `device`, if there is one yet.
async fn plays_of_now(p: &Province, item: &str, device: &str) -> Option<serde_json::Value> {
    nguon_tests::commands::plays_of(p, item)
        .await
        .get(device)
        .and_then(|v| v.first().cloned())
}
