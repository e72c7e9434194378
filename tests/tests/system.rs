//! System tests: the real `nguon-server` and `nguon-agent` binaries as processes, against a real
//! broker (embedded, a private Mosquitto, or `NGUON_TEST_MQTT_URL`) and a real database (SQLite
//! file, or a fresh PostgreSQL database per test with `NGUON_TEST_DATABASE_URL`). Every test has
//! its own temp dir, free ports and unique device ids and area codes (tests may share a broker),
//! and waits on observable events with deadlines.

use std::time::Duration;

use chrono::Utc;
use nguon_tests::harness::BrokerChoice;
use nguon_tests::mosquitto::Mosquitto;
use nguon_tests::net::eventually;
use nguon_tests::province::{POLL, Province, assert_samples_match, instant, per_device};
use nguon_tests::proxy::Proxy;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clip_scheduled_for_one_commune_plays_on_each_of_its_agents_and_nowhere_else() {
    let mut p = Province::new(None, 2, 2).await;
    p.start_agents(|_| None).await;
    p.wait_online().await;
    let (source, sha) = p.clip(3.0).await;
    let delivered = p.delivered(&sha).await;
    let target = p.commune(1);
    let (schedule, at) = p.schedule_in(&sha, &[target.as_str()], 8).await;

    let inside = p.ids(|a| a.device.area.as_str() == target);
    let outside = p.ids(|a| a.device.area.as_str() != target);
    let plays = p.wait_plays(&schedule, &inside, Duration::from_secs(60)).await;

    // Exactly one proof of play per targeted agent, none elsewhere, each on time.
    let counts = per_device(&plays);
    for d in &inside {
        assert_eq!(counts.get(d), Some(&1), "proofs of play per device: {counts:?}");
    }
    for d in &outside {
        assert_eq!(
            counts.get(d),
            None,
            "{d} is outside {target} but reported a play: {plays:?}"
        );
    }
    for play in &plays {
        let started = instant(play, "started_at").expect("started_at");
        let late = (started - at).num_milliseconds();
        assert!(
            (0..1000).contains(&late),
            "started {late} ms after its start: {play}"
        );
        // Devices play (and report) the upload's loudness-normalised rendition.
        assert_eq!(
            play.get("sha256").and_then(Value::as_str),
            Some(delivered.as_str())
        );
    }
    // The samples that reached each sink are the decoded source; agents outside played nothing.
    for a in &p.agents {
        if inside.contains(a.device.id.as_str()) {
            assert_samples_match(a, &source);
        } else {
            assert!(
                a.wav_files().is_empty(),
                "{} played {:?}",
                a.device.id,
                a.wav_files()
            );
        }
    }
    // A calm day logs no error: an operator reads every ERROR line as something to act on (the
    // embedded broker's start-up probe used to leave one at every start).
    let log = p.server.log_tail(usize::MAX);
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(
        errors.is_empty(),
        "the server logged errors:\n{}",
        errors.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_pending_across_a_broker_restart_still_plays_on_time_and_its_reports_arrive() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut broker = Mosquitto::start(&dir.path().join("mosquitto"))
        .await
        .expect("mosquitto");
    let mut p = Province::new(Some(BrokerChoice::External(broker.url())), 1, 2).await;
    p.start_agents(|_| None).await;
    p.wait_online().await;
    let (_, sha) = p.clip(2.0).await;
    let delivered = p.delivered(&sha).await;
    let commune = p.commune(1);
    let (schedule, at) = p.schedule_in(&sha, &[commune.as_str()], 12).await;

    // Every agent holds the schedule and the media before the broker goes away.
    for a in &p.agents {
        eventually(
            "the manifest and media on the agent",
            Duration::from_secs(30),
            POLL,
            || async {
                if a.stored_schedule_ids().contains(&schedule) && a.has_cached(&delivered) {
                    Ok(())
                } else {
                    Err(format!("stored schedules {:?}", a.stored_schedule_ids()))
                }
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", p.logs()));
    }
    assert!(Utc::now() < at, "the broker must restart before the start time");
    broker.restart().await.expect("broker restarts");
    assert!(Utc::now() < at, "the broker must restart before the start time");

    let everyone = p.ids(|_| true);
    let plays = p.wait_plays(&schedule, &everyone, Duration::from_secs(90)).await;
    assert_eq!(
        per_device(&plays).values().copied().collect::<Vec<_>>(),
        vec![1, 1]
    );
    for play in &plays {
        let started = instant(play, "started_at").expect("started_at");
        let late = (started - at).num_milliseconds();
        assert!(
            (0..1000).contains(&late),
            "started {late} ms after its start: {play}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_committed_just_before_the_server_is_killed_reaches_every_targeted_device_after_restart() {
    let mut p = Province::new(None, 1, 3).await;
    p.start_agents(|_| None).await;
    p.wait_online().await;
    let (_, sha) = p.clip(2.0).await;
    let commune = p.commune(1);
    // The schedule is committed (201), then the server dies at once.
    let (schedule, _) = p.schedule_in(&sha, &[commune.as_str()], 20).await;
    p.server.kill9();
    p.server.restart().await.expect("server restarts");

    let everyone = p.ids(|_| true);
    let plays = p.wait_plays(&schedule, &everyone, Duration::from_secs(90)).await;
    let counts = per_device(&plays);
    assert!(
        counts.values().all(|n| *n == 1),
        "one proof of play each: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_cut_off_the_network_across_its_start_time_plays_from_cache_and_reports_after_reconnecting()
{
    let mut p = Province::new(None, 1, 1).await;
    let proxy = Proxy::start(p.server.broker.addr()).await.expect("proxy");
    let via = proxy.addr();
    p.start_agents(|_| Some(via)).await;
    p.wait_online().await;
    let (source, sha) = p.clip(2.0).await;
    let delivered = p.delivered(&sha).await;
    let commune = p.commune(1);
    let (schedule, at) = p.schedule_in(&sha, &[commune.as_str()], 10).await;
    let agent = &p.agents[0];
    eventually(
        "the manifest and media on the agent",
        Duration::from_secs(30),
        POLL,
        || async {
            if agent.stored_schedule_ids().contains(&schedule) && agent.has_cached(&delivered) {
                Ok(())
            } else {
                Err(format!("stored schedules {:?}", agent.stored_schedule_ids()))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", p.logs()));

    // No network from before the start time until after the play ended.
    proxy.cut();
    assert!(Utc::now() < at, "the network must be cut before the start time");
    eventually(
        "the agent to play offline",
        Duration::from_secs(40),
        POLL,
        || async {
            let done = agent
                .sidecars()
                .iter()
                .any(|s| s.get("outcome").and_then(Value::as_str) == Some("played"));
            if done {
                Ok(())
            } else {
                Err("no finished play in the WAV sink".to_string())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", p.logs()));
    assert_samples_match(agent, &source);
    let while_cut = p
        .api()
        .plays(&format!("schedule={schedule}"))
        .await
        .expect("plays");
    assert!(
        while_cut.is_empty(),
        "a report crossed a cut network: {while_cut:?}"
    );

    proxy.restore();
    let plays = p
        .wait_plays(&schedule, &p.ids(|_| true), Duration::from_secs(120))
        .await;
    assert_eq!(plays.len(), 1, "{plays:?}");
    let late = (instant(&plays[0], "started_at").expect("started_at") - at).num_milliseconds();
    assert!(
        (0..1000).contains(&late),
        "played offline {late} ms after its start"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_made_by_the_server_from_vietnamese_text_plays_sample_for_sample_on_an_agent() {
    let mut p = Province::new(None, 1, 1).await;
    p.start_agents(|_| None).await;
    p.wait_online().await;
    // Text-to-speech on the server: normalised, synthesised, loudness-normalised, stored as media.
    let tts = p
        .api()
        .post(
            "/api/v1/tts/preview",
            &serde_json::json!({"text": "UBND xã thông báo: ngày 15/6/2025 tiêm chủng cho 120 trẻ.", "voice": "vi"}),
        )
        .await
        .expect("tts preview");
    assert_eq!(
        tts.get("normalized").and_then(Value::as_str),
        Some(
            "Ủy ban nhân dân xã thông báo: ngày mười lăm tháng sáu năm hai nghìn không trăm hai mươi lăm tiêm chủng cho một trăm hai mươi trẻ."
        ),
        "{tts}"
    );
    let sha = tts
        .pointer("/media/sha256")
        .and_then(Value::as_str)
        .expect("speech media sha256")
        .to_string();
    p.api()
        .post(&format!("/api/v1/media/{sha}/approve"), &serde_json::json!({}))
        .await
        .expect("approve the speech");
    // The stored bytes are the source the agent must reproduce.
    let bytes = reqwest::get(format!("{}/media/{sha}", p.api().base()))
        .await
        .expect("fetch media")
        .bytes()
        .await
        .expect("media body");
    let source = p.dir.path().join("speech-source");
    std::fs::write(&source, &bytes).expect("write source");

    let commune = p.commune(1);
    let (schedule, _) = p.schedule_in(&sha, &[commune.as_str()], 8).await;
    let devices = p.ids(|_| true);
    let plays = p.wait_plays(&schedule, &devices, Duration::from_secs(60)).await;
    assert_eq!(per_device(&plays).values().copied().collect::<Vec<_>>(), vec![1]);
    assert_samples_match(&p.agents[0], &source);
}
