//! The MQTT link. One task polls the rumqttc event loop (and nothing else, so audio never blocks
//! it); a fresh client and event loop are made for every connection attempt, so nothing queued
//! for a dead connection leaks into the next one. Before each attempt the session counter is
//! incremented and persisted and the last will (offline, retained, that session) is set; on
//! connect the agent publishes online, subscribes, and sends its outbox; once subscribed (SUBACK)
//! it sends telemetry, whose manifest version lets the server send a newer manifest again. State (the will
//! included, sealed before each connection with its session), telemetry and event batches are
//! signed with the device key. Retries back off exponentially with jitter ([`backoff::backoff`]): from
//! 0.5 s doubling to 10 s (configurable) while the broker is unreachable at the TCP level, so a
//! restored network is used within seconds, and to 60 s once a broker accepted a connection that
//! then broke. The backoff is reset only by a connection that lasted [`STABLE_AFTER`], so a broker
//! that drops the agent right after connecting (e.g. a retained message over the packet limit,
//! which the MQTT client cannot skip) costs a reconnect every minute at most, not three a second.
//! A message that arrives whole but is garbage (not JSON, bad signature, wrong audience) is
//! dropped and reported as `rejected`; the connection stays up.
//!
//! With several brokers (`mqtt.urls`, a cluster's nodes) every failed attempt and every lost
//! connection moves the next attempt to the next broker of the list ([`failover::Rotation`]), with
//! the same waits; the connection's broker is logged and sent in telemetry. Nothing of the session
//! depends on the broker: the outbox is sent again on whichever node the agent reaches.
//!
//! The second task handles what arrives: every server message is opened (signature, expiry,
//! audience), checked against the replay state, and only then applied and acked; anything else is
//! reported as `rejected`. Outbox batches are published with QoS 1; the broker's PUBACK (packet
//! ids are learnt from `Outgoing::Publish` events, in request order) only moves them to "awaiting
//! receipt": an event leaves the outbox when the server's signed receipt names it. A broker drops
//! what it cannot queue for an absent or slow server, so a PUBACK alone would lose proofs of play.
//! Events without a receipt are sent again on reconnect, and after [`RECEIPT_WAIT`] (doubling to
//! [`RECEIPT_WAIT_MAX`] while no receipt comes); the server stores each event id once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use nguon_protocol::topic::Topic;
use nguon_protocol::{
    AreaCode, Audience, DeviceId, DeviceKey, DeviceState, Event, EventBatch, EventBody, ServerBody,
    ServerMessage, Signed, Telemetry, topic,
};
use rumqttc::{AsyncClient, Event as MqttEvent, LastWill, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::mpsc::error::SendTimeoutError;
use tokio::sync::{Notify, mpsc, watch};
use uuid::Uuid;

use crate::cache::Cache;
use crate::chan::{self, BoxSender};
use crate::clock::{self, Clock, OFFSET_WARN_MS};
use crate::guard::{self, Verdict};
use crate::player::PlayerInput;
use crate::report::{AgentEventKind, Reporter};
use crate::status::{LiveStatus, disk_space};

pub mod backoff;
pub mod failover;
mod hook;
mod reject;
use crate::store::{AppliedManifest, Store};
use backoff::{Failure, backoff};
pub use hook::ReceiveHook;
pub use reject::REJECTED_PER_MINUTE;
use reject::RejectBudget;

/// Events per batch.
const BATCH_EVENTS: usize = 50;
/// Batches awaiting PUBACK at once.
const BATCHES_IN_FLIGHT: usize = 4;
/// How long the link waits for room in the player's input queue before it acks a failure.
pub const PLAYER_WAIT: Duration = Duration::from_secs(5);
/// Clock estimate period.
const CLOCK_EVERY: Duration = Duration::from_secs(600);
/// How long a published event waits for the server's receipt before it is sent again.
pub const RECEIPT_WAIT: Duration = Duration::from_secs(60);
/// The longest wait between resends while the server sends no receipt at all.
pub const RECEIPT_WAIT_MAX: Duration = Duration::from_secs(1800);
/// The wait before subscribing again after the broker refused a subscription.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(2);
/// How long a connection must have lasted for its loss to reset the reconnect backoff.
pub const STABLE_AFTER: Duration = Duration::from_secs(30);

/// Everything the link needs.
#[derive(Clone)]
pub struct LinkCtx {
    /// Device id.
    pub device: DeviceId,
    /// Areas followed.
    pub areas: Vec<AreaCode>,
    /// The brokers, in the order they are tried (one, or a cluster's nodes); each an options
    /// template (will and session are set per attempt).
    pub brokers: Vec<BrokerTarget>,
    /// Server key.
    pub server_key: ed25519_dalek::VerifyingKey,
    /// Report-signing key.
    pub device_key: Option<DeviceKey>,
    /// Tolerated clock skew for `issued_at`.
    pub skew: chrono::Duration,
    /// Store.
    pub store: Arc<Store>,
    /// Reports.
    pub reporter: Arc<Reporter>,
    /// Cache (for telemetry).
    pub cache: Arc<Cache>,
    /// Clock.
    pub clock: Clock,
    /// Shared status.
    pub status: Arc<Mutex<LiveStatus>>,
    /// To the player.
    pub player: mpsc::Sender<Box<PlayerInput>>,
    /// Telemetry-now signal.
    pub sync: Arc<Notify>,
    /// HTTP client (clock estimate).
    pub http: reqwest::Client,
    /// Server base URL.
    pub base_url: String,
    /// Heartbeat period.
    pub heartbeat: Duration,
    /// When the agent started.
    pub started: Instant,
    /// The longest reconnect wait while the broker is unreachable at the TCP level
    /// (`mqtt.reconnect_max_unreachable_secs`).
    pub unreachable_max: Duration,
    /// The QoS of the device's subscriptions (`mqtt.subscribe_qos`).
    pub subscribe_qos: QoS,
    /// Told the instant each publish arrives, before anything is done with it (simulator only).
    pub on_receive: Option<ReceiveHook>,
    /// Installs the agent versions manifests ask for (`AgentOptions::updates`).
    pub updater: Option<Arc<crate::ota::Updater>>,
    /// Where the poll task runs (`AgentOptions::network`; `None`: the current runtime).
    pub network: Option<tokio::runtime::Handle>,
}

/// One broker the link may connect to.
#[derive(Clone, Debug)]
pub struct BrokerTarget {
    /// `mqtt://host:port` (logs, status and telemetry).
    pub url: String,
    /// Options template for it.
    pub mqtt: MqttOptions,
}

enum LinkEvent {
    Up {
        session: u64,
        client: AsyncClient,
        broker: String,
    },
    Mqtt(MqttEvent),
    Down(String),
}

/// The presence message, signed with the device key (unsigned when it has none). The last will
/// is made this way before each connection: it names that connection's session, so the broker
/// publishing it later can only ever mark that session offline.
fn state_msg(ctx: &LinkCtx, online: bool, session: u64) -> Vec<u8> {
    DeviceState {
        v: nguon_protocol::PROTOCOL_VERSION,
        device: ctx.device.clone(),
        online,
        session,
        at: ctx.clock.now(),
        install: ctx.store.read(|s| s.install_id.clone()),
    }
    .seal(ctx.device_key.as_ref())
    .to_bytes()
}

async fn poll_task(ctx: LinkCtx, tx: BoxSender<LinkEvent>, mut stop: watch::Receiver<bool>) {
    let mut attempt = 0u32;
    let mut rotation = failover::Rotation::new(ctx.brokers.len());
    loop {
        if *stop.borrow() {
            return;
        }
        let broker = &ctx.brokers[rotation.current()];
        let session = match ctx
            .store
            .modify(|s| {
                s.session += 1;
                s.session
            })
            .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot persist the session counter");
                ctx.store.read(|s| s.session)
            }
        };
        ctx.status.lock().expect("status").broker = Some(broker.url.clone());
        let mut opts = broker.mqtt.clone();
        opts.set_last_will(LastWill::new(
            topic::state(&ctx.device),
            state_msg(&ctx, false, session),
            QoS::AtLeastOnce,
            true,
        ));
        let (client, mut el) = AsyncClient::new(opts, 64);
        // Acks and reports are small writes: without TCP_NODELAY each can wait ~40 ms (Nagle
        // against the broker's delayed ACK) behind the previous one.
        let mut net = el.network_options();
        net.set_tcp_nodelay(true);
        el.set_network_options(net);
        let mut up_since: Option<Instant> = None;
        let (failure, reason) = loop {
            match el.poll().await {
                Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                    up_since = Some(Instant::now());
                    if tx
                        .send(LinkEvent::Up {
                            session,
                            client: client.clone(),
                            broker: broker.url.clone(),
                        })
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(MqttEvent::Outgoing(Outgoing::Disconnect)) => return,
                Ok(ev) => {
                    if let (Some(hook), MqttEvent::Incoming(Packet::Publish(p))) = (&ctx.on_receive, &ev) {
                        (hook.0)(&p.topic, Instant::now());
                    }
                    if tx.send(LinkEvent::Mqtt(ev)).is_err() {
                        return;
                    }
                }
                Err(e) => break (Failure::of(&e, up_since.is_some()), e.to_string()),
            }
        };
        drop(el);
        if tx.send(LinkEvent::Down(reason)).is_err() {
            return;
        }
        // Only a connection that held for a while resets the backoff: one the broker ends right
        // after CONNACK (a retained message too large to read, delivered on every subscribe) is
        // retried with growing waits, not about three times a second.
        if up_since.is_some_and(|t| t.elapsed() >= STABLE_AFTER) {
            attempt = 0;
        }
        let wait = backoff(attempt, backoff::cap(failure, ctx.unreachable_max));
        attempt = attempt.saturating_add(1);
        // The next attempt goes to the next broker of the list (a cluster's next node).
        let next = rotation.after_failure();
        tracing::debug!(
            attempt,
            ?failure,
            wait_ms = wait.as_millis() as u64,
            broker = %ctx.brokers[next].url,
            "reconnecting after a wait"
        );
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}

