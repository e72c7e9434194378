//! The MQTT broker. By default an embedded rmqtt 0.24 ([`crate::mqtt::engine`]) behind nguon's
//! MQTT gate ([`crate::mqtt::gate`]): rmqtt runs on its own runtime and listens only on 127.0.0.1
//! on a free internal port; the gate owns the public listener(s) on `settings.mqtt_addr` (and
//! `mqtt_tls_addr`) and enforces topic ACLs, per-topic message sizes, connection limits, CONNECT
//! and idle timeouts, TLS and revocation. When `settings.mqtt_url` is set nothing is embedded and
//! the server only connects to the external broker (Mosquitto, EMQX).
//!
//! Devices log in with username = device id = MQTT client id and their password, checked by the
//! gate against the `$7$` hash in `devices.credential_hash`. Hashes are held in an in-memory
//! [`Credentials`] cache (loaded at start, reloaded on `Change::Devices`/`All` and every minute,
//! and fetched from the database on a miss), and each verified (user, password) digest is
//! remembered so a reconnect storm costs one PBKDF2 per device, not one per attempt. The cache
//! also keeps each device's areas (for its ACL) and a fingerprint of what its login depends on
//! (hash, enabled, key, area): the gate registers every live device session, and a reload that
//! changes a device's fingerprint closes its sessions at once.
//!
//! rmqtt's own auth hook accepts only the server's internal user (`$nguon-server`, not a valid
//! device id, with a random password made at each start) and the gate's forwarded sessions (a
//! device id with the gate's random password), so a local process that bypasses the gate on the
//! internal port cannot log in as a device; its ACL hooks apply the gate's topic table again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use nguon_protocol::{AreaCode, DeviceId};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::domain::area::AreaTree;
use crate::domain::scope::constant_time_eq;
use crate::error::{Error, Result};
use crate::mqtt::{engine, gate};
use crate::store::{self, Store};

/// Username of the server's own MQTT connection on the embedded broker.
pub const INTERNAL_USER: &str = "$nguon-server";

/// The broker in use.
pub struct Broker {
    addr: Option<SocketAddr>,
    tls_addr: Option<SocketAddr>,
    internal_addr: Option<SocketAddr>,
    internal_password: Option<String>,
    credentials: Option<Credentials>,
}

impl Broker {
    /// Public (gate) address of the embedded broker, if one runs: where devices connect.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.addr
    }
    /// The gate's TLS listener, if one is configured.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }
    /// The engine's own address (rmqtt on 127.0.0.1, internal port): where the server's link
    /// connects.
    pub fn internal_addr(&self) -> Option<SocketAddr> {
        self.internal_addr
    }
    /// The password of [`INTERNAL_USER`] on the embedded broker.
    pub fn internal_password(&self) -> Option<&str> {
        self.internal_password.as_deref()
    }
    /// The device credential cache of the embedded broker.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }
}

#[derive(Default)]
struct Entry {
    hash: Option<String>,
    enabled: bool,
    /// The device's area and its ancestors (the area `cmd` topics it may read).
    areas: Vec<AreaCode>,
    /// Digest of everything a session depends on: hash, enabled, key, area.
    fingerprint: [u8; 32],
    /// Digests of passwords that verified against `hash`.
    good: Vec<[u8; 32]>,
}

/// One live device session registered by the gate.
struct Live {
    id: u64,
    fingerprint: [u8; 32],
    cancel: CancellationToken,
}

#[derive(Default)]
struct Inner {
    devices: HashMap<String, Entry>,
    /// Recently refused (user, password digest), so a storm of bad logins does not hit the database.
    refused: HashMap<(String, [u8; 32]), Instant>,
    /// The area tree at the last reload (ancestors of a device fetched on a miss).
    tree: AreaTree,
    /// Live sessions by device id.
    live: HashMap<String, Vec<Live>>,
    next_session: u64,
}

type Lookup = (String, oneshot::Sender<Option<store::devices::Credential>>);

/// In-memory cache of device credentials, shared by the gate and the dispatcher (which reloads
/// it when devices change).
#[derive(Clone)]
pub struct Credentials {
    inner: Arc<RwLock<Inner>>,
    internal_password: Arc<str>,
    /// The password the gate logs devices in with on the engine (rmqtt).
    gate_password: Arc<str>,
    lookup: mpsc::Sender<Lookup>,
}

