//! A cuttable TCP proxy for tests that lose the server's MQTT link: [`Proxy::start`] forwards
//! every connection to a target; [`Proxy::cut`] closes every open connection and refuses new ones
//! (accepts, then closes at once) until [`Proxy::restore`]; [`Proxy::stall`] keeps connections
//! open but drops every byte in both directions (a link that hangs without closing). [`spawn_app_behind_proxy`] starts the
//! app with its link going through a proxy while test devices connect straight to the broker.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use nguon_server::config::Secret;
use nguon_server::mqtt::broker;
use nguon_server::{Settings, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::{TestApp, external_mqtt, launch, parse_mqtt_url, prepare};

#[derive(Default)]
struct Inner {
    cut: AtomicBool,
    stalled: AtomicBool,
    accepted: AtomicU64,
    conns: Mutex<Vec<JoinHandle<()>>>,
}

/// A TCP proxy in front of one target address.
pub struct Proxy {
    /// Where clients connect (`127.0.0.1:<port>`).
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    accept: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.close_all();
    }
}

/// Copy `from` → `to` until either side closes; bytes read while stalled are dropped.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, flags: &Inner) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if flags.stalled.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Proxy {
    /// Listen on a free port of 127.0.0.1 and forward to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let inner = Arc::new(Inner::default());
        let i = inner.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if i.cut.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                i.accepted.fetch_add(1, Ordering::SeqCst);
                let flags = i.clone();
                let conn = tokio::spawn(async move {
                    let Ok(upstream) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = upstream.set_nodelay(true);
                    let (cr, cw) = client.into_split();
                    let (ur, uw) = upstream.into_split();
                    // Either direction ending ends both (dropping closes both sockets).
                    tokio::select! {
                        _ = pump(cr, uw, &flags) => {}
                        _ = pump(ur, cw, &flags) => {}
                    }
                });
                let mut conns = i.conns.lock().unwrap_or_else(|e| e.into_inner());
                conns.retain(|c| !c.is_finished());
                conns.push(conn);
            }
        });
        Proxy { addr, inner, accept }
    }

    fn close_all(&self) {
        let conns: Vec<JoinHandle<()>> = self
            .inner
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for c in conns {
            // Dropping both streams closes both sockets.
            c.abort();
        }
    }

    /// Close every open connection and refuse new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.inner.cut.store(true, Ordering::SeqCst);
        self.close_all();
    }

    /// Forward new connections again (and stop stalling).
    pub fn restore(&self) {
        self.inner.stalled.store(false, Ordering::SeqCst);
        self.inner.cut.store(false, Ordering::SeqCst);
    }

    /// Keep every connection open but drop what either side sends, until [`Proxy::cut`] or
    /// [`Proxy::restore`].
    pub fn stall(&self) {
        self.inner.stalled.store(true, Ordering::SeqCst);
    }

    /// Connections forwarded so far.
    pub fn accepted(&self) -> u64 {
        self.inner.accepted.load(Ordering::SeqCst)
    }
}

/// Start the app with its MQTT link going through a [`Proxy`]; `app.mqtt_host`/`mqtt_port` stay
/// the broker's own address (test devices connect straight to it). With `NGUON_TEST_MQTT_URL`
/// the proxy forwards to that broker. Otherwise the test starts the embedded broker itself on
/// the app's database (the same auth hook and credential look-ups as in the app) and the app
/// logs in through the proxy as the broker's internal user.
pub async fn spawn_app_behind_proxy() -> (TestApp, Proxy) {
    spawn_app_behind_proxy_with(|_| {}).await
}

/// [`spawn_app_behind_proxy`], then `tweak` the settings.
pub async fn spawn_app_behind_proxy_with(tweak: impl FnOnce(&mut Settings)) -> (TestApp, Proxy) {
    let (prepared, mut settings) = prepare(tweak).await;
    let (broker_host, broker_port, login) = if external_mqtt() {
        let url = settings
            .mqtt_url
            .as_ref()
            .expect("NGUON_TEST_MQTT_URL")
            .expose()
            .to_string();
        let (h, p) = parse_mqtt_url(&url);
        let rest = url.trim_start_matches("mqtt://").trim_start_matches("tcp://");
        let login = rest
            .rsplit_once('@')
            .map(|(l, _)| format!("{l}@"))
            .unwrap_or_default();
        (h, p, login)
    } else {
        let store = Store::connect(&settings.database_url())
            .await
            .expect("open the test database");
        let b = broker::start(&settings, &store)
            .await
            .expect("start the embedded broker");
        let addr = b.listen_addr().expect("embedded broker address");
        let password = b.internal_password().expect("internal password").to_string();
        (
            addr.ip().to_string(),
            addr.port(),
            format!("{}:{password}@", broker::INTERNAL_USER),
        )
    };
    let target: SocketAddr = tokio::net::lookup_host((broker_host.as_str(), broker_port))
        .await
        .expect("resolve the broker")
        .next()
        .expect("a broker address");
    let proxy = Proxy::start(target).await;
    settings.mqtt_url = Some(Secret::new(format!("mqtt://{login}{}", proxy.addr)));
    let mut app = launch(prepared, settings).await;
    app.mqtt_host = broker_host;
    app.mqtt_port = broker_port;
    (app, proxy)
}
