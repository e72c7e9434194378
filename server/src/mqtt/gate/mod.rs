//! The MQTT gate: the embedded broker's public face. The gate owns the public listeners (plain TCP
//! on `mqtt_addr`, and TLS with ring on `mqtt_tls_addr` when configured), reads every client's
//! MQTT 3.1.1 packets with rumqttc's `mqttbytes` codec and forwards what is allowed to the engine
//! (rmqtt, [`crate::mqtt::engine`]) on 127.0.0.1 (see [`crate::mqtt::broker`]). It was written in
//! front of rumqttd, which had no topic-ACL hook; rmqtt's hooks repeat the ACL behind it.
//!
//! What it enforces, per connection ([`session`]):
//! - a connection limit in total and per source IP (over it: closed at once);
//! - a CONNECT (after the TLS handshake) within `mqtt_connect_timeout_ms`, else closed;
//! - the credential check ([`Credentials`]); a device's last will must be its own `state` topic;
//! - an idle timeout of 1.5 × the client's keep-alive (at most `mqtt_max_keepalive_secs`);
//! - the topic ACL and per-topic payload limits of [`nguon_protocol::acl`]: a device's PUBLISH
//!   outside its own report topics or over its topic's limit is dropped and the device is
//!   disconnected (with a warning naming the device, topic and size); a SUBSCRIBE filter it may
//!   not read gets a SUBACK failure (0x80) and never reaches the engine;
//! - revocation: each device session is registered with [`Credentials`], which closes it when
//!   the device is disabled or its password, key or area changes.
//!
//! The server's internal user is allowed everything.

mod session;
mod tls;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::tokio_rustls::TlsAcceptor;
use tokio::net::{TcpListener, TcpStream};

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::mqtt::broker::Credentials;

/// What every session of one gate shares.
pub(crate) struct Shared {
    credentials: Credentials,
    upstream: SocketAddr,
    connect_timeout: Duration,
    max_keepalive: Duration,
    max_connections: usize,
    max_per_ip: usize,
    /// Open connections by source address (the sum is the total).
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
    /// Connections refused over a limit since start (logged at most every 10 s).
    refused: AtomicU64,
    last_refusal_log: Mutex<Option<std::time::Instant>>,
}

/// A slot in the connection count; dropping it frees the slot.
pub(crate) struct Slot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.shared.open.lock().unwrap_or_else(|e| e.into_inner());
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

impl Shared {
    /// Take a connection slot for `ip`, or `None` over a limit.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let per_ip = open.1.get(&ip).copied().unwrap_or(0);
        if open.0 >= self.max_connections || per_ip >= self.max_per_ip {
            let total = open.0;
            drop(open);
            self.refused.fetch_add(1, Ordering::Relaxed);
            let mut last = self.last_refusal_log.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                *last = Some(std::time::Instant::now());
                tracing::warn!(
                    %ip,
                    open = total,
                    from_this_ip = per_ip,
                    max = self.max_connections,
                    max_per_ip = self.max_per_ip,
                    refused_since_start = self.refused.load(Ordering::Relaxed),
                    "mqtt gate: connection limit reached; refusing new connections"
                );
            }
            return None;
        }
        open.0 += 1;
        *open.1.entry(ip).or_default() += 1;
        Some(Slot {
            shared: self.clone(),
            ip,
        })
    }

    /// The idle timeout for a client's keep-alive (in seconds; 0 means none was asked).
    fn idle_timeout(&self, keep_alive: u16) -> Duration {
        let asked = Duration::from_secs(u64::from(keep_alive));
        let k = if asked.is_zero() {
            self.max_keepalive
        } else {
            asked.min(self.max_keepalive)
        };
        k + k / 2
    }
}

/// Bind the gate's listeners and serve them in the background; returns the plain and TLS
/// addresses.
pub async fn start(
    settings: &Settings,
    upstream: SocketAddr,
    credentials: Credentials,
) -> Result<(SocketAddr, Option<SocketAddr>)> {
    let shared = Arc::new(Shared {
        credentials,
        upstream,
        connect_timeout: Duration::from_millis(settings.mqtt_connect_timeout_ms),
        max_keepalive: Duration::from_secs(settings.mqtt_max_keepalive_secs),
        max_connections: settings.mqtt_max_connections,
        max_per_ip: settings.mqtt_max_connections_per_ip,
        open: Mutex::default(),
        refused: AtomicU64::new(0),
        last_refusal_log: Mutex::default(),
    });
    let plain = TcpListener::bind(settings.mqtt_addr)
        .await
        .map_err(Error::context(format!("mqtt_addr {}", settings.mqtt_addr)))?;
    let addr = plain.local_addr()?;
    tokio::spawn(accept_loop(plain, None, shared.clone()));
    let mut tls_addr = None;
    if let (Some(a), Some(cert), Some(key)) = (
        settings.mqtt_tls_addr,
        &settings.mqtt_tls_cert,
        &settings.mqtt_tls_key,
    ) {
        let acceptor = tls::acceptor(cert, key)?;
        let l = TcpListener::bind(a)
            .await
            .map_err(Error::context(format!("mqtt_tls_addr {a}")))?;
        tls_addr = Some(l.local_addr()?);
        tokio::spawn(accept_loop(l, Some(acceptor), shared));
    }
    Ok((addr, tls_addr))
}

async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, shared: Arc<Shared>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and the like: wait instead of spinning.
                tracing::warn!(error = %e, "mqtt gate: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = shared.admit(peer.ip()) else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            serve(stream, peer, tls, shared).await;
            drop(slot);
        });
    }
}

async fn serve(stream: TcpStream, peer: SocketAddr, tls: Option<TlsAcceptor>, shared: Arc<Shared>) {
    let deadline = tokio::time::Instant::now() + shared.connect_timeout;
    match tls {
        None => session::run(stream, peer, deadline, &shared).await,
        Some(acceptor) => match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
            Ok(Ok(s)) => session::run(s, peer, deadline, &shared).await,
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "mqtt gate: TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "mqtt gate: no TLS handshake before the CONNECT deadline"),
        },
    }
}