struct Link {
    ctx: LinkCtx,
    client: Option<AsyncClient>,
    session: u64,
    /// One entry per publish requested on this connection, in order: the event ids it carries.
    fifo: VecDeque<Option<Vec<Uuid>>>,
    in_flight: HashMap<u16, Vec<Uuid>>,
    sent: HashSet<Uuid>,
    /// Events the broker acknowledged, waiting for the server's receipt (since when).
    awaiting: HashMap<Uuid, Instant>,
    /// Current wait before a resend ([`RECEIPT_WAIT`] doubling to [`RECEIPT_WAIT_MAX`]).
    receipt_wait: Duration,
    /// How many rejections may still become `rejected` events this minute.
    rejects: RejectBudget,
}

/// Run the link until `shutdown` turns true.
pub async fn run(ctx: LinkCtx, mut shutdown: watch::Receiver<bool>) {
    let (tx, mut rx) = chan::unbounded();
    let (stop_tx, stop_rx) = watch::channel(false);
    let poller = match &ctx.network {
        Some(rt) => rt.spawn(poll_task(ctx.clone(), tx, stop_rx)),
        None => tokio::spawn(poll_task(ctx.clone(), tx, stop_rx)),
    };
    let flush = ctx.reporter.flush_signal();
    let sync = ctx.sync.clone();
    let mut heartbeat = tokio::time::interval(ctx.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut clock_tick = tokio::time::interval(CLOCK_EVERY);
    clock_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut receipt_tick = tokio::time::interval(Duration::from_secs(5));
    receipt_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut link = Link {
        ctx,
        client: None,
        session: 0,
        fifo: VecDeque::new(),
        in_flight: HashMap::new(),
        sent: HashSet::new(),
        awaiting: HashMap::new(),
        receipt_wait: RECEIPT_WAIT,
        rejects: RejectBudget::new(Instant::now()),
    };
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            ev = rx.recv() => match ev.map(|e| *e) {
                // Boxed: the idle task holds the loop's state, not the largest handler's.
                Some(LinkEvent::Up { session, client, broker }) => Box::pin(link.on_up(session, client, broker)).await,
                Some(LinkEvent::Mqtt(ev)) => Box::pin(link.on_mqtt(ev)).await,
                Some(LinkEvent::Down(reason)) => link.on_down(reason),
                None => break,
            },
            _ = flush.notified() => link.send_outbox(),
            _ = sync.notified() => link.send_telemetry(),
            _ = heartbeat.tick() => link.send_telemetry(),
            _ = clock_tick.tick() => link.estimate_clock(),
            _ = receipt_tick.tick() => link.resend_unreceipted(),
        }
    }
    // Graceful exit: say offline ourselves (the will is only for unclean ends).
    if let Some(c) = link.client.take() {
        let _ = c.try_publish(
            topic::state(&link.ctx.device),
            QoS::AtLeastOnce,
            true,
            state_msg(&link.ctx, false, link.session),
        );
        let _ = c.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(ev) = rx.recv().await {
                if matches!(*ev, LinkEvent::Down(_)) {
                    break;
                }
            }
        })
        .await;
    }
    let _ = stop_tx.send(true);
    poller.abort();
}

