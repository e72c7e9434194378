//! The raw baseline of the emergency benchmark: the same bytes published once to the same number
//! of plain rumqttc subscribers on the same broker, measuring publish → receive. What the broker
//! and this machine can do with no nguon code in the path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

/// Subscribers connected and subscribed, ready for [`Baseline::publish_once`].
pub struct Baseline {
    clients: Vec<AsyncClient>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    topic: String,
    epoch: Instant,
    sent_at_ns: Arc<AtomicU64>,
    rx: mpsc::UnboundedReceiver<(usize, u64)>,
    host: String,
    port: u16,
    /// How long connecting and subscribing all took.
    pub connect_time: Duration,
}

impl Baseline {
    /// Connect `n` subscribers to `host:port` in batches of `batch`, each subscribing QoS 1 to one
    /// shared topic (like an area command topic).
    pub async fn connect(host: &str, port: u16, n: usize, batch: usize) -> anyhow::Result<Baseline> {
        let topic = format!("nguon-bench/{}/fanout", crate::net::random_suffix());
        let epoch = Instant::now();
        let sent_at_ns = Arc::new(AtomicU64::new(u64::MAX));
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<usize>();
        let mut clients = Vec::with_capacity(n);
        let mut tasks = Vec::with_capacity(n);
        let started = Instant::now();
        let run = crate::net::random_suffix();
        for start in (0..n).step_by(batch.max(1)) {
            let end = (start + batch).min(n);
            for i in start..end {
                let mut o = MqttOptions::new(format!("bl-{run}-{i}"), host, port);
                o.set_keep_alive(Duration::from_secs(60));
                o.set_clean_session(true);
                let (c, mut el) = AsyncClient::new(o, 16);
                let tx = tx.clone();
                let ready = ready_tx.clone();
                let topic = topic.clone();
                let sent = sent_at_ns.clone();
                let client = c.clone();
                tasks.push(tokio::spawn(async move {
                    loop {
                        match el.poll().await {
                            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                                let _ = client.subscribe(topic.clone(), QoS::AtLeastOnce).await;
                            }
                            Ok(Event::Incoming(Packet::SubAck(_))) => {
                                let _ = ready.send(i);
                            }
                            Ok(Event::Incoming(Packet::Publish(_))) => {
                                let now = epoch.elapsed().as_nanos() as u64;
                                let s = sent.load(Ordering::SeqCst);
                                let _ = tx.send((i, now.saturating_sub(s)));
                            }
                            Ok(_) => {}
                            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                        }
                    }
                }));
                clients.push(c);
            }
            // Wait for this batch (Mosquitto's listen backlog is 100).
            let mut got = 0;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while got < end - start {
                match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
                    Ok(Some(_)) => got += 1,
                    _ => anyhow::bail!("baseline: only {} of {} subscribers ready", start + got, n),
                }
            }
        }
        Ok(Baseline {
            clients,
            tasks,
            topic,
            epoch,
            sent_at_ns,
            rx,
            host: host.to_string(),
            port,
            connect_time: started.elapsed(),
        })
    }

    /// Publish `payload` once (QoS 1) from a separate publisher and return every subscriber's
    /// publish → receive latency (waiting up to `within`).
    pub async fn publish_once(&mut self, payload: &[u8], within: Duration) -> anyhow::Result<Vec<Duration>> {
        let (c, poller) = connected_publisher("bl-pub", &self.host, self.port).await?;
        let payload = payload.to_vec();
        while self.rx.try_recv().is_ok() {}
        self.sent_at_ns
            .store(self.epoch.elapsed().as_nanos() as u64, Ordering::SeqCst);
        c.publish(self.topic.clone(), QoS::AtLeastOnce, false, payload)
            .await?;
        let n = self.clients.len();
        let mut lat = Vec::with_capacity(n);
        let deadline = tokio::time::Instant::now() + within;
        while lat.len() < n {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some((_, ns))) => lat.push(Duration::from_nanos(ns)),
                _ => break,
            }
        }
        poller.abort();
        Ok(lat)
    }

    /// Disconnect everyone.
    pub async fn close(self) {
        for c in &self.clients {
            let _ = c.try_disconnect();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        for t in self.tasks {
            t.abort();
        }
    }
}

/// A publisher client (`{prefix}-{random}`, 4 MiB packets) whose event loop runs on its own
/// task, returned once the broker's CONNACK arrived (within 10 s). Abort the task when done.
pub async fn connected_publisher(
    prefix: &str,
    host: &str,
    port: u16,
) -> anyhow::Result<(AsyncClient, tokio::task::JoinHandle<()>)> {
    let mut o = MqttOptions::new(format!("{prefix}-{}", crate::net::random_suffix()), host, port);
    o.set_keep_alive(Duration::from_secs(60));
    o.set_max_packet_size(4 << 20, 4 << 20);
    let (c, mut el) = AsyncClient::new(o, 16);
    let (up_tx, mut up_rx) = mpsc::unbounded_channel();
    let poller = tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = up_tx.send(());
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), up_rx.recv()).await?;
    Ok((c, poller))
}
