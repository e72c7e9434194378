//! Provisioning → agent → server, end to end: a station list goes through `nguon-provision`
//! against a running nguon-server, the registry is imported, and one device's bundle runs the real
//! agent (in-process) against the server's embedded broker. The broker's credential check and the
//! server's report-signature check are what is tested, so the embedded broker is always used
//! (`NGUON_TEST_MQTT_URL` is ignored). With `NGUON_TEST_DATABASE_URL` set (postgres), the server
//! runs on a fresh database of its own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use nguon_agent::{Agent, AgentEvent, AgentEventKind, AgentHandle, AgentOptions};
use nguon_protocol::{
    DeviceId, DeviceKey, Event, EventBatch, EventBody, PlayOutcome, Priority, ProofOfPlay, topic,
};
use nguon_provision::bundle;
use nguon_provision::{BulkOptions, DeviceConfig, Registry};
use nguon_server::config::Secret;
use nguon_server::{Application, Settings};
use nguon_tests::db::TestDatabase;
use nguon_tests::net::{free_port, random_suffix};
use serde_json::{Value, json};
use tokio::sync::broadcast;

const TOKEN: &str = "provisioned-agent-admin-token-0123456789";
const PROVINCE: &str = "08";
const COMMUNE: &str = "08003";
/// Deadline of every wait.
const WAIT: Duration = Duration::from_secs(30);

/// The server, running in-process until dropped.
struct Server {
    base: String,
    mqtt: SocketAddr,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _db: TestDatabase,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

impl Server {
    async fn start(data_dir: PathBuf) -> Server {
        let mut settings = Settings {
            http_addr: "127.0.0.1:0".parse().unwrap(),
            mqtt_addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            mqtt_url: None,
            data_dir,
            admin_token: Some(Secret::new(TOKEN)),
            dispatch_debounce_ms: 20,
            ..Settings::default()
        };
        let db = TestDatabase::fresh().await.expect("a test database");
        if let Some(url) = db.url() {
            settings.database_url = Some(Secret::new(url));
        }
        let app = Application::build(settings).await.expect("the server builds");
        let base = format!("http://127.0.0.1:{}", app.http_port());
        let mqtt = app.mqtt_addr().expect("the embedded broker runs");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            if let Err(e) = app
                .run_until_stopped(async move {
                    let _ = rx.await;
                })
                .await
            {
                eprintln!("server stopped with an error: {e}");
            }
        });
        Server {
            base,
            mqtt,
            http: reqwest::Client::new(),
            stop: Some(tx),
            _db: db,
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("GET");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }

