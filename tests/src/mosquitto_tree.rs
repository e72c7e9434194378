//! A broker spread over several processes for the fleet-at-scale benchmark (issue 14): one root
//! Mosquitto (the server and the publishers connect there) and L leaf Mosquittos, each bridged to
//! the root, the devices spread over the leaves. One Mosquitto process holds at most ~19,000
//! connections here (the hard `RLIMIT_NOFILE` of 20,000 per process cannot be raised), so 100,000
//! devices need at least six leaves.
//!
//! Each leaf's bridge subscribes on the root to what the server sends devices (`a/+/cmd`,
//! `d/+/desired`, `d/+/cmd`, `d/+/receipt`, QoS 1) and forwards what devices send (`d/+/state`,
//! `telemetry`, `events`, QoS 1) to the root; `try_private` keeps the root from echoing a leaf's
//! messages back to it. A message for one device therefore crosses every leaf's bridge (the leaf
//! drops it when no local client subscribed): L copies of the server's per-device traffic, one copy
//! of the devices' traffic. The root queues without limit (`max_queued_messages 0`, no in-flight
//! cap): a province-wide dispatch puts one retained manifest per device on every bridge at once.
//! No authentication (anonymous, as the other private brokers of the benchmarks).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::mosquitto::MOSQUITTO;
use crate::net::{free_port, wait_listening};
use crate::process::ChildGuard;

/// A root Mosquitto and its bridged leaves.
#[derive(Debug)]
pub struct MosquittoTree {
    root: Node,
    leaves: Vec<Node>,
}

#[derive(Debug)]
struct Node {
    port: u16,
    child: ChildGuard,
}

impl Node {
    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

/// The settings every node shares.
fn common(port: u16) -> String {
    format!(
        "listener {port} 127.0.0.1\n\
         allow_anonymous true\n\
         set_tcp_nodelay true\n\
         persistence false\n\
         max_connections -1\n\
         max_queued_messages 0\n\
         max_inflight_messages 0\n\
         log_dest stderr\n\
         log_type error\n\
         log_type warning\n"
    )
}

/// The bridge section of a leaf.
fn bridge(name: &str, root: u16) -> String {
    let mut s = format!(
        "connection {name}\n\
         address 127.0.0.1:{root}\n\
         bridge_protocol_version mqttv311\n\
         try_private true\n\
         cleansession true\n\
         notifications false\n\
         keepalive_interval 60\n\
         restart_timeout 1 5\n"
    );
    for t in ["a/+/cmd", "d/+/desired", "d/+/cmd", "d/+/receipt"] {
        s += &format!("topic nguon/v1/{t} in 1\n");
    }
    for t in ["d/+/state", "d/+/telemetry", "d/+/events"] {
        s += &format!("topic nguon/v1/{t} out 1\n");
    }
    s
}

async fn launch(dir: &Path, name: &str, conf: String, port: u16) -> anyhow::Result<Node> {
    crate::net::raise_fd_limit();
    let path = dir.join(format!("{name}.conf"));
    std::fs::write(&path, conf)?;
    let mut cmd = Command::new(MOSQUITTO);
    cmd.arg("-c").arg(&path);
    let mut child = ChildGuard::spawn(name, cmd, &dir.join(format!("{name}.log")))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    if let Err(e) = wait_listening(addr, Duration::from_secs(10)).await {
        let tail = child.log_tail(20);
        child.kill9();
        anyhow::bail!("{name} did not start: {e}\n{tail}");
    }
    Ok(Node { port, child })
}

impl MosquittoTree {
    /// Start the root and `leaves` leaves (configs and logs under `dir`), then wait until every
    /// bridge carries a message from the root to a client of its leaf.
    pub async fn start(dir: &Path, leaves: usize) -> anyhow::Result<MosquittoTree> {
        std::fs::create_dir_all(dir)?;
        let rp = free_port();
        let root = launch(dir, "root", common(rp), rp).await?;
        let mut nodes = Vec::with_capacity(leaves);
        for i in 0..leaves {
            let p = free_port();
            let conf = common(p) + &bridge(&format!("leaf{i}"), rp);
            nodes.push(launch(dir, &format!("leaf{i}"), conf, p).await?);
        }
        let tree = MosquittoTree { root, leaves: nodes };
        for i in 0..leaves {
            tree.wait_bridge(i, Duration::from_secs(30)).await?;
        }
        Ok(tree)
    }

    /// Publish on the root until a subscriber on leaf `i` gets it (the bridge is up).
    async fn wait_bridge(&self, i: usize, within: Duration) -> anyhow::Result<()> {
        use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
        let topic = format!("nguon/v1/a/probe{i}/cmd");
        let suffix = crate::net::random_suffix();
        let mut o = MqttOptions::new(format!("probe-sub-{suffix}"), "127.0.0.1", self.leaves[i].port);
        o.set_keep_alive(Duration::from_secs(10));
        let (sub, mut sel) = AsyncClient::new(o, 16);
        sub.subscribe(topic.clone(), QoS::AtMostOnce).await?;
        let (publ, poller) =
            crate::baseline::connected_publisher("probe-pub", "127.0.0.1", self.root.port).await?;
        let r = tokio::time::timeout(within, async {
            let mut tick = tokio::time::interval(Duration::from_millis(300));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        publ.publish(topic.clone(), QoS::AtMostOnce, false, b"probe".to_vec()).await?;
                    }
                    ev = sel.poll() => {
                        if let Ok(Event::Incoming(Packet::Publish(_))) = ev {
                            return anyhow::Ok(());
                        }
                        if ev.is_err() {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            }
        })
        .await;
        poller.abort();
        let _ = sub.try_disconnect();
        match r {
            Ok(r) => r,
            Err(_) => anyhow::bail!(
                "leaf {i}: the bridge carried nothing within {within:?}\n{}",
                self.leaves[i].child.log_tail(20)
            ),
        }
    }

    /// The root's address (the server, the publishers).
    pub fn root(&self) -> SocketAddr {
        self.root.addr()
    }

    /// `mqtt://127.0.0.1:<root port>`.
    pub fn root_url(&self) -> String {
        format!("mqtt://{}", self.root.addr())
    }

    /// Leaf `i`'s address (devices).
    pub fn leaf(&self, i: usize) -> SocketAddr {
        self.leaves[i].addr()
    }

    /// Number of leaves.
    pub fn leaves(&self) -> usize {
        self.leaves.len()
    }

    /// Process ids: the root first, then the leaves.
    pub fn pids(&self) -> Vec<u32> {
        std::iter::once(&self.root)
            .chain(&self.leaves)
            .map(|n| n.child.pid())
            .collect()
    }

    /// The end of a node's log (`None`: the root).
    pub fn log_tail(&self, leaf: Option<usize>, n: usize) -> String {
        match leaf {
            Some(i) => self.leaves[i].child.log_tail(n),
            None => self.root.child.log_tail(n),
        }
    }
}

/// Leaves needed for `agents` devices at `per_leaf` each (at least one).
pub fn leaves_for(agents: usize, per_leaf: usize) -> usize {
    agents.div_ceil(per_leaf.max(1)).max(1)
}

/// A scratch directory on tmpfs when there is one.
pub fn shm_base() -> PathBuf {
    if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    }
}
