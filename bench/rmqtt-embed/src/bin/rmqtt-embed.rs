//! rmqtt 0.24 run embedded, the way nguon-server would embed it (issue 11, "Broker"): one TCP
//! listener on loopback, retained messages kept in memory, and nguon's broker rules as rmqtt hooks.
//!
//! - Authentication (`ClientAuthenticate`): the server user (`--server-user`, default
//!   `nguon-server`) with `--server-password` is a superuser; any other user must be a device whose
//!   username equals its client id and whose password is `--device-password` (the real hook would
//!   check the `$7$` hash from the database).
//! - ACL (`ClientSubscribeCheckAcl`, `MessagePublishCheckAcl`): the generated Mosquitto
//!   `acl_file` rules (firmware-config/src/mosquitto.rs). A device reads only
//!   `nguon/v1/d/{id}/{desired,cmd,receipt}` and `nguon/v1/a/{area}/cmd` of its areas (`--area`,
//!   one area for every device here), and writes only `nguon/v1/d/{id}/{state,telemetry,events}`.
//!   Each refusal is counted; the counts and rmqtt's session and connection counters are printed
//!   every 5 s.
//! - Retain: rmqtt 0.24's core only forwards retained messages to a `RetainStorage`; its default
//!   one drops them (the `rmqtt-retainer` plugin is the supported store). [`MemRetain`] does what
//!   that plugin's `ram` backend does, on the same `DefaultRetainStorage` trie, with a payload cap.
//!
//! With `--features jemalloc` jemalloc is the global allocator (glibc malloc's RSS grows across
//! reconnect storms; jemalloc's stays flat: docs/benchmarks.md).
//!
//! Usage: `rmqtt-embed --port 18830 --device-password pw --server-password spw [--area 08003]
//! [--max-connections 20000] [--busy-check]`. Prints `listening 127.0.0.1:PORT pid PID`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use rmqtt::codec::v5::SubscribeAckReason;
use rmqtt::context::ServerContext;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType, Type};
use rmqtt::net::Builder;
use rmqtt::retain::{DefaultRetainStorage, RetainStorage};
use rmqtt::server::MqttServer;
use rmqtt::types::{AuthResult, PublishAclResult, Retain, SubscribeAclResult, TopicFilter, TopicName};

#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const PREFIX: &str = "nguon/v1";

#[derive(Clone)]
struct Args {
    port: u16,
    device_password: String,
    server_user: String,
    server_password: String,
    area: String,
    max_connections: usize,
    busy_check: bool,
    max_retained_payload: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        port: 18830,
        device_password: "device-pw".into(),
        server_user: "nguon-server".into(),
        server_password: "server-pw".into(),
        area: "08003".into(),
        max_connections: 20_000,
        busy_check: false,
        max_retained_payload: 4 * 1024 * 1024,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or_else(|| anyhow::anyhow!("{k} needs a value"));
        match k.as_str() {
            "--port" => a.port = v()?.parse()?,
            "--device-password" => a.device_password = v()?,
            "--server-user" => a.server_user = v()?,
            "--server-password" => a.server_password = v()?,
            "--area" => a.area = v()?,
            "--max-connections" => a.max_connections = v()?.parse()?,
            "--max-retained-payload" => a.max_retained_payload = v()?.parse()?,
            "--busy-check" => a.busy_check = true,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

/// Counters of what the hooks decided.
#[derive(Default)]
struct Counts {
    auth_ok: AtomicU64,
    auth_refused: AtomicU64,
    sub_refused: AtomicU64,
    pub_refused: AtomicU64,
    retained_refused: AtomicU64,
}

impl Counts {
    fn line(&self) -> String {
        format!(
            "hooks: auth_ok={} auth_refused={} subscribe_refused={} publish_refused={} retained_too_big={}",
            self.auth_ok.load(Ordering::Relaxed),
            self.auth_refused.load(Ordering::Relaxed),
            self.sub_refused.load(Ordering::Relaxed),
            self.pub_refused.load(Ordering::Relaxed),
            self.retained_refused.load(Ordering::Relaxed),
        )
    }
}

/// `nguon/v1/d/{id}/{leaf}` → (id, leaf).
fn device_topic(topic: &str) -> Option<(&str, &str)> {
    let rest = topic.strip_prefix(PREFIX)?.strip_prefix("/d/")?;
    let (id, leaf) = rest.split_once('/')?;
    (!id.is_empty() && !leaf.contains('/')).then_some((id, leaf))
}

/// The nguon broker rules: may `user` read (subscribe to) `filter`?
fn may_read(user: &str, area: &str, filter: &str) -> bool {
    if let Some((id, leaf)) = device_topic(filter) {
        return id == user && matches!(leaf, "desired" | "cmd" | "receipt");
    }
    filter == format!("{PREFIX}/a/{area}/cmd")
}

/// May `user` write (publish to) `topic`?
fn may_write(user: &str, topic: &str) -> bool {
    matches!(device_topic(topic), Some((id, leaf)) if id == user && matches!(leaf, "state" | "telemetry" | "events"))
}

/// A device id as nguon accepts it: 1–64 characters of `[A-Za-z0-9_-]`, and never an MQTT wildcard.
fn valid_device_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

struct Rules {
    args: Args,
    counts: Arc<Counts>,
}

#[async_trait]
impl Handler for Rules {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        match param {
            Parameter::ClientAuthenticate(ci) => {
                let user = ci.id().username.as_deref().unwrap_or("");
                let pw = ci.password().map(|p| p.as_ref()).unwrap_or(b"");
                let ok = if user == self.args.server_user {
                    pw == self.args.server_password.as_bytes()
                } else {
                    valid_device_id(user)
                        && ci.client_id().as_ref() as &str == user
                        && pw == self.args.device_password.as_bytes()
                };
                if ok {
                    self.counts.auth_ok.fetch_add(1, Ordering::Relaxed);
                    let superuser = user == self.args.server_user;
                    (
                        false,
                        Some(HookResult::AuthResult(AuthResult::Allow(superuser, None))),
                    )
                } else {
                    self.counts.auth_refused.fetch_add(1, Ordering::Relaxed);
                    (
                        false,
                        Some(HookResult::AuthResult(AuthResult::BadUsernameOrPassword)),
                    )
                }
            }
            // Superusers never reach these two hooks (rmqtt lets them through before the chain).
            Parameter::ClientSubscribeCheckAcl(session, sub) => {
                let user = session.id.username.as_deref().unwrap_or("");
                let r = if may_read(user, &self.args.area, &sub.topic_filter) {
                    SubscribeAclResult::new_success(sub.opts.qos(), None)
                } else {
                    self.counts.sub_refused.fetch_add(1, Ordering::Relaxed);
                    SubscribeAclResult::new_failure(SubscribeAckReason::NotAuthorized)
                };
                (false, Some(HookResult::SubscribeAclResult(r)))
            }
            Parameter::MessagePublishCheckAcl(session, publish) => {
                let user = session.id.username.as_deref().unwrap_or("");
                let r = if may_write(user, &publish.topic) {
                    PublishAclResult::allow()
                } else {
                    self.counts.pub_refused.fetch_add(1, Ordering::Relaxed);
                    // MQTT 3.1.1 has no negative PUBACK: the message is dropped, the session kept.
                    PublishAclResult::rejected(false, None)
                };
                (false, Some(HookResult::PublishAclResult(r)))
            }
            _ => (true, acc),
        }
    }
}

/// In-memory retained messages (what rmqtt-retainer's `ram` backend does), with a payload cap.
struct MemRetain {
    inner: DefaultRetainStorage,
    max_payload: usize,
    counts: Arc<Counts>,
}

#[async_trait]
impl RetainStorage for MemRetain {
    fn enable(&self) -> bool {
        true
    }