/// Who a CONNECT logged in as.
#[derive(Debug, Clone)]
pub enum Login {
    /// The server's internal user: anything goes.
    Internal,
    /// A device, with the areas whose commands it may read.
    Device {
        /// The device id.
        id: DeviceId,
        /// Its area and the area's ancestors.
        areas: Vec<AreaCode>,
        /// Fingerprint of the credential it logged in with.
        fingerprint: [u8; 32],
    },
}

/// A registered live session: dropping it unregisters the session.
pub struct SessionGuard {
    inner: Arc<RwLock<Inner>>,
    device: String,
    id: u64,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = inner.live.get_mut(&self.device) {
            v.retain(|l| l.id != self.id);
            if v.is_empty() {
                inner.live.remove(&self.device);
            }
        }
    }
}

fn entry_of(tree: &AreaTree, c: store::devices::Credential, good: Vec<[u8; 32]>) -> Entry {
    let areas: Vec<AreaCode> = tree
        .ancestors(&c.area)
        .into_iter()
        .filter_map(|a| AreaCode::parse(a).ok())
        .collect();
    let mut h = Sha256::new();
    for part in [c.hash.as_deref(), c.public_key.as_deref(), Some(c.area.as_str())] {
        h.update(part.unwrap_or("\u{0}none").as_bytes());
        h.update([0u8]);
    }
    // The ACL chain is part of what a session was granted: moving an area under another parent
    // closes its devices' sessions, and they log in again with the new chain.
    for a in &areas {
        h.update(a.as_str().as_bytes());
        h.update([1u8]);
    }
    h.update([u8::from(c.enabled)]);
    Entry {
        hash: c.hash,
        enabled: c.enabled,
        areas,
        fingerprint: h.finalize().into(),
        good,
    }
}

/// Cancel every live session whose device no longer has the fingerprint it logged in with.
fn revoke_stale(inner: &Inner) -> usize {
    let mut n = 0;
    for (device, sessions) in &inner.live {
        let current = inner
            .devices
            .get(device)
            .filter(|e| e.enabled)
            .map(|e| e.fingerprint);
        for l in sessions {
            if current != Some(l.fingerprint) && !l.cancel.is_cancelled() {
                tracing::warn!(
                    device = %device,
                    "device credential changed (disabled, removed, password, key or area): closing its MQTT session"
                );
                l.cancel.cancel();
                n += 1;
            }
        }
    }
    n
}

fn digest(user: &str, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(user.as_bytes());
    h.update([0u8]);
    h.update(password.as_bytes());
    h.finalize().into()
}

impl Credentials {
    /// Replace the cache from the `devices` table (verified digests survive when the hash is
    /// unchanged), and close the live sessions of devices whose credential changed.
    pub async fn reload(&self, store: &Store) -> Result<()> {
        let rows = store::devices::credentials(store).await?;
        let tree = store::areas::tree(store).await?;
        let mut inner = self.inner.write().expect("credentials lock");
        let mut old = std::mem::take(&mut inner.devices);
        for (id, c) in rows {
            let good = match old.remove(&id) {
                Some(e) if e.hash == c.hash => e.good,
                _ => Vec::new(),
            };
            let e = entry_of(&tree, c, good);
            inner.devices.insert(id, e);
        }
        inner.tree = tree;
        // A device registered or re-keyed since a refusal must be able to log in at once.
        inner.refused.clear();
        revoke_stale(&inner);
        Ok(())
    }

    fn set(&self, user: &str, row: Option<store::devices::Credential>) {
        let mut inner = self.inner.write().expect("credentials lock");
        match row {
            None => {
                inner.devices.remove(user);
            }
            Some(c) => {
                inner.refused.retain(|(u, _), _| u != user);
                let good = match inner.devices.remove(user) {
                    Some(e) if e.hash == c.hash => e.good,
                    _ => Vec::new(),
                };
                let e = entry_of(&inner.tree, c, good);
                inner.devices.insert(user.to_string(), e);
            }
        }
        revoke_stale(&inner);
    }

    fn knows_area(&self, code: &str) -> bool {
        self.inner.read().expect("credentials lock").tree.contains(code)
    }

    fn set_tree(&self, tree: AreaTree) {
        self.inner.write().expect("credentials lock").tree = tree;
    }