impl Link {
    async fn on_up(&mut self, session: u64, client: AsyncClient, broker: String) {
        tracing::info!(session, %broker, "connected to the broker");
        self.session = session;
        self.fifo.clear();
        self.in_flight.clear();
        self.sent.clear();
        // A new connection sends every event without a receipt again (the server dedupes).
        self.awaiting.clear();
        let now = self.ctx.clock.now();
        {
            let mut st = self.ctx.status.lock().expect("status");
            st.connected = true;
            st.session = session;
            st.last_contact = Some(now);
            st.broker = Some(broker);
        }
        let _ = self.ctx.store.modify(|s| s.last_contact = Some(now)).await;
        let d = &self.ctx.device;
        let subs = self.subscriptions();
        if client
            .try_publish(
                topic::state(d),
                QoS::AtLeastOnce,
                true,
                state_msg(&self.ctx, true, session),
            )
            .is_ok()
        {
            self.fifo.push_back(None);
        }
        if let Err(e) = client.try_subscribe_many(subs) {
            tracing::error!(error = %e, "cannot subscribe");
        }
        self.client = Some(client);
        self.ctx.reporter.observe(AgentEventKind::Connected { session });
        self.send_outbox();
        // Telemetry goes once the subscriptions are in place (SUBACK): it tells the server which
        // manifest this device holds, and the server answers with a newer one if there is one.
        self.estimate_clock();
    }