    async fn get_json(&self, path: &str) -> Value {
        let (s, body) = self.get(path).await;
        assert_eq!(s, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    async fn post(&self, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST");
        let s = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (s, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post(path, "application/json", serde_json::to_vec(body).unwrap())
            .await
    }

    async fn online(&self, id: &str) -> bool {
        self.get_json(&format!("/api/v1/devices/{id}")).await["online"] == true
    }

    async fn plays(&self, id: &str) -> Vec<Value> {
        match self.get_json(&format!("/api/v1/plays?device={id}")).await {
            Value::Array(v) => v,
            other => panic!("/api/v1/plays is not a list: {other}"),
        }
    }

    async fn bad_signatures(&self) -> u64 {
        let (s, text) = self.get("/metrics").await;
        assert_eq!(s, 200, "{text}");
        text.lines()
            .find_map(|l| l.strip_prefix("nguon_reports_bad_signature_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
            .unwrap_or_else(|| panic!("no nguon_reports_bad_signature_total in /metrics:\n{text}"))
    }
}

/// A deadline for a polling loop: `tick` sleeps 150 ms, or panics naming `what` once it passed.
struct Deadline {
    end: tokio::time::Instant,
    what: &'static str,
}

impl Deadline {
    fn new(what: &'static str) -> Self {
        Deadline {
            end: tokio::time::Instant::now() + WAIT,
            what,
        }
    }
    async fn tick(&self) {
        assert!(
            tokio::time::Instant::now() < self.end,
            "deadline passed waiting until {}",
            self.what
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// One provisioned device unpacked from its bundle into `dir`: its config (with the data dir and
/// output moved into the test's temp dir), password and signing key.
struct Unpacked {
    dir: PathBuf,
    config: DeviceConfig,
    password: String,
    key: DeviceKey,
}

fn unpack(bundle_path: &Path, dir: &Path) -> Unpacked {
    std::fs::create_dir_all(dir).unwrap();
    let mut toml = None;
    for (name, bytes, _) in bundle::read_entries(bundle_path).unwrap() {
        let file = Path::new(&name)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        if file == bundle::CONFIG_FILE {
            toml = Some(String::from_utf8(bytes.clone()).unwrap());
        }
        if [bundle::PASSWORD_FILE, bundle::KEY_FILE].contains(&file.as_str()) {
            std::fs::write(dir.join(&file), &bytes).unwrap();
        }
    }
    let mut config = DeviceConfig::parse(&toml.expect("the bundle holds agent.toml"), "agent.toml").unwrap();
    config.storage.data_dir = dir.join("data");
    config.audio.output = format!("wav:{}", dir.join("wav").display());
    let password = config.mqtt_password(dir).unwrap();
    let key = DeviceKey::from_b64(
        std::fs::read_to_string(dir.join(bundle::KEY_FILE))
            .unwrap()
            .trim(),
    )
    .unwrap();
    Unpacked {
        dir: dir.to_path_buf(),
        config,
        password,
        key,
    }
}

async fn start_agent(config: DeviceConfig, dir: &Path) -> (AgentHandle, broadcast::Receiver<AgentEvent>) {
    let (tx, rx) = broadcast::channel(1024);
    let opts = AgentOptions {
        observer: Some(tx),
        ..Default::default()
    };
    let h = Agent::start(config, dir.to_path_buf(), opts)
        .await
        .expect("the agent starts");
    (h, rx)
}

/// One second of a 440 Hz tone, 16-bit mono WAV.
fn tone() -> Vec<u8> {
    let mut cur = std::io::Cursor::new(Vec::new());
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 22050,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::new(&mut cur, spec).unwrap();
    for i in 0..22050 {
        let s = (i as f32 * 440.0 * 2.0 * std::f32::consts::PI / 22050.0).sin();
        w.write_sample((s * 12000.0) as i16).unwrap();
    }
    w.finalize().unwrap();
    cur.into_inner()
}

/// A report batch of one proof of play for `device`, signed with `key` (or unsigned).
fn report(device: &DeviceId, key: Option<&DeviceKey>) -> (uuid::Uuid, Vec<u8>) {
    let id = uuid::Uuid::new_v4();
    let now = Utc::now();
    let batch = EventBatch {
        v: nguon_protocol::PROTOCOL_VERSION,
        device: device.clone(),
        sent_at: now,
        events: vec![Event {
            id,
            at: now,
            body: EventBody::Play(ProofOfPlay {
                item_id: format!("forged@{}", now.timestamp()),
                schedule_id: "forged".into(),
                occurrence_at: now,
                sha256: "0".repeat(64),
                priority: Priority::Normal,
                started_at: Some(now),
                ended_at: Some(now),
                outcome: PlayOutcome::Played,
                reason: None,
                max_rms_dbfs: None,
                silent: false,
                relay: None,
            }),
        }],
    };
    (id, batch.seal(key).to_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provisioned_device_logs_in_to_the_embedded_broker_and_only_its_own_signed_reports_are_accepted() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    sqlx::any::install_default_drivers();
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path().join("server")).await;

    // Provision one commune with three loudspeakers against this server.
    let key = server.get_json("/api/v1/keys/server").await["public_key"]
        .as_str()
        .expect("the server key")
        .to_string();
    let stations = tmp.path().join("stations.csv");
    let mut csv = String::from("commune_code,village,station,kind,lat,lon,audio_output,language\n");
    for i in 1..=3 {
        csv.push_str(&format!(
            "{COMMUNE},Thôn Một,Cụm {i},loudspeaker,22.{i}0000,103.{i}0000,alsa,vi\n"
        ));
    }
    std::fs::write(&stations, csv).unwrap();
    let out = tmp.path().join("provision");
    let report_ = nguon_provision::bulk(&BulkOptions {
        stations,
        out: out.clone(),
        server_url: Some(server.base.clone()),
        server_public_key: Some(key),
        broker_url: Some(format!("mqtt://{}", server.mqtt)),
        province_code: Some(PROVINCE.into()),
        ..Default::default()
    })
    .expect("provisioning succeeds");
    assert_eq!(report_.created.len(), 3, "{}", report_.table());
    let registry_bytes = std::fs::read(out.join("registry.json")).unwrap();
    let registry: Registry = serde_json::from_slice(&registry_bytes).unwrap();
    let ids: Vec<String> = registry
        .devices
        .iter()
        .filter(|d| d.kind == "loudspeaker")
        .map(|d| d.id.clone())
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    let (s, summary) = server
        .post("/api/v1/fleet/import", "application/json", registry_bytes)
        .await;
    assert_eq!(s, 200, "fleet import: {summary}");

    let layout = nguon_provision::provision::Layout { root: out.clone() };
    let dev = unpack(&layout.bundle(&ids[0]), &tmp.path().join("dev-a"));
    let other = unpack(&layout.bundle(&ids[1]), &tmp.path().join("dev-b"));
    let id = ids[0].clone();
    let device = DeviceId::parse(&id).unwrap();
    assert_eq!(dev.config.device.id, device);

    // (b) The same config with a wrong password is refused by the broker, again and again, and the
    // server keeps the device offline. (The embedded broker closes the connection without a
    // CONNACK code, so a refusal is seen as a disconnection that never had a `Connected` before.)
    {
        let mut bad = dev.config.clone();
        bad.mqtt.password = Some(format!("{}-wrong", dev.password));
        bad.mqtt.password_file = None;
        bad.storage.data_dir = dev.dir.join("data-wrong");
        let (agent, mut rx) = start_agent(bad, &dev.dir).await;
        let mut refusals = Vec::new();
        let end = tokio::time::Instant::now() + WAIT;
        while refusals.len() < 2 {
            let ev = tokio::time::timeout_at(end, rx.recv())
                .await
                .unwrap_or_else(|_| panic!("deadline passed; refusals so far: {refusals:?}"))
                .expect("observer open");
            match ev.kind {
                AgentEventKind::Connected { .. } => {
                    panic!("the broker accepted a wrong password (refusals before: {refusals:?})")
                }
                AgentEventKind::Disconnected { reason } => refusals.push(reason),
                _ => {}
            }
        }
        assert!(!agent.status().connected, "{refusals:?}");
        assert!(!server.online(&id).await, "a refused device is shown online");
        agent.shutdown().await;
    }

    // (a) With its provisioned credentials the agent gets in and the server shows it online.
    let (agent, mut rx) = start_agent(dev.config.clone(), &dev.dir).await;
    let d = Deadline::new("the device is online");
    while !server.online(&id).await {
        d.tick().await;
    }
    assert!(agent.status().connected);

    // (c) A clip scheduled for its commune plays, and its signed proof of play is accepted.
    let (s, media) = {
        let boundary = format!("nguon-{}", random_suffix());
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"tone.wav\"\r\n\
             Content-Type: audio/wav\r\n\r\n"
        )
        .into_bytes();
        body.extend(tone());
        body.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
        server
            .post(
                "/api/v1/media",
                &format!("multipart/form-data; boundary={boundary}"),
                body,
            )
            .await
    };
    assert!(s == 200 || s == 201, "media upload: {s} {media}");
    let sha = media["sha256"].as_str().expect("sha256").to_string();
    let (s, approved) = server
        .post_json(&format!("/api/v1/media/{sha}/approve"), &json!({}))
        .await;
    assert_eq!(
        (s, approved["status"].as_str()),
        (200, Some("approved")),
        "{approved}"
    );
    // The start is chosen now that the agent is online, with room for dispatch and download.
    let at = Utc::now() + chrono::Duration::seconds(10);
    let (s, created) = server
        .post_json(
            "/api/v1/schedules",
            &json!({
                "title": "Thông báo thử",
                "media": [sha],
                "targets": {"areas": [COMMUNE]},
                "rule": {"kind": "once", "at": at.format("%Y-%m-%dT%H:%M:%S").to_string()},
                "time_zone": "UTC",
            }),
        )
        .await;
    assert_eq!(s, 201, "schedule: {created}");
    let schedule_id = created["schedule"]["id"]
        .as_str()
        .expect("schedule id")
        .to_string();
    let mut played = None;
    let end = tokio::time::Instant::now() + WAIT + Duration::from_secs(10);
    while played.is_none() {
        let ev = tokio::time::timeout_at(end, rx.recv())
            .await
            .expect("deadline passed waiting for the scheduled item to end")
            .expect("observer open");
        if let AgentEventKind::ItemEnded { item_id, outcome } = ev.kind
            && item_id.starts_with(&format!("{schedule_id}@"))
        {
            played = Some((item_id, outcome));
        }
    }
    let (item_id, outcome) = played.unwrap();
    assert_eq!(outcome, PlayOutcome::Played, "{item_id}");
    let d = Deadline::new("the proof of play is listed");
    let accepted = loop {
        let found = server
            .plays(&id)
            .await
            .into_iter()
            .find(|p| p["item_id"].as_str() == Some(item_id.as_str()));
        match found {
            Some(p) => break p,
            None => d.tick().await,
        }
    };
    assert_eq!(accepted["device_id"], id.as_str(), "{accepted}");
    assert_eq!(accepted["schedule_id"], schedule_id.as_str(), "{accepted}");
    assert_eq!(accepted["outcome"], "played", "{accepted}");
    assert_eq!(
        server.bad_signatures().await,
        0,
        "the agent's own report was refused"
    );
    agent.shutdown().await;

    // (d) A report for this device signed with another device's key, or unsigned, published by a
    // plain client logged in as this device, is refused and counted.
    let before = server.bad_signatures().await;
    let mut o = rumqttc::MqttOptions::new(id.clone(), server.mqtt.ip().to_string(), server.mqtt.port());
    o.set_credentials(id.clone(), dev.password.clone());
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut el) = rumqttc::AsyncClient::new(o, 10);
    let (foreign, foreign_bytes) = report(&device, Some(&other.key));
    let (unsigned, unsigned_bytes) = report(&device, None);
    assert_ne!(other.key.public_b64(), dev.key.public_b64());
    for bytes in [foreign_bytes, unsigned_bytes] {
        client
            .publish(topic::events(&device), rumqttc::QoS::AtLeastOnce, false, bytes)
            .await
            .unwrap();
    }
    let mut acks = 0;
    let end = tokio::time::Instant::now() + WAIT;
    while acks < 2 {
        match tokio::time::timeout_at(end, el.poll())
            .await
            .expect("deadline passed waiting for the broker's PUBACKs")
        {
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => acks += 1,
            Ok(_) => {}
            Err(e) => panic!("the device's own credentials were refused: {e}"),
        }
    }
    let d = Deadline::new("both forged reports are counted");
    while server.bad_signatures().await < before + 2 {
        d.tick().await;
    }
    assert_eq!(server.bad_signatures().await, before + 2);
    let plays = server.plays(&id).await;
    for forged in [foreign, unsigned] {
        assert!(
            !plays
                .iter()
                .any(|p| p["event_id"].as_str() == Some(forged.to_string().as_str())),
            "a forged report was stored: {plays:?}"
        );
    }
    assert!(!plays.iter().any(|p| p["schedule_id"] == "forged"), "{plays:?}");
    let _ = client.disconnect().await;
}
