//! A loopback TCP load balancer for tests of several server instances: each new connection goes
//! to the next upstream in turn that accepts it (a stopped instance refuses and is skipped), as
//! an HTTP load balancer with a TCP health check would. Devices' `public_url` points here, so
//! media and API calls survive any one instance.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};

/// A running balancer (stops when dropped).
#[derive(Debug)]
pub struct Balancer {
    addr: SocketAddr,
    upstreams: Arc<Mutex<Vec<SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Balancer {
    /// Listen on a free loopback port; no upstream yet ([`Balancer::set_upstreams`]).
    pub async fn start() -> anyhow::Result<Balancer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let upstreams: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
        let next = Arc::new(AtomicUsize::new(0));
        let ups = upstreams.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let list = ups.lock().map(|u| u.clone()).unwrap_or_default();
                let start = next.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    for i in 0..list.len() {
                        let up = list[(start + i) % list.len()];
                        if let Ok(mut server) = TcpStream::connect(up).await {
                            let _ = server.set_nodelay(true);
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            return;
                        }
                    }
                });
            }
        });
        Ok(Balancer {
            addr,
            upstreams,
            task,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The instances connections go to.
    pub fn set_upstreams(&self, upstreams: Vec<SocketAddr>) {
        if let Ok(mut u) = self.upstreams.lock() {
            *u = upstreams;
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
