//! The server's own MQTT connection (rumqttc `AsyncClient`): publishes manifests and commands, and
//! receives everything devices send (`SERVER_SUBSCRIPTIONS`, QoS 1), forwarded to ingest through a
//! bounded channel. The event loop is polled in its own task; subscriptions are renewed on every
//! ConnAck, and a lost connection is retried with a capped exponential backoff.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use nguon_protocol::topic::SERVER_SUBSCRIPTIONS;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeFilter};
use tokio::sync::{mpsc, watch};

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
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

/// The server's MQTT connection.
#[derive(Clone)]
pub struct Link {
    client: AsyncClient,
    metrics: Arc<Metrics>,
    connected: watch::Receiver<bool>,
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
                    Ok(_) => {}
                    Err(e) => {
                        let _ = connected_tx.send(false);
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
            },
            LinkEvents { rx },
        ))
    }

    /// Publish at QoS 1. Waits only for room in the request queue, not for the broker's ack.
    pub async fn publish(&self, topic: &str, bytes: Vec<u8>, retain: bool) -> Result<()> {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, bytes)
            .await
            .map_err(Error::context(format!("mqtt publish to {topic}")))?;
        self.metrics.mqtt_out.fetch_add(1, Ordering::Relaxed);
        Ok(())
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
