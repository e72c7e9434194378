//! The MQTT broker. By default an embedded rumqttd 0.20, configured in code and run on its own OS
//! threads (its `start()` blocks), listening on `settings.mqtt_addr`; when `settings.mqtt_url` is
//! set nothing is embedded and the server only connects to the external broker (Mosquitto, EMQX).
//!
//! Devices log in with username = device id = MQTT client id and their password, checked against
//! the `$7$` hash in `devices.credential_hash` through rumqttd's external auth hook. Hashes are held
//! in an in-memory [`Credentials`] cache (loaded at start, reloaded on `Change::Devices`/`All` and
//! every minute, and fetched from the database on a miss), and each verified (user, password)
//! digest is remembered so a reconnect storm costs one PBKDF2 per device, not one per attempt.
//! The server itself logs in as an internal user (`$nguon-server`, not a valid device id) with a
//! random password made at each start.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::store::{self, Store};

/// Username of the server's own MQTT connection on the embedded broker.
pub const INTERNAL_USER: &str = "$nguon-server";

/// Connections the embedded broker accepts (one province is ≈2,000 devices; see docs/operations.md).
pub const MAX_CONNECTIONS: usize = 5_000;

/// The broker in use.
pub struct Broker {
    addr: Option<SocketAddr>,
    internal_password: Option<String>,
    credentials: Option<Credentials>,
}

impl Broker {
    /// Address of the embedded broker, if one runs.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.addr
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
    /// Digests of passwords that verified against `hash`.
    good: Vec<[u8; 32]>,
}

#[derive(Default)]
struct Inner {
    devices: HashMap<String, Entry>,
    /// Recently refused (user, password digest), so a storm of bad logins does not hit the database.
    refused: HashMap<(String, [u8; 32]), Instant>,
}

type Lookup = (String, oneshot::Sender<Option<(Option<String>, bool)>>);

/// In-memory cache of device credentials, shared by the broker's auth hook and the dispatcher.
#[derive(Clone)]
pub struct Credentials {
    inner: Arc<RwLock<Inner>>,
    internal_password: Arc<str>,
    lookup: mpsc::Sender<Lookup>,
}

fn digest(user: &str, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(user.as_bytes());
    h.update([0u8]);
    h.update(password.as_bytes());
    h.finalize().into()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Credentials {
    /// Replace the cache from the `devices` table (verified digests survive when the hash is unchanged).
    pub async fn reload(&self, store: &Store) -> Result<()> {
        let rows = store::devices::credentials(store).await?;
        let mut inner = self.inner.write().expect("credentials lock");
        let mut old = std::mem::take(&mut inner.devices);
        for (id, c) in rows {
            let good = match old.remove(&id) {
                Some(e) if e.hash == c.hash => e.good,
                _ => Vec::new(),
            };
            inner.devices.insert(
                id,
                Entry {
                    hash: c.hash,
                    enabled: c.enabled,
                    good,
                },
            );
        }
        // A device registered or re-keyed since a refusal must be able to log in at once.
        inner.refused.clear();
        Ok(())
    }

    fn set(&self, user: &str, row: Option<(Option<String>, bool)>) {
        let mut inner = self.inner.write().expect("credentials lock");
        match row {
            None => {
                inner.devices.remove(user);
            }
            Some((hash, enabled)) => {
                inner.refused.retain(|(u, _), _| u != user);
                let e = inner.devices.entry(user.to_string()).or_default();
                if e.hash != hash {
                    e.good.clear();
                }
                e.hash = hash;
                e.enabled = enabled;
            }
        }
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

    /// The auth decision for one CONNECT.
    pub async fn check(&self, client_id: &str, user: &str, password: &str) -> bool {
        if user == INTERNAL_USER {
            return ct_eq(password.as_bytes(), self.internal_password.as_bytes());
        }
        if client_id != user {
            tracing::warn!(
                client_id,
                user,
                "mqtt login refused: client id must equal the device id"
            );
            return false;
        }
        let d = digest(user, password);
        if let Some(ok) = self.check_cached(user, password, &d) {
            if !ok {
                tracing::debug!(user, "mqtt login refused (cached)");
            }
            return ok;
        }
        // Not decided by the cache: ask the database (the device may be new or its password rotated).
        let (tx, rx) = oneshot::channel();
        if self.lookup.send((user.to_string(), tx)).await.is_ok()
            && let Ok(Ok(row)) = tokio::time::timeout(Duration::from_secs(5), rx).await
        {
            self.set(user, row);
            if let Some(true) = self.check_cached(user, password, &d) {
                return true;
            }
        }
        tracing::info!(
            user,
            "mqtt login refused: unknown device, disabled, no credential or wrong password"
        );
        self.refuse(user, d);
        false
    }
}

fn random_password() -> String {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b).expect("operating system random generator");
    hex::encode(b)
}

fn free_port(addr: SocketAddr) -> Result<SocketAddr> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    let l = TcpListener::bind(addr)?;
    Ok(l.local_addr()?)
}

