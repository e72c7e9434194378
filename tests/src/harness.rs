//! Real processes for system tests and benchmarks: [`ServerProc`] runs the `nguon-server` binary
//! with a temp data dir, free ports and the backends the environment asks for (a fresh
//! PostgreSQL database per test with `NGUON_TEST_DATABASE_URL`, an external broker with
//! `NGUON_TEST_MQTT_URL`, otherwise SQLite and the embedded broker); it can be `kill -9`ed and
//! restarted on the same ports and data. [`AgentProc`] runs the `nguon-agent` binary with a
//! generated config (WAV sink) for one simulated device.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nguon_protocol::Signed;

use crate::api::Api;
use crate::db::TestDatabase;
use crate::fleet::SimDevice;
use crate::net::free_port;
use crate::process::{ChildGuard, workspace_binary};

/// The admin token of test servers.
pub const TOKEN: &str = "system-test-admin-token-0123456789";

/// Which broker a server uses.
#[derive(Debug, Clone)]
pub enum BrokerChoice {
    /// The embedded broker on this port.
    Embedded(u16),
    /// An external broker at this URL (`mqtt://host:port`).
    External(String),
}

impl BrokerChoice {
    /// From the environment: `NGUON_TEST_MQTT_URL` or an embedded broker on a free port.
    pub fn from_env() -> BrokerChoice {
        match crate::db::mqtt_from_env() {
            Some(u) => BrokerChoice::External(u),
            None => BrokerChoice::Embedded(free_port()),
        }
    }

    /// Where devices connect.
    pub fn addr(&self) -> SocketAddr {
        match self {
            BrokerChoice::Embedded(p) => SocketAddr::from(([127, 0, 0, 1], *p)),
            BrokerChoice::External(u) => {
                let b = nguon_provision::config::parse_broker_url(u).expect("broker URL");
                let host = if b.host == "localhost" {
                    "127.0.0.1".to_string()
                } else {
                    b.host
                };
                format!("{host}:{}", b.port).parse().expect("broker address")
            }
        }
    }
}

/// A `nguon-server` process.
#[derive(Debug)]
pub struct ServerProc {
    child: Option<ChildGuard>,
    env: Vec<(String, String)>,
    dir: PathBuf,
    starts: u32,
    /// HTTP port.
    pub http_port: u16,
    /// The broker in use.
    pub broker: BrokerChoice,
    /// API client (admin token).
    pub api: Api,
    /// Its database (kept alive with the server).
    pub db: TestDatabase,
}

impl ServerProc {
    /// Start with backends from the environment, data in `dir`.
    pub async fn start(dir: &Path) -> anyhow::Result<ServerProc> {
        Self::start_with(dir, BrokerChoice::from_env(), &[]).await
    }

