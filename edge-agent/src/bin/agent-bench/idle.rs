//! `agent-bench idle`: the memory of N idle agents in one process, as the fleet simulator runs
//! them (issue 14: 89–111 KiB per idle simulated agent kept 100,000 from fitting beside the
//! server). A private Mosquitto (on `--port`), one signed retained manifest (empty, version 1) per
//! device; N agents (the real library, null sinks, stores under `/dev/shm`, one shared HTTP client
//! as in the simulator) start, connect, subscribe and apply their manifest; after a settle the
//! growth of this process's VmRSS divided by N is the figure. `--observer C` adds what the
//! simulator adds per agent: a broadcast observer channel of C slots and a task reading it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nguon_agent::{Agent, AgentHandle, AgentOptions};
use nguon_device_config::DeviceConfig;
use nguon_protocol::{Audience, DeviceId, Manifest, ServerBody, ServerKey, ServerMessage, topic};

fn self_rss_kib() -> u64 {
    super::rss_kib(std::process::id()).unwrap_or(0)
}

fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mosquitto(dir: &Path, port: u16) -> anyhow::Result<Broker> {
    let cfg = dir.join("mosquitto.conf");
    std::fs::write(
        &cfg,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nmax_connections -1\nset_tcp_nodelay true\n"
        ),
    )?;
    let child = Command::new("/usr/sbin/mosquitto")
        .arg("-c")
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("mosquitto")?;
    let b = Broker(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("mosquitto did not listen on {port}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(b)
}

fn config(id: &str, port: u16, key: &ServerKey) -> String {
    format!(
        r#"[device]
id = "{id}"
kind = "loudspeaker"
[mqtt]
url = "mqtt://127.0.0.1:{port}"
username = "{id}"
password = "x"
[server]
base_url = "http://127.0.0.1:9"
public_key = "{}"
[storage]
data_dir = "data"
cache_max_mb = 64
[audio]
output = "null"
"#,
        key.public_b64()
    )
}

/// Publish every device's manifest, retained, and wait for the broker's acks.
async fn publish_manifests(port: u16, key: &ServerKey, ids: &[DeviceId]) -> anyhow::Result<()> {
    let mut o = rumqttc::MqttOptions::new("idle-bench-publisher", "127.0.0.1", port);
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut el) = rumqttc::AsyncClient::new(o, 1024);
    let now = chrono::Utc::now();
    let manifest = Manifest {
        version: 1,
        generated_at: now,
        window_start: now,
        window_end: now + chrono::Duration::days(1),
        items: Vec::new(),
        media: Vec::new(),
        settings: Default::default(),
        cancelled: Vec::new(),
        agent: None,
    };
    let msgs: Vec<(String, Vec<u8>)> = ids
        .iter()
        .map(|d| {
            let m = ServerMessage::new(
                Audience::Device(d.clone()),
                1,
                chrono::Duration::hours(2),
                ServerBody::Desired(manifest.clone()),
            );
            (topic::desired(d), key.sign(&m).to_bytes())
        })
        .collect();
    let sender = tokio::spawn(async move {
        for (t, b) in msgs {
            client
                .publish(t, rumqttc::QoS::AtLeastOnce, true, b)
                .await
                .expect("publish");
        }
        client
    });
    let mut acked = 0;
    while acked < ids.len() {
        if let rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)) = el.poll().await? {
            acked += 1;
        }
    }
    let client = sender.await?;
    client.disconnect().await?;
    Ok(())
}

/// Start N idle agents and print their memory.
pub async fn run(agents: usize, port: u16, observer: Option<usize>) -> anyhow::Result<()> {
    raise_fd_limit();
    let root = PathBuf::from("/dev/shm").join(format!("nguon-idle-bench-{}", std::process::id()));
    std::fs::create_dir_all(&root)?;
    let _broker = mosquitto(&root, port)?;
    let key = ServerKey::generate();
    let ids: Vec<DeviceId> = (0..agents)
        .map(|i| DeviceId::parse(format!("idle-{i:06}")).expect("id"))
        .collect();
    publish_manifests(port, &key, &ids).await?;
    let http = nguon_agent::http_client()?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = self_rss_kib();
    let started = Instant::now();
    let mut handles: Vec<AgentHandle> = Vec::with_capacity(agents);
    let mut readers = Vec::new();
    for id in &ids {
        let dir = root.join(id.as_str());
        std::fs::create_dir_all(&dir)?;
        let cfg = DeviceConfig::parse(&config(id.as_str(), port, &key), "idle.toml")?;
        let obs = observer.map(|c| {
            let (tx, mut rx) = tokio::sync::broadcast::channel(c.max(1));
            readers.push(tokio::spawn(async move {
                use tokio::sync::broadcast::error::RecvError;
                while let Ok(_) | Err(RecvError::Lagged(_)) = rx.recv().await {}
            }));
            tx
        });
        let opts = AgentOptions {
            observer: obs,
            http: Some(http.clone()),
            ..AgentOptions::default()
        };
        handles.push(Agent::start(cfg, dir, opts).await?);
    }
    let deadline = Instant::now() + Duration::from_secs(120 + agents as u64 / 20);
    loop {
        let applied = handles
            .iter()
            .filter(|h| h.status().manifest_version == Some(1))
            .count();
        if applied == agents {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {applied} of {agents} agents applied their manifest");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready = started.elapsed();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = self_rss_kib();
    let per = (after.saturating_sub(before)) as f64 / agents as f64;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let observer = observer.map_or("none".to_string(), |c| format!("{c} slots"));
    println!(
        "| {agents} idle agents, observer {observer} | {per:.1} KiB per agent (VmRSS {before} → {after} KiB; all applied their manifest in {:.1} s; load average {}) |",
        ready.as_secs_f64(),
        load.split_whitespace().next().unwrap_or("?")
    );
    for h in handles {
        h.shutdown().await;
    }
    drop(readers);
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
