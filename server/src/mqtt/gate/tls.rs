//! The TLS side of the gate: a rustls server config from PEM files, with the ring provider (the
//! one crypto provider of the process). Both TLS 1.2 and 1.3; no client certificates (devices
//! authenticate with their MQTT password, as on the plain listener).

use std::path::Path;
use std::sync::Arc;

use rumqttc::tokio_rustls::TlsAcceptor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};

/// A TLS acceptor for the certificate chain in `cert` and the private key in `key` (PEM).
pub(super) fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    let read = |p: &Path| std::fs::read(p).map_err(Error::context(format!("read {}", p.display())));
    let cert_pem = read(cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::internal(format!("mqtt_tls_cert {}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(Error::internal(format!(
            "mqtt_tls_cert {}: no certificate in it",
            cert.display()
        )));
    }
    let key_der = PrivateKeyDer::from_pem_slice(&read(key)?)
        .map_err(|e| Error::internal(format!("mqtt_tls_key {}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::context("TLS protocol versions"))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| Error::internal(format!("mqtt_tls_cert/mqtt_tls_key: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
