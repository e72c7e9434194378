//! `broker_cluster.tls_cert`, `tls_key`, `tls_ca`: the cluster's mutual TLS (issue 14). Every
//! node holds a certificate signed by the cluster's CA (`nguon-provision cluster-certs`, or
//! openssl: docs/security.md); a node accepts a peer only with a client certificate signed by
//! that CA *and* valid (subjectAltName) for the host of one of `broker_cluster.nodes`
//! ([`NodeVerifier`]: the node list is the allow-list, so a certificate the same CA signed for
//! another machine is no member), and checks a peer it calls against the CA and the peer's
//! address in `broker_cluster.nodes`. Checked at start, each error naming the key: unreadable, not
//! PEM, the certificate not signed by the CA, not valid for this node's address, a host in
//! `nodes` that is no host name or address, or the key not its own.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

use super::cluster::{BrokerCluster, parse_node};

/// A node's checked TLS material: the PEM texts (for tonic's client) and the parsed DER.
pub struct ClusterTls {
    /// `tls_cert`'s text.
    pub cert_pem: Vec<u8>,
    /// `tls_key`'s text.
    pub key_pem: Vec<u8>,
    /// `tls_ca`'s text.
    pub ca_pem: Vec<u8>,
    /// The node's certificate chain.
    pub chain: Vec<CertificateDer<'static>>,
    /// Its private key.
    pub key: PrivateKeyDer<'static>,
    /// The CA certificates: the only issuers of a peer's certificate.
    pub roots: Arc<RootCertStore>,
    /// The hosts of `nodes`: a peer's certificate must be valid for one of them.
    pub hosts: Vec<ServerName<'static>>,
}

type Bad = (String, String);

fn bad(key: &str, m: impl Into<String>) -> Bad {
    (format!("broker_cluster.{key}"), m.into())
}

fn read(key: &str, p: &Path) -> Result<Vec<u8>, Bad> {
    std::fs::read(p).map_err(|e| bad(key, format!("cannot read {}: {e}", p.display())))
}

fn certs(key: &str, p: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Bad> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(key, format!("{}: not PEM: {e}", p.display())))?;
    if certs.is_empty() {
        return Err(bad(key, format!("{}: no PEM certificate in it", p.display())));
    }
    Ok(certs)
}

/// The ring provider (the process's one rustls provider).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The host of a `nodes` entry's `host:port` (IPv6 without its brackets).
fn host_of(addr: &str) -> Option<String> {
    let (host, _) = addr.rsplit_once(':')?;
    Some(host.trim_start_matches('[').trim_end_matches(']').to_string())
}

/// The host of this node's entry in `nodes` (what its peers check its certificate against).
fn own_host(c: &BrokerCluster) -> Option<String> {
    let (_, addr) = c
        .nodes
        .iter()
        .filter_map(|n| parse_node(n).ok())
        .find(|(id, _)| *id == c.node_id)?;
    host_of(&addr)
}

/// The hosts of every entry of `nodes`, this node's included (the allow-list of peer
/// certificates); a host that is no DNS name or IP address is refused naming `nodes`.
pub fn node_hosts(c: &BrokerCluster) -> Result<Vec<ServerName<'static>>, Bad> {
    let mut hosts: Vec<ServerName<'static>> = Vec::new();
    for n in &c.nodes {
        let Some(host) = parse_node(n).ok().and_then(|(_, a)| host_of(&a)) else {
            continue; // refused by the checks of `nodes` before this one
        };
        let name = ServerName::try_from(host.clone()).map_err(|e| {
            bad(
                "nodes",
                format!("`{n}`: `{host}` is not a host name or address: {e}"),
            )
        })?;
        if !hosts.contains(&name) {
            hosts.push(name);
        }
    }
    Ok(hosts)
}

/// The verifier of a peer's client certificate (issue 14 leftovers): signed by the cluster's CA
/// (rustls' WebPKI verifier, which also checks its validity period and client-auth usage) *and*
/// valid (subjectAltName, as a server certificate would be checked) for the host of one of
/// `broker_cluster.nodes`. A certificate the CA signed for any other host (another service, a
/// machine that left the cluster and was taken out of `nodes`) is refused at the handshake. The
/// TCP address the peer connects from is not compared with that host: a node's outgoing source
/// address is the routing's choice (a second interface, NAT), not its listen address; the
/// certificate's private key is the proof (docs/security.md).
#[derive(Debug)]
pub struct NodeVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    hosts: Vec<ServerName<'static>>,
}

