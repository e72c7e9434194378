//! A loopback TCP proxy that can be cut: the "no network" fault. While cut it refuses new
//! connections (accepts and closes them at once) and has severed every open one; restoring lets
//! connections through again. An optional added latency delays each chunk in both directions.

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
        let latency_us = Arc::new(AtomicU64::new(0));
        let task = {
            let cut = cut.clone();
            let latency_us = latency_us.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((down, _)) = listener.accept().await else {
                        continue;
                    };
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
            })
        };
        Ok(Proxy {
            addr,
            cut,
            generation,
            latency_us,
            task,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cut the network: sever open connections and refuse new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Restore the network.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
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
