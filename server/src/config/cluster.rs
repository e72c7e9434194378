//! `[broker_cluster]` (issue 14): the embedded broker as one node of a broker cluster, so several
//! `nguon-server` machines each carry a node and no external broker is needed
//! (docs/deployment.md). Nodes forward messages, shared-subscription choices (`$share`,
//! `ha.shared_group`), session take-overs and retained messages to each other over gRPC (rmqtt's
//! broadcast cluster). Unset: a single node, as before. Read from the TOML file, then
//! `NGUON_BROKER_CLUSTER_*`, then checked; every error names the key.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// `[broker_cluster]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerCluster {
    /// This node's id, one of the ids in `nodes` (`NGUON_BROKER_CLUSTER_NODE_ID`, 1 or more).
    pub node_id: u64,
    /// Where this node listens for its peers (`NGUON_BROKER_CLUSTER_LISTEN`, e.g.
    /// `10.0.0.11:5363`). gRPC with mutual TLS when `tls_*` are set; without, only on a loopback
    /// address unless `insecure`.
    pub listen: SocketAddr,
    /// Every node of the cluster, this one included, as `id@host:port`
    /// (`NGUON_BROKER_CLUSTER_NODES`, comma-separated), e.g.
    /// `["1@10.0.0.11:5363", "2@10.0.0.12:5363", "3@10.0.0.13:5363"]`.
    pub nodes: Vec<String>,
    /// How long a call to a peer may take before it counts as failed, milliseconds
    /// (`NGUON_BROKER_CLUSTER_PEER_TIMEOUT_MS`, default 1000, 100 to 30000). After two failed
    /// calls to a dead peer the node stops asking it for 5 s at a time, so a dead node delays
    /// a few publishes by this much, not every one.
    #[serde(default = "default_timeout")]
    pub peer_timeout_ms: u64,
    /// This node's certificate (PEM, signed by `tls_ca`, valid for its address in `nodes`, for
    /// both server and client authentication) (`NGUON_BROKER_CLUSTER_TLS_CERT`).
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// Its private key (PEM) (`NGUON_BROKER_CLUSTER_TLS_KEY`).
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// The cluster's CA certificate (PEM): the only issuer a peer is accepted from
    /// (`NGUON_BROKER_CLUSTER_TLS_CA`).
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// Allow plain, unauthenticated gRPC on a non-loopback `listen` (`NGUON_BROKER_CLUSTER_INSECURE`,
    /// default false): only behind a firewall that lets nothing but the other nodes in.
    #[serde(default)]
    pub insecure: bool,
}

fn default_timeout() -> u64 {
    1000
}

/// One entry of `nodes`: (id, `host:port`).
pub fn parse_node(s: &str) -> Result<(u64, String), String> {
    let (id, addr) = s
        .split_once('@')
        .ok_or_else(|| format!("`{s}` is not `id@host:port`"))?;
    let id: u64 = id
        .trim()
        .parse()
        .map_err(|_| format!("`{s}`: the id `{id}` is not a number"))?;
    let addr = addr.trim();
    let port = addr
        .rsplit_once(':')
        .and_then(|(h, p)| (!h.is_empty()).then_some(p))
        .and_then(|p| p.parse::<u16>().ok());
    if id == 0 || port.is_none_or(|p| p == 0) || addr.contains(['/', ' ', '@', ',']) {
        return Err(format!("`{s}` is not `id@host:port` with an id of 1 or more"));
    }
    Ok((id, addr.to_string()))
}

impl BrokerCluster {
    /// The other nodes, `(id, host:port)`.
    pub fn peers(&self) -> Vec<(u64, String)> {
        self.nodes
            .iter()
            .filter_map(|n| parse_node(n).ok())
            .filter(|(id, _)| *id != self.node_id)
            .collect()
    }
}

