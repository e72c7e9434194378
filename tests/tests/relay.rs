//! Relays (tiếp sóng, issue 17) end to end, with the real `nguon-server` (proxy mode, the
//! default) and `nguon-agent` processes writing WAV sinks, against a local Icecast-like server
//! (`nguon_tests::icecast`: MP3 in real time, ICY metadata interleaved):
//! - a relay for two loudspeakers whose upstream drops once mid-window: the 440 Hz tone from
//!   before the drop and the 880 Hz tone from after it both reach each WAV sink, each agent
//!   reports a reconnection and the stream time it played, and the server's proxy opened one
//!   upstream connection per stream for the two agents (two in all: before and after the drop);
//! - a relay whose URL is a 404 for the whole window: the fallback recording plays (sample for
//!   sample) and the `relay_failed` alarm is raised; a `text/html` URL is refused at save (422
//!   naming `relay.url`).

use std::time::Duration;

use nguon_tests::audio;
use nguon_tests::icecast::{Icecast, tone_mp3, tones_per_second};
use nguon_tests::net::eventually;
use nguon_tests::province::{POLL, Province, local_in};
use serde_json::{Value, json};

fn relay_schedule(
    commune: &str,
    url: &str,
    media: &[&str],
    at_local: &str,
    duration_s: u32,
    fallback_after_s: u32,
) -> Value {
    json!({
        "title": "Tiếp sóng VOV1",
        "media": media,
        "targets": {"areas": [commune]},
        "rule": {"kind": "once", "at": at_local},
        "volume": 100,
        "relay": {"url": url, "duration_s": duration_s, "fallback_after_s": fallback_after_s}
    })
}

