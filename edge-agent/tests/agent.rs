//! System tests of the edge agent against a private mosquitto, a media server with Range support
//! and a test signing key. Each test has its own temp dir, broker and ports.

mod common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use common::*;
use nguon_agent::sink::{WavSidecar, decode_file};
use nguon_agent::{Agent, AgentEvent, AgentEventKind, AgentHandle, AgentOptions};
use nguon_device_config::DeviceConfig;
use nguon_protocol::{
    Audience, Command, Event, EventBody, OnPreempt, PlayOutcome, Priority, ServerBody, ServerKey,
    ServerMessage, topic,
};
use tokio::sync::broadcast;

struct Env {
    tmp: tempfile::TempDir,
    broker: Mosquitto,
    media: MediaServer,
    signer: Signer,
    dev: String,
    config: PathBuf,
    wav_dir: PathBuf,
}

impl Env {
    fn new(dev: &str) -> Self {
        init();
        let tmp = tempfile::tempdir().unwrap();
        let broker = Mosquitto::start();
        let media = MediaServer::start();
        let signer = Signer::new();
        let wav_dir = tmp.path().join("wav");
        let config = write_config(
            tmp.path(),
            dev,
            &broker.url(),
            &media.base_url,
            &signer.key.public_b64(),
            &format!("wav:{}", wav_dir.display()),
        );
        Env {
            tmp,
            broker,
            media,
            signer,
            dev: dev.into(),
            config,
            wav_dir,
        }
    }
    fn data(&self) -> PathBuf {
        self.tmp.path().join("data")
    }
    async fn start(&self) -> (AgentHandle, broadcast::Receiver<AgentEvent>) {
        let (tx, rx) = broadcast::channel(1024);
        let cfg = DeviceConfig::load(&self.config).unwrap();
        let opts = AgentOptions {
            observer: Some(tx),
            ..Default::default()
        };
        let h = Agent::start(cfg, self.tmp.path().to_path_buf(), opts)
            .await
            .unwrap();
        (h, rx)
    }
    fn spawn_process(&self) -> AgentProcess {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_nguon-agent"))
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .stdout(log(&self.tmp))
            .stderr(log(&self.tmp))
            .spawn()
            .unwrap();
        AgentProcess(child)
    }
    fn aud(&self) -> Audience {
        Audience::Device(device(&self.dev))
    }
    /// A client acting as the server: it receives the device's events and answers each batch
    /// with a signed receipt.
    async fn client(&self) -> TestClient {
        TestClient::connect_receipting(
            self.broker.port,
            &[topic::events(&device(&self.dev))],
            self.signer.key.clone(),
        )
        .await
    }
    async fn desired(&self, c: &TestClient, m: nguon_protocol::Manifest) -> uuid::Uuid {
        let msg = self.signer.message(self.aud(), ServerBody::Desired(m));
        c.publish(&topic::desired(&device(&self.dev)), self.signer.sign(&msg), true)
            .await;
        msg.id
    }
    async fn command(&self, c: &TestClient, cmd: Command) -> uuid::Uuid {
        let msg = self.signer.message(self.aud(), ServerBody::Command(cmd));
        c.publish(&topic::cmd(&device(&self.dev)), self.signer.sign(&msg), false)
            .await;
        msg.id
    }
    fn sidecar(&self, item: &str) -> WavSidecar {
        serde_json::from_slice(&std::fs::read(self.wav_dir.join(format!("{item}.json"))).unwrap()).unwrap()
    }
    fn wav(&self, item: &str) -> (u32, u16, Vec<f32>) {
        read_f32_wav(&self.wav_dir.join(format!("{item}.wav")))
    }
}

impl Drop for Env {
    /// A failed test keeps its temp dir (the agent's log, data dir and WAV output) to read.
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.tmp.disable_cleanup(true);
            eprintln!("test failed; its files are kept in {}", self.tmp.path().display());
        }
    }
}

/// An agent process; killed on drop, so a failed test leaves no agent running.
struct AgentProcess(std::process::Child);

impl std::ops::Deref for AgentProcess {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for AgentProcess {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The agent process's log, in the test's temp dir.
fn log(tmp: &tempfile::TempDir) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(tmp.path().join("agent.log"))
        .unwrap()
}

fn plays<'a>(events: &'a [Event], item: &str) -> Vec<&'a nguon_protocol::ProofOfPlay> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Play(p) if p.item_id == item => Some(p),
            _ => None,
        })
        .collect()
}

