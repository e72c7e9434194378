//! Playback through the WAV sink: exact samples and first-sample times, and preemption of a
//! normal item by an emergency (interrupted, or paused and resumed).

use chrono::Utc;
use nguon_agent::AgentEventKind;
use nguon_agent::sink::decode_file;
use nguon_protocol::{Command, EventBody, OnPreempt, PlayOutcome, Priority, topic};

use crate::common::*;
use crate::env::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wav_sink_writes_exactly_the_decoded_samples_of_mp3_ogg_flac_and_wav_and_records_the_first_sample_time()
 {
    let env = Env::new("lc-formats");
    let src = env.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let wav = speech_wav(&src, "tin", "Thông báo lịch tiêm chủng cho trẻ em trong xã");
    let ms = wav_ms(&wav);
    let files = [
        ("wav", wav.clone()),
        ("mp3", to_mp3(&wav)),
        ("ogg", to_ogg(&wav)),
        ("flac", to_flac(&wav)),
    ];
    let start = Utc::now() + chrono::Duration::seconds(3);
    let mut items = Vec::new();
    let mut refs = Vec::new();
    for (i, (kind, path)) in files.iter().enumerate() {
        let r = env.media.add(std::fs::read(path).unwrap(), ms);
        let at = start + chrono::Duration::milliseconds((ms as i64 + 400) * i as i64);
        items.push(item(
            &format!("fmt-{kind}@{}", at.timestamp()),
            at,
            Priority::Normal,
            &r,
            OnPreempt::Interrupt,
        ));
        refs.push(r);
    }
    let (agent, mut rx) = env.start().await;
    let c = env.client().await;
    env.desired(&c, manifest(1, items.clone(), refs)).await;
    for it in &items {
        assert_eq!(ended(&mut rx, &it.id).await, PlayOutcome::Played, "{}", it.id);
    }
    for ((kind, path), it) in files.iter().zip(&items) {
        let want = decode_file(path).unwrap();
        let (rate, ch, got) = env.wav(&it.id);
        assert_eq!((rate, ch), (want.rate, want.channels), "{kind}");
        assert!(
            got == want.samples,
            "{kind}: {} samples written, {} decoded",
            got.len(),
            want.samples.len()
        );
        let side = env.sidecar(&it.id);
        assert_eq!(side.outcome, PlayOutcome::Played);
        assert_eq!(side.sha256, it.media[0]);
        assert!(
            side.first_sample_at.is_some() && side.first_sample_unix_ns.is_some(),
            "{kind}"
        );
    }
    // Independently of our decoder: the WAV source at volume 100 is the PCM itself.
    let mut r = hound::WavReader::open(&wav).unwrap();
    let pcm: Vec<f32> = r.samples::<i16>().map(|s| s.unwrap() as f32 / 32768.0).collect();
    assert!(env.wav(&items[0].id).2 == pcm);
    agent.shutdown().await;
}