    /// Start with `broker` and extra environment.
    pub async fn start_with(
        dir: &Path,
        broker: BrokerChoice,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<ServerProc> {
        let mut s = Self::prepare_with(dir, broker, extra).await?;
        s.launch().await?;
        Ok(s)
    }

    /// Everything [`ServerProc::start_with`] sets up (database, ports, environment) without
    /// starting the process: run [`ServerProc::command`]s first (e.g. `restore`), then
    /// [`ServerProc::launch`].
    pub async fn prepare_with(
        dir: &Path,
        broker: BrokerChoice,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<ServerProc> {
        Self::prepare_on(dir, broker, TestDatabase::fresh().await?, extra)
    }

    /// [`ServerProc::prepare_with`] on the database `db` (several instances on one database).
    pub fn prepare_on(
        dir: &Path,
        broker: BrokerChoice,
        db: TestDatabase,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<ServerProc> {
        let http_port = free_port();
        let data = dir.join("server-data");
        std::fs::create_dir_all(&data)?;
        let mut env = vec![
            ("NGUON_HTTP_ADDR".to_string(), format!("127.0.0.1:{http_port}")),
            ("NGUON_DATA_DIR".to_string(), data.display().to_string()),
            ("NGUON_ADMIN_TOKEN".to_string(), TOKEN.to_string()),
            ("NGUON_DISPATCH_DEBOUNCE_MS".to_string(), "50".to_string()),
            (
                "RUST_LOG".to_string(),
                std::env::var("NGUON_TEST_SERVER_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()),
            ),
        ];
        match &broker {
            BrokerChoice::Embedded(p) => env.push(("NGUON_MQTT_ADDR".into(), format!("127.0.0.1:{p}"))),
            BrokerChoice::External(u) => env.push(("NGUON_MQTT_URL".into(), u.clone())),
        }
        if let Some(u) = db.url() {
            env.push(("NGUON_DATABASE_URL".into(), u.to_string()));
        }
        for (k, v) in extra {
            env.push((k.to_string(), v.to_string()));
        }
        Ok(ServerProc {
            child: None,
            env,
            dir: dir.to_path_buf(),
            starts: 0,
            http_port,
            broker,
            api: Api::new(format!("http://127.0.0.1:{http_port}"), TOKEN),
            db,
        })
    }

    /// The `nguon-server` binary with this server's environment (data dir, database, ports), for
    /// its subcommands (`backup`, `restore`).
    pub fn command(&self) -> anyhow::Result<Command> {
        let bin = workspace_binary("nguon-server")?;
        let mut cmd = Command::new(bin);
        cmd.env_remove("NGUON_DATABASE_URL").env_remove("NGUON_MQTT_URL");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        Ok(cmd)
    }

    /// Start the process and wait until `/healthz` answers.
    pub async fn launch(&mut self) -> anyhow::Result<()> {
        let cmd = self.command()?;
        let log = self.dir.join(format!("server.{}.log", self.starts));
        self.starts += 1;
        let mut child = ChildGuard::spawn("nguon-server", cmd, &log)?;
        if let Err(e) = self.api.wait_healthy(Duration::from_secs(30)).await {
            let tail = child.log_tail(30);
            child.kill9();
            anyhow::bail!("nguon-server did not become healthy: {e}\n--- log ---\n{tail}");
        }
        self.child = Some(child);
        Ok(())
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.pid()).unwrap_or(0)
    }

    /// Whether the process runs (started, not stopped or killed by the test).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The whole log of the current run.
    pub fn log(&self) -> String {
        self.child.as_ref().map(|c| c.log()).unwrap_or_default()
    }

    /// `kill -9` the server.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill9();
        }
    }

    /// Send `signal` (e.g. SIGTERM, systemd's stop) and wait up to `grace` for the exit status.
    pub fn stop_status(&mut self, signal: i32, grace: Duration) -> Option<std::process::ExitStatus> {
        self.child.take()?.stop_status(signal, grace)
    }

    /// Start it again (same ports, data dir and database).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill9();
        self.launch().await
    }

    /// The end of the current log (for failure messages).
    pub fn log_tail(&self, n: usize) -> String {
        self.child.as_ref().map(|c| c.log_tail(n)).unwrap_or_default()
    }

    /// The server's public key.
    pub async fn server_key(&self) -> anyhow::Result<String> {
        self.api.server_key().await
    }
}

/// A `nguon-agent` process for one device, with a WAV sink.
#[derive(Debug)]
pub struct AgentProc {
    child: Option<ChildGuard>,
    config: PathBuf,
    /// The device.
    pub device: SimDevice,
    /// Its directory (config, key, password, store, WAV output).
    pub dir: PathBuf,
    starts: u32,
}

impl AgentProc {
    /// Write the device's config (broker `mqtt`, server `base_url`/`server_key`) and start it.
    pub async fn start(
        root: &Path,
        device: &SimDevice,
        mqtt: SocketAddr,
        base_url: &str,
        server_key: &str,
    ) -> anyhow::Result<AgentProc> {
        Self::start_on(
            root,
            device,
            &[format!("mqtt://{mqtt}")],
            "",
            base_url,
            server_key,
        )
        .await
    }

    /// [`AgentProc::start`] with several broker URLs (`mqtt.urls`: a cluster's nodes, tried in
    /// this order); one URL is written as `mqtt.url`. `mqtt_extra`: more `[mqtt]` lines (TOML).
    pub async fn start_on(
        root: &Path,
        device: &SimDevice,
        brokers: &[String],
        mqtt_extra: &str,
        base_url: &str,
        server_key: &str,
    ) -> anyhow::Result<AgentProc> {
        let mut a = Self::prepare_on(root, device, brokers, mqtt_extra, base_url, server_key)?;
        a.launch()?;
        Ok(a)
    }

