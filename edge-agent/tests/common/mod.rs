//! Shared helpers for the agent's system tests: a private mosquitto on a free port, a media
//! server with Range support (optionally throttled), test audio made with espeak-ng and friends,
//! a signing "server", a plain MQTT test client, and waiting on events with a deadline.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use nguon_agent::{AgentEvent, AgentEventKind};
use nguon_protocol::{
    Audience, DeviceId, Event, EventBatch, Manifest, ManifestItem, MediaRef, OnPreempt, Priority, ServerBody,
    ServerKey, ServerMessage, Signed,
};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, mpsc};

/// Default deadline for waits.
pub const WAIT: Duration = Duration::from_secs(40);

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private mosquitto process; killed on drop.
pub struct Mosquitto {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Mosquitto {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut m = Mosquitto {
            port,
            dir,
            child: None,
        };
        m.spawn();
        m
    }
    fn spawn(&mut self) {
        let cfg = self.dir.path().join("mosquitto.conf");
        std::fs::write(
            &cfg,
            format!(
                "listener {} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\npersistence true\npersistence_location {}/\n",
                self.port,
                self.dir.path().display()
            ),
        )
        .unwrap();
        let child = Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
    /// Stop (SIGTERM, so retained messages are saved) and wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One request the media server saw.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub range_start: Option<u64>,
    /// When the request's head was read.
    pub at: DateTime<Utc>,
}

/// A tiny HTTP/1.1 media server with Range support, on its own thread.
pub struct MediaServer {
    pub base_url: String,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    pub hits: Arc<Mutex<Vec<Hit>>>,
    /// Bytes per second per response (None: unthrottled).
    pub throttle: Arc<Mutex<Option<u64>>>,
    /// Per sha256: how many more requests for it are answered `503 Service Unavailable`.
    pub unavailable: Arc<Mutex<HashMap<String, u32>>>,
}

impl MediaServer {
    pub fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}", l.local_addr().unwrap());
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Default::default();
        let hits: Arc<Mutex<Vec<Hit>>> = Default::default();
        let throttle: Arc<Mutex<Option<u64>>> = Default::default();
        let unavailable: Arc<Mutex<HashMap<String, u32>>> = Default::default();
        let (f, h, t, u) = (files.clone(), hits.clone(), throttle.clone(), unavailable.clone());
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let (f, h, t, u) = (f.clone(), h.clone(), t.clone(), u.clone());
                std::thread::spawn(move || serve(s, f, h, t, u));
            }
        });
        MediaServer {
            base_url,
            files,
            hits,
            throttle,
            unavailable,
        }
    }
    /// Publish bytes; returns the MediaRef (url relative to the base).
    pub fn add(&self, bytes: Vec<u8>, duration_ms: u64) -> MediaRef {
        let sha = hex::encode(Sha256::digest(&bytes));
        let path = format!("/media/{sha}");
        let size = bytes.len() as u64;
        self.files.lock().unwrap().insert(path.clone(), bytes);
        MediaRef {
            sha256: sha,
            size,
            url: path,
            duration_ms,
        }
    }
    /// Serve `bytes` at `path` (a mirror that lies: bytes that are not the address's).
    pub fn put(&self, path: &str, bytes: Vec<u8>) {
        self.files.lock().unwrap().insert(path.to_string(), bytes);
    }
    pub fn hits_for(&self, sha: &str) -> Vec<Hit> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path.ends_with(sha))
            .cloned()
            .collect()
    }
}

