//! HTTPS on the server itself (issue 11, item 11): with `tls_cert` and `tls_key` set, the HTTP
//! port speaks TLS (rustls with the ring provider, the one provider of the process; TLS 1.2 and
//! 1.3). [`load`] reads the PEM files at start and names the setting that is wrong;
//! `http::serve` completes each connection's handshake (10 s at most) and serves it with the
//! same limits as plain HTTP. Behind nginx, terminate TLS there instead (docs/operations.md).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::{ConfigError, Settings};
use crate::error::{Error, Result};

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