async fn preemption(on_preempt: OnPreempt) {
    let env = Env::new(if on_preempt == OnPreempt::Resume {
        "lc-resume"
    } else {
        "lc-interrupt"
    });
    let src = env.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let tone = tone_wav(&src, "nhac", 5.0);
    let alert = speech_wav(&src, "khan", "Khẩn cấp: bão sắp đổ bộ");
    let tr = env.media.add(std::fs::read(&tone).unwrap(), 5000);
    let ar = env.media.add(std::fs::read(&alert).unwrap(), wav_ms(&alert));
    let at = Utc::now() + chrono::Duration::seconds(3);
    let normal = item(
        &format!("normal@{}", at.timestamp()),
        at,
        Priority::Normal,
        &tr,
        on_preempt,
    );
    let (agent, mut rx) = env.start().await;
    let mut c = env.client().await;
    env.desired(&c, manifest(1, vec![normal.clone()], vec![tr.clone()]))
        .await;
    wait_event(
        &mut rx,
        WAIT,
        |k| matches!(k, AgentEventKind::FirstSample { item_id, .. } if *item_id == normal.id),
    )
    .await;
    let mut em = item(
        "emergency-1",
        Utc::now(),
        Priority::Emergency,
        &ar,
        OnPreempt::Interrupt,
    );
    em.schedule_id = String::new();
    let cmd_id = env
        .command(
            &c,
            Command::PlayNow {
                item: em.clone(),
                media: vec![ar.clone()],
            },
        )
        .await;
    let want = if on_preempt == OnPreempt::Resume {
        PlayOutcome::Resumed
    } else {
        PlayOutcome::Interrupted
    };
    let mut outcomes = std::collections::HashMap::new();
    while outcomes.len() < 2 {
        let ev = wait_event(&mut rx, WAIT, |k| matches!(k, AgentEventKind::ItemEnded { .. })).await;
        if let AgentEventKind::ItemEnded { item_id, outcome } = ev.kind {
            outcomes.insert(item_id, outcome);
        }
    }
    assert_eq!(outcomes[&em.id], PlayOutcome::Played);
    assert_eq!(outcomes[&normal.id], want);
    let mut seen = Vec::new();
    c.events_until(&mut seen, WAIT, |s| {
        !plays(s, &normal.id).is_empty() && !plays(s, &em.id).is_empty()
    })
    .await;
    let p = plays(&seen, &normal.id)[0].clone();
    assert_eq!(p.outcome, want);
    if want == PlayOutcome::Interrupted {
        assert!(p.reason.as_deref().unwrap_or("").contains("emergency"), "{p:?}");
        let (_, _, got) = env.wav(&normal.id);
        assert!(got.len() < decode_file(&tone).unwrap().samples.len());
    } else {
        // Resumed from where it stopped: every sample of the source went out, once.
        assert!(env.wav(&normal.id).2 == decode_file(&tone).unwrap().samples);
    }
    assert!(
        seen.iter()
            .any(|e| matches!(&e.body, EventBody::Ack { message_id, ok: true, .. } if *message_id == cmd_id))
    );
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_command_interrupts_a_normal_item_midway_and_the_report_says_interrupted() {
    preemption(OnPreempt::Interrupt).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_command_pauses_a_resumable_item_which_then_finishes_and_reports_resumed() {
    preemption(OnPreempt::Resume).await;
}

/// Issue 12 §6: the agent measures what it hands to the output. A tone played to its end is
/// reported with its level; digital silence, and the same tone at volume 0, are reported
/// `silent`; the WAV sidecar carries the same level. Telemetry carries the data disk's space.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_play_that_stays_below_the_silence_threshold_is_reported_silent_with_its_level() {
    let env = Env::new("lc-silence");
    let src = env.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let tone = tone_wav(&src, "nhac", 1.5);
    let quiet = src.join("lang.wav");
    run(std::process::Command::new("sox")
        .args(["-n", "-r", "22050", "-c", "1", "-b", "16"])
        .arg(&quiet)
        .args(["trim", "0", "1.5"]));
    let tr = env.media.add(std::fs::read(&tone).unwrap(), 1500);
    let qr = env.media.add(std::fs::read(&quiet).unwrap(), 1500);
    let at = Utc::now() + chrono::Duration::seconds(3);
    let loud = item("loud@1", at, Priority::Normal, &tr, OnPreempt::Interrupt);
    let silent = item(
        "silent@1",
        at + chrono::Duration::seconds(2),
        Priority::Normal,
        &qr,
        OnPreempt::Interrupt,
    );
    let mut muted = item(
        "muted@1",
        at + chrono::Duration::seconds(4),
        Priority::Normal,
        &tr,
        OnPreempt::Interrupt,
    );
    muted.volume = 0;
    let (agent, mut rx) = env.start().await;
    let mut c = env.client().await;
    let mut tel = TestClient::connect(env.broker.port, &[topic::telemetry(&device(&env.dev))]).await;
    let items = vec![loud.clone(), silent.clone(), muted.clone()];
    env.desired(&c, manifest(1, items.clone(), vec![tr, qr])).await;
    for it in &items {
        assert_eq!(ended(&mut rx, &it.id).await, PlayOutcome::Played, "{}", it.id);
    }
    let mut seen = Vec::new();
    c.events_until(&mut seen, WAIT, |s| {
        items.iter().all(|i| !plays(s, &i.id).is_empty())
    })
    .await;
    let got = |id: &str| {
        let p = plays(&seen, id)[0];
        (p.max_rms_dbfs, p.silent)
    };
    // A sine at half scale: −3 dBFS − 6 dBFS, and volume 100 (gain 1).
    assert_eq!(got("loud@1"), (Some(-10), false));
    // sox dithers its "silence": noise near −97 dBFS, far below the threshold.
    let (level, silent) = got("silent@1");
    assert!(
        silent && level.is_some_and(|l| (-110..=-90).contains(&l)),
        "{level:?}"
    );
    assert_eq!(got("muted@1"), (Some(-120), true));
    let side = env.sidecar("loud@1").max_rms_dbfs.unwrap();
    assert!((side + 9.03).abs() < 0.1, "{side}");
    // Telemetry: the data disk's free space and size.
    let (_, payload) = tokio::time::timeout(WAIT, tel.rx.recv()).await.unwrap().unwrap();
    let t: nguon_protocol::Telemetry = nguon_protocol::Signed::from_bytes(&payload)
        .unwrap()
        .parse_payload()
        .unwrap();
    let total = t.disk_total_bytes.expect("the size of the data disk");
    assert!(t.disk_free_bytes > 0 && t.disk_free_bytes <= total, "{t:?}");
    agent.shutdown().await;
}
