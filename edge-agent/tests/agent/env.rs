//! The test environment of one agent test (temp dir, broker, media server, signer, config), the
//! agent as a process, and helpers to read what the agent reported.

use std::path::{Path, PathBuf};

use nguon_agent::sink::WavSidecar;
use nguon_agent::{Agent, AgentEvent, AgentEventKind, AgentHandle, AgentOptions};
use nguon_device_config::DeviceConfig;
use nguon_protocol::{Audience, Command, Event, EventBody, PlayOutcome, ServerBody, topic};
use tokio::sync::broadcast;

use crate::common::*;

/// Start an agent in this process from the config file `config`, its store under `dir`, with an
/// observer: for the tests that start a fleet of their own configs (fetch, mirrors).
pub async fn start_observed(config: &Path, dir: PathBuf) -> (AgentHandle, broadcast::Receiver<AgentEvent>) {
    let (tx, rx) = broadcast::channel(1024);
    let opts = AgentOptions {
        observer: Some(tx),
        ..AgentOptions::default()
    };
    let h = Agent::start(DeviceConfig::load(config).unwrap(), dir, opts)
        .await
        .unwrap();
    (h, rx)
}

pub struct Env {
    pub tmp: tempfile::TempDir,
    pub broker: Mosquitto,
    pub media: MediaServer,
    pub signer: Signer,
    pub dev: String,
    pub config: PathBuf,
    pub wav_dir: PathBuf,
}

impl Env {
    pub fn new(dev: &str) -> Self {
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
    pub fn data(&self) -> PathBuf {
        self.tmp.path().join("data")
    }
    pub async fn start(&self) -> (AgentHandle, broadcast::Receiver<AgentEvent>) {
        self.start_with(AgentOptions::default()).await
    }
    /// Start the agent in this process with `opts` (the observer is set here).
    pub async fn start_with(&self, opts: AgentOptions) -> (AgentHandle, broadcast::Receiver<AgentEvent>) {
        let (tx, rx) = broadcast::channel(1024);
        let cfg = DeviceConfig::load(&self.config).unwrap();
        let opts = AgentOptions {
            observer: Some(tx),
            ..opts
        };
        let h = Agent::start(cfg, self.tmp.path().to_path_buf(), opts)
            .await
            .unwrap();
        (h, rx)
    }
    pub fn spawn_process(&self) -> AgentProcess {
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
    pub fn aud(&self) -> Audience {
        Audience::Device(device(&self.dev))
    }
    /// A client acting as the server: it receives the device's events and answers each batch
    /// with a signed receipt.
    pub async fn client(&self) -> TestClient {
        TestClient::connect_receipting(
            self.broker.port,
            &[topic::events(&device(&self.dev))],
            self.signer.key.clone(),
        )
        .await
    }
    pub async fn desired(&self, c: &TestClient, m: nguon_protocol::Manifest) -> uuid::Uuid {
        let msg = self.signer.message(self.aud(), ServerBody::Desired(m));
        c.publish(&topic::desired(&device(&self.dev)), self.signer.sign(&msg), true)
            .await;
        msg.id
    }
    pub async fn command(&self, c: &TestClient, cmd: Command) -> uuid::Uuid {
        let msg = self.signer.message(self.aud(), ServerBody::Command(cmd));
        c.publish(&topic::cmd(&device(&self.dev)), self.signer.sign(&msg), false)
            .await;
        msg.id
    }
    pub fn sidecar(&self, item: &str) -> WavSidecar {
        serde_json::from_slice(&std::fs::read(self.wav_dir.join(format!("{item}.json"))).unwrap()).unwrap()
    }
    pub fn wav(&self, item: &str) -> (u32, u16, Vec<f32>) {
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
pub struct AgentProcess(pub std::process::Child);

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
pub fn log(tmp: &tempfile::TempDir) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(tmp.path().join("agent.log"))
        .unwrap()
}

pub fn plays<'a>(events: &'a [Event], item: &str) -> Vec<&'a nguon_protocol::ProofOfPlay> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Play(p) if p.item_id == item => Some(p),
            _ => None,
        })
        .collect()
}

pub async fn ended(rx: &mut broadcast::Receiver<AgentEvent>, item: &str) -> PlayOutcome {
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

/// Whether the events so far hold the ack of server message `id`.
pub fn acked(events: &[Event], id: uuid::Uuid) -> bool {
    events
        .iter()
        .any(|e| matches!(&e.body, EventBody::Ack { message_id, .. } if *message_id == id))
}
