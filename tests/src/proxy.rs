//! A loopback TCP proxy that can be cut: the "no network" fault. While cut it does not listen, so
//! new connections are refused at the TCP level (as when the broker's host cannot be reached), and
//! it has severed every open one; restoring listens again on the same address. An optional added
//! latency delays each chunk in both directions.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy (stops when dropped).
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    /// Tells the accept task to close or reopen its listener.
    listening: watch::Sender<bool>,
    generation: watch::Sender<u64>,
    latency_us: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listen on a free loopback port and forward to `upstream`.
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let cut = Arc::new(AtomicBool::new(false));
        let (generation, gen_rx) = watch::channel(0u64);
        let (listening, mut listen_rx) = watch::channel(true);
        let latency_us = Arc::new(AtomicU64::new(0));
        let task = {
            let cut = cut.clone();
            let latency_us = latency_us.clone();
            tokio::spawn(async move {
                let mut listener = Some(listener);
                loop {
                    let Some(l) = &listener else {
                        // Cut: nothing listens (connections are refused) until restored.
                        if listen_rx.changed().await.is_err() {
                            return;
                        }
                        if *listen_rx.borrow_and_update() {
                            listener = rebind(addr).await;
                        }
                        continue;
                    };
                    tokio::select! {
                        r = l.accept() => {
                            let Ok((down, _)) = r else { continue };
                            if cut.load(Ordering::SeqCst) {
                                drop(down);
                                continue;
                            }
                            let gen_rx = gen_rx.clone();
                            let latency_us = latency_us.clone();
                            tokio::spawn(async move {
                                let Ok(up) = TcpStream::connect(upstream).await else {
                                    return;
                                };
                                let _ = down.set_nodelay(true);
                                let _ = up.set_nodelay(true);
                                pipe(down, up, gen_rx, latency_us).await;
                            });
                        }
                        r = listen_rx.changed() => {
                            if r.is_err() {
                                return;
                            }
                            if !*listen_rx.borrow_and_update() {
                                listener = None;
                            }
                        }
                    }
                }
            })
        };
        Ok(Proxy {
            addr,
            cut,
            listening,
            generation,
            latency_us,
            task,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cut the network: sever open connections and stop listening (new ones are refused).
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.listening.send_replace(false);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Restore the network: listen again on the same address.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
        self.listening.send_replace(true);
    }

    /// Whether the proxy is cut.
    pub fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }

    /// Delay every chunk forwarded (each direction) by `d`.
    pub fn set_latency(&self, d: Duration) {
        self.latency_us.store(d.as_micros() as u64, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

/// Listen on `addr` again; retried for a while in case a client's outgoing connection holds the
/// port for a moment.
async fn rebind(addr: SocketAddr) -> Option<TcpListener> {
    for _ in 0..200 {
        match TcpListener::bind(addr).await {
            Ok(l) => return Some(l),
            Err(e) => {
                tracing::warn!(%addr, error = %e, "proxy: cannot listen again yet");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    tracing::error!(%addr, "proxy: cannot listen again; the network stays cut");
    None
}

async fn pipe(down: TcpStream, up: TcpStream, mut gen_rx: watch::Receiver<u64>, latency_us: Arc<AtomicU64>) {
    gen_rx.mark_unchanged();
    let (mut dr, mut dw) = down.into_split();
    let (mut ur, mut uw) = up.into_split();
    let l1 = latency_us.clone();
    let a = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match dr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let lat = l1.load(Ordering::Relaxed);
            if lat > 0 {
                tokio::time::sleep(Duration::from_micros(lat)).await;
            }
            if uw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let b = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match ur.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let lat = latency_us.load(Ordering::Relaxed);
            if lat > 0 {
                tokio::time::sleep(Duration::from_micros(lat)).await;
            }
            if dw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        _ = a => {}
        _ = b => {}
        _ = gen_rx.changed() => {}
    }
}