/// The rumqttd configuration used for the embedded broker.
fn config(listen: SocketAddr, credentials: Credentials) -> rumqttd::Config {
    let mut connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: 8 * 1024 * 1024,
        max_inflight_count: 500,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    connections.set_auth_handler(move |client_id: String, user: String, password: String| {
        let c = credentials.clone();
        async move { c.check(&client_id, &user, &password).await }
    });
    let server = rumqttd::ServerSettings {
        name: "nguon-v4".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: MAX_CONNECTIONS,
            max_outgoing_packet_count: 500,
            max_segment_size: 32 * 1024 * 1024,
            max_segment_count: 8,
            ..Default::default()
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Default::default()
    }
}

/// Wait until the broker at `addr` completes an MQTT handshake as [`INTERNAL_USER`]. A bare TCP
/// probe would do, but rumqttd logs every connection closed before its CONNECT as an error, so
/// each start would log one.
async fn wait_until_serving(
    addr: SocketAddr,
    password: &str,
    within: Duration,
) -> std::result::Result<(), String> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet};
    let deadline = Instant::now() + within;
    let mut opts = MqttOptions::new("nguon-server-start-probe", addr.ip().to_string(), addr.port());
    opts.set_credentials(INTERNAL_USER, password)
        .set_keep_alive(Duration::from_secs(5))
        .set_clean_session(true);
    let (client, mut eventloop) = AsyncClient::new(opts, 4);
    let mut last = String::from("no answer");
    loop {
        if Instant::now() > deadline {
            return Err(format!("not serving MQTT within {within:?} ({last})"));
        }
        match tokio::time::timeout(Duration::from_millis(500), eventloop.poll()).await {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => break,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                last = e.to_string();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(_) => last = "no CONNACK within 500 ms".into(),
        }
    }
    // Dropping the connection now is what rumqttd logs at info ("disconnected", closed by
    // peer); a DISCONNECT packet would end its link with an error line.
    drop((client, eventloop));
    Ok(())
}

/// Start the embedded broker unless an external one is configured, and wait until it accepts.
pub async fn start(settings: &Settings, store: &Store) -> Result<Broker> {
    if settings.mqtt_url.is_some() {
        return Ok(Broker {
            addr: None,
            internal_password: None,
            credentials: None,
        });
    }
    let internal_password = random_password();
    let (lookup, mut lookups) = mpsc::channel::<Lookup>(1024);
    let credentials = Credentials {
        inner: Arc::default(),
        internal_password: internal_password.clone().into(),
        lookup,
    };
    credentials.reload(store).await?;
    // Database look-ups for the auth hook run here, on the server's runtime (the hook itself runs
    // on rumqttd's own runtime, where the pool must not be used).
    let s = store.clone();
    tokio::spawn(async move {
        while let Some((user, reply)) = lookups.recv().await {
            match store::devices::credential(&s, &user).await {
                Ok(r) => {
                    let _ = reply.send(r.map(|c| (c.hash, c.enabled)));
                }
                Err(e) => tracing::warn!(error = %e, "credential look-up failed"),
            }
        }
    });
    let addr = free_port(settings.mqtt_addr)?;
    let cfg = config(addr, credentials.clone());
    std::thread::Builder::new()
        .name("rumqttd".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(cfg);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })?;
    let probe = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    wait_until_serving(probe, &internal_password, Duration::from_secs(10))
        .await
        .map_err(|e| Error::internal(format!("embedded MQTT broker on {addr}: {e}")))?;
    tracing::info!(%addr, "embedded MQTT broker (rumqttd) listening");
    Ok(Broker {
        addr: Some(addr),
        internal_password: Some(internal_password),
        credentials: Some(credentials),
    })
}