    /// Register a live session of `login` (a device); the token is cancelled when the device's
    /// credential changes. `None` for the internal user (never revoked).
    pub fn register(&self, login: &Login) -> Option<(SessionGuard, CancellationToken)> {
        let Login::Device { id, fingerprint, .. } = login else {
            return None;
        };
        let cancel = CancellationToken::new();
        let mut inner = self.inner.write().expect("credentials lock");
        inner.next_session += 1;
        let sid = inner.next_session;
        // The credential may have changed between the check and now.
        let current = inner
            .devices
            .get(id.as_str())
            .filter(|e| e.enabled)
            .map(|e| e.fingerprint);
        if current != Some(*fingerprint) {
            cancel.cancel();
        }
        inner.live.entry(id.to_string()).or_default().push(Live {
            id: sid,
            fingerprint: *fingerprint,
            cancel: cancel.clone(),
        });
        Some((
            SessionGuard {
                inner: self.inner.clone(),
                device: id.to_string(),
                id: sid,
            },
            cancel,
        ))
    }

    /// Live device sessions (for tests and metrics).
    pub fn live_sessions(&self) -> usize {
        let inner = self.inner.read().expect("credentials lock");
        inner.live.values().map(Vec::len).sum()
    }

    /// `Some(answer)` when the cache decides; `None` when the database must be asked.
    fn check_cached(&self, user: &str, password: &str, d: &[u8; 32]) -> Option<bool> {
        let inner = self.inner.read().expect("credentials lock");
        if let Some(e) = inner.devices.get(user)
            && e.enabled
            && e.good.contains(d)
        {
            return Some(true);
        }
        if let Some(t) = inner.refused.get(&(user.to_string(), *d))
            && t.elapsed() < Duration::from_secs(30)
        {
            return Some(false);
        }
        let e = inner.devices.get(user)?;
        let (Some(hash), true) = (e.hash.clone(), e.enabled) else {
            return None;
        };
        drop(inner);
        if nguon_provision::credential::verify_password(password, &hash) {
            let mut inner = self.inner.write().expect("credentials lock");
            if let Some(e) = inner.devices.get_mut(user)
                && e.hash.as_deref() == Some(hash.as_str())
                && e.good.len() < 8
            {
                e.good.push(*d);
            }
            return Some(true);
        }
        None
    }

    fn refuse(&self, user: &str, d: [u8; 32]) {
        let mut inner = self.inner.write().expect("credentials lock");
        if inner.refused.len() > 100_000 {
            inner.refused.clear();
        }
        inner.refused.insert((user.to_string(), d), Instant::now());
    }

    /// The engine's auth decision: the internal user, or a session the gate forwards (a device id
    /// with the gate's password).
    pub(crate) fn check_upstream(&self, client_id: &str, user: &str, password: &str) -> bool {
        if user == INTERNAL_USER {
            return constant_time_eq(password.as_bytes(), self.internal_password.as_bytes());
        }
        client_id == user && constant_time_eq(password.as_bytes(), self.gate_password.as_bytes())
    }

    /// The password the gate presents to the engine for a device it let in.
    pub fn gate_password(&self) -> &str {
        &self.gate_password
    }

    /// The login of an enabled device (its areas and fingerprint now), `None` otherwise.
    pub(crate) fn login_of(&self, user: &str) -> Option<Login> {
        let inner = self.inner.read().expect("credentials lock");
        let e = inner.devices.get(user).filter(|e| e.enabled)?;
        Some(Login::Device {
            id: DeviceId::parse(user).ok()?,
            areas: e.areas.clone(),
            fingerprint: e.fingerprint,
        })
    }

    /// The auth decision for one CONNECT: who logged in, or `None` when refused.
    pub async fn check(&self, client_id: &str, user: &str, password: &str) -> Option<Login> {
        if user == INTERNAL_USER {
            return constant_time_eq(password.as_bytes(), self.internal_password.as_bytes())
                .then_some(Login::Internal);
        }
        if client_id != user {
            tracing::warn!(
                client_id,
                user,
                "mqtt login refused: client id must equal the device id"
            );
            return None;
        }
        let d = digest(user, password);
        if let Some(ok) = self.check_cached(user, password, &d) {
            if !ok {
                tracing::debug!(user, "mqtt login refused (cached)");
                return None;
            }
            return self.login_of(user);
        }
        // Not decided by the cache: ask the database (the device may be new or its password rotated).
        let (tx, rx) = oneshot::channel();
        if self.lookup.send((user.to_string(), tx)).await.is_ok()
            && let Ok(Ok(row)) = tokio::time::timeout(Duration::from_secs(5), rx).await
        {
            self.set(user, row);
            if let Some(true) = self.check_cached(user, password, &d) {
                return self.login_of(user);
            }
        }
        tracing::info!(
            user,
            "mqtt login refused: unknown device, disabled, no credential or wrong password"
        );
        self.refuse(user, d);
        None
    }
}