    /// The device's topic filters.
    fn subscriptions(&self) -> Vec<rumqttc::SubscribeFilter> {
        let d = &self.ctx.device;
        let mut subs = vec![
            rumqttc::SubscribeFilter::new(topic::desired(d), self.ctx.subscribe_qos),
            rumqttc::SubscribeFilter::new(topic::cmd(d), self.ctx.subscribe_qos),
            rumqttc::SubscribeFilter::new(topic::receipt(d), self.ctx.subscribe_qos),
        ];
        for a in &self.ctx.areas {
            subs.push(rumqttc::SubscribeFilter::new(
                topic::area_cmd(a),
                self.ctx.subscribe_qos,
            ));
        }
        subs
    }

    fn on_down(&mut self, reason: String) {
        let was = self.client.take().is_some();
        self.fifo.clear();
        self.in_flight.clear();
        self.sent.clear();
        self.awaiting.clear();
        self.ctx.status.lock().expect("status").connected = false;
        if was {
            tracing::warn!(%reason, "disconnected from the broker");
        } else {
            tracing::debug!(%reason, "cannot connect to the broker");
        }
        self.ctx.reporter.observe(AgentEventKind::Disconnected { reason });
    }

    async fn on_mqtt(&mut self, ev: MqttEvent) {
        match ev {
            MqttEvent::Outgoing(Outgoing::Publish(pkid)) => {
                if let Some(Some(ids)) = self.fifo.pop_front() {
                    self.in_flight.insert(pkid, ids);
                }
            }
            MqttEvent::Incoming(Packet::PubAck(ack)) => {
                if let Some(ids) = self.in_flight.remove(&ack.pkid) {
                    let now = Instant::now();
                    for id in ids {
                        self.sent.remove(&id);
                        if self.ctx.store.outbox_contains(&id) {
                            self.awaiting.insert(id, now);
                        }
                    }
                    self.send_outbox();
                }
            }
            MqttEvent::Incoming(Packet::Publish(p)) => self.on_publish(p.topic, p.payload).await,
            MqttEvent::Incoming(Packet::SubAck(ack)) => {
                // A broker may refuse a subscription for a while (a cluster node whose peer just
                // died); without it the agent would hear nothing on a live connection.
                if ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                {
                    tracing::warn!(
                        session = self.session,
                        "the broker refused a subscription; subscribing again in {} s",
                        RESUBSCRIBE_AFTER.as_secs()
                    );
                    if let Some(c) = self.client.clone() {
                        let subs = self.subscriptions();
                        tokio::spawn(async move {
                            tokio::time::sleep(RESUBSCRIBE_AFTER).await;
                            let _ = c.subscribe_many(subs).await;
                        });
                    }
                    return;
                }
                self.ctx.reporter.observe(AgentEventKind::Subscribed {
                    session: self.session,
                });
                // The heartbeat carries the manifest version held: a server with a newer one
                // sends it again, so nothing rests on the broker's retained copy (per node on
                // some clusters) or on a delivery lost while a cluster node died.
                self.send_telemetry();
            }
            _ => {}
        }
    }

