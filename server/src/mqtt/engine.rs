//! The embedded broker's engine: rmqtt 0.24, behind nguon's MQTT gate ([`crate::mqtt::gate`]).
//!
//! rmqtt runs in the server process on its own tokio runtime (one OS thread that owns it and two
//! worker threads), with one plain TCP listener on 127.0.0.1 on a free port. Only the gate and the
//! server's own link connect there; the gate owns the public listeners, TLS (with ring: rmqtt's
//! `tls` feature is off, it would pull aws-lc-rs) and every device-facing limit.
//!
//! Hooks (the gate decides first; these are defence in depth for a local process that reaches the
//! internal port directly):
//! - `ClientAuthenticate`: only the internal user (`$nguon-server`, a superuser) and sessions the
//!   gate forwards (username = client id = device id, with the gate's per-start password), the
//!   rule [`Credentials::check_upstream`] applied to rumqttd before.
//! - `ClientSubscribeCheckAcl` / `MessagePublishCheckAcl`: a device session may subscribe and
//!   publish only what [`nguon_protocol::acl`] allows it (the same table as the gate and the
//!   generated Mosquitto `acl_file`), with its topic's size limit; a device no longer enabled is
//!   refused. A refused publish disconnects the session. The internal user skips both (rmqtt does
//!   not call ACL hooks for a superuser).
//!
//! `$share/<group>/…` subscriptions are on ([`cluster::SharedChoice`]), and with
//! `[broker_cluster]` this engine is one node of a cluster ([`crate::mqtt::cluster`]): the
//! hooks below stay per node, each node checking the devices that connect through its gate.
//!
//! Retained messages: rmqtt's core keeps none (its default store only logs a warning and drops
//! them; the `rmqtt-retainer` plugin is the supported store). [`MemRetain`] keeps them in memory
//! on rmqtt's own `DefaultRetainStorage` trie, refuses a payload over [`acl::MAX_PACKET`], and
//! never expires them (rmqtt would give an MQTT 3.1.1 retained message the listener's message
//! expiry, 5 minutes by default, and a device reconnecting later would find no manifest).
//!
//! rmqtt logs with `log`: [`install_log_bridge`] forwards those records into tracing, with
//! rmqtt's routine warnings (sessions replaced, refused subscriptions the gate already logged,
//! races between a kick and a reconnect) lowered to debug; a full delivery queue (messages
//! dropped) stays a warning and its errors become warnings.

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use nguon_protocol::acl;
use rmqtt::codec::v5::SubscribeAckReason;
use rmqtt::context::ServerContext;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType, Type};
use rmqtt::net::Builder;
use rmqtt::retain::{DefaultRetainStorage, RetainStorage};
use rmqtt::server::MqttServer;
use rmqtt::types::{AuthResult, PublishAclResult, Retain, SubscribeAclResult, TopicFilter, TopicName};
use tokio::sync::oneshot;

use crate::config::cluster::BrokerCluster;
use crate::error::{Error, Result};
use crate::mqtt::broker::{Credentials, Login};
use crate::mqtt::cluster;

/// The largest packet on the internal listener: a device's desired manifest from the server, plus
/// room for the header (the gate enforces the per-topic limits first).
const MAX_INTERNAL_PACKET: usize = acl::MAX_PACKET + 64 * 1024;

/// nguon's rules as one rmqtt hook handler.
struct Rules {
    credentials: Credentials,
}

impl Rules {
    /// The device a (gate-forwarded) session belongs to, with its areas; `None` when the device
    /// is unknown or disabled now.
    fn device(
        &self,
        user: Option<&str>,
    ) -> Option<(nguon_protocol::DeviceId, Vec<nguon_protocol::AreaCode>)> {
        match self.credentials.login_of(user?)? {
            Login::Device { id, areas, .. } => Some((id, areas)),
            Login::Internal => None,
        }
    }
}