fn near(f: u32, hz: u32) -> bool {
    f.abs_diff(hz) <= hz / 20
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_reaches_two_loudspeakers_through_one_upstream_and_survives_a_drop() {
    let mut p = Province::new(None, 1, 2).await;
    p.start_agents(|_| None).await;
    p.wait_online().await;
    let commune = p.commune(1);
    let dir = tempfile::tempdir().expect("dir");
    let before = tone_mp3(dir.path(), "a440", 440, 10.0, 32).expect("lame");
    let after = tone_mp3(dir.path(), "a880", 880, 10.0, 32).expect("lame");
    let ice = Icecast::start(before, after, 32, Some(Duration::from_secs(7))).await;
    let (_, fallback) = p.clip(3.0).await;

    let (local, at) = local_in(10);
    let body = relay_schedule(&commune, &ice.url("/stream"), &[&fallback], &local, 22, 8);
    let created = p
        .api()
        .post("/api/v1/schedules", &body)
        .await
        .expect("relay schedule");
    assert_eq!(created["schedule"]["kind"], json!("relay"), "{created}");
    assert!(
        created["warnings"].get("relay_unreachable").is_none(),
        "{created}"
    );
    assert_eq!(
        ice.plain_connections(),
        1,
        "the save-time check read the stream once"
    );
    let id = created["schedule"]["id"].as_str().expect("id").to_string();

    let devices = p.ids(|_| true);
    let plays = p.wait_plays(&id, &devices, Duration::from_secs(70)).await;
    eprintln!("relay plays: {plays:#?}");
    for play in plays.iter().filter(|x| x["outcome"] == json!("played")) {
        let r = &play["relay"];
        assert_eq!(r["failed"], json!(false), "{play}");
        assert!(
            r["reconnects"].as_i64().unwrap_or(0) >= 1,
            "no reconnection reported: {play}"
        );
        let ms = r["stream_ms"].as_i64().unwrap_or(0);
        assert!(ms > 14_000, "only {ms} ms of the stream played: {play}");
        let started: chrono::DateTime<chrono::Utc> = play["started_at"].as_str().unwrap().parse().unwrap();
        assert!(
            (started - at).num_milliseconds().abs() < 3_000,
            "started {started}, due {at}"
        );
    }
    // One upstream connection for the two agents, and one more after the drop (agents fetching
    // directly would have made four).
    assert_eq!(
        ice.icy_connections(),
        2,
        "upstream connections of the proxy\n{}",
        p.logs()
    );
    let relays = p.api().get("/api/v1/relays").await.expect("relays");
    assert!(relays["upstreams_opened"].as_u64().unwrap_or(0) == 2, "{relays}");

    // Each sink heard the tone from before the drop, then the one from after it.
    for a in &p.agents {
        let wavs = a.wav_files();
        assert_eq!(wavs.len(), 1, "{}: {wavs:?}", a.device.id);
        let pcm = audio::read_wav(&wavs[0]).expect("WAV");
        let tones = tones_per_second(&pcm.samples, pcm.rate, pcm.channels);
        let first_880 = tones.iter().position(|f| near(*f, 880));
        let n440 = tones.iter().filter(|f| near(**f, 440)).count();
        let n880 = tones.iter().filter(|f| near(**f, 880)).count();
        assert!(
            n440 >= 3 && n880 >= 8 && first_880.is_some_and(|i| tones[..i].iter().any(|f| near(*f, 440))),
            "{}: per-second tones {tones:?}",
            a.device.id
        );
        eprintln!("{}: per-second tones {tones:?}", a.device.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_never_answers_plays_the_fallback_and_raises_relay_failed() {
    let mut p = Province::new_with(None, 1, 1, &[("NGUON_ALARMS_EVALUATE_EVERY_S", "1")]).await;
    p.start_agents(|_| None).await;
    p.wait_online().await;
    let commune = p.commune(1);
    let dir = tempfile::tempdir().expect("dir");
    let tone = tone_mp3(dir.path(), "t", 440, 2.0, 32).expect("lame");
    let ice = Icecast::start(tone.clone(), tone, 32, None).await;
    let (played_path, fallback) = p.clip(4.0).await;

    // A web page is not a stream: refused at save, naming the field.
    let (local, _) = local_in(3600);
    let html = relay_schedule(&commune, &ice.url("/html"), &[&fallback], &local, 60, 3);
    let err = p
        .api()
        .post("/api/v1/schedules", &html)
        .await
        .expect_err("a web page is refused");
    let msg = err.to_string();
    assert!(
        msg.contains("422") && msg.contains("relay_not_audio") && msg.contains("relay.url"),
        "{msg}"
    );

    // A 404 at save is accepted with a warning; at play time the fallback plays.
    let (local, _) = local_in(8);
    let body = relay_schedule(&commune, &ice.url("/missing"), &[&fallback], &local, 15, 3);
    let created = p
        .api()
        .post("/api/v1/schedules", &body)
        .await
        .expect("relay schedule");
    assert!(
        created["warnings"]["relay_unreachable"]
            .as_str()
            .is_some_and(|w| w.contains("404")),
        "{created}"
    );
    let id = created["schedule"]["id"].as_str().expect("id").to_string();
    let dev = p.agents[0].device.id.to_string();
    let plays = p.wait_plays_any(&id, &dev, Duration::from_secs(60)).await;
    let play = &plays[0];
    assert_eq!(play["outcome"], json!("played"), "{play}");
    assert_eq!(play["relay"]["failed"], json!(true), "{play}");
    assert_eq!(play["relay"]["stream_ms"], json!(0), "{play}");
    assert!(
        play["reason"].as_str().is_some_and(|r| r.contains("fallback")),
        "{play}"
    );
    // What the loudspeaker played is the fallback recording, sample for sample.
    let wavs = p.agents[0].wav_files();
    assert_eq!(wavs.len(), 1, "{wavs:?}");
    let src = audio::decode(&played_path).expect("decode the fallback");
    let out = audio::read_wav(&wavs[0]).expect("WAV");
    audio::compare(&src, &out, 1.0, 1e-6).unwrap_or_else(|e| panic!("the fallback did not play: {e}"));

    let api = p.api().clone();
    let alarm = eventually("a relay_failed alarm", Duration::from_secs(30), POLL, || {
        let api = api.clone();
        let dev = dev.clone();
        async move {
            let list = api
                .get("/api/v1/alarms?kind=relay_failed")
                .await
                .map_err(|e| e.to_string())?;
            list.as_array()
                .and_then(|a| a.iter().find(|x| x["subject_id"] == json!(dev)).cloned())
                .ok_or_else(|| format!("alarms: {list}"))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", p.logs()));
    assert!(
        alarm["message"].as_str().unwrap_or_default().contains("relay"),
        "{alarm}"
    );
}
