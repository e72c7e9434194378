//! The embedded broker as one node of a cluster (`[broker_cluster]`, issue 14): rmqtt's
//! broadcast cluster (`rmqtt-cluster-broadcast`), each node talking gRPC to every other.
//!
//! What crosses nodes: a publish reaches the subscribers of every node (the publishing node asks
//! each peer for its matching subscriptions and forwards); a `$share/<group>/…` subscription
//! (`ha.shared_group`) gets each message on exactly one member of the group, whichever node it
//! is on ([`SharedChoice`] takes the members the cluster reports in turn); a client connecting on
//! one node takes its session over from another; a retained message is copied to every node,
//! and a node (re)starting pulls the retained messages of its peers. What stays on each node:
//! nguon's gate and the engine's auth and ACL hooks (every device connects through one node's
//! gate, and that node checks it), and the sessions themselves (an agent whose node dies
//! reconnects to another from its list of brokers, with a clean session, and subscribes again).
//!
//! A dead peer: calls to it fail after `peer_timeout_ms`, and after two failures in a row its
//! circuit opens for 5 s (then one call probes it), so a node's death delays a few publishes and
//! connects by the timeout instead of every one. Messages a dead node held (its sessions'
//! queues) are lost with it; devices send their reports until a receipt names them, and the
//! server's desired manifests are retained on every node.
//!
//! The gRPC between nodes: with `broker_cluster.tls_*`, mutual TLS with the cluster's CA
//! ([`secure`]: a peer without a certificate signed by it, or with one not valid for the host of
//! any entry of `broker_cluster.nodes`, is refused at the handshake, logged and counted in
//! `nguon_broker_cluster_refused_total`; a peer called is checked against the CA and its
//! address). Without, plain and unauthenticated (allowed only on loopback or with
//! `insecure`, and warned about at start): docs/security.md.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use rmqtt::context::{
    CircuitBreakerConfig, CountBasedWindowConfig, ServerContext, ServerContextBuilder, WindowConfig,
};
use rmqtt::node::Node;
use rmqtt::subscribe::SharedSubscription;
use rmqtt::types::{
    ClientId, Id, IsOnline, NodeId, SharedGroup, SubscriptionIdentifier, SubscriptionOptions, TopicName,
};

use handy_grpc::mtls::{Certificate, ClientTlsConfig, Identity, MutualTls};

use crate::config::cluster::BrokerCluster;
use crate::config::cluster_tls;

/// The rmqtt plugin's name (its configuration is passed inline under it).
const PLUGIN: &str = "rmqtt-cluster-broadcast";

/// `$share` on the embedded broker: one member of the group per message, in turn among the
/// members online (any member when none says so), on whatever node it is. The publishing
/// device's node chooses, so each node spreads its own devices' reports evenly.
#[derive(Default)]
pub(crate) struct SharedChoice {
    turn: AtomicUsize,
}

type Member = (
    NodeId,
    ClientId,
    SubscriptionOptions,
    Option<Vec<SubscriptionIdentifier>>,
    Option<IsOnline>,
);

/// Index of the member to deliver to: `pick(n)` (below `n`) of those online (`None` counts as
/// online), else of all; `None` for an empty group.
pub(crate) fn choose(online: &[bool], pick: impl FnOnce(usize) -> usize) -> Option<usize> {
    if online.is_empty() {
        return None;
    }
    let up: Vec<usize> = (0..online.len()).filter(|i| online[*i]).collect();
    if up.is_empty() {
        return Some(pick(online.len()) % online.len());
    }
    Some(up[pick(up.len()) % up.len()])
}

#[async_trait]
impl SharedSubscription for SharedChoice {
    fn is_supported(&self) -> bool {
        true
    }

    async fn choice(
        &self,
        _scx: &ServerContext,
        _group: &SharedGroup,
        _publisher: &Id,
        _topic: &TopicName,
        members: &[Member],
    ) -> Option<(usize, IsOnline)> {
        let online: Vec<bool> = members.iter().map(|m| m.4.unwrap_or(true)).collect();
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        let i = choose(&online, |n| turn % n)?;
        Some((i, online[i]))
    }
}