#[async_trait]
impl Handler for Rules {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        match param {
            Parameter::ClientAuthenticate(ci) => {
                let user = ci.id().username.as_deref().unwrap_or("");
                let password = ci.password().map(|p| p.as_ref()).unwrap_or(b"");
                let password = std::str::from_utf8(password).unwrap_or("");
                let client_id: &str = ci.client_id().as_ref();
                let result = if self.credentials.check_upstream(client_id, user, password) {
                    let superuser = user == crate::mqtt::broker::INTERNAL_USER;
                    AuthResult::Allow(superuser, None)
                } else {
                    tracing::warn!(
                        client_id,
                        user,
                        "embedded broker: login on the internal port refused (not the server, not the gate)"
                    );
                    AuthResult::BadUsernameOrPassword
                };
                (false, Some(HookResult::AuthResult(result)))
            }
            Parameter::ClientSubscribeCheckAcl(session, sub) => {
                let ok = self
                    .device(session.id.username.as_deref())
                    .is_some_and(|(id, areas)| acl::may_subscribe(&id, &areas, &sub.topic_filter));
                let r = if ok {
                    SubscribeAclResult::new_success(sub.opts.qos(), None)
                } else {
                    tracing::warn!(
                        user = session.id.username.as_deref().unwrap_or(""),
                        filter = %sub.topic_filter,
                        "embedded broker: subscription refused by the engine's ACL"
                    );
                    SubscribeAclResult::new_failure(SubscribeAckReason::NotAuthorized)
                };
                (false, Some(HookResult::SubscribeAclResult(r)))
            }
            Parameter::MessagePublishCheckAcl(session, publish) => {
                let ok = self
                    .device(session.id.username.as_deref())
                    .is_some_and(|(id, _)| {
                        acl::may_publish(&id, &publish.topic)
                            .is_some_and(|limit| publish.payload.len() <= limit)
                    });
                let r = if ok {
                    PublishAclResult::allow()
                } else {
                    tracing::warn!(
                        user = session.id.username.as_deref().unwrap_or(""),
                        topic = %publish.topic,
                        size = publish.payload.len(),
                        "embedded broker: publish refused by the engine's ACL; session disconnected"
                    );
                    PublishAclResult::rejected(true, None)
                };
                (false, Some(HookResult::PublishAclResult(r)))
            }
            _ => (true, acc),
        }
    }
}

/// Retained messages in memory (what rmqtt-retainer's `ram` backend does), with a payload cap
/// and no expiry.
struct MemRetain {
    inner: DefaultRetainStorage,
    max_payload: usize,
}

#[async_trait]
impl RetainStorage for MemRetain {
    fn enable(&self) -> bool {
        true
    }

    async fn set(&self, topic: &TopicName, retain: Retain, _expiry: Option<Duration>) -> rmqtt::Result<()> {
        let size = retain.publish.payload.len();
        if size > self.max_payload {
            tracing::warn!(%topic, size, max = self.max_payload, "embedded broker: retained message over the cap not kept");
            return Ok(());
        }
        self.inner.set_with_timeout(topic, retain, None).await
    }

    async fn get(&self, filter: &TopicFilter) -> rmqtt::Result<Vec<(TopicName, Retain)>> {
        self.inner.get_message(filter).await
    }

    async fn get_all_paginated(
        &self,
        offset: usize,
        limit: usize,
    ) -> rmqtt::Result<(Vec<(TopicName, Retain, Option<Duration>)>, bool)> {
        // A (re)starting cluster node pulls its peers' retained messages with this.
        self.inner.get_all_paginated(offset, limit).await
    }

    async fn count(&self) -> isize {
        self.inner.count().await
    }

    async fn max(&self) -> isize {
        self.inner.max().await
    }
}

/// Start rmqtt on its own runtime, listening on 127.0.0.1 (free port); returns its address once
/// the listener is bound.
pub(crate) async fn start(
    credentials: Credentials,
    max_connections: usize,
    cluster: Option<BrokerCluster>,
) -> Result<SocketAddr> {
    // The gate's limit, plus the server's link and a margin for sessions being replaced.
    let max_connections = max_connections + 64;
    let (ready_tx, ready_rx) = oneshot::channel::<std::result::Result<SocketAddr, String>>();
    std::thread::Builder::new().name("rmqtt".into()).spawn(move || {
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rmqtt-worker")
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready_tx.send(Err(format!("runtime: {e}")));
                return;
            }
        };
        rt.block_on(serve(credentials, max_connections, cluster, ready_tx));
    })?;
    match ready_rx.await {
        Ok(Ok(addr)) => Ok(addr),
        Ok(Err(e)) => Err(Error::internal(format!("embedded MQTT broker (rmqtt): {e}"))),
        Err(_) => Err(Error::internal(
            "embedded MQTT broker (rmqtt) stopped while starting",
        )),
    }
}

