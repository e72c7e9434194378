//! HTTPS on the server itself (issue 11, item 11): with `tls_cert` and `tls_key` set, the HTTP
//! port speaks TLS (rustls with the ring provider, the one provider of the process; TLS 1.2 and
//! 1.3). [`load`] reads the PEM files at start and names the setting that is wrong; [`serve`]
//! accepts connections, completes the handshake (10 s at most), and serves each one with hyper's
//! HTTP/1 over the TLS stream, giving handlers the peer address as `ConnectInfo` as
//! `axum::serve` does. Without the settings, `lib.rs` uses plain `axum::serve`; behind nginx,
//! terminate TLS there instead (docs/operations.md).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::config::{ConfigError, Settings};
use crate::error::{Error, Result};

/// Longest a client may take to finish the TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

fn bad(key: &str, path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Config(ConfigError {
        key: key.into(),
        source_name: "settings".into(),
        message: format!("{}: {message}", path.display()),
    })
}

/// The TLS server configuration of `settings`, or `None` without `tls_cert`/`tls_key`. A file
/// that cannot be read or holds no certificate / key is an error naming its setting.
pub fn load(settings: &Settings) -> Result<Option<TlsAcceptor>> {
    let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) else {
        return Ok(None);
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad("tls_cert", cert, e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad("tls_cert", cert, e))?;
    if chain.is_empty() {
        return Err(bad("tls_cert", cert, "no PEM certificate in the file"));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("tls_key", key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("tls_cert", cert, e))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| bad("tls_key", key, format!("does not fit the certificate: {e}")))?;
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

/// Serve `app` over TLS on `listener` until `shutdown` resolves (new connections stop then;
/// open ones finish on their own).
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: keep serving the open connections.
                    tracing::warn!(error = %e, "https accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "tls handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let svc = app.map_request(move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req.map(axum::body::Body::new)
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), TowerToHyperService::new(svc))
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "https connection ended");
            }
        });
    }
}