async fn ended(rx: &mut broadcast::Receiver<AgentEvent>, item: &str) -> PlayOutcome {
    let ev = wait_event(
        rx,
        WAIT,
        |k| matches!(k, AgentEventKind::ItemEnded { item_id, .. } if item_id == item),
    )
    .await;
    match ev.kind {
        AgentEventKind::ItemEnded { outcome, .. } => outcome,
        _ => unreachable!(),
    }
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_broker_down_for_the_whole_slot_the_item_plays_from_cache_and_its_proof_arrives_once_afterwards()
 {
    let mut env = Env::new("lc-offline");
    let src = env.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let tone = tone_wav(&src, "t", 1.0);
    let r = env.media.add(std::fs::read(&tone).unwrap(), 1000);
    let at = Utc::now() + chrono::Duration::seconds(6);
    let it = item(
        &format!("off@{}", at.timestamp()),
        at,
        Priority::Normal,
        &r,
        OnPreempt::Interrupt,
    );
    let (agent, mut rx) = env.start().await;
    let c = env.client().await;
    env.desired(&c, manifest(1, vec![it.clone()], vec![r.clone()]))
        .await;
    wait_event(
        &mut rx,
        WAIT,
        |k| matches!(k, AgentEventKind::MediaReady { sha256 } if *sha256 == r.sha256),
    )
    .await;
    drop(c);
    env.broker.stop();
    wait_event(&mut rx, WAIT, |k| {
        matches!(k, AgentEventKind::Disconnected { .. })
    })
    .await;
    assert_eq!(ended(&mut rx, &it.id).await, PlayOutcome::Played);
    assert!(agent.outbox_len() >= 1);
    env.broker.restart();
    let mut c = env.client().await;
    let mut seen = Vec::new();
    c.events_until(&mut seen, WAIT, |s| !plays(s, &it.id).is_empty())
        .await;
    until(WAIT, || agent.outbox_len() == 0).await;
    // A marker after everything: events from one publisher on one topic arrive in order.
    let marker = env.command(&c, Command::Volume { level: 70 }).await;
    c.events_until(&mut seen, WAIT, |s| {
        s.iter()
            .any(|e| matches!(&e.body, EventBody::Ack { message_id, .. } if *message_id == marker))
    })
    .await;
    let p = plays(&seen, &it.id);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].outcome, PlayOutcome::Played);
    assert!(p[0].started_at.is_some());
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_killed_with_sigkill_resumes_with_a_range_request_after_restart_and_is_verified() {
    let env = Env::new("lc-resume-dl");
    let src = env.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let tone = tone_wav(&src, "long", 20.0);
    let bytes = std::fs::read(&tone).unwrap();
    let r = env.media.add(bytes.clone(), 20_000);
    *env.media.throttle.lock().unwrap() = Some(200_000);
    let at = Utc::now() + chrono::Duration::hours(1);
    let it = item(
        &format!("dl@{}", at.timestamp()),
        at,
        Priority::Normal,
        &r,
        OnPreempt::Interrupt,
    );
    let c = env.client().await;
    env.desired(&c, manifest(1, vec![it], vec![r.clone()])).await;
    let mut agent = env.spawn_process();
    let part = env.data().join("cache").join(format!("{}.part", r.sha256));
    until(WAIT, || {
        std::fs::metadata(&part)
            .map(|m| m.len() > 100_000)
            .unwrap_or(false)
    })
    .await;
    agent.kill().unwrap(); // SIGKILL
    agent.wait().unwrap();
    let before = std::fs::metadata(&part).unwrap().len();
    assert!(before < r.size);
    *env.media.throttle.lock().unwrap() = None;
    let mut agent = env.spawn_process();
    let done = env.data().join("cache").join(&r.sha256);
    until(WAIT, || done.exists()).await;
    agent.kill().unwrap();
    agent.wait().unwrap();
    assert_eq!(std::fs::read(&done).unwrap(), bytes);
    assert!(!part.exists());
    let hits = env.media.hits_for(&r.sha256);
    assert!(
        hits.iter()
            .any(|h| h.range_start.is_some_and(|s| s > 0 && s <= before)),
        "{hits:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_file_with_one_flipped_byte_is_detected_fetched_again_and_never_played() {
    let env = Env::new("lc-flip");
    let src = env.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let wav = speech_wav(&src, "a", "Xin chào bà con");
    let bytes = std::fs::read(&wav).unwrap();
    let r = env.media.add(bytes.clone(), wav_ms(&wav));
    let mut bad = bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    std::fs::create_dir_all(env.data().join("cache")).unwrap();
    std::fs::write(env.data().join("cache").join(&r.sha256), &bad).unwrap();
    let at = Utc::now() + chrono::Duration::seconds(3);
    let it = item(
        &format!("flip@{}", at.timestamp()),
        at,
        Priority::Normal,
        &r,
        OnPreempt::Interrupt,
    );
    let (agent, mut rx) = env.start().await;
    let c = env.client().await;
    env.desired(&c, manifest(1, vec![it.clone()], vec![r.clone()]))
        .await;
    wait_event(
        &mut rx,
        WAIT,
        |k| matches!(k, AgentEventKind::MediaError { sha256, .. } if *sha256 == r.sha256),
    )
    .await;
    assert_eq!(ended(&mut rx, &it.id).await, PlayOutcome::Played);
    assert!(!env.media.hits_for(&r.sha256).is_empty());
    assert_eq!(
        std::fs::read(env.data().join("cache").join(&r.sha256)).unwrap(),
        bytes
    );
    assert!(env.wav(&it.id).2 == decode_file(&wav).unwrap().samples);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_wrongly_signed_expired_and_replayed_messages_are_not_acted_on_and_are_reported() {
    let env = Env::new("lc-guard");
    let (agent, mut rx) = env.start().await;
    // Commands are not retained: wait until the broker has acknowledged the subscriptions.
    wait_event(&mut rx, WAIT, |k| matches!(k, AgentEventKind::Subscribed { .. })).await;
    let mut c = env.client().await;
    let t = topic::cmd(&device(&env.dev));
    let good = env
        .signer
        .message(env.aud(), ServerBody::Command(Command::Volume { level: 30 }));
    let good_bytes = env.signer.sign(&good);
    c.publish(&t, good_bytes.clone(), false).await;
    wait_event(
        &mut rx,
        WAIT,
        |k| matches!(k, AgentEventKind::Acked { message_id, ok: true } if *message_id == good.id),
    )
    .await;

    let mut bad_ids = Vec::new();
    // Unsigned.
    let m = env
        .signer
        .message(env.aud(), ServerBody::Command(Command::Volume { level: 99 }));
    let mut s = env.signer.key.sign(&m);
    s.sig = None;
    c.publish(&t, s.to_bytes(), false).await;
    bad_ids.push(m.id);
    // Signed by another key.
    let m = env
        .signer
        .message(env.aud(), ServerBody::Command(Command::Volume { level: 98 }));
    c.publish(&t, ServerKey::generate().sign(&m).to_bytes(), false)
        .await;
    bad_ids.push(m.id);
    // Expired.
    let mut m = env
        .signer
        .message(env.aud(), ServerBody::Command(Command::Volume { level: 97 }));
    m.issued_at = Utc::now() - chrono::Duration::hours(2);
    m.expires_at = Utc::now() - chrono::Duration::hours(1);
    c.publish(&t, env.signer.sign(&m), false).await;
    bad_ids.push(m.id);
    // Replayed: the same bytes again.
    c.publish(&t, good_bytes, false).await;
    bad_ids.push(good.id);
    // Replayed: an old sequence number under a fresh id.
    let m = ServerMessage::new(
        env.aud(),
        good.seq,
        chrono::Duration::hours(1),
        ServerBody::Command(Command::Volume { level: 96 }),
    );
    c.publish(&t, env.signer.sign(&m), false).await;
    bad_ids.push(m.id);

    let mut seen = Vec::new();
    c.events_until(&mut seen, WAIT, |s| {
        s.iter()
            .filter(|e| matches!(e.body, EventBody::Rejected { .. }))
            .count()
            >= 5
    })
    .await;
    let rejected: Vec<(Option<uuid::Uuid>, String)> = seen
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Rejected {
                message_id, reason, ..
            } => Some((*message_id, reason.clone())),
            _ => None,
        })
        .collect();
    for id in &bad_ids {
        assert!(
            rejected.iter().any(|(m, _)| *m == Some(*id)),
            "{id} not reported: {rejected:?}"
        );
    }
    let reasons: Vec<&str> = rejected.iter().map(|(_, r)| r.as_str()).collect();
    assert!(reasons.iter().any(|r| r.contains("not signed")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("signature")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("expired")), "{reasons:?}");
    assert_eq!(
        reasons.iter().filter(|r| r.contains("replayed")).count(),
        2,
        "{reasons:?}"
    );
    assert_eq!(agent.status().volume, 30);
    let acks = seen
        .iter()
        .filter(|e| matches!(e.body, EventBody::Ack { .. }))
        .count();
    assert_eq!(acks, 1);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_survives_sigkill_between_recording_and_puback_and_every_event_arrives() {
    let mut env = Env::new("lc-outbox");
    let src = env.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let tone = tone_wav(&src, "s", 0.5);
    let r = env.media.add(std::fs::read(&tone).unwrap(), 500);
    // First the agent process gets ready: connected, a manifest applied and the media cached
    // (an item an hour ahead makes it fetch the file). Only then are the start times chosen, so a
    // slow process start on a loaded machine cannot push them into the past, where the agent
    // would rightly report them `missed`.
    let later = Utc::now() + chrono::Duration::hours(1);
    let warm = item(
        &format!("warm@{}", later.timestamp()),
        later,
        Priority::Normal,
        &r,
        OnPreempt::Interrupt,
    );
    let mut c = env.client().await;
    let m1 = env.desired(&c, manifest(1, vec![warm], vec![r.clone()])).await;
    let mut agent = env.spawn_process();
    let mut seen = Vec::new();
    c.events_until(&mut seen, WAIT, |s| acked(s, m1)).await;
    let cached = env.data().join("cache").join(&r.sha256);
    until(WAIT, || cached.exists()).await;
    let t0 = Utc::now() + chrono::Duration::seconds(8);
    let items: Vec<_> = (0..3)
        .map(|i| {
            let at = t0 + chrono::Duration::seconds(2 * i);
            item(
                &format!("ob{i}@{}", at.timestamp()),
                at,
                Priority::Normal,
                &r,
                OnPreempt::Interrupt,
            )
        })
        .collect();
    let m2 = env.desired(&c, manifest(2, items.clone(), vec![r.clone()])).await;
    c.events_until(&mut seen, WAIT, |s| acked(s, m2)).await;
    drop(c);
    env.broker.stop();
    // Played offline: the proofs are recorded, and nothing can acknowledge them.
    for it in &items {
        let side = env.wav_dir.join(format!("{}.json", it.id));
        until(WAIT, || side.exists()).await;
    }
    let outbox = env.data().join("outbox");
    until(WAIT, || {
        outbox_records(&outbox)
            .iter()
            .filter(|e| matches!(e.body, EventBody::Play(_)))
            .count()
            == 3
    })
    .await;
    agent.kill().unwrap(); // SIGKILL
    agent.wait().unwrap();
    let recorded: HashSet<uuid::Uuid> = outbox_records(&outbox).iter().map(|e| e.id).collect();
    assert!(recorded.len() >= 3);
    env.broker.restart();
    let mut c = env.client().await;
    let mut agent = env.spawn_process();
    let mut seen = Vec::new();
    c.events_until(&mut seen, WAIT, |s| {
        let got: HashSet<_> = s.iter().map(|e| e.id).collect();
        recorded.is_subset(&got)
    })
    .await;
    for it in &items {
        let p = plays(&seen, &it.id);
        assert!(!p.is_empty(), "{}", it.id);
        assert!(p.iter().all(|p| p.outcome == PlayOutcome::Played), "{p:?}");
    }
    agent.kill().unwrap();
    agent.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_leaves_the_outbox_only_on_the_servers_signed_receipt_and_is_sent_again_until_then() {
    let mut env = Env::new("lc-receipt");
    let (agent, mut rx) = env.start().await;
    wait_event(&mut rx, WAIT, |k| matches!(k, AgentEventKind::Subscribed { .. })).await;
    // A listener that sends no receipts: the broker takes the ack event (PUBACK), nobody confirms it.
    let mut c = TestClient::connect(env.broker.port, &[topic::events(&device(&env.dev))]).await;
    let cmd = env.command(&c, Command::Volume { level: 35 }).await;
    let mut seen = Vec::new();
    c.events_until(&mut seen, WAIT, |s| acked(s, cmd)).await;
    let ack_id = seen
        .iter()
        .find(|e| matches!(&e.body, EventBody::Ack { message_id, .. } if *message_id == cmd))
        .unwrap()
        .id;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(agent.outbox_len(), 1, "a broker PUBACK must not clear the outbox");

    // A receipt signed by another key is refused and changes nothing.
    let receipt_topic = topic::receipt(&device(&env.dev));
    let forged = receipt_message(&device(&env.dev), vec![ack_id]);
    c.publish(
        &receipt_topic,
        ServerKey::generate().sign(&forged).to_bytes(),
        false,
    )
    .await;
    wait_event(
        &mut rx,
        WAIT,
        |k| matches!(k, AgentEventKind::MessageRejected { message_id: Some(id), .. } if *id == forged.id),
    )
    .await;
    // The ack and the report of the rejection both wait for a receipt.
    until(WAIT, || agent.outbox_len() == 2).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(agent.outbox_len(), 2);

    // The broker restarts (as if it had dropped what it held for the server): on reconnect the
    // agent sends every event without a receipt again, the same ids.
    drop(c);
    env.broker.stop();
    wait_event(&mut rx, WAIT, |k| {
        matches!(k, AgentEventKind::Disconnected { .. })
    })
    .await;
    env.broker.restart();
    let mut c = TestClient::connect(env.broker.port, &[topic::events(&device(&env.dev))]).await;
    let mut again = Vec::new();
    c.events_until(&mut again, WAIT, |s| s.iter().any(|e| e.id == ack_id))
        .await;

    // The server's receipt names the events: they leave the outbox, and the agent says so.
    let ids: Vec<uuid::Uuid> = agent_outbox_ids(&env);
    assert!(ids.contains(&ack_id));
    let receipt = receipt_message(&device(&env.dev), ids.clone());
    c.publish(&receipt_topic, env.signer.sign(&receipt), false).await;
    let delivered = wait_event(&mut rx, WAIT, |k| {
        matches!(k, AgentEventKind::EventsDelivered { .. })
    })
    .await;
    let AgentEventKind::EventsDelivered { ids: gone } = delivered.kind else {
        unreachable!()
    };
    assert!(gone.contains(&ack_id));
    until(WAIT, || agent.outbox_len() == 0).await;
    assert!(outbox_records(&env.data().join("outbox")).is_empty());
    agent.shutdown().await;
}

/// The ids of the events in the agent's outbox directory.
fn agent_outbox_ids(env: &Env) -> Vec<uuid::Uuid> {
    outbox_records(&env.data().join("outbox"))
        .iter()
        .map(|e| e.id)
        .collect()
}

/// Whether the events so far hold the ack of server message `id`.
fn acked(events: &[Event], id: uuid::Uuid) -> bool {
    events
        .iter()
        .any(|e| matches!(&e.body, EventBody::Ack { message_id, .. } if *message_id == id))
}

/// The events recorded in an outbox directory: the `<uuid>.json` files only. A `.tmp` is a write
/// in progress (or cut short by a crash); the agent deletes it on start, it is not a record.
fn outbox_records(outbox: &std::path::Path) -> Vec<Event> {
    std::fs::read_dir(outbox)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| std::fs::read(p).ok())
        .filter_map(|b| serde_json::from_slice::<Event>(&b).ok())
        .collect()
}

#[test]
fn check_config_names_the_file_and_key_and_exits_non_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write_config(
        tmp.path(),
        "lc-1",
        "mqtt://127.0.0.1:1",
        "http://127.0.0.1:1",
        &ServerKey::generate().public_b64(),
        "speaker",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nguon-agent"))
        .arg("check-config")
        .arg(&p)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("agent.toml") && err.contains("audio.output"),
        "{err}"
    );
    let p = write_config(
        tmp.path(),
        "lc-1",
        "mqtt://127.0.0.1:1",
        "http://127.0.0.1:1",
        &ServerKey::generate().public_b64(),
        "null",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nguon-agent"))
        .arg("check-config")
        .arg(&p)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = Duration::ZERO;
}

/// Wait for the first sample of `item` (other events are skipped).
async fn first_sample(rx: &mut broadcast::Receiver<AgentEvent>, item: &str) {
    wait_event(
        rx,
        WAIT,
        |k| matches!(k, AgentEventKind::FirstSample { item_id, .. } if item_id == item),
    )
    .await;
}

/// Collect the outcomes of `items` (in any order).
async fn outcomes(
    rx: &mut broadcast::Receiver<AgentEvent>,
    items: &[&str],
) -> std::collections::HashMap<String, PlayOutcome> {
    let mut out = std::collections::HashMap::new();
    while !items.iter().all(|i| out.contains_key(*i)) {
        let ev = wait_event(rx, WAIT, |k| matches!(k, AgentEventKind::ItemEnded { .. })).await;
        if let AgentEventKind::ItemEnded { item_id, outcome } = ev.kind {
            out.insert(item_id, outcome);
        }
    }
    out
}

/// Receive events until the ack of a marker command sent now: everything the agent recorded
/// before it has arrived (events from one publisher on one topic arrive in order).
async fn drain_with_marker(env: &Env, c: &mut TestClient, seen: &mut Vec<Event>) {
    let marker = env.command(c, Command::Sync).await;
    c.events_until(seen, WAIT, |s| acked(s, marker)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_start_relays_a_throttled_mp3_stream_to_the_wav_sink_sample_exact_and_reports_played_once() {
    let env = Env::new("lc-live");
    let src = env.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let wav = speech_wav(
        &src,
        "truc-tiep",
        "Đây là buổi phát thanh trực tiếp của huyện, xin bà con chú ý lắng nghe",
    );
    let mp3 = to_mp3(&wav);
    let r = env.media.add(std::fs::read(&mp3).unwrap(), wav_ms(&wav));
    // About 1.5 × real time at 64 kbit/s: the stream arrives while it plays.
    *env.media.throttle.lock().unwrap() = Some(12_000);
    let (agent, mut rx) = env.start().await;
    wait_event(&mut rx, WAIT, |k| matches!(k, AgentEventKind::Subscribed { .. })).await;
    let mut c = env.client().await;
    let session = "live-1";
    let cmd = env
        .command(
            &c,
            Command::LiveStart {
                url: format!("{}{}", env.media.base_url, r.url),
                session_id: session.into(),
            },
        )
        .await;
    wait_event(
        &mut rx,
        WAIT,
        |k| matches!(k, AgentEventKind::Acked { message_id, ok: true } if *message_id == cmd),
    )
    .await;
    first_sample(&mut rx, session).await;
    // Telemetry shows the live session while it plays.
    until(WAIT, || {
        agent
            .status()
            .now_playing
            .is_some_and(|n| n.item_id == session && n.sha256.is_empty())
    })
    .await;
    assert_eq!(ended(&mut rx, session).await, PlayOutcome::Played);
    assert!(agent.status().now_playing.is_none());

    let want = decode_file(&mp3).unwrap();
    let (rate, ch, got) = env.wav(session);
    assert_eq!((rate, ch), (want.rate, want.channels));
    assert!(
        got == want.samples,
        "{} samples written, {} decoded",
        got.len(),
        want.samples.len()
    );
    let side = env.sidecar(session);
    assert_eq!(side.outcome, PlayOutcome::Played);
    assert_eq!(side.sha256, "");
    assert_eq!(side.priority, Priority::Priority);
    assert!(side.first_sample_at.is_some());

    let mut seen = Vec::new();
    c.events_until(&mut seen, WAIT, |s| !plays(s, session).is_empty())
        .await;
    drain_with_marker(&env, &mut c, &mut seen).await;
    let p = plays(&seen, session);
    assert_eq!(p.len(), 1, "{p:?}");
    let p = p[0];
    assert_eq!(p.outcome, PlayOutcome::Played);
    assert_eq!(p.schedule_id, "");
    assert_eq!(p.sha256, "");
    assert_eq!(p.priority, Priority::Priority);
    assert!(p.started_at.is_some() && p.ended_at.is_some(), "{p:?}");
    assert!(
        seen.iter()
            .any(|e| matches!(&e.body, EventBody::Ack { message_id, ok: true, .. } if *message_id == cmd))
    );
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_relay_pauses_a_resumable_normal_item_and_an_emergency_interrupts_the_live_relay() {
    let env = Env::new("lc-live-emergency");
    let src = env.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let tone = tone_wav(&src, "nhac", 5.0);
    let alert = speech_wav(&src, "khan", "Khẩn cấp: bão sắp đổ bộ");
    let live = to_mp3(&tone_wav(&src, "live", 30.0));
    let tr = env.media.add(std::fs::read(&tone).unwrap(), 5000);
    let ar = env.media.add(std::fs::read(&alert).unwrap(), wav_ms(&alert));
    let lr = env.media.add(std::fs::read(&live).unwrap(), 30_000);
    let at = Utc::now() + chrono::Duration::seconds(3);
    let normal = item(
        &format!("normal@{}", at.timestamp()),
        at,
        Priority::Normal,
        &tr,
        OnPreempt::Resume,
    );
    let (agent, mut rx) = env.start().await;
    let mut c = env.client().await;
    env.desired(&c, manifest(1, vec![normal.clone()], vec![tr.clone()]))
        .await;
    first_sample(&mut rx, &normal.id).await;
    // The live stream is served at 2 × real time (read when its response starts).
    *env.media.throttle.lock().unwrap() = Some(16_000);
    let session = "live-storm";
    env.command(
        &c,
        Command::LiveStart {
            url: format!("{}{}", env.media.base_url, lr.url),
            session_id: session.into(),
        },
    )
    .await;
    first_sample(&mut rx, session).await;
    *env.media.throttle.lock().unwrap() = None;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut em = item(
        "emergency-live",
        Utc::now(),
        Priority::Emergency,
        &ar,
        OnPreempt::Interrupt,
    );
    em.schedule_id = String::new();
    env.command(
        &c,
        Command::PlayNow {
            item: em.clone(),
            media: vec![ar.clone()],
        },
    )
    .await;
    let got = outcomes(&mut rx, &[session, &em.id, &normal.id]).await;
    assert_eq!(got[session], PlayOutcome::Interrupted);
    assert_eq!(got[&em.id], PlayOutcome::Played);
    assert_eq!(got[&normal.id], PlayOutcome::Resumed);

    let mut seen = Vec::new();
    c.events_until(&mut seen, WAIT, |s| {
        [session, em.id.as_str(), normal.id.as_str()]
            .iter()
            .all(|i| !plays(s, i).is_empty())
    })
    .await;
    drain_with_marker(&env, &mut c, &mut seen).await;
    let lp = plays(&seen, session);
    assert_eq!(lp.len(), 1, "{lp:?}");
    assert_eq!(lp[0].outcome, PlayOutcome::Interrupted);
    assert!(
        lp[0].reason.as_deref().unwrap_or("").contains("emergency"),
        "{lp:?}"
    );
    assert!(lp[0].started_at.is_some());
    // The live relay wrote a prefix of the stream, the normal item every sample once.
    let (_, _, relayed) = env.wav(session);
    let full = decode_file(&live).unwrap().samples;
    assert!(!relayed.is_empty() && relayed.len() < full.len());
    assert!(relayed[..] == full[..relayed.len()]);
    assert!(env.wav(&normal.id).2 == decode_file(&tone).unwrap().samples);
    assert_eq!(env.sidecar(session).outcome, PlayOutcome::Interrupted);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_start_interrupts_a_normal_item_a_second_live_start_replaces_the_first_and_live_stop_ends_it() {
    let env = Env::new("lc-live-stop");
    let src = env.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let tone = tone_wav(&src, "nhac", 8.0);
    let live = to_mp3(&speech_wav(
        &src,
        "live",
        "Bản tin trực tiếp từ huyện về tình hình mưa lũ, đề nghị bà con theo dõi thường xuyên",
    ));
    let tr = env.media.add(std::fs::read(&tone).unwrap(), 8000);
    let lr = env.media.add(std::fs::read(&live).unwrap(), 5000);
    let url = format!("{}{}", env.media.base_url, lr.url);
    let at = Utc::now() + chrono::Duration::seconds(3);
    let normal = item(
        &format!("normal@{}", at.timestamp()),
        at,
        Priority::Normal,
        &tr,
        OnPreempt::Interrupt,
    );
    let (agent, mut rx) = env.start().await;
    let mut c = env.client().await;
    env.desired(&c, manifest(1, vec![normal.clone()], vec![tr.clone()]))
        .await;
    first_sample(&mut rx, &normal.id).await;
    *env.media.throttle.lock().unwrap() = Some(12_000);
    env.command(
        &c,
        Command::LiveStart {
            url: url.clone(),
            session_id: "live-a".into(),
        },
    )
    .await;
    first_sample(&mut rx, "live-a").await;
    env.command(
        &c,
        Command::LiveStart {
            url: url.clone(),
            session_id: "live-b".into(),
        },
    )
    .await;
    first_sample(&mut rx, "live-b").await;
    until(WAIT, || {
        agent.status().now_playing.is_some_and(|n| n.item_id == "live-b")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    // A live_stop naming another session changes nothing.
    env.command(
        &c,
        Command::LiveStop {
            session_id: "live-a".into(),
        },
    )
    .await;
    env.command(
        &c,
        Command::LiveStop {
            session_id: "live-b".into(),
        },
    )
    .await;
    // (The ends of the normal item and of live-a went by while waiting for first samples; their
    // proofs are checked below.)
    assert_eq!(ended(&mut rx, "live-b").await, PlayOutcome::Played);
    until(WAIT, || agent.status().now_playing.is_none()).await;

    // A stream that cannot be opened: accepted, then reported failed with the reason.
    let bad = env
        .command(
            &c,
            Command::LiveStart {
                url: format!("{}/live/nothing-here", env.media.base_url),
                session_id: "live-404".into(),
            },
        )
        .await;
    assert_eq!(ended(&mut rx, "live-404").await, PlayOutcome::Failed);

    let mut seen = Vec::new();
    c.events_until(&mut seen, WAIT, |s| {
        [normal.id.as_str(), "live-a", "live-b", "live-404"]
            .iter()
            .all(|i| !plays(s, i).is_empty())
    })
    .await;
    drain_with_marker(&env, &mut c, &mut seen).await;
    let one = |id: &str| {
        let p = plays(&seen, id);
        assert_eq!(p.len(), 1, "{id}: {p:?}");
        p[0].clone()
    };
    let n = one(&normal.id);
    assert_eq!(n.outcome, PlayOutcome::Interrupted);
    assert!(
        n.reason.as_deref().unwrap_or("").contains("live session live-a"),
        "{n:?}"
    );
    let a = one("live-a");
    assert_eq!(a.outcome, PlayOutcome::Interrupted);
    assert!(
        a.reason
            .as_deref()
            .unwrap_or("")
            .contains("replaced by live session live-b"),
        "{a:?}"
    );
    let b = one("live-b");
    assert_eq!(b.outcome, PlayOutcome::Played);
    assert!(b.started_at.is_some() && b.ended_at.is_some());
    let f = one("live-404");
    assert_eq!(f.outcome, PlayOutcome::Failed);
    assert!(f.reason.as_deref().unwrap_or("").contains("404"), "{f:?}");
    assert!(f.started_at.is_none());
    assert!(acked(&seen, bad));
    // live-b was stopped midway: what it wrote is a prefix of the stream.
    let (_, _, relayed) = env.wav("live-b");
    let full = decode_file(&live).unwrap().samples;
    assert!(!relayed.is_empty() && relayed.len() < full.len());
    assert!(relayed[..] == full[..relayed.len()]);
    assert_eq!(env.sidecar("live-b").outcome, PlayOutcome::Played);
    assert_eq!(env.sidecar("live-a").outcome, PlayOutcome::Interrupted);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_null_sink_a_live_session_fetches_nothing_and_lasts_until_live_stop() {
    let env = Env::new("lc-live-null");
    let (tx, mut rx) = broadcast::channel(1024);
    let opts = AgentOptions {
        observer: Some(tx),
        sink: Some(nguon_agent::Sink::Null),
        ..Default::default()
    };
    let cfg = DeviceConfig::load(&env.config).unwrap();
    let agent = Agent::start(cfg, env.tmp.path().to_path_buf(), opts)
        .await
        .unwrap();
    wait_event(&mut rx, WAIT, |k| matches!(k, AgentEventKind::Subscribed { .. })).await;
    let c = env.client().await;
    env.command(
        &c,
        Command::LiveStart {
            url: "/live/sim".into(),
            session_id: "live-sim".into(),
        },
    )
    .await;
    first_sample(&mut rx, "live-sim").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.command(
        &c,
        Command::LiveStop {
            session_id: "live-sim".into(),
        },
    )
    .await;
    assert_eq!(ended(&mut rx, "live-sim").await, PlayOutcome::Played);
    assert!(env.media.hits.lock().unwrap().is_empty());
    agent.shutdown().await;
}