/// The server context's settings for a cluster node: its id, the peers (the plugin's inline
/// configuration) and a circuit breaker that gives up on a dead peer quickly.
pub(crate) fn configure(builder: ServerContextBuilder, c: &BrokerCluster) -> ServerContextBuilder {
    let nodes: Vec<String> = c.nodes.iter().map(|n| format!("\"{}\"", n.trim())).collect();
    let plugin = format!(
        "node_grpc_addrs = [{}]\nnode_grpc_client_timeout = \"{}ms\"\n",
        nodes.join(", "),
        c.peer_timeout_ms
    );
    builder
        .node(Node::new(c.node_id, 0.0, 0.0, Duration::from_secs(5)))
        .plugins_config_map_add(PLUGIN, plugin)
        .circuit_breaker_config(CircuitBreakerConfig {
            failure_rate_threshold: 0.5,
            window: WindowConfig::CountBased(CountBasedWindowConfig {
                sliding_window_size: 4,
            }),
            minimum_number_of_calls: 2,
            wait_duration_in_open: Duration::from_secs(5),
            slow_call_duration_threshold: Duration::from_millis(c.peer_timeout_ms),
            slow_call_rate_threshold: 1.0,
            name: "grpc".into(),
        })
}

/// Listen for the peers and join: call on the engine's runtime, after the hooks are registered
/// and before the MQTT listener serves.
pub(crate) async fn join(scx: &ServerContext, c: &BrokerCluster) -> Result<(), String> {
    // rmqtt's gRPC server only logs a failed bind: find out here, naming the key.
    std::net::TcpListener::bind(c.listen).map_err(|e| format!("broker_cluster.listen {}: {e}", c.listen))?;
    secure(c)?;
    scx.node.start_grpc_server(scx.clone(), c.listen, true, false);
    rmqtt_cluster_broadcast::register(scx, true, false)
        .await
        .map_err(|e| format!("broker cluster (node {}): {e}", c.node_id))?;
    tracing::info!(
        node = c.node_id,
        listen = %c.listen,
        peers = ?c.peers(),
        "embedded broker joined its cluster"
    );
    Ok(())
}

/// Set the mutual TLS of the cluster's gRPC, process-wide in the vendored handy-grpc (its
/// VENDORED.md), before rmqtt builds its server and clients; without `tls_*`, warn.
fn secure(c: &BrokerCluster) -> Result<(), String> {
    let Some(tls) = cluster_tls::load(c).map_err(|(k, m)| format!("{k}: {m}"))? else {
        tracing::warn!(
            listen = %c.listen,
            "broker cluster: the gRPC port between nodes is plain and unauthenticated (no \
             broker_cluster.tls_cert/tls_key/tls_ca): whoever reaches it can read and inject every \
             message (docs/security.md)"
        );
        return Ok(());
    };
    let provider = cluster_tls::provider();
    let tls_err = |e: rustls::Error| format!("broker_cluster.tls_cert: {e}");
    // A peer's certificate: signed by the CA and valid for one of the hosts of `nodes`.
    let hosts = tls.hosts.len();
    let verifier = cluster_tls::NodeVerifier::new(tls.roots.clone(), tls.hosts)
        .map_err(|e| format!("broker_cluster.tls_ca: {e}"))?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(tls.chain, tls.key)
        .map_err(tls_err)?;
    server.alpn_protocols = vec![b"h2".to_vec()];
    let client = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(tls.ca_pem))
        .identity(Identity::from_pem(tls.cert_pem, tls.key_pem));
    handy_grpc::mtls::set(MutualTls {
        server: Arc::new(server),
        client,
        on_refused: refused,
    })
    .map_err(|_| "broker_cluster: the cluster's TLS is set once per process".to_string())?;
    tracing::info!(
        listen = %c.listen,
        hosts,
        "broker cluster: gRPC between nodes with mutual TLS (cluster CA; a peer's certificate must \
         name a host of broker_cluster.nodes)"
    );
    Ok(())
}

/// A connection to the cluster port that failed the TLS handshake: logged and counted.
fn refused(peer: SocketAddr, why: &str) {
    crate::metrics::CLUSTER_REFUSED.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(
        %peer,
        reason = why,
        "broker cluster: refused a connection to the cluster port (no certificate signed by the \
         cluster CA for a host of broker_cluster.nodes)"
    );
}

#[cfg(test)]
mod tests {
    use super::choose;

    #[test]
    fn one_member_is_chosen_preferring_those_online() {
        assert_eq!(choose(&[], |_| 0), None);
        // Only index 2 is online: whatever the draw, it is chosen.
        for draw in 0..5 {
            assert_eq!(choose(&[false, false, true], move |_| draw), Some(2));
        }
        // None online: any member.
        assert_eq!(choose(&[false, false], |n| n - 1), Some(1));
        // Every online member can be drawn.
        let picks: std::collections::BTreeSet<usize> = (0..3)
            .filter_map(|d| choose(&[true, false, true, true], move |_| d))
            .collect();
        assert_eq!(picks, [0, 2, 3].into_iter().collect());
    }
}