/// Why a CA-signed certificate is still refused (shown in the refusal's log line, which rustls
/// writes with `Debug`).
struct NotANode;

impl std::fmt::Display for NotANode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "signed by the cluster CA but valid for none of the hosts in broker_cluster.nodes \
             (its subjectAltName must name one)",
        )
    }
}

impl std::fmt::Debug for NotANode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for NotANode {}

impl NodeVerifier {
    /// A verifier accepting certificates signed by `roots` for one of `hosts`.
    pub fn new(
        roots: Arc<RootCertStore>,
        hosts: Vec<ServerName<'static>>,
    ) -> Result<NodeVerifier, rustls::server::VerifierBuilderError> {
        let inner = WebPkiClientVerifier::builder_with_provider(roots, provider()).build()?;
        Ok(NodeVerifier { inner, hosts })
    }
}

impl ClientCertVerifier for NodeVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        let cert = ParsedCertificate::try_from(end_entity)?;
        if self.hosts.iter().any(|h| verify_server_name(&cert, h).is_ok()) {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(NotANode)),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Read and check the three files; `None` when none is set. Call after the other keys passed.
pub fn load(c: &BrokerCluster) -> Result<Option<ClusterTls>, Bad> {
    let (cert_path, key_path, ca_path) = match (&c.tls_cert, &c.tls_key, &c.tls_ca) {
        (None, None, None) => return Ok(None),
        (Some(a), Some(b), Some(d)) => (a, b, d),
        (a, b, _) => {
            let missing = if a.is_none() {
                "tls_cert"
            } else if b.is_none() {
                "tls_key"
            } else {
                "tls_ca"
            };
            return Err(bad(
                missing,
                "missing: the cluster's TLS needs tls_cert, tls_key and tls_ca together",
            ));
        }
    };
    let ca_pem = read("tls_ca", ca_path)?;
    let mut roots = RootCertStore::empty();
    for ca in certs("tls_ca", ca_path, &ca_pem)? {
        roots.add(ca).map_err(|e| {
            bad(
                "tls_ca",
                format!("{}: not a CA certificate: {e}", ca_path.display()),
            )
        })?;
    }
    let roots = Arc::new(roots);
    let cert_pem = read("tls_cert", cert_path)?;
    let chain = certs("tls_cert", cert_path, &cert_pem)?;
    let key_pem = read("tls_key", key_path)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        bad(
            "tls_key",
            format!("{}: no PEM private key: {e}", key_path.display()),
        )
    })?;
    let hosts = node_hosts(c)?;
    check_chain(c, &roots, &chain, cert_path, ca_path)?;
    let provider = provider();
    let signer = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| bad("tls_key", format!("{}: {e}", key_path.display())))?;
    rustls::sign::CertifiedKey::new(chain.clone(), signer)
        .keys_match()
        .map_err(|_| {
            bad(
                "tls_key",
                format!(
                    "{} is not the key of the certificate in broker_cluster.tls_cert ({})",
                    key_path.display(),
                    cert_path.display()
                ),
            )
        })?;
    Ok(Some(ClusterTls {
        cert_pem,
        key_pem,
        ca_pem,
        chain,
        key,
        roots,
        hosts,
    }))
}

