//! The server's own MQTT connection (rumqttc `AsyncClient`): publishes manifests and commands, and
//! receives everything devices send (`SERVER_SUBSCRIPTIONS`, QoS 1), forwarded to ingest through a
//! bounded channel. The event loop is polled in its own task; subscriptions are renewed on every
//! ConnAck, and a lost connection is retried with a capped exponential backoff.
//!
//! [`Link::publish_confirmed`] resolves when the broker acknowledged the publish (QoS 1 PUBACK),
//! and fails when the connection is lost first or no ack came within `mqtt_ack_timeout_ms`. Every
//! publish, confirmed or not, goes through the [`AckTracker`]: the link hands it to the client
//! under the tracker's lock, so the tracker's order is the client's order of packet ids.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use nguon_protocol::topic::SERVER_SUBSCRIPTIONS;
use rumqttc::{
    AsyncClient, ClientError, Event, MqttOptions, Outgoing, Packet, QoS, Request, SubscribeFilter,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::mqtt::ack::AckTracker;
use crate::mqtt::broker::{Broker, INTERNAL_USER};

/// Capacity of the client's request channel: enough to queue a province-wide publish.
const REQUEST_CAPACITY: usize = 20_000;
/// Incoming messages buffered for ingest before the event loop waits.
const INCOMING_CAPACITY: usize = 50_000;

/// One message received from the broker.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Topic name.
    pub topic: String,
    /// Raw payload.
    pub payload: Bytes,
    /// Whether the broker delivered it as a retained message.
    pub retain: bool,
}

/// How often a publish waits again when the client's request queue is full.
const QUEUE_FULL_RETRY: Duration = Duration::from_millis(5);

/// Why the broker did not confirm a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unconfirmed {
    /// The connection was lost before the ack (the clean session drops the publish).
    Disconnected,
    /// No ack within `mqtt_ack_timeout_ms`.
    TimedOut,
    /// The client reused the publish's packet id: its ack was lost.
    Superseded,
}

impl Unconfirmed {
    fn describe(self) -> &'static str {
        match self {
            Unconfirmed::Disconnected => "the connection was lost before the broker's ack",
            Unconfirmed::TimedOut => "no ack from the broker in time",
            Unconfirmed::Superseded => "its packet id was reused before an ack",
        }
    }
}

/// What a confirmed publish waits on.
type Waiter = oneshot::Sender<Result<(), Unconfirmed>>;

/// Outstanding publishes, shared by the publishers and the link task.
type Acks = Arc<Mutex<AckTracker<Waiter>>>;

fn lock(acks: &Acks) -> MutexGuard<'_, AckTracker<Waiter>> {
    // A panic while holding the lock leaves the tracker consistent (every method is one step).
    acks.lock().unwrap_or_else(|e| e.into_inner())
}

fn settle(waiters: impl IntoIterator<Item = Waiter>, r: Result<(), Unconfirmed>) {
    for w in waiters {
        let _ = w.send(r);
    }
}

/// The server's MQTT connection.
#[derive(Clone)]
pub struct Link {
    client: AsyncClient,
    metrics: Arc<Metrics>,
    connected: watch::Receiver<bool>,
    acks: Acks,
    ack_timeout: Duration,
}

/// Incoming MQTT traffic for ingest.
pub struct LinkEvents {
    /// Messages in arrival order.
    pub rx: mpsc::Receiver<Incoming>,
}

/// Host, port and optional (user, password).
type BrokerAddr = (String, u16, Option<(String, String)>);

/// Broker address and login parsed from `mqtt://[user:pass@]host:port`.
fn parse_url(url: &str) -> Result<BrokerAddr> {
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .ok_or_else(|| Error::internal("mqtt_url: expected mqtt://[user:password@]host:port"))?;
    let rest = rest.trim_end_matches('/');
    let (login, hostport) = match rest.rsplit_once('@') {
        Some((l, h)) => (Some(l), h),
        None => (None, rest),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h.to_string(),
            p.parse()
                .map_err(|_| Error::internal(format!("mqtt_url: bad port `{p}`")))?,
        ),
        None => (hostport.to_string(), 1883),
    };
    let login = login.map(|l| match l.split_once(':') {
        Some((u, p)) => (u.to_string(), p.to_string()),
        None => (l.to_string(), String::new()),
    });
    Ok((host, port, login))
}

