//! The server's own MQTT connection (rumqttc `AsyncClient`): publishes manifests and commands, and
//! receives everything devices send (`SERVER_SUBSCRIPTIONS`, QoS 1, or 0 with `ha.subscribe_qos`), forwarded to ingest through a
//! bounded channel. The event loop is polled in its own task; subscriptions are renewed on every
//! ConnAck, and a lost connection is retried with a capped exponential backoff with jitter (reset
//! only after a connection held for [`STABLE`], so a broker that drops the link right after each
//! connect is not hammered).
//!
//! The link takes packets up to the brokers' packet limit ([`acl::MAX_PACKET`], the `max_packet_size`
//! of the generated Mosquitto config; the embedded broker's gate caps device reports far lower).
//! A report over its topic's limit ([`acl::max_payload`]) is dropped here with a warning, and the
//! link keeps its session. Should a broker without a packet cap send a larger packet, rumqttc
//! ends the connection; the link then raises its limit (up to 64 MiB) so that it takes that
//! message on the next connection and drops it, instead of looping on it. Over an external broker it connects with `mqtt://` or `mqtts://` (TLS,
//! rustls with the ring provider; the CA from `mqtt_ca_file` or the system's roots). `mqtt_url` may
//! list several brokers separated by commas (a cluster's nodes): every lost connection or failed
//! attempt moves the next attempt to the next one.
//!
//! [`Link::publish_confirmed`] resolves when the broker acknowledged the publish (QoS 1 PUBACK),
//! and fails when the connection is lost first or no ack came within `mqtt_ack_timeout_ms`. Every
//! publish, confirmed or not, goes through the [`AckTracker`]: the link hands it to the client
//! under the tracker's lock, so the tracker's order is the client's order of packet ids.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use nguon_protocol::acl;
use nguon_protocol::topic::{SERVER_SUBSCRIPTIONS, Topic};
use rumqttc::{
    AsyncClient, ClientError, Event, MqttOptions, Outgoing, Packet, QoS, Request, SubscribeFilter,
    TlsConfiguration, Transport,
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

/// The largest packet the link sends or takes: the brokers' packet limit plus header room.
const MAX_LINK_PACKET: usize = acl::MAX_PACKET + 64 * 1024;
/// The largest packet the link takes after a broker without a packet cap sent one over
/// [`MAX_LINK_PACKET`]: such a message is then received once per connection and dropped.
const MAX_RAISED_PACKET: usize = 64 << 20;
/// First retry delay after the link is lost.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A connection held this long resets the backoff.
pub const STABLE: Duration = Duration::from_secs(30);

/// The delay before retry number `attempt` (0-based): exponential from [`BACKOFF_MIN`] to
/// [`BACKOFF_MAX`], then a random point in its upper half ("equal jitter"), so a server fleet or a
/// restarted broker does not see every retry at once.
pub fn backoff(attempt: u32, random: u32) -> Duration {
    let ceiling = BACKOFF_MIN
        .saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_MAX);
    let half = ceiling / 2;
    half + half.mul_f64(f64::from(random) / f64::from(u32::MAX))
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    u32::from_le_bytes(b)
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

/// Host, port, optional (user, password), and whether to use TLS.
type BrokerAddr = (String, u16, Option<(String, String)>, bool);

/// The server's user on an external broker when `mqtt_url` names none (the user
/// `nguon-provision` writes into Mosquitto's `password_file` and `acl_file`).
pub const SERVER_USER: &str = "nguon-server";

/// Broker address and login parsed from `mqtt[s]://[user:pass@]host:port`.
/// The link's topic filters. With a shared-subscription group (`ha.shared_group`, several
/// instances) device events and telemetry are `$share/<group>/…`, so the broker hands each report
/// to one instance (which stores it and sends the receipt); device states stay plain: every
/// instance keeps presence, and a shared subscription gets no retained message, while a
/// device's last state is retained.
pub fn subscriptions(shared_group: Option<&str>) -> Vec<String> {
    SERVER_SUBSCRIPTIONS
        .iter()
        .map(|f| match shared_group {
            Some(g) if !f.ends_with("/state") => format!("$share/{g}/{f}"),
            _ => f.to_string(),
        })
        .collect()
}

/// Every broker of `mqtt_url`: one URL, or several separated by commas (a broker cluster's nodes,
/// tried in turn: each lost connection or failed attempt moves the link to the next one).
fn parse_urls(urls: &str) -> Result<Vec<BrokerAddr>> {
    let v = urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(parse_url)
        .collect::<Result<Vec<_>>>()?;
    if v.is_empty() {
        return Err(Error::internal("mqtt_url: no broker URL"));
    }
    Ok(v)
}

fn parse_url(url: &str) -> Result<BrokerAddr> {
    let (rest, tls) = if let Some(r) = url
        .strip_prefix("mqtts://")
        .or_else(|| url.strip_prefix("ssl://"))
    {
        (r, true)
    } else if let Some(r) = url.strip_prefix("mqtt://").or_else(|| url.strip_prefix("tcp://")) {
        (r, false)
    } else {
        return Err(Error::internal(
            "mqtt_url: expected mqtt://[user:password@]host:port or mqtts://...",
        ));
    };
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
        None => (hostport.to_string(), if tls { 8883 } else { 1883 }),
    };
    let login = login.map(|l| match l.split_once(':') {
        Some((u, p)) => (u.to_string(), p.to_string()),
        None => (l.to_string(), String::new()),
    });
    Ok((host, port, login, tls))
}