    async fn reject(&mut self, topic: &str, message_id: Option<Uuid>, reason: String) {
        self.ctx.reporter.observe(AgentEventKind::MessageRejected {
            message_id,
            topic: topic.to_string(),
            reason: reason.clone(),
        });
        let (report, suppressed) = self.rejects.take(Instant::now());
        if let Some(n) = suppressed {
            tracing::warn!(
                suppressed = n,
                "rejected server messages not reported in the last minute"
            );
        }
        if !report {
            tracing::debug!(%topic, ?message_id, %reason, "server message rejected (not reported: over the limit)");
            return;
        }
        tracing::warn!(%topic, ?message_id, %reason, "server message rejected");
        if let Err(e) = self
            .ctx
            .reporter
            .report(EventBody::Rejected {
                topic: topic.to_string(),
                message_id,
                reason,
            })
            .await
        {
            tracing::error!(error = %e, "cannot record a rejection");
        }
    }

    async fn ack(&self, message_id: Uuid, ok: bool, manifest_version: Option<u64>, reason: Option<String>) {
        self.ctx
            .reporter
            .observe(AgentEventKind::Acked { message_id, ok });
        if let Err(e) = self
            .ctx
            .reporter
            .report(EventBody::Ack {
                message_id,
                ok,
                manifest_version,
                reason,
            })
            .await
        {
            tracing::error!(error = %e, "cannot record an ack");
        }
    }