impl Link {
    /// Connect to the broker (embedded or external) and wait up to 10 s for the subscriptions to
    /// be in place; after that the link keeps retrying in the background.
    pub async fn connect(s: &Settings, b: &Broker, metrics: Arc<Metrics>) -> Result<(Link, LinkEvents)> {
        let mut suffix = [0u8; 6];
        getrandom::fill(&mut suffix).map_err(Error::context("random client id"))?;
        let client_id = format!("nguon-server-{}", hex::encode(suffix));
        let (host, port, login) = match (&s.mqtt_url, b.listen_addr()) {
            (Some(url), _) => parse_url(url.expose())?,
            (None, Some(addr)) => {
                let ip = if addr.ip().is_unspecified() {
                    "127.0.0.1".to_string()
                } else {
                    addr.ip().to_string()
                };
                (
                    ip,
                    addr.port(),
                    Some((
                        INTERNAL_USER.to_string(),
                        b.internal_password().unwrap_or("").to_string(),
                    )),
                )
            }
            (None, None) => return Err(Error::internal("no MQTT broker configured")),
        };
        let mut opts = MqttOptions::new(client_id, host, port);
        opts.set_keep_alive(Duration::from_secs(30))
            .set_clean_session(true)
            .set_max_packet_size(16 * 1024 * 1024, 16 * 1024 * 1024)
            .set_request_channel_capacity(REQUEST_CAPACITY)
            .set_inflight(1_000);
        if let Some((u, p)) = login {
            opts.set_credentials(u, p);
        }
        let (client, mut eventloop) = AsyncClient::new(opts, REQUEST_CAPACITY);
        // Without TCP_NODELAY, a command published right after small writes (PUBACKs of ingested
        // events) waits for the broker's delayed ACK: ~40 ms added to every emergency.
        let mut net = eventloop.network_options();
        net.set_tcp_nodelay(true);
        eventloop.set_network_options(net);
        let (tx, rx) = mpsc::channel(INCOMING_CAPACITY);
        let (connected_tx, connected) = watch::channel(false);
        let sub_client = client.clone();
        let m = metrics.clone();
        let acks: Acks = Arc::default();
        let task_acks = acks.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            let mut suback_pending = false;
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        backoff = Duration::from_millis(100);
                        tracing::info!("mqtt link connected; subscribing");
                        suback_pending = true;
                        let c = sub_client.clone();
                        tokio::spawn(async move {
                            let filters = SERVER_SUBSCRIPTIONS
                                .iter()
                                .map(|f| SubscribeFilter::new(f.to_string(), QoS::AtLeastOnce));
                            if let Err(e) = c.subscribe_many(filters).await {
                                tracing::error!(error = %e, "mqtt link: cannot subscribe");
                            }
                        });
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if suback_pending {
                            suback_pending = false;
                            let _ = connected_tx.send(true);
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        Metrics::inc(&m.mqtt_in);
                        let msg = Incoming {
                            topic: p.topic.clone(),
                            payload: p.payload,
                            retain: p.retain,
                        };
                        if tx.send(msg).await.is_err() {
                            tracing::info!("mqtt link: ingest has stopped; link task ends");
                            return;
                        }
                    }
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                        let superseded = lock(&task_acks).sent(pkid);
                        settle(superseded, Err(Unconfirmed::Superseded));
                    }
                    Ok(Event::Incoming(Packet::PubAck(ack))) => {
                        let waiter = lock(&task_acks).acked(ack.pkid);
                        settle(waiter, Ok(()));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = connected_tx.send(false);
                        // The session is clean: rumqttc drops every publish not yet acked, in
                        // flight or queued. Under the tracker's lock (publishers enqueue under it)
                        // drain what reached the client's channel since, and drop the stale
                        // events of the lost connection except device messages, so the next
                        // session's packet ids match only its own publishes.
                        let failed = {
                            let mut t = lock(&task_acks);
                            eventloop.clean();
                            eventloop.pending.retain(|r| !matches!(r, Request::Publish(_)));
                            eventloop.state.collision = None;
                            eventloop
                                .state
                                .events
                                .retain(|ev| matches!(ev, Event::Incoming(Packet::Publish(_))));
                            t.disconnected()
                        };
                        if !failed.is_empty() {
                            tracing::warn!(
                                publishes = failed.len(),
                                "mqtt link lost with publishes not acknowledged"
                            );
                        }
                        settle(failed, Err(Unconfirmed::Disconnected));
                        if tx.is_closed() {
                            return;
                        }
                        tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "mqtt link lost");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            }
        });
        let mut c = connected.clone();
        if tokio::time::timeout(Duration::from_secs(10), c.wait_for(|v| *v))
            .await
            .is_err()
        {
            tracing::warn!("mqtt link not connected after 10 s; continuing, it keeps retrying");
        }
        Ok((
            Link {
                client,
                metrics,
                connected,
                acks,
                ack_timeout: Duration::from_millis(s.mqtt_ack_timeout_ms),
            },
            LinkEvents { rx },
        ))
    }

    /// Publish at QoS 1. Waits only for room in the request queue, not for the broker's ack.
    pub async fn publish(&self, topic: &str, bytes: Vec<u8>, retain: bool) -> Result<()> {
        self.enqueue(topic, bytes, retain, None, Instant::now() + self.ack_timeout)
            .await
    }

    /// Publish at QoS 1 and wait for the broker's ack: `Ok` once the broker has taken the
    /// message (a retained one is then stored). Fails at once when the link is down, and when the
    /// connection is lost before the ack or no ack comes within `mqtt_ack_timeout_ms`; the
    /// message may or may not have reached the broker then, so the caller publishes it again.
    pub async fn publish_confirmed(&self, topic: &str, bytes: Vec<u8>, retain: bool) -> Result<()> {
        let fail = |why: &str| Error::internal(format!("mqtt publish to {topic} not confirmed: {why}"));
        if !self.is_connected() {
            return Err(fail("the link is down"));
        }
        let (tx, rx) = oneshot::channel();
        let deadline = Instant::now() + self.ack_timeout;
        self.enqueue(topic, bytes, retain, Some(tx), deadline).await?;
        match tokio::time::timeout_at(deadline.into(), rx).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(why))) => Err(fail(why.describe())),
            Ok(Err(_)) => Err(fail("the link task ended")),
            Err(_) => {
                let late = lock(&self.acks).expire(Instant::now());
                settle(late, Err(Unconfirmed::TimedOut));
                Err(fail(Unconfirmed::TimedOut.describe()))
            }
        }
    }

    /// Hand a publish to the client and queue it in the tracker, in the same order (under the
    /// tracker's lock). Waits for room in the request queue until `deadline`, the publish's
    /// deadline for its ack too.
    async fn enqueue(
        &self,
        topic: &str,
        bytes: Vec<u8>,
        retain: bool,
        mut waiter: Option<Waiter>,
        deadline: Instant,
    ) -> Result<()> {
        let mut payload = bytes;
        loop {
            let refused = {
                let mut t = lock(&self.acks);
                t.queue(waiter.take(), deadline);
                match self.client.try_publish(topic, QoS::AtLeastOnce, retain, payload) {
                    Ok(()) => None,
                    Err(e) => {
                        waiter = t.unqueue_last();
                        Some(e)
                    }
                }
            };
            match refused {
                None => {
                    self.metrics.mqtt_out.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Some(
                    ClientError::TryRequest(Request::Publish(p)) | ClientError::Request(Request::Publish(p)),
                ) if Instant::now() < deadline => {
                    payload = Vec::from(p.payload);
                    tokio::time::sleep(QUEUE_FULL_RETRY).await;
                }
                Some(e) => {
                    return Err(Error::internal_from(
                        format!("mqtt publish to {topic}: the client's request queue stayed full or closed"),
                        e,
                    ));
                }
            }
        }
    }

    /// Watch the link: `true` while it holds a subscribed connection (for `/healthz`).
    pub fn connected(&self) -> watch::Receiver<bool> {
        self.connected.clone()
    }

    /// Whether the link currently holds a subscribed connection.
    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Send DISCONNECT (at shutdown).
    pub async fn disconnect(&self) {
        let _ = self.client.disconnect().await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn broker_urls_parse_with_and_without_login() {
        assert_eq!(
            super::parse_url("mqtt://127.0.0.1:1883").unwrap(),
            ("127.0.0.1".into(), 1883, None)
        );
        let (h, p, l) = super::parse_url("mqtt://u:p@w@broker:1884").unwrap();
        assert_eq!((h.as_str(), p), ("broker", 1884));
        assert_eq!(l, Some(("u".into(), "p@w".into())));
    }
}