    async fn set(&self, topic: &TopicName, retain: Retain, expiry: Option<Duration>) -> rmqtt::Result<()> {
        if retain.publish.payload.len() > self.max_payload {
            self.counts.retained_refused.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        self.inner.set_with_timeout(topic, retain, expiry).await
    }

    async fn get(&self, filter: &TopicFilter) -> rmqtt::Result<Vec<(TopicName, Retain)>> {
        self.inner.get_message(filter).await
    }

    async fn count(&self) -> isize {
        self.inner.count().await
    }

    async fn max(&self) -> isize {
        self.inner.max().await
    }
}

fn main() -> anyhow::Result<()> {
    let args = args()?;
    // Two worker threads: the machine has two cores, shared with the server it would live in.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let counts = Arc::new(Counts::default());
    let scx = ServerContext::new()
        .busy_check_enable(args.busy_check)
        .mqtt_max_sessions(args.max_connections as isize)
        .build()
        .await;
    *scx.extends.retain_mut().await = Box::new(MemRetain {
        inner: DefaultRetainStorage::new(),
        max_payload: args.max_retained_payload,
        counts: counts.clone(),
    });
    let register = scx.extends.hook_mgr().register();
    for t in [
        Type::ClientAuthenticate,
        Type::ClientSubscribeCheckAcl,
        Type::MessagePublishCheckAcl,
    ] {
        let rules = Rules {
            args: args.clone(),
            counts: counts.clone(),
        };
        register.add(t, Box::new(rules)).await;
    }
    register.start().await;

    let laddr = std::net::SocketAddr::from(([127, 0, 0, 1], args.port));
    let listener = Builder::new()
        .name("nguon/tcp")
        .laddr(laddr)
        .nodelay(true)
        .allow_anonymous(false)
        .max_connections(args.max_connections)
        .max_packet_size(8 * 1024 * 1024)
        .handshake_timeout(Duration::from_secs(10))
        .bind()?
        .tcp()?;
    println!("listening {laddr} pid {}", std::process::id());

    let (c, sx) = (counts.clone(), scx.clone());
    tokio::spawn(async move {
        let start = std::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            println!(
                "{:>5}s sessions={} connections={} handshaking={} {}",
                start.elapsed().as_secs(),
                sx.sessions.count(),
                sx.connections.count(),
                sx.handshakings.count(),
                c.line()
            );
        }
    });
    let server = MqttServer::new(scx).listener(listener).build();
    tokio::select! {
        r = server.run() => r?,
        _ = tokio::signal::ctrl_c() => {}
    }
    println!("{}", counts.line());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_reads_and_writes_only_its_own_topics() {
        assert!(may_read("lc-1", "08003", "nguon/v1/d/lc-1/desired"));
        assert!(may_read("lc-1", "08003", "nguon/v1/a/08003/cmd"));
        assert!(!may_read("lc-1", "08003", "nguon/v1/a/08020/cmd"));
        assert!(!may_read("lc-1", "08003", "nguon/v1/d/lc-2/desired"));
        assert!(!may_read("lc-1", "08003", "nguon/v1/d/+/desired"));
        assert!(!may_read("lc-1", "08003", "#"));
        assert!(!may_read("lc-1", "08003", "nguon/v1/d/lc-1/#"));
        assert!(may_write("lc-1", "nguon/v1/d/lc-1/state"));
        assert!(!may_write("lc-1", "nguon/v1/d/lc-1/desired"));
        assert!(!may_write("lc-1", "nguon/v1/d/lc-2/state"));
        assert!(!may_write("lc-1", "nguon/v1/a/08003/cmd"));
    }
}