    async fn on_publish(&mut self, topic_name: String, payload: Bytes) {
        if payload.is_empty() {
            return; // a cleared retained message
        }
        let (aud, stream) = match Topic::parse(&topic_name) {
            Some(Topic::Desired(d)) if d == self.ctx.device => (Audience::Device(d), "desired"),
            Some(Topic::Cmd(d)) if d == self.ctx.device => (Audience::Device(d), "cmd"),
            Some(Topic::Receipt(d)) if d == self.ctx.device => (Audience::Device(d), "receipt"),
            Some(Topic::AreaCmd(a)) if self.ctx.areas.contains(&a) => (Audience::Area(a), "cmd"),
            _ => return,
        };
        let msg = match ServerMessage::open(
            &payload,
            &self.ctx.server_key,
            &aud,
            self.ctx.clock.now(),
            self.ctx.skew,
        ) {
            Ok(m) => m,
            Err(e) => {
                let id = Signed::from_bytes(&payload)
                    .ok()
                    .and_then(|s| s.parse_payload::<serde_json::Value>().ok())
                    .and_then(|v| v.get("id").and_then(|i| i.as_str()).and_then(|i| i.parse().ok()));
                self.reject(&topic_name, id, e.to_string()).await;
                return;
            }
        };
        if msg.body.stream() != stream {
            self.reject(
                &topic_name,
                Some(msg.id),
                format!("a {} message does not belong on this topic", msg.body.stream()),
            )
            .await;
            return;
        }
        // A verified manifest, applied now or before (a retained one after a restart): it
        // confirms a version on trial, and may ask for another one.
        if let (Some(u), ServerBody::Desired(m)) = (&self.ctx.updater, &msg.body) {
            u.on_desired(m.agent.clone());
        }
        if let ServerBody::Receipt(r) = msg.body {
            // Idempotent: no replay state (an old receipt names only events already dropped).
            self.on_receipt(r.events).await;
            return;
        }
        match self.ctx.store.read(|s| guard::check(s, &msg)) {
            Verdict::AlreadyApplied => {
                tracing::debug!(id = %msg.id, "retained manifest already applied");
                return;
            }
            Verdict::Reject(reason) => {
                self.reject(&topic_name, Some(msg.id), reason).await;
                return;
            }
            Verdict::Accept => {}
        }
        let now = self.ctx.clock.now();
        let applied = match &msg.body {
            ServerBody::Desired(m) => Some(AppliedManifest {
                message_id: msg.id,
                manifest: m.clone(),
            }),
            ServerBody::Command(_) | ServerBody::Receipt(_) => None,
        };
        let saved = self
            .ctx
            .store
            .modify(|s| {
                guard::accept(s, &msg);
                if let Some(a) = applied {
                    s.manifest = Some(a);
                }
                s.last_contact = Some(now);
            })
            .await;
        if let Err(e) = saved {
            tracing::error!(error = %e, "cannot persist an accepted message; not acting on it");
            return;
        }
        self.ctx.reporter.observe(AgentEventKind::MessageVerified {
            message_id: msg.id,
            topic: topic_name.clone(),
        });
        // Accepted messages are acked `ok: true` once the player took them, `ok: false` with the
        // reason when it did not; a live stream that then cannot be opened is reported `failed`
        // in its proof of play.
        let (input, version) = match msg.body {
            ServerBody::Desired(m) => {
                let version = m.version;
                (PlayerInput::Manifest(m), Some(version))
            }
            ServerBody::Command(c) => (
                PlayerInput::Command {
                    message_id: msg.id,
                    command: c,
                },
                None,
            ),
            ServerBody::Receipt(_) => unreachable!("receipts are handled before the replay check"),
        };
        match self.hand_to_player(input).await {
            Ok(()) => self.ack(msg.id, true, version, None).await,
            Err(reason) => {
                tracing::error!(id = %msg.id, %reason, "the player did not take an accepted message");
                self.ack(msg.id, false, version, Some(reason)).await;
            }
        }
    }