/// The external broker's login with the password from `mqtt_password_file` when the URL carries
/// none (`nguon-server init` writes that file); the user is then [`SERVER_USER`] unless the URL
/// names one.
fn with_password_file(addr: BrokerAddr, file: Option<&std::path::Path>) -> Result<BrokerAddr> {
    let (host, port, login, tls) = addr;
    let Some(file) = file else {
        return Ok((host, port, login, tls));
    };
    if login.as_ref().is_some_and(|(_, p)| !p.is_empty()) {
        return Ok((host, port, login, tls));
    }
    let password = read_password_file(file)?;
    let user = login
        .map(|(u, _)| u)
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| SERVER_USER.to_string());
    Ok((host, port, Some((user, password)), tls))
}

/// The password in `file`: its first line, which must not be empty.
pub fn read_password_file(file: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Error::internal(format!(
            "mqtt_password_file `{}`: cannot read: {e}",
            file.display()
        ))
    })?;
    let pw = text.lines().next().unwrap_or("").trim().to_string();
    if pw.is_empty() || pw.contains(char::is_whitespace) {
        return Err(Error::internal(format!(
            "mqtt_password_file `{}`: the first line must be the password (empty or with spaces)",
            file.display()
        )));
    }
    Ok(pw)
}

/// The rustls client config for an `mqtts://` broker: the ring provider, and the CA in
/// `ca_file` (PEM) or else the system's roots.
fn tls_config(ca_file: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(p) => {
            let pem = std::fs::read(p).map_err(Error::context(format!("mqtt_ca_file {}", p.display())))?;
            for c in CertificateDer::pem_slice_iter(&pem) {
                let c = c.map_err(|e| Error::internal(format!("mqtt_ca_file {}: {e}", p.display())))?;
                roots
                    .add(c)
                    .map_err(|e| Error::internal(format!("mqtt_ca_file {}: {e}", p.display())))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                let _ = roots.add(c);
            }
        }
    }
    if roots.is_empty() {
        return Err(Error::internal(
            "mqtts://: no CA certificate (set mqtt_ca_file, or install the system's CA roots)",
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::context("TLS protocol versions"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// `Some(limit)` when a message on `topic` is larger than its topic allows.
fn oversized(topic: &str, size: usize) -> Option<usize> {
    let limit = Topic::parse(topic).map_or(acl::MAX_EVENTS, |t| acl::max_payload(&t));
    (size > limit).then_some(limit)
}

impl Link {
    /// Connect to the broker (embedded or external) and wait up to 10 s for the subscriptions to
    /// be in place; after that the link keeps retrying in the background.
    pub async fn connect(s: &Settings, b: &Broker, metrics: Arc<Metrics>) -> Result<(Link, LinkEvents)> {
        let mut suffix = [0u8; 6];
        getrandom::fill(&mut suffix).map_err(Error::context("random client id"))?;
        let client_id = format!("nguon-server-{}", hex::encode(suffix));
        // On the embedded broker the link goes straight to the engine's internal port, not through
        // the gate.
        let addrs = match (&s.mqtt_url, b.internal_addr()) {
            (Some(url), _) => parse_urls(url.expose())?
                .into_iter()
                .map(|a| with_password_file(a, s.mqtt_password_file.as_deref()))
                .collect::<Result<Vec<_>>>()?,
            (None, Some(addr)) => vec![(
                addr.ip().to_string(),
                addr.port(),
                Some((
                    INTERNAL_USER.to_string(),
                    b.internal_password().unwrap_or("").to_string(),
                )),
                false,
            )],
            (None, None) => return Err(Error::internal("no MQTT broker configured")),
        };
        let mut options = Vec::with_capacity(addrs.len());
        for (host, port, login, tls) in addrs {
            let mut opts = MqttOptions::new(client_id.clone(), host, port);
            opts.set_keep_alive(Duration::from_secs(30))
                .set_clean_session(true)
                .set_max_packet_size(MAX_LINK_PACKET, MAX_LINK_PACKET)
                .set_request_channel_capacity(REQUEST_CAPACITY)
                .set_inflight(1_000);
            if let Some((u, p)) = login {
                opts.set_credentials(u, p);
            }
            if tls {
                let config = tls_config(s.mqtt_ca_file.as_deref())?;
                opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
            }
            options.push(opts);
        }
        let opts = options[0].clone();
        let (client, mut eventloop) = AsyncClient::new(opts, REQUEST_CAPACITY);
        // Without TCP_NODELAY, a command published right after small writes (PUBACKs of ingested
        // events) waits for the broker's delayed ACK: ~40 ms added to every emergency.
        let mut net = eventloop.network_options();
        net.set_tcp_nodelay(true);
        eventloop.set_network_options(net);
        let (tx, rx) = mpsc::channel(INCOMING_CAPACITY);
        let (connected_tx, connected) = watch::channel(false);
        let sub_client = client.clone();
        let shared_group = s.ha.shared_group.clone();
        let sub_qos = if s.ha.subscribe_qos == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        let m = metrics.clone();
        let acks: Acks = Arc::default();
        let task_acks = acks.clone();
        tokio::spawn(async move {
            let mut attempt = 0u32;
            let mut connected_at: Option<Instant> = None;
            let mut suback_pending = false;
            let mut current = 0usize;
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        connected_at = Some(Instant::now());
                        let (host, port) = eventloop.mqtt_options.broker_address();
                        tracing::info!(broker = %format!("{host}:{port}"), "mqtt link connected; subscribing");
                        suback_pending = true;
                        let c = sub_client.clone();
                        let filters = subscriptions(shared_group.as_deref());
                        tokio::spawn(async move {
                            let filters = filters.into_iter().map(|f| SubscribeFilter::new(f, sub_qos));
                            if let Err(e) = c.subscribe_many(filters).await {
                                tracing::error!(error = %e, "mqtt link: cannot subscribe");
                            }
                        });
                    }
                    Ok(Event::Incoming(Packet::SubAck(ack))) => {
                        if ack
                            .return_codes
                            .iter()
                            .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                        {
                            // A cluster node may refuse subscriptions for a while after a peer died.
                            tracing::error!("mqtt link: the broker refused a subscription; again in 2 s");
                            let c = sub_client.clone();
                            let filters = subscriptions(shared_group.as_deref());
                            tokio::spawn(async move {
                                tokio::time::sleep(Duration::from_secs(2)).await;
                                let f = filters.into_iter().map(|f| SubscribeFilter::new(f, sub_qos));
                                let _ = c.subscribe_many(f).await;
                            });
                        } else if suback_pending {
                            suback_pending = false;
                            let _ = connected_tx.send(true);
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        Metrics::inc(&m.mqtt_in);
                        if let Some(limit) = oversized(&p.topic, p.payload.len()) {
                            tracing::warn!(topic = %p.topic, size = p.payload.len(), limit, retain = p.retain,
                                "mqtt link: message over its topic's size limit dropped");
                            continue;
                        }
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
                        if connected_at.take().is_some_and(|t| t.elapsed() >= STABLE) {
                            attempt = 0;
                        }
                        let delay = backoff(attempt, random_u32());
                        attempt = attempt.saturating_add(1);
                        if options.len() > 1 {
                            // Several brokers (a cluster's nodes): the next attempt goes to the
                            // next one, keeping the packet limit this connection reached.
                            current = (current + 1) % options.len();
                            let limit = eventloop.mqtt_options.max_packet_size();
                            eventloop.mqtt_options = options[current].clone();
                            eventloop.mqtt_options.set_max_packet_size(limit, MAX_LINK_PACKET);
                        }
                        if let rumqttc::ConnectionError::MqttState(rumqttc::StateError::Deserialization(
                            rumqttc::mqttbytes::Error::PayloadSizeLimitExceeded(size),
                        )) = &e
                        {
                            // A broker without a packet cap handed over a larger message (a device's
                            // retained report comes again at every subscribe). Take it once more, up to
                            // a hard cap, so that it can be dropped above and the session kept.
                            let size = *size;
                            let current = eventloop.mqtt_options.max_packet_size();
                            let raised = (size <= MAX_RAISED_PACKET && size >= current)
                                .then(|| (size + 64 * 1024).min(MAX_RAISED_PACKET + 64 * 1024));
                            tracing::error!(
                                size,
                                limit = current,
                                raised_to = raised,
                                "mqtt link: the broker sent a packet over the link's limit; cap the broker's \
                                 packet size (Mosquitto: max_packet_size, as nguon-provision's nguon.conf does)"
                            );
                            if let Some(r) = raised {
                                eventloop.mqtt_options.set_max_packet_size(r, MAX_LINK_PACKET);
                            }
                        }
                        tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "mqtt link lost");
                        tokio::time::sleep(delay).await;
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
    fn reports_are_shared_in_a_group_and_states_are_not() {
        use super::{SERVER_SUBSCRIPTIONS, subscriptions};
        assert_eq!(
            subscriptions(None),
            SERVER_SUBSCRIPTIONS.map(String::from).to_vec()
        );
        assert_eq!(
            subscriptions(Some("nguon")),
            [
                "nguon/v1/d/+/state",
                "$share/nguon/nguon/v1/d/+/telemetry",
                "$share/nguon/nguon/v1/d/+/events",
            ]
        );
    }

    #[test]
    fn broker_urls_parse_with_and_without_login() {
        assert_eq!(
            super::parse_url("mqtt://127.0.0.1:1883").unwrap(),
            ("127.0.0.1".into(), 1883, None, false)
        );
        let (h, p, l, tls) = super::parse_url("mqtt://u:p@w@broker:1884").unwrap();
        assert_eq!((h.as_str(), p, tls), ("broker", 1884, false));
        assert_eq!(l, Some(("u".into(), "p@w".into())));
        let (h, p, _, tls) = super::parse_url("mqtts://broker.example").unwrap();
        assert_eq!((h.as_str(), p, tls), ("broker.example", 8883, true));
        assert!(super::parse_url("http://broker").is_err());
        let nodes = super::parse_urls("mqtt://a:1, mqtt://b:2,").unwrap();
        assert_eq!((nodes.len(), nodes[1].1), (2, 2));
        assert!(super::parse_urls(" , ").is_err());
    }

    #[test]
    fn a_url_without_a_password_takes_it_from_the_password_file() {
        use super::{parse_url, with_password_file};
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mqtt-password");
        std::fs::write(&file, "s3cret\n").unwrap();
        let login = |url: &str, f: Option<&std::path::Path>| {
            with_password_file(parse_url(url).unwrap(), f).map(|a| a.2)
        };
        let expect = |u: &str| Some((u.to_string(), "s3cret".to_string()));
        assert_eq!(login("mqtt://h:1", Some(&file)).unwrap(), expect("nguon-server"));
        assert_eq!(login("mqtt://srv@h:1", Some(&file)).unwrap(), expect("srv"));
        // A password in the URL wins; no file, no change.
        assert_eq!(
            login("mqtt://u:p@h:1", Some(&file)).unwrap(),
            Some(("u".into(), "p".into()))
        );
        assert_eq!(login("mqtt://h:1", None).unwrap(), None);
        let e = login("mqtt://h:1", Some(&dir.path().join("missing"))).unwrap_err();
        assert!(e.to_string().contains("mqtt_password_file"), "{e}");
        std::fs::write(&file, "\n").unwrap();
        let e = login("mqtt://h:1", Some(&file)).unwrap_err();
        assert!(e.to_string().contains("first line"), "{e}");
    }

    #[test]
    fn retries_back_off_exponentially_with_jitter_up_to_a_cap() {
        use super::{BACKOFF_MAX, BACKOFF_MIN, backoff};
        assert_eq!(backoff(0, u32::MAX), BACKOFF_MIN);
        assert_eq!(backoff(0, 0), BACKOFF_MIN / 2);
        assert_eq!(backoff(3, u32::MAX), BACKOFF_MIN * 8);
        assert_eq!(backoff(40, u32::MAX), BACKOFF_MAX);
        assert!(backoff(40, 0) >= BACKOFF_MAX / 2);
        let a = backoff(5, 1_000);
        let b = backoff(5, 3_000_000_000);
        assert!(a < b, "the random part moves the delay");
    }

    #[test]
    fn reports_over_their_topic_limit_are_recognised() {
        use nguon_protocol::acl;
        assert_eq!(super::oversized("nguon/v1/d/x/state", acl::MAX_STATE), None);
        assert_eq!(
            super::oversized("nguon/v1/d/x/state", acl::MAX_STATE + 1),
            Some(acl::MAX_STATE)
        );
        assert_eq!(
            super::oversized("nguon/v1/d/x/events", 20 << 20),
            Some(acl::MAX_EVENTS)
        );
    }
}
