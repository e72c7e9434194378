//! nguon: process-wide mutual TLS for every server and client this crate builds (VENDORED.md,
//! change 4). rmqtt builds handy-grpc's server and clients without TLS parameters, so the
//! embedding process sets the TLS once, before the engine starts, with [`set`]; from then on
//! [`crate::server::Server::run`] accepts only TLS connections whose client certificate the given
//! rustls server config accepts (nguon: signed by the cluster CA), and every client connects
//! with `https` and the given client config (its own certificate, the peer checked against the
//! CA). A refused connection is reported to the `on_refused` callback with the peer's address.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
pub use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// How long a peer has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS of every server and client of the process.
pub struct MutualTls {
    /// The servers' config: its own certificate, and a client certificate verifier.
    pub server: Arc<ServerConfig>,
    /// The clients' config: its own identity and the CA the peers must be signed by.
    pub client: ClientTlsConfig,
    /// Called for every connection refused (handshake failed or timed out): the peer's address
    /// and the reason.
    pub on_refused: fn(SocketAddr, &str),
}

static MUTUAL_TLS: OnceLock<MutualTls> = OnceLock::new();

/// Set the process's TLS, once, before any server or client is built. `Err` gives it back when
/// it was set already.
pub fn set(tls: MutualTls) -> Result<(), MutualTls> {
    MUTUAL_TLS.set(tls)
}

/// The process's TLS, if set.
pub fn get() -> Option<&'static MutualTls> {
    MUTUAL_TLS.get()
}

type Accepted = std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>;

/// Listen on `laddr` and hand out the connections whose TLS handshake succeeded; each handshake
/// runs on its own task, so a slow or refused peer holds up no other.
pub(crate) async fn incoming(
    laddr: SocketAddr,
    tls: &'static MutualTls,
) -> std::io::Result<tokio_stream::wrappers::ReceiverStream<Accepted>> {
    let listener = TcpListener::bind(laddr).await?;
    let acceptor = TlsAcceptor::from(tls.server.clone());
    let (tx, rx) = tokio::sync::mpsc::channel::<Accepted>(64);
    tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(a) => a,
                Err(e) => {
                    log::warn!("gRPC accept error on {laddr}: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            if tx.is_closed() {
                return;
            }
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => {
                        let _ = tx.send(Ok(s)).await;
                    }
                    Ok(Err(e)) => (tls.on_refused)(peer, &e.to_string()),
                    Err(_) => (tls.on_refused)(peer, "no TLS handshake within 10 s"),
                }
            });
        }
    });
    Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
}