    /// Give the player a manifest or command; why not, if it did not take it within
    /// [`PLAYER_WAIT`] or its task has ended.
    async fn hand_to_player(&self, input: PlayerInput) -> Result<(), String> {
        match self.ctx.player.send_timeout(Box::new(input), PLAYER_WAIT).await {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Closed(_)) => Err("not handed to the player: its task has ended".into()),
            Err(SendTimeoutError::Timeout(_)) => Err(format!(
                "not handed to the player: its queue stayed full for {} s",
                PLAYER_WAIT.as_secs()
            )),
        }
    }

    /// The server holds these events: they leave the outbox.
    async fn on_receipt(&mut self, events: Vec<Uuid>) {
        let ids: Vec<Uuid> = events
            .into_iter()
            .filter(|id| self.ctx.store.outbox_contains(id))
            .collect();
        self.receipt_wait = RECEIPT_WAIT;
        if ids.is_empty() {
            return;
        }
        for id in &ids {
            self.awaiting.remove(id);
            self.sent.remove(id);
        }
        if let Err(e) = self.ctx.store.outbox_remove(ids.clone()).await {
            tracing::error!(error = %e, "cannot clear delivered events");
        }
        self.ctx.reporter.observe(AgentEventKind::EventsDelivered { ids });
        self.send_outbox();
    }

    /// Events the broker took but the server has not confirmed within the current wait are sent
    /// again; while none is confirmed the wait doubles, so a long server outage costs little.
    fn resend_unreceipted(&mut self) {
        if self.client.is_none() || self.awaiting.is_empty() {
            return;
        }
        let wait = self.receipt_wait;
        let before = self.awaiting.len();
        self.awaiting.retain(|_, since| since.elapsed() < wait);
        let due = before - self.awaiting.len();
        if due > 0 {
            tracing::info!(
                events = due,
                wait_s = wait.as_secs(),
                "no receipt from the server; sending again"
            );
            self.receipt_wait = (wait * 2).min(RECEIPT_WAIT_MAX);
            self.send_outbox();
        }
    }

    fn send_outbox(&mut self) {
        let Some(client) = &self.client else { return };
        let busy = self.in_flight.len() + self.fifo.iter().filter(|f| f.is_some()).count();
        if busy >= BATCHES_IN_FLIGHT {
            return;
        }
        let events: Vec<Event> = self
            .ctx
            .store
            .outbox_events()
            .into_iter()
            .filter(|e| !self.sent.contains(&e.id) && !self.awaiting.contains_key(&e.id))
            .collect();
        for chunk in events.chunks(BATCH_EVENTS).take(BATCHES_IN_FLIGHT - busy) {
            let batch = EventBatch {
                v: nguon_protocol::PROTOCOL_VERSION,
                device: self.ctx.device.clone(),
                sent_at: self.ctx.clock.now(),
                events: chunk.to_vec(),
            };
            let bytes = batch.seal(self.ctx.device_key.as_ref()).to_bytes();
            match client.try_publish(topic::events(&self.ctx.device), QoS::AtLeastOnce, false, bytes) {
                Ok(()) => {
                    let ids: Vec<Uuid> = chunk.iter().map(|e| e.id).collect();
                    self.sent.extend(ids.iter().copied());
                    self.fifo.push_back(Some(ids));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "request queue full; outbox send deferred");
                    break;
                }
            }
        }
    }

    fn send_telemetry(&mut self) {
        let Some(client) = &self.client else { return };
        let st = self.ctx.status.lock().expect("status").clone();
        let disk = disk_space(self.ctx.store.dir());
        let t = Telemetry {
            v: nguon_protocol::PROTOCOL_VERSION,
            device: self.ctx.device.clone(),
            at: self.ctx.clock.now(),
            session: self.session,
            volume: st.volume,
            now_playing: st.now_playing,
            manifest_version: st.manifest_version,
            cache_bytes: self.ctx.cache.usage(),
            disk_free_bytes: disk.map_or(0, |d| d.free),
            disk_total_bytes: disk.map(|d| d.total),
            clock_offset_ms: st.clock_offset_ms,
            agent_version: crate::ota::version().to_string(),
            uptime_s: self.ctx.started.elapsed().as_secs(),
            outbox_len: self.ctx.store.outbox_len() as u64,
            broker: st.broker,
            install: self.ctx.store.read(|s| s.install_id.clone()),
        };
        let bytes = t.seal(self.ctx.device_key.as_ref()).to_bytes();
        if client
            .try_publish(topic::telemetry(&self.ctx.device), QoS::AtMostOnce, false, bytes)
            .is_ok()
        {
            self.fifo.push_back(None);
        }
    }

    fn estimate_clock(&self) {
        if self.client.is_none() {
            return;
        }
        let http = self.ctx.http.clone();
        let base = self.ctx.base_url.clone();
        let clock = self.ctx.clock;
        let status = self.ctx.status.clone();
        tokio::spawn(async move {
            match clock::estimate_offset(&http, &base, &clock).await {
                Ok(est) => {
                    if est.offset_ms.abs() > OFFSET_WARN_MS {
                        tracing::warn!(
                            offset_ms = est.offset_ms,
                            uncertainty_ms = est.uncertainty_ms,
                            "device clock is off against the server"
                        );
                    } else {
                        tracing::debug!(
                            offset_ms = est.offset_ms,
                            uncertainty_ms = est.uncertainty_ms,
                            "clock offset"
                        );
                    }
                    status.lock().expect("status").clock_offset_ms = Some(est.offset_ms);
                }
                Err(e) => tracing::debug!(error = %e, "clock estimate failed"),
            }
        });
    }
}
