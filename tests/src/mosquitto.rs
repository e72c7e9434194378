//! A private Mosquitto broker for one test or benchmark: its own config in a temp dir, a free
//! loopback port, no persistence, `set_tcp_nodelay true`. It can be stopped and restarted on the
//! same port (the broker-restart system test) and is killed on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::net::{free_port, wait_listening};
use crate::process::ChildGuard;

/// Where Debian installs the broker.
pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// A running private Mosquitto.
#[derive(Debug)]
pub struct Mosquitto {
    port: u16,
    dir: PathBuf,
    child: Option<ChildGuard>,
    restarts: u32,
}

impl Mosquitto {
    /// Start on a free port; `dir` holds the config and the log.
    pub async fn start(dir: &Path) -> anyhow::Result<Mosquitto> {
        Self::start_on(dir, free_port()).await
    }

    /// Start on `port`.
    pub async fn start_on(dir: &Path, port: u16) -> anyhow::Result<Mosquitto> {
        std::fs::create_dir_all(dir)?;
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "# private broker for nguon tests\n\
                 listener {port} 127.0.0.1\n\
                 allow_anonymous true\n\
                 set_tcp_nodelay true\n\
                 persistence false\n\
                 max_connections -1\n\
                 max_queued_messages 10000\n\
                 max_inflight_messages 100\n\
                 log_dest stderr\n\
                 log_type error\n\
                 log_type warning\n"
            ),
        )?;
        let mut m = Mosquitto {
            port,
            dir: dir.to_path_buf(),
            child: None,
            restarts: 0,
        };
        m.launch().await?;
        Ok(m)
    }

    async fn launch(&mut self) -> anyhow::Result<()> {
        // The child inherits our (raised) file-descriptor limit.
        crate::net::raise_fd_limit();
        let mut cmd = Command::new(MOSQUITTO);
        cmd.arg("-c").arg(self.dir.join("mosquitto.conf"));
        let log = self.dir.join(format!("mosquitto.{}.log", self.restarts));
        let mut child = ChildGuard::spawn("mosquitto", cmd, &log)?;
        if let Err(e) = wait_listening(self.addr(), Duration::from_secs(10)).await {
            let tail = child.log_tail(20);
            child.kill9();
            anyhow::bail!("mosquitto did not start: {e}\n{tail}");
        }
        self.child = Some(child);
        Ok(())
    }

    /// The listen address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mqtt://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Process id of the running broker (0 when stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.pid()).unwrap_or(0)
    }

    /// Stop the broker (SIGTERM; it forgets everything: persistence is off).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.stop_with(libc::SIGTERM, Duration::from_secs(5));
        }
    }

    /// Start it again on the same port.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        self.restarts += 1;
        self.launch().await
    }
}