fn serve(
    mut s: TcpStream,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    hits: Arc<Mutex<Vec<Hit>>>,
    throttle: Arc<Mutex<Option<u64>>>,
    unavailable: Arc<Mutex<HashMap<String, u32>>>,
) {
    loop {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            match s.read(&mut byte) {
                Ok(1) => buf.push(byte[0]),
                _ => return,
            }
        }
        let req = String::from_utf8_lossy(&buf).to_string();
        let mut lines = req.lines();
        let first = lines.next().unwrap_or("");
        let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut range_start = None;
        for l in lines {
            let lower = l.to_ascii_lowercase();
            if let Some(r) = lower.strip_prefix("range: bytes=") {
                range_start = r
                    .trim_end_matches('-')
                    .split('-')
                    .next()
                    .and_then(|x| x.parse::<u64>().ok());
            }
        }
        if path == "/healthz" {
            let ms = Utc::now().timestamp_millis();
            let body = "ok";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nX-Server-Time-Ms: {ms}\r\n\r\n{body}",
                body.len()
            );
            continue;
        }
        hits.lock().unwrap().push(Hit {
            path: path.clone(),
            range_start,
            at: Utc::now(),
        });
        let refuse = unavailable
            .lock()
            .unwrap()
            .iter_mut()
            .find(|(sha, n)| path.ends_with(sha.as_str()) && **n > 0)
            .map(|(_, n)| *n -= 1)
            .is_some();
        if refuse {
            let _ = write!(s, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
            continue;
        }
        let data = files.lock().unwrap().get(&path).cloned();
        let Some(data) = data else {
            let _ = write!(s, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
            continue;
        };
        let start = range_start.unwrap_or(0).min(data.len() as u64) as usize;
        let body = &data[start..];
        let head = if range_start.is_some() {
            format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {}-{}/{}\r\n\r\n",
                body.len(),
                start,
                data.len().saturating_sub(1),
                data.len()
            )
        } else {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\n\r\n",
                body.len()
            )
        };
        if s.write_all(head.as_bytes()).is_err() {
            return;
        }
        let bps = *throttle.lock().unwrap();
        match bps {
            None => {
                if s.write_all(body).is_err() {
                    return;
                }
            }
            Some(bps) => {
                let chunk = (bps / 20).max(1) as usize;
                for c in body.chunks(chunk) {
                    if s.write_all(c).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
}

pub fn run(cmd: &mut Command) {
    let out = cmd.output().expect("tool runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Vietnamese sentence spoken by espeak-ng into `dir/name.wav`.
pub fn speech_wav(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(format!("{name}.wav"));
    run(Command::new("espeak-ng")
        .args(["-v", "vi", "-w"])
        .arg(&p)
        .arg(text));
    p
}

/// `seconds` of a tone (sox), mono 22050 Hz WAV.
pub fn tone_wav(dir: &Path, name: &str, seconds: f64) -> PathBuf {
    let p = dir.join(format!("{name}.wav"));
    run(Command::new("sox")
        .args(["-n", "-r", "22050", "-c", "1", "-b", "16"])
        .arg(&p)
        .args(["synth", &seconds.to_string(), "sine", "440", "vol", "0.5"]));
    p
}

pub fn to_mp3(wav: &Path) -> PathBuf {
    let p = wav.with_extension("mp3");
    run(Command::new("lame")
        .args(["--quiet", "-b", "64"])
        .arg(wav)
        .arg(&p));
    p
}
pub fn to_ogg(wav: &Path) -> PathBuf {
    let p = wav.with_extension("ogg");
    run(Command::new("oggenc").arg("-Q").arg(wav).arg("-o").arg(&p));
    p
}
pub fn to_flac(wav: &Path) -> PathBuf {
    let p = wav.with_extension("flac");
    run(Command::new("flac").args(["-s", "-f"]).arg(wav).arg("-o").arg(&p));
    p
}

/// Duration of a WAV file in ms.
pub fn wav_ms(wav: &Path) -> u64 {
    let r = hound::WavReader::open(wav).unwrap();
    let s = r.spec();
    r.duration() as u64 * 1000 / s.sample_rate as u64
}

/// The test double of the server's signing side.
pub struct Signer {
    pub key: Arc<ServerKey>,
    seq: Mutex<HashMap<String, u64>>,
}

impl Signer {
    pub fn new() -> Self {
        Signer {
            key: Arc::new(ServerKey::generate()),
            seq: Mutex::new(HashMap::new()),
        }
    }
    pub fn message(&self, audience: Audience, body: ServerBody) -> ServerMessage {
        let k = format!("{audience:?}/{}", body.stream());
        let mut m = self.seq.lock().unwrap();
        let seq = m.entry(k).or_insert(0);
        *seq += 1;
        ServerMessage::new(audience, *seq, chrono::Duration::hours(1), body)
    }
    pub fn sign(&self, m: &ServerMessage) -> Vec<u8> {
        self.key.sign(m).to_bytes()
    }
}

/// A plain MQTT client for the test, collecting everything it receives.
pub struct TestClient {
    pub client: AsyncClient,
    pub rx: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
}

impl TestClient {
    /// A client that only listens (sends no receipts: events stay in the agent's outbox).
    pub async fn connect(port: u16, subscriptions: &[String]) -> Self {
        Self::connect_with(port, subscriptions, None).await
    }

    /// A client that acts as the server's ingest: every event batch it receives is answered with
    /// a receipt signed by `key` on the device's `receipt` topic.
    pub async fn connect_receipting(port: u16, subscriptions: &[String], key: Arc<ServerKey>) -> Self {
        Self::connect_with(port, subscriptions, Some(key)).await
    }

    async fn connect_with(port: u16, subscriptions: &[String], receipts: Option<Arc<ServerKey>>) -> Self {
        let mut o = MqttOptions::new(format!("test-{}", uuid::Uuid::new_v4()), "127.0.0.1", port);
        o.set_max_packet_size(4 << 20, 4 << 20);
        let (client, mut el) = AsyncClient::new(o, 100);
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
        let receipting = client.clone();
        tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        if let Some(key) = &receipts {
                            send_receipt(&receipting, key, &p.topic, &p.payload);
                        }
                        let _ = tx.send((p.topic.clone(), p.payload.to_vec()));
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                        let _ = ready_tx.send(());
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        for s in subscriptions {
            client.subscribe(s, QoS::AtLeastOnce).await.unwrap();
            tokio::time::timeout(WAIT, ready_rx.recv()).await.expect("suback");
        }
        TestClient { client, rx }
    }
    pub async fn publish(&self, topic: &str, bytes: Vec<u8>, retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, bytes)
            .await
            .unwrap();
    }
    /// Receive events from `d/{device}/events` until `pred` holds over all events so far.
    pub async fn events_until(
        &mut self,
        seen: &mut Vec<Event>,
        deadline: Duration,
        mut pred: impl FnMut(&[Event]) -> bool,
    ) {
        let end = tokio::time::Instant::now() + deadline;
        while !pred(seen) {
            let (topic, payload) = tokio::time::timeout_at(end, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("deadline passed; events so far: {seen:#?}"))
                .expect("client alive");
            if topic.ends_with("/events") {
                let env = Signed::from_bytes(&payload).unwrap();
                let b: EventBatch = env.parse_payload().unwrap();
                seen.extend(b.events);
            }
        }
    }
}

/// Answer an event batch on `d/{device}/events` with a signed receipt naming all its events.
fn send_receipt(client: &AsyncClient, key: &ServerKey, topic_name: &str, payload: &[u8]) {
    let Some(nguon_protocol::topic::Topic::Events(dev)) = nguon_protocol::topic::Topic::parse(topic_name)
    else {
        return;
    };
    let Ok(batch) = Signed::from_bytes(payload).and_then(|e| e.parse_payload::<EventBatch>()) else {
        return;
    };
    let msg = receipt_message(&dev, batch.events.iter().map(|e| e.id).collect());
    let _ = client.try_publish(
        nguon_protocol::topic::receipt(&dev),
        QoS::AtLeastOnce,
        false,
        key.sign(&msg).to_bytes(),
    );
}

/// A receipt for `events` addressed to `dev`.
pub fn receipt_message(dev: &DeviceId, events: Vec<uuid::Uuid>) -> ServerMessage {
    ServerMessage::new(
        Audience::Device(dev.clone()),
        1,
        chrono::Duration::minutes(10),
        ServerBody::Receipt(nguon_protocol::Receipt { events }),
    )
}

/// Wait for an agent event matching `pred`, with a deadline.
pub async fn wait_event(
    rx: &mut broadcast::Receiver<AgentEvent>,
    deadline: Duration,
    mut pred: impl FnMut(&AgentEventKind) -> bool,
) -> AgentEvent {
    let end = tokio::time::Instant::now() + deadline;
    loop {
        match tokio::time::timeout_at(end, rx.recv()).await {
            Err(_) => panic!("deadline passed waiting for an agent event"),
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(e)) => panic!("observer closed: {e}"),
            Ok(Ok(ev)) => {
                if pred(&ev.kind) {
                    return ev;
                }
            }
        }
    }
}

/// Poll a condition on the file system until it holds or the deadline passes.
pub async fn until(deadline: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !cond() {
        assert!(Instant::now() < end, "deadline passed waiting for a condition");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Set `media.prefetch_spread_secs` in a config written by [`write_config`].
pub fn set_prefetch_spread(config: &Path, secs: u32) {
    let mut text = std::fs::read_to_string(config).unwrap();
    text.push_str(&format!("\n[media]\nprefetch_spread_secs = {secs}\n"));
    std::fs::write(config, text).unwrap();
}

/// Set `[media]` in a config written by [`write_config`]: fetch at once, from `mirrors` first.
pub fn set_mirrors(config: &Path, mirrors: &[&str]) {
    let mut text = std::fs::read_to_string(config).unwrap();
    let list: Vec<String> = mirrors.iter().map(|m| format!("\"{m}\"")).collect();
    text.push_str(&format!(
        "\n[media]\nprefetch_spread_secs = 0\nmirrors = [{}]\n",
        list.join(", ")
    ));
    std::fs::write(config, text).unwrap();
}

/// Write a device config; returns its path.
pub fn write_config(
    dir: &Path,
    device: &str,
    broker: &str,
    base_url: &str,
    server_pub: &str,
    output: &str,
) -> PathBuf {
    let p = dir.join("agent.toml");
    std::fs::write(
        &p,
        format!(
            r#"[device]
id = "{device}"
kind = "loudspeaker"
areas = ["08003"]

[mqtt]
url = "{broker}"
username = "{device}"
password = "pw"
keep_alive_secs = 5

[server]
base_url = "{base_url}"
public_key = "{server_pub}"

[storage]
data_dir = "data"
cache_max_mb = 64

[audio]
output = "{output}"
default_volume = 100

[telemetry]
heartbeat_secs = 5
"#
        ),
    )
    .unwrap();
    p
}

pub fn item(
    id: &str,
    at: DateTime<Utc>,
    priority: Priority,
    media: &MediaRef,
    on_preempt: OnPreempt,
) -> ManifestItem {
    ManifestItem {
        id: id.into(),
        schedule_id: format!("sch-{id}"),
        title: id.into(),
        starts_at: at,
        priority,
        volume: 100,
        media: vec![media.sha256.clone()],
        repeat: 1,
        on_preempt,
        play_until: None,
        repetition: None,
        relay: None,
    }
}

pub fn manifest(version: u64, items: Vec<ManifestItem>, media: Vec<MediaRef>) -> Manifest {
    let now = Utc::now();
    Manifest {
        version,
        generated_at: now,
        window_start: now - chrono::Duration::hours(1),
        window_end: now + chrono::Duration::hours(24),
        items,
        media,
        settings: Default::default(),
        cancelled: Vec::new(),
        agent: None,
    }
}

pub fn device(id: &str) -> DeviceId {
    DeviceId::parse(id).unwrap()
}

/// Install the crypto provider (idempotent).
pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Read a 32-bit float WAV.
pub fn read_f32_wav(p: &Path) -> (u32, u16, Vec<f32>) {
    let mut r = hound::WavReader::open(p).unwrap();
    let s = r.spec();
    let v: Vec<f32> = r.samples::<f32>().map(|x| x.unwrap()).collect();
    (s.sample_rate, s.channels, v)
}
