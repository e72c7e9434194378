//! `nguon-provision cluster-certs`: the certificates of the embedded broker's cluster (the
//! server's `broker_cluster.tls_cert`, `tls_key`, `tls_ca`; docs/security.md). One CA for the
//! cluster (`ca.pem`, `ca.key`), made on the first run and reused after (so a node added later is
//! signed by the same CA; an operator's own CA, e.g. made with openssl, can be put there instead),
//! and for each node `node-<id>.pem` and `node-<id>.key`: ECDSA P-256, valid for the node's host
//! (IP address or DNS name, as written in `broker_cluster.nodes`), for both TLS server and client
//! authentication, signed by the CA. Keys are written 0600; an existing node's files are kept.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose,
};

use crate::error::{ProvisionError, Result};
use crate::provision::write_if_changed;

/// The CA's validity, years from today.
const CA_YEARS: i32 = 20;
/// A node certificate's validity, years from today.
const NODE_YEARS: i32 = 5;

/// One node: its id and the host its peers reach it at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The node id (`broker_cluster.node_id`).
    pub id: u64,
    /// IP address or DNS name (the host of its `broker_cluster.nodes` entry).
    pub host: String,
}

impl std::str::FromStr for Node {
    type Err = String;

    /// `id@host` or `id@host:port` (a `broker_cluster.nodes` entry).
    fn from_str(s: &str) -> std::result::Result<Node, String> {
        let bad = || format!("`{s}` is not `id@host[:port]` with an id of 1 or more");
        let (id, addr) = s.trim().split_once('@').ok_or_else(bad)?;
        let id: u64 = id.parse().ok().filter(|i| *i > 0).ok_or_else(bad)?;
        let host = if let Some(v6) = addr.strip_prefix('[') {
            v6.split_once(']').map(|(h, _)| h).ok_or_else(bad)?
        } else if addr.matches(':').count() == 1 {
            addr.split_once(':').map(|(h, _)| h).unwrap_or(addr)
        } else {
            addr
        };
        if host.is_empty() || host.contains(['/', ' ', '@', ',']) {
            return Err(bad());
        }
        Ok(Node {
            id,
            host: host.to_string(),
        })
    }
}

/// What one file became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Made {
    /// Written now.
    Created(PathBuf),
    /// There already: kept.
    Kept(PathBuf),
}

fn setting(message: String) -> ProvisionError {
    ProvisionError::Setting {
        option: "cluster-certs",
        message,
    }
}

/// Today in `n` years (day 28 at the latest, so every month has it).
fn years_from_now(n: i32, params: &mut CertificateParams) {
    use chrono::Datelike;
    let today = chrono::Utc::now().date_naive();
    params.not_after = rcgen::date_time_ymd(today.year() + n, today.month() as u8, today.day().min(28) as u8);
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| ProvisionError::io(path, e))
}

/// Make the CA in `out` unless there, then each node's certificate and key unless there.
pub fn cluster_certs(out: &Path, nodes: &[Node]) -> Result<Vec<Made>> {
    let mut made = Vec::new();
    let (ca_pem, ca_key) = (out.join("ca.pem"), out.join("ca.key"));
    let gen_err = |what: &str, e: rcgen::Error| setting(format!("{what}: {e}"));
    let key = if ca_pem.exists() || ca_key.exists() {
        made.push(Made::Kept(ca_pem.clone()));
        KeyPair::from_pem(&read(&ca_key)?)
            .map_err(|e| setting(format!("{}: not a PEM private key: {e}", ca_key.display())))?
    } else {
        let key = KeyPair::generate().map_err(|e| gen_err("CA key", e))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "nguon broker cluster CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        years_from_now(CA_YEARS, &mut params);
        let cert = params.self_signed(&key).map_err(|e| gen_err("CA", e))?;
        write_if_changed(&ca_key, key.serialize_pem().as_bytes(), 0o600)?;
        write_if_changed(&ca_pem, cert.pem().as_bytes(), 0o644)?;
        made.push(Made::Created(ca_pem.clone()));
        key
    };
    let issuer = Issuer::from_ca_cert_pem(&read(&ca_pem)?, key)
        .map_err(|e| setting(format!("{}: not a PEM CA certificate: {e}", ca_pem.display())))?;
    for n in nodes {
        let (pem, key_path) = (
            out.join(format!("node-{}.pem", n.id)),
            out.join(format!("node-{}.key", n.id)),
        );
        if pem.exists() && key_path.exists() {
            made.push(Made::Kept(pem));
            continue;
        }
        let mut params = CertificateParams::new(vec![n.host.clone()])
            .map_err(|e| gen_err(&format!("node {} host `{}`", n.id, n.host), e))?;
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("nguon broker node {}", n.id));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        years_from_now(NODE_YEARS, &mut params);
        let key = KeyPair::generate().map_err(|e| gen_err("node key", e))?;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|e| gen_err(&format!("node {}", n.id), e))?;
        write_if_changed(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
        write_if_changed(&pem, cert.pem().as_bytes(), 0o644)?;
        made.push(Made::Created(pem));
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_read_as_in_broker_cluster_nodes() {
        let n = |s: &str| s.parse::<Node>();
        assert_eq!(
            n("2@10.0.0.12:5363").unwrap(),
            Node {
                id: 2,
                host: "10.0.0.12".into()
            }
        );
        assert_eq!(n("3@node3.example").unwrap().host, "node3.example");
        assert_eq!(n("1@[::1]:5363").unwrap().host, "::1");
        assert!(n("0@a:1").is_err());
        assert!(n("a:1").is_err());
        assert!(n("1@").is_err());
    }

    #[test]
    fn a_second_run_keeps_the_ca_and_adds_a_node_signed_by_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = cluster_certs(dir.path(), &["1@127.0.0.1:1".parse().unwrap()]).unwrap();
        assert!(matches!(first[0], Made::Created(_)));
        let ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
        let again = cluster_certs(
            dir.path(),
            &["1@127.0.0.1:1".parse().unwrap(), "2@localhost:2".parse().unwrap()],
        )
        .unwrap();
        assert!(matches!(again[0], Made::Kept(_)));
        assert!(matches!(again[1], Made::Kept(_)));
        assert!(matches!(again[2], Made::Created(_)));
        assert_eq!(std::fs::read(dir.path().join("ca.pem")).unwrap(), ca);
        use std::os::unix::fs::PermissionsExt;
        for key in ["ca.key", "node-1.key", "node-2.key"] {
            let mode = std::fs::metadata(dir.path().join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
    }
}
