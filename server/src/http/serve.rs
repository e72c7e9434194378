//! Serving the HTTP port (plain or TLS) with the limits a front server has (issue 14): at 100,000
//! devices fetching the schedule's media at once the server ran out of its file descriptors
//! (`accept error: Too many open files`, docs/benchmarks.md), because nothing closed an idle
//! keep-alive connection and nothing bounded how many were open.
//!
//! [`serve`] accepts connections, completes the TLS handshake when `tls` is set (10 s at most),
//! and serves each with hyper's HTTP/1 (upgrades for WebSockets), giving handlers the peer address
//! as `ConnectInfo`. Two limits:
//! - **idle keep-alive**: a connection waiting for its next request (or for the headers of its
//!   first) longer than `server.keepalive_timeout_secs` is closed (hyper's header-read timeout,
//!   which runs from the end of each response; like nginx's `keepalive_timeout`). A response
//!   being sent (a media download) is not cut.
//! - **open connections**: at most `server.max_connections`; at the cap the server stops
//!   accepting (new clients wait in the kernel's listen backlog) until one closes, logged at most
//!   every 10 s, instead of running out of descriptors for the database and the media files.
//!
//! [`bind`] listens with `server.listen_backlog` (4,096 by default, tokio's default is 1,024).
//!
//! [`raise_fd_limit`] raises the process's soft `RLIMIT_NOFILE` to its hard limit at start (the
//! soft one is often 1,024 while the hard one allows far more), and [`Limits::from_settings`]
//! derives the automatic connection cap from it.
//!
//! At `shutdown` the listener closes, every connection finishes its request in progress and
//! closes (hyper's graceful shutdown), and the future resolves when all are closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Longest a client may take to finish the TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// Shortest interval between two warnings about the cap or failed accepts.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The limits of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// How long a connection may wait for its next request's headers.
    pub keepalive: Duration,
}

/// The process's file-descriptor limits at start: soft before, soft after raising, hard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit found.
    pub before: u64,
    /// The soft limit now.
    pub soft: u64,
    /// The hard limit (the most the soft one may be raised to without privileges).
    pub hard: u64,
}

/// Raise the soft `RLIMIT_NOFILE` to the hard limit (logged with both); `None` where the limits
/// cannot be read (logged).
pub fn raise_fd_limit() -> Option<FdLimit> {
    let (before, hard) = match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the file-descriptor limit (RLIMIT_NOFILE)");
            return None;
        }
    };
    let soft = match rlimit::increase_nofile_limit(hard) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, soft = before, hard, "cannot raise the soft file-descriptor limit to the hard one");
            before
        }
    };
    tracing::info!(
        soft_before = before,
        soft,
        hard,
        "file-descriptor limit (RLIMIT_NOFILE)"
    );
    Some(FdLimit { before, soft, hard })
}

/// Descriptors kept for everything but HTTP connections and the embedded broker's: the database,
/// the MQTT link, listeners, logs.
const RESERVE: u64 = 256;

impl Limits {
    /// The limits of `settings.server`; an automatic `max_connections` (0) is half the descriptors
    /// left by [`RESERVE`] and the embedded broker's `mqtt_max_connections` (a media download
    /// holds its socket and its file), at least 64.
    pub fn from_settings(settings: &crate::config::Settings, fds: Option<FdLimit>) -> Limits {
        let s = &settings.server;
        let max_connections = if s.max_connections > 0 {
            s.max_connections as usize
        } else {
            let soft = fds.map_or(1024, |f| f.soft);
            let broker = if settings.mqtt_url.is_none() {
                settings.mqtt_max_connections as u64
            } else {
                0
            };
            (soft.saturating_sub(RESERVE + broker) / 2).clamp(64, 1_000_000) as usize
        };
        Limits {
            max_connections,
            keepalive: Duration::from_secs(s.keepalive_timeout_secs),
        }
    }
}

/// Listen on `addr` with `backlog` pending connections (`server.listen_backlog`; the kernel caps
/// it at `net.core.somaxconn`). tokio's `TcpListener::bind` asks for 1,024: 5,000 clients
/// connecting at once (an emergency's clip) overflowed it 16,068 times in a wrk run, and each
/// dropped handshake cost its client a retransmission 1, 3 or 7 s later (docs/benchmarks.md).
pub fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Serve `app` on `listener` (over TLS with `tls`) until `shutdown` resolves; then stop
/// accepting and resolve once every open connection has finished its request and closed.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    let max = limits
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let slots = Arc::new(Semaphore::new(max));
    let stop = CancellationToken::new();
    let mut warned: Option<Instant> = None;
    let mut suppressed = 0u64;
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(s) => s,
            Err(_) => {
                if warned.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "HTTP: connection cap reached (server.max_connections); new connections \
                         wait in the listen backlog until one closes"
                    );
                    warned = Some(Instant::now());
                }
                tokio::select! {
                    _ = &mut shutdown => break,
                    s = slots.clone().acquire_owned() => match s {
                        Ok(s) => s,
                        Err(_) => break,
                    },
                }
            }
        };
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: keep serving the open connections, and
                    // give them time to close before trying again.
                    if warned.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                        tracing::warn!(error = %e, suppressed, "HTTP: accept failed");
                        warned = Some(Instant::now());
                        suppressed = 0;
                    } else {
                        suppressed += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let app = app.clone();
        let tls = tls.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => connection(tcp, peer, app, limits, stop).await,
                Some(acceptor) => match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => connection(s, peer, app, limits, stop).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "tls handshake failed"),
                    Err(_) => tracing::debug!(%peer, "tls handshake timed out"),
                },
            }
        });
    }
    drop(listener);
    // Every open connection finishes its request in progress and closes; each holds a slot.
    stop.cancel();
    let _all = slots.acquire_many(max as u32).await;
    Ok(())
}

/// Serve one connection until it closes (or, after a shutdown signal, its request in progress
/// is done).
async fn connection<S>(io: S, peer: SocketAddr, app: Router, limits: Limits, stop: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = app.map_request(move |mut req: axum::extract::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
        req.map(axum::body::Body::new)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.keepalive)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(svc))
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let ended = tokio::select! {
        r = conn.as_mut() => r,
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(%peer, error = %e, "http connection ended");
    }
}