    /// Write the device's directory and configuration without starting a process (a test that
    /// runs the agent its own way, e.g. under the OTA test's restart loop).
    pub fn prepare_on(
        root: &Path,
        device: &SimDevice,
        brokers: &[String],
        mqtt_extra: &str,
        base_url: &str,
        server_key: &str,
    ) -> anyhow::Result<AgentProc> {
        let mqtt = match brokers {
            [one] => format!("url = \"{one}\""),
            many => format!(
                "urls = [{}]",
                many.iter()
                    .map(|u| format!("\"{u}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let dir = root.join(device.id.as_str());
        std::fs::create_dir_all(dir.join("wav"))?;
        std::fs::write(dir.join("mqtt-password"), &device.password)?;
        std::fs::write(dir.join("device.key"), device.key.secret_b64())?;
        let config = format!(
            "[device]\nid = \"{id}\"\nkind = \"{kind}\"\nareas = [{areas}]\n\n\
             [mqtt]\n{mqtt}\n{mqtt_extra}\nusername = \"{id}\"\npassword_file = \"mqtt-password\"\nkeep_alive_secs = 10\n\n\
             [server]\nbase_url = \"{base_url}\"\npublic_key = \"{server_key}\"\n\n\
             [identity]\nsigning_key_file = \"device.key\"\n\n\
             [storage]\ndata_dir = \"data\"\ncache_max_mb = 64\n\n\
             [audio]\noutput = \"wav:{wav}\"\n\n\
             [telemetry]\nheartbeat_secs = 5\n",
            id = device.id,
            kind = device.kind.as_str(),
            areas = device
                .areas
                .iter()
                .map(|a| format!("\"{a}\""))
                .collect::<Vec<_>>()
                .join(", "),
            wav = dir.join("wav").display(),
        );
        let path = dir.join("agent.toml");
        std::fs::write(&path, config)?;
        Ok(AgentProc {
            child: None,
            config: path,
            device: device.clone(),
            dir,
            starts: 0,
        })
    }

    /// The configuration file [`AgentProc::prepare_on`] wrote.
    pub fn config(&self) -> &Path {
        &self.config
    }

    fn launch(&mut self) -> anyhow::Result<()> {
        let bin = workspace_binary("nguon-agent")?;
        let mut cmd = Command::new(bin);
        cmd.arg("run").arg("--config").arg(&self.config);
        cmd.env(
            "RUST_LOG",
            std::env::var("NGUON_TEST_AGENT_LOG").unwrap_or_else(|_| "info".into()),
        );
        let log = self.dir.join(format!("agent.{}.log", self.starts));
        self.starts += 1;
        self.child = Some(ChildGuard::spawn("nguon-agent", cmd, &log)?);
        Ok(())
    }

    /// `kill -9` the agent.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill9();
        }
    }

    /// Stop it gracefully (SIGINT: it publishes `offline` and exits), up to 10 s, then SIGKILL.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.stop();
        }
    }

    /// Whether a process is running (not stopped or killed by the test).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The whole log of the current run (empty when it is not running).
    pub fn log(&self) -> String {
        self.child.as_ref().map(|c| c.log()).unwrap_or_default()
    }

    /// Add `lines` to its `[audio]` section (e.g. `sample_rate = 48000`) and start it again.
    pub fn reconfigure_audio(&mut self, lines: &str) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(&self.config)?;
        std::fs::write(
            &self.config,
            text.replace("[audio]\n", &format!("[audio]\n{lines}\n")),
        )?;
        self.restart()
    }

    /// Start it again (same store).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill9();
        self.launch()
    }

    /// The end of its log.
    pub fn log_tail(&self, n: usize) -> String {
        self.child.as_ref().map(|c| c.log_tail(n)).unwrap_or_default()
    }

    /// Events in its outbox: reported and not yet named by a receipt from the server.
    pub fn outbox_len(&self) -> usize {
        std::fs::read_dir(self.dir.join("data").join("outbox"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .count()
            })
            .unwrap_or(0)
    }

    /// WAV files its sink wrote.
    pub fn wav_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.dir.join("wav"))
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "wav"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Sidecar JSON documents its WAV sink wrote (one per finished play).
    pub fn sidecars(&self) -> Vec<serde_json::Value> {
        std::fs::read_dir(self.dir.join("wav"))
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "json"))
                    .filter_map(|p| std::fs::read(p).ok())
                    .filter_map(|b| serde_json::from_slice(&b).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The schedule ids in the manifest its store holds (read from `data/state.json`).
    pub fn stored_schedule_ids(&self) -> Vec<String> {
        let Ok(bytes) = std::fs::read(self.dir.join("data").join("state.json")) else {
            return Vec::new();
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            return Vec::new();
        };
        v.pointer("/manifest/manifest/items")
            .and_then(|i| i.as_array())
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.get("schedule_id").and_then(|s| s.as_str()).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether its media cache holds a verified file `sha`.
    pub fn has_cached(&self, sha: &str) -> bool {
        self.dir.join("data").join("cache").join(sha).is_file()
    }
}

/// Parse the event batch inside a signed device report (for broker spies).
pub fn parse_report(payload: &[u8]) -> Option<nguon_protocol::EventBatch> {
    Signed::from_bytes(payload).ok()?.parse_payload().ok()
}