/// The certificate as both sides will see it: a client certificate signed by the CA, and a server
/// certificate for this node's address in `nodes`.
fn check_chain(
    c: &BrokerCluster,
    roots: &Arc<RootCertStore>,
    chain: &[CertificateDer<'static>],
    cert_path: &Path,
    ca_path: &Path,
) -> Result<(), Bad> {
    let now = UnixTime::now();
    let why = |e: rustls::Error| {
        let signed = matches!(
            e,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
                | rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature)
        );
        if signed {
            format!(
                "{} is not signed by the CA in broker_cluster.tls_ca ({})",
                cert_path.display(),
                ca_path.display()
            )
        } else {
            format!("{}: {e}", cert_path.display())
        }
    };
    let clients = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
        .build()
        .map_err(|e| bad("tls_ca", format!("{}: {e}", ca_path.display())))?;
    clients
        .verify_client_cert(&chain[0], &chain[1..], now)
        .map_err(|e| bad("tls_cert", why(e)))?;
    let servers = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider())
        .build()
        .map_err(|e| bad("tls_ca", format!("{}: {e}", ca_path.display())))?;
    let host = own_host(c).unwrap_or_default();
    let name = ServerName::try_from(host.clone())
        .map_err(|e| bad("nodes", format!("`{host}` is not a host name or address: {e}")))?;
    servers
        .verify_server_cert(&chain[0], &chain[1..], &name, &[], now)
        .map_err(|e| match e {
            rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName)
            | rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext {
                ..
            }) => bad(
                "tls_cert",
                format!(
                    "{} is not valid for `{host}`, this node's address in broker_cluster.nodes \
                     (its peers check it): its subjectAltName must name it",
                    cert_path.display()
                ),
            ),
            e => bad("tls_cert", why(e)),
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};

    use super::super::Settings;

    /// A CA: (certificate PEM, issuer).
    fn ca() -> (String, Issuer<'static, KeyPair>) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let pem = p.self_signed(&key).unwrap().pem();
        (pem, Issuer::new(p, key))
    }

    /// A node certificate for `host` signed by `ca`: (certificate PEM, key PEM).
    fn node(host: &str, ca: &Issuer<'static, KeyPair>) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec![host.to_string()]).unwrap();
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        (p.signed_by(&key, ca).unwrap().pem(), key.serialize_pem())
    }

    fn load(
        dir: &Path,
        files: [&str; 3],
        extra: &[(&str, &str)],
    ) -> Result<Settings, super::super::ConfigError> {
        let f = |n: &str| dir.join(n).display().to_string();
        let mut env: Vec<(String, String)> = vec![
            ("NGUON_BROKER_CLUSTER_NODE_ID".into(), "1".into()),
            ("NGUON_BROKER_CLUSTER_LISTEN".into(), "127.0.0.1:5363".into()),
            (
                "NGUON_BROKER_CLUSTER_NODES".into(),
                "1@127.0.0.1:5363,2@127.0.0.1:5364".into(),
            ),
        ];
        for (k, n) in ["TLS_CERT", "TLS_KEY", "TLS_CA"].iter().zip(files) {
            if !n.is_empty() {
                env.push((format!("NGUON_BROKER_CLUSTER_{k}"), f(n)));
            }
        }
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Settings::load(None, env)
    }

    #[test]
    fn the_cluster_tls_files_are_checked_naming_the_bad_key() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (ca_pem, cluster) = ca();
        let (other_pem, other) = ca();
        let (cert, key) = node("127.0.0.1", &cluster);
        let (_, other_key) = node("127.0.0.1", &cluster);
        let (rogue, rogue_key) = node("127.0.0.1", &other);
        let (elsewhere, elsewhere_key) = node("10.9.9.9", &cluster);
        for (n, text) in [
            ("ca.pem", &ca_pem),
            ("other-ca.pem", &other_pem),
            ("node.pem", &cert),
            ("node.key", &key),
            ("other.key", &other_key),
            ("rogue.pem", &rogue),
            ("rogue.key", &rogue_key),
            ("elsewhere.pem", &elsewhere),
            ("elsewhere.key", &elsewhere_key),
            ("junk", &"not a certificate".to_string()),
        ] {
            std::fs::write(d.join(n), text).unwrap();
        }
        let ok = load(d, ["node.pem", "node.key", "ca.pem"], &[]).unwrap();
        let c = ok.broker_cluster.unwrap();
        assert!(super::load(&c).unwrap().is_some());
        let bad = |files: [&str; 3]| {
            let e = load(d, files, &[]).unwrap_err();
            (e.key, e.message)
        };
        let (k, m) = bad(["node.pem", "node.key", "missing.pem"]);
        assert_eq!(k, "broker_cluster.tls_ca");
        assert!(m.contains("cannot read"), "{m}");
        let (k, m) = bad(["junk", "node.key", "ca.pem"]);
        assert_eq!(k, "broker_cluster.tls_cert");
        assert!(m.contains("no PEM certificate"), "{m}");
        let (k, _) = bad(["node.pem", "junk", "ca.pem"]);
        assert_eq!(k, "broker_cluster.tls_key");
        let (k, m) = bad(["rogue.pem", "rogue.key", "ca.pem"]);
        assert_eq!(k, "broker_cluster.tls_cert");
        assert!(m.contains("not signed by the CA"), "{m}");
        let (k, m) = bad(["node.pem", "node.key", "other-ca.pem"]);
        assert_eq!(k, "broker_cluster.tls_cert");
        assert!(m.contains("not signed by the CA"), "{m}");
        let (k, m) = bad(["node.pem", "other.key", "ca.pem"]);
        assert_eq!(k, "broker_cluster.tls_key");
        assert!(m.contains("is not the key of the certificate"), "{m}");
        let (k, m) = bad(["elsewhere.pem", "elsewhere.key", "ca.pem"]);
        assert_eq!(k, "broker_cluster.tls_cert");
        assert!(m.contains("not valid for `127.0.0.1`"), "{m}");
        let (k, _) = bad(["node.pem", "", "ca.pem"]);
        assert_eq!(k, "broker_cluster.tls_key");
        let (k, _) = bad(["", "", "ca.pem"]);
        assert_eq!(k, "broker_cluster.tls_cert");
    }

    #[test]
    fn a_peer_certificate_of_the_cluster_ca_is_accepted_only_for_a_host_of_nodes() {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, UnixTime};
        use rustls::server::danger::ClientCertVerifier;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (ca_pem, cluster) = ca();
        let (cert, key) = node("127.0.0.1", &cluster);
        for (n, text) in [("ca.pem", &ca_pem), ("node.pem", &cert), ("node.key", &key)] {
            std::fs::write(d.join(n), text).unwrap();
        }
        let nodes = (
            "NGUON_BROKER_CLUSTER_NODES",
            "1@127.0.0.1:5363,2@node2.example:5364",
        );
        let c = load(d, ["node.pem", "node.key", "ca.pem"], &[nodes])
            .unwrap()
            .broker_cluster
            .unwrap();
        let tls = super::load(&c).unwrap().unwrap();
        let verifier = super::NodeVerifier::new(tls.roots.clone(), tls.hosts.clone()).unwrap();
        let verify = |host: &str, issuer: &Issuer<'static, KeyPair>| {
            let (pem, _) = node(host, issuer);
            let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
            verifier.verify_client_cert(&der, &[], UnixTime::now())
        };
        assert!(verify("127.0.0.1", &cluster).is_ok());
        assert!(verify("node2.example", &cluster).is_ok());
        // Same CA, a host outside `nodes`: refused, saying why.
        for host in ["10.9.9.9", "node3.example", "127.0.0.2"] {
            let e = verify(host, &cluster).unwrap_err().to_string();
            assert!(
                e.contains("none of the hosts in broker_cluster.nodes"),
                "{host}: {e}"
            );
        }
        // Another CA, a host of `nodes`: refused by the CA check.
        let (_, other) = ca();
        assert!(verify("127.0.0.1", &other).is_err());
        // A host in `nodes` that is no name nor address: refused at start, naming `nodes`.
        let e = load(
            d,
            ["node.pem", "node.key", "ca.pem"],
            &[("NGUON_BROKER_CLUSTER_NODES", "1@127.0.0.1:5363,2@bad_host!:5364")],
        )
        .unwrap_err();
        assert_eq!(e.key, "broker_cluster.nodes", "{}", e.message);
    }

    #[test]
    fn a_reachable_cluster_port_needs_tls_or_insecure() {
        let dir = tempfile::tempdir().unwrap();
        let open = [("NGUON_BROKER_CLUSTER_LISTEN", "0.0.0.0:5363")];
        let e = load(dir.path(), ["", "", ""], &open).unwrap_err();
        assert_eq!(e.key, "broker_cluster.listen");
        assert!(e.message.contains("no TLS"), "{}", e.message);
        let mut insecure = open.to_vec();
        insecure.push(("NGUON_BROKER_CLUSTER_INSECURE", "true"));
        assert!(
            load(dir.path(), ["", "", ""], &insecure)
                .unwrap()
                .broker_cluster
                .unwrap()
                .insecure
        );
        // Loopback (one machine, tests): allowed without TLS, with a warning at start.
        assert!(load(dir.path(), ["", "", ""], &[]).is_ok());
    }
}
