//! A private three-node NATS cluster with JetStream and MQTT on loopback, for the broker-cluster
//! system test (issue 14): each node has its own config and JetStream store in a temp dir, client,
//! route and MQTT ports of its own (a free block in 21100–21199 when there is one), and can be
//! `kill -9`ed. NATS's MQTT keeps sessions and retained messages in JetStream streams replicated
//! on the three nodes (`stream_replicas = 3`), so any node serves any device; it has no `$share`
//! shared subscriptions, so a server on it runs without `ha.shared_group` (one instance ingests).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet};

use crate::net::free_port;
use crate::process::ChildGuard;

/// Where Debian installs the server (`apt-get install nats-server`).
pub const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// The node count.
pub const NODES: usize = 3;

/// Ports of one node.
#[derive(Debug, Clone, Copy)]
struct Ports {
    client: u16,
    route: u16,
    mqtt: u16,
}

/// A running three-node cluster.
#[derive(Debug)]
pub struct NatsCluster {
    dir: PathBuf,
    ports: Vec<Ports>,
    nodes: Vec<Option<ChildGuard>>,
}

/// The `nats-server` binary, or why the cluster cannot run here.
pub fn available() -> Result<PathBuf, String> {
    let p = PathBuf::from(NATS_SERVER);
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!("{NATS_SERVER} is absent (apt-get install nats-server)"))
    }
}

fn port_free(p: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
}

/// Nine ports: the first block of ten in 21100–21199 whose ports are all free, else any free ones.
fn pick_ports() -> Vec<Ports> {
    for base in (21100..21200).step_by(10) {
        if (base..base + 9).all(port_free) {
            return (0..NODES as u16)
                .map(|i| Ports {
                    mqtt: base + i,
                    client: base + 3 + i,
                    route: base + 6 + i,
                })
                .collect();
        }
    }
    (0..NODES)
        .map(|_| Ports {
            mqtt: free_port(),
            client: free_port(),
            route: free_port(),
        })
        .collect()
}

impl NatsCluster {
    /// Write the three configs under `dir`, start the nodes and wait until each accepts an MQTT
    /// connection (JetStream has a meta leader and the MQTT streams exist).
    pub async fn start(dir: &Path) -> anyhow::Result<NatsCluster> {
        let bin = available().map_err(anyhow::Error::msg)?;
        std::fs::create_dir_all(dir)?;
        let ports = pick_ports();
        let routes = ports
            .iter()
            .map(|p| format!("nats-route://127.0.0.1:{}", p.route))
            .collect::<Vec<_>>()
            .join(", ");
        for (i, p) in ports.iter().enumerate() {
            let store = dir.join(format!("js{i}"));
            std::fs::write(
                dir.join(format!("n{i}.conf")),
                format!(
                    "server_name: n{i}\n\
                     listen: 127.0.0.1:{client}\n\
                     jetstream {{ store_dir: \"{store}\", max_memory_store: 64MB, max_file_store: 1GB }}\n\
                     cluster {{ name: nguon, listen: 127.0.0.1:{route}, routes: [{routes}] }}\n\
                     mqtt {{ listen: 127.0.0.1:{mqtt}, stream_replicas: 3, ack_wait: \"10s\", consumer_replicas: 1, consumer_memory_storage: true }}\n",
                    client = p.client,
                    route = p.route,
                    mqtt = p.mqtt,
                    store = store.display(),
                ),
            )?;
        }
        let mut c = NatsCluster {
            dir: dir.to_path_buf(),
            ports,
            nodes: (0..NODES).map(|_| None).collect(),
        };
        for i in 0..NODES {
            c.launch(&bin, i)?;
        }
        for i in 0..NODES {
            if let Err(e) = c.wait_mqtt(i, Duration::from_secs(60)).await {
                anyhow::bail!("NATS node {i}: {e}\n{}", c.log_tail(i, 30));
            }
        }
        Ok(c)
    }

    fn launch(&mut self, bin: &Path, i: usize) -> anyhow::Result<()> {
        crate::net::raise_fd_limit();
        let mut cmd = Command::new(bin);
        cmd.arg("-c").arg(self.dir.join(format!("n{i}.conf")));
        let log = self.dir.join(format!("n{i}.log"));
        self.nodes[i] = Some(ChildGuard::spawn(&format!("nats-n{i}"), cmd, &log)?);
        Ok(())
    }

    /// Wait until node `i` answers an MQTT CONNECT with a CONNACK.
    async fn wait_mqtt(&self, i: usize, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        let mut last = String::new();
        while Instant::now() < deadline {
            let mut o = MqttOptions::new(
                format!("probe-{i}-{}", crate::net::random_suffix()),
                "127.0.0.1",
                self.ports[i].mqtt,
            );
            o.set_keep_alive(Duration::from_secs(5));
            let (client, mut el) = AsyncClient::new(o, 10);
            let r = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    match el.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                        Ok(_) => {}
                        Err(e) => return Err(e.to_string()),
                    }
                }
            })
            .await;
            let _ = client.try_disconnect();
            match r {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => last = e,
                Err(_) => last = "no CONNACK within 5 s".into(),
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        anyhow::bail!("no MQTT CONNACK after {within:?}: {last}")
    }

    /// `mqtt://127.0.0.1:<port>` of node `i`.
    pub fn url(&self, i: usize) -> String {
        format!("mqtt://127.0.0.1:{}", self.ports[i].mqtt)
    }

    /// Every node's URL, starting at node `first` (how agents spread over the nodes).
    pub fn urls_from(&self, first: usize) -> Vec<String> {
        (0..NODES).map(|k| self.url((first + k) % NODES)).collect()
    }

    /// The MQTT address of node `i`.
    pub fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports[i].mqtt))
    }

    /// `kill -9` node `i`.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].take() {
            c.kill9();
        }
    }

    /// The end of node `i`'s log.
    pub fn log_tail(&self, i: usize, n: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join(format!("n{i}.log"))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}