async fn serve(
    credentials: Credentials,
    max_connections: usize,
    cluster: Option<BrokerCluster>,
    ready: oneshot::Sender<std::result::Result<SocketAddr, String>>,
) {
    // No busy check: it refuses connections when the machine's load average is high, which on
    // two shared cores is most of the time under a reconnect storm.
    let mut builder = ServerContext::new()
        .busy_check_enable(false)
        .mqtt_max_sessions(max_connections as isize);
    if let Some(c) = &cluster {
        builder = cluster::configure(builder, c);
    }
    let scx = builder.build().await;
    *scx.extends.retain_mut().await = Box::new(MemRetain {
        inner: DefaultRetainStorage::new(),
        max_payload: acl::MAX_PACKET,
    });
    // `$share/<group>/…` (ha.shared_group): one member of the group per message.
    *scx.extends.shared_subscription_mut().await = Box::new(cluster::SharedChoice::default());
    let register = scx.extends.hook_mgr().register();
    for t in [
        Type::ClientAuthenticate,
        Type::ClientSubscribeCheckAcl,
        Type::MessagePublishCheckAcl,
    ] {
        let rules = Rules {
            credentials: credentials.clone(),
        };
        register.add(t, Box::new(rules)).await;
    }
    register.start().await;
    if let Some(c) = &cluster
        && let Err(e) = cluster::join(&scx, c).await
    {
        let _ = ready.send(Err(e));
        return;
    }
    let bound = Builder::new()
        .name("nguon-internal")
        .laddr(SocketAddr::from(([127, 0, 0, 1], 0)))
        .nodelay(true)
        .backlog(1024)
        .allow_anonymous(false)
        .max_connections(max_connections)
        .max_handshaking_limit(max_connections)
        .max_packet_size(MAX_INTERNAL_PACKET as u32)
        // The gate forwards a CONNECT as soon as it has checked it.
        .handshake_timeout(Duration::from_secs(10))
        // Keep-alive: the gate closes a client silent past 1.5 × its keep-alive (capped) and
        // forwards its PINGREQs; rmqtt's own timeout is 1.5 × the keep-alive asked, so any
        // keep-alive the gate let through is accepted here, 0 included.
        .allow_zero_keepalive(true)
        // QoS 1 window towards each client: the server's link takes every device report.
        .max_inflight(std::num::NonZeroU16::new(500).expect("non-zero"))
        // Messages waiting behind that window (per session; payloads are shared): the server's
        // link gets every device's retained state when it subscribes.
        .max_mqueue_len(max_connections.saturating_mul(4).max(10_000))
        // A client (the gate on behalf of a device, or the server's link) that takes no data for
        // this long is dropped.
        .send_timeout(Duration::from_secs(60))
        .bind()
        .and_then(|l| l.tcp());
    let listener = match bound {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(format!("bind 127.0.0.1: {e}")));
            return;
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            let _ = ready.send(Err(format!("local address: {e}")));
            return;
        }
    };
    let _ = ready.send(Ok(addr));
    if let Err(e) = MqttServer::new(scx).listener(listener).build().run().await {
        tracing::error!(error = %e, "embedded MQTT broker (rmqtt) stopped");
    }
}

/// `log` → tracing, with rmqtt's routine warnings lowered to debug.
struct LogBridge;

impl LogBridge {
    fn level(record: &log::Record<'_>) -> log::Level {
        let target = record.target();
        if !target.starts_with("rmqtt") {
            return record.level();
        }
        match record.level() {
            log::Level::Error => log::Level::Warn,
            log::Level::Warn => {
                // Messages dropped because a session's queue is full: worth a warning.
                if record.args().to_string().contains("queue is full") {
                    log::Level::Warn
                } else {
                    log::Level::Debug
                }
            }
            log::Level::Info => log::Level::Debug,
            l => l,
        }
    }
}

impl log::Log for LogBridge {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        tracing_log::AsTrace::as_trace(&metadata.level()) <= tracing::level_filters::LevelFilter::current()
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = Self::level(record);
        if tracing_log::AsTrace::as_trace(&level) > tracing::level_filters::LevelFilter::current() {
            return;
        }
        let r = log::Record::builder()
            .level(level)
            .target(record.target())
            .args(*record.args())
            .module_path(record.module_path())
            .file(record.file())
            .line(record.line())
            .build();
        let _ = tracing_log::format_trace(&r);
    }

    fn flush(&self) {}
}

/// Route the `log` records of rmqtt (and any other `log` user) into tracing. Call once, after the
/// tracing subscriber is set (its level decides which records are built at all).
pub fn install_log_bridge() -> std::result::Result<(), log::SetLoggerError> {
    log::set_boxed_logger(Box::new(LogBridge))?;
    log::set_max_level(tracing_log::AsLog::as_log(
        &tracing::level_filters::LevelFilter::current(),
    ));
    Ok(())
}