fn random_password() -> String {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b).expect("operating system random generator");
    hex::encode(b)
}

/// Wait until the broker at `addr` completes an MQTT handshake as [`INTERNAL_USER`]: the listener
/// is bound before this, so it proves the engine's accept loop and auth hook are serving. Each
/// attempt has a client id of its own: on a cluster node a CONNECT first asks the peers to end
/// any session of that id, which waits for a peer that never answered (up to rmqtt's 15 s) until
/// its circuit opens, and a retry under the same id would find the id still locked.
async fn wait_until_serving(
    addr: SocketAddr,
    password: &str,
    within: Duration,
) -> std::result::Result<(), String> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet};
    let deadline = Instant::now() + within;
    let mut last = String::from("no answer");
    loop {
        if Instant::now() > deadline {
            return Err(format!("not serving MQTT within {within:?} ({last})"));
        }
        let id = format!("nguon-server-start-probe-{}", random_password());
        let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        opts.set_credentials(INTERNAL_USER, password)
            .set_keep_alive(Duration::from_secs(5))
            .set_clean_session(true);
        let (client, mut eventloop) = AsyncClient::new(opts, 4);
        let attempt = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
        })
        .await;
        drop((client, eventloop));
        match attempt {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => {
                last = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(_) => last = "no CONNACK within 2 s".into(),
        }
    }
}

/// Start the embedded broker and its gate unless an external one is configured, and wait until
/// the engine accepts.
pub async fn start(settings: &Settings, store: &Store) -> Result<Broker> {
    if settings.mqtt_url.is_some() {
        return Ok(Broker {
            addr: None,
            tls_addr: None,
            internal_addr: None,
            internal_password: None,
            credentials: None,
        });
    }
    let internal_password = random_password();
    let (lookup, mut lookups) = mpsc::channel::<Lookup>(1024);
    let credentials = Credentials {
        inner: Arc::default(),
        internal_password: internal_password.clone().into(),
        gate_password: random_password().into(),
        lookup,
    };
    credentials.reload(store).await?;
    // Database look-ups for a credential missing from the cache run here, on the server's
    // runtime, one at a time.
    // A device met here may sit in an area created after the cache's last reload (the reload
    // follows the dispatcher's debounced tick): its ACL chain must not be computed from a tree
    // that lacks its area, or it would be refused its own province's command topic for the
    // whole session, so the tree is read again first.
    let s = store.clone();
    let cache = credentials.clone();
    tokio::spawn(async move {
        while let Some((user, reply)) = lookups.recv().await {
            match store::devices::credential(&s, &user).await {
                Ok(r) => {
                    if let Some(c) = &r
                        && !cache.knows_area(&c.area)
                    {
                        match store::areas::tree(&s).await {
                            Ok(tree) => cache.set_tree(tree),
                            Err(e) => tracing::warn!(error = %e, "area tree look-up failed"),
                        }
                    }
                    let _ = reply.send(r);
                }
                Err(e) => tracing::warn!(error = %e, "credential look-up failed"),
            }
        }
    });
    let internal = engine::start(
        credentials.clone(),
        settings.mqtt_max_connections,
        settings.broker_cluster.clone(),
    )
    .await?;
    // A cluster node whose peers are down accepts its first CONNECT once their circuits open.
    let within = Duration::from_secs(if settings.broker_cluster.is_some() { 45 } else { 10 });
    wait_until_serving(internal, &internal_password, within)
        .await
        .map_err(|e| Error::internal(format!("embedded MQTT broker on {internal}: {e}")))?;
    let (addr, tls_addr) = gate::start(settings, internal, credentials.clone()).await?;
    tracing::info!(%addr, ?tls_addr, %internal, "embedded MQTT broker (rmqtt behind the gate) listening");
    Ok(Broker {
        addr: Some(addr),
        tls_addr,
        internal_addr: Some(internal),
        internal_password: Some(internal_password),
        credentials: Some(credentials),
    })
}