/// Take the `NGUON_BROKER_CLUSTER_*` variables into `c`, then check it. `external` says whether
/// an external broker (`mqtt_url`) is configured. Errors are (key, message).
pub fn apply(
    c: &mut Option<BrokerCluster>,
    env: &[(String, String)],
    external: bool,
) -> Result<(), (String, String)> {
    for (k, v) in env {
        let bad = |m: String| (k.clone(), m);
        if !k.starts_with("NGUON_BROKER_CLUSTER_") {
            continue;
        }
        let cur = c.get_or_insert_with(|| BrokerCluster {
            node_id: 0,
            listen: SocketAddr::from(([0, 0, 0, 0], 0)),
            nodes: Vec::new(),
            peer_timeout_ms: default_timeout(),
            tls_cert: None,
            tls_key: None,
            tls_ca: None,
            insecure: false,
        });
        let path = || Some(PathBuf::from(v.trim()));
        match k.as_str() {
            "NGUON_BROKER_CLUSTER_NODE_ID" => {
                cur.node_id = v.trim().parse().map_err(|e| bad(format!("`{v}`: {e}")))?
            }
            "NGUON_BROKER_CLUSTER_LISTEN" => {
                cur.listen = v.trim().parse().map_err(|e| bad(format!("`{v}`: {e}")))?
            }
            "NGUON_BROKER_CLUSTER_NODES" => {
                cur.nodes = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            }
            "NGUON_BROKER_CLUSTER_PEER_TIMEOUT_MS" => {
                cur.peer_timeout_ms = v.trim().parse().map_err(|e| bad(format!("`{v}`: {e}")))?
            }
            "NGUON_BROKER_CLUSTER_TLS_CERT" => cur.tls_cert = path(),
            "NGUON_BROKER_CLUSTER_TLS_KEY" => cur.tls_key = path(),
            "NGUON_BROKER_CLUSTER_TLS_CA" => cur.tls_ca = path(),
            "NGUON_BROKER_CLUSTER_INSECURE" => {
                cur.insecure = v.trim().parse().map_err(|e| bad(format!("`{v}`: {e}")))?
            }
            _ => {
                return Err(bad(
                    "unknown variable (NODE_ID, LISTEN, NODES, PEER_TIMEOUT_MS, TLS_CERT, TLS_KEY, \
                     TLS_CA, INSECURE)"
                        .into(),
                ));
            }
        }
    }
    let Some(c) = c else { return Ok(()) };
    fn err<T>(k: &str, m: String) -> Result<T, (String, String)> {
        Err((format!("broker_cluster.{k}"), m))
    }
    if external {
        return err(
            "node_id",
            "the embedded broker's cluster and an external broker (mqtt_url) exclude each other".into(),
        );
    }
    if c.node_id == 0 {
        return err("node_id", "missing or 0: the id of this node in `nodes`".into());
    }
    if c.listen.port() == 0 {
        return err(
            "listen",
            "missing: `host:port` where this node's peers reach it".into(),
        );
    }
    let mut ids = BTreeSet::new();
    for n in &c.nodes {
        let (id, _) = parse_node(n).or_else(|m| err("nodes", m))?;
        if !ids.insert(id) {
            return err("nodes", format!("the id {id} is listed twice"));
        }
    }
    if ids.len() < 2 {
        return err(
            "nodes",
            "a cluster lists at least two nodes (this one included)".into(),
        );
    }
    if !ids.contains(&c.node_id) {
        return err(
            "node_id",
            format!("{} is not one of the ids in broker_cluster.nodes", c.node_id),
        );
    }
    if !(100..=30_000).contains(&c.peer_timeout_ms) {
        return err("peer_timeout_ms", "must be between 100 and 30000".into());
    }
    let tls = super::cluster_tls::load(c)?.is_some();
    if !tls && !c.insecure && !c.listen.ip().is_loopback() {
        return err(
            "listen",
            format!(
                "{} is reachable from the network and the cluster's gRPC has no TLS: anyone reaching \
                 it could read and inject every message; set broker_cluster.tls_cert, tls_key and \
                 tls_ca (docs/security.md), or insecure = true behind a firewall that lets only the \
                 other nodes in",
                c.listen
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Settings;

    fn load(env: &[(&str, &str)]) -> Result<Settings, super::super::ConfigError> {
        Settings::load(None, env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    const NODES: &str = "1@127.0.0.1:5363, 2@127.0.0.1:5364,3@127.0.0.1:5365";

    #[test]
    fn a_cluster_is_checked_naming_the_bad_key() {
        assert!(load(&[]).unwrap().broker_cluster.is_none());
        let ok = [
            ("NGUON_BROKER_CLUSTER_NODE_ID", "2"),
            ("NGUON_BROKER_CLUSTER_LISTEN", "127.0.0.1:5364"),
            ("NGUON_BROKER_CLUSTER_NODES", NODES),
        ];
        let s = load(&ok).unwrap();
        let c = s.broker_cluster.as_ref().unwrap();
        assert_eq!(c.node_id, 2);
        assert_eq!(c.peer_timeout_ms, 1000);
        assert_eq!(
            c.peers(),
            vec![
                (1, "127.0.0.1:5363".to_string()),
                (3, "127.0.0.1:5365".to_string())
            ]
        );
        // With a cluster, the embedded broker serves several instances: $share is allowed.
        let mut with_group = ok.to_vec();
        with_group.push(("NGUON_HA_SHARED_GROUP", "nguon"));
        assert_eq!(
            load(&with_group).unwrap().ha.shared_group.as_deref(),
            Some("nguon")
        );
        let key = |extra: &[(&str, &str)]| {
            let mut env = ok.to_vec();
            env.extend_from_slice(extra);
            load(&env).unwrap_err().key
        };
        assert_eq!(
            key(&[("NGUON_BROKER_CLUSTER_NODE_ID", "4")]),
            "broker_cluster.node_id"
        );
        assert_eq!(
            key(&[("NGUON_BROKER_CLUSTER_NODE_ID", "x")]),
            "NGUON_BROKER_CLUSTER_NODE_ID"
        );
        assert_eq!(
            key(&[("NGUON_BROKER_CLUSTER_LISTEN", "5364")]),
            "NGUON_BROKER_CLUSTER_LISTEN"
        );
        assert_eq!(
            key(&[("NGUON_BROKER_CLUSTER_NODES", "1@a:1,1@b:2")]),
            "broker_cluster.nodes"
        );
        assert_eq!(
            key(&[("NGUON_BROKER_CLUSTER_NODES", "2@a:1")]),
            "broker_cluster.nodes"
        );
        assert_eq!(
            key(&[("NGUON_BROKER_CLUSTER_NODES", "1@a:1,2@b")]),
            "broker_cluster.nodes"
        );
        assert_eq!(
            key(&[("NGUON_BROKER_CLUSTER_PEER_TIMEOUT_MS", "5")]),
            "broker_cluster.peer_timeout_ms"
        );
        assert_eq!(
            key(&[("NGUON_MQTT_URL", "mqtt://127.0.0.1:1883")]),
            "broker_cluster.node_id"
        );
        assert_eq!(
            key(&[("NGUON_BROKER_CLUSTER_PORT", "1")]),
            "NGUON_BROKER_CLUSTER_PORT"
        );
        // Only part of it: the missing key is named.
        assert_eq!(
            load(&[("NGUON_BROKER_CLUSTER_NODE_ID", "1")]).unwrap_err().key,
            "broker_cluster.listen"
        );
    }
}
