//! `[ha]` and `[server]` settings (issue 14): the leader lease of several instances sharing one
//! PostgreSQL database (`ha.lease_ttl_secs`, `ha.instance_id`), the MQTT shared-subscription group
//! spreading device reports across instances (`ha.shared_group`), the QoS of the link's
//! subscriptions on a broker cluster (`ha.subscribe_qos`), the manifests per step of a dispatch
//! batch (`ha.dispatch_chunk`), how long a stop drains HTTP (`server.shutdown_grace_secs`), and
//! the HTTP connections' idle timeout and cap (`server.keepalive_timeout_secs`,
//! `server.max_connections`), the listen backlog and the media held in memory
//! (`server.listen_backlog`, `server.media_memory_mb`). Read after the TOML file by [`apply`] (`NGUON_HA_*`,
//! `NGUON_SERVER_SHUTDOWN_GRACE_SECS`), then checked; every error names the key.

use serde::Deserialize;

use super::{ConfigError, Settings};

/// `[ha]`: the leader lease and shared ingest (docs/deployment.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HaSettings {
    /// How long a lease lasts without renewal, seconds (`NGUON_HA_LEASE_TTL_SECS`, default 5,
    /// 2 to 60). The leader renews every third of it; a follower takes over at most this long
    /// (plus one second's poll) after the leader stopped renewing.
    pub lease_ttl_secs: u64,
    /// This instance's name in the lease (`NGUON_HA_INSTANCE_ID`); default `<hostname>:<http
    /// port>`. An instance restarted under the same name takes its own lease back at once.
    pub instance_id: Option<String>,
    /// MQTT shared-subscription group (`NGUON_HA_SHARED_GROUP`, e.g. `nguon`): device events and
    /// telemetry are subscribed as `$share/<group>/…`, so the broker hands each report to one
    /// instance. Default none (every instance receives everything; ingest is idempotent).
    pub shared_group: Option<String>,
    /// QoS of the link's subscriptions to device reports (`NGUON_HA_SUBSCRIBE_QOS`), 0 or 1,
    /// default 1. 0 on a NATS cluster, whose QoS 1 subscriptions are JetStream consumers that
    /// stop delivering when their node dies while the connection stays up (docs/deployment.md);
    /// devices send their events until a receipt names them, so a lost report is sent again.
    pub subscribe_qos: u8,
    /// Manifests per step of a dispatch batch (`NGUON_HA_DISPATCH_CHUNK`, default 2000, 1 to
    /// 100000): each step is recorded under the lease's fence, published and confirmed before the
    /// next, so a province-wide change advances a step at a time and the lease's renewal gets the
    /// database between steps (workers::dispatcher).
    pub dispatch_chunk: u64,
}

impl Default for HaSettings {
    fn default() -> Self {
        HaSettings {
            lease_ttl_secs: 5,
            instance_id: None,
            shared_group: None,
            subscribe_qos: 1,
            dispatch_chunk: 2000,
        }
    }
}

/// `[server]`: process lifetime.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// At SIGTERM or SIGINT, time given to open HTTP requests to finish, seconds
    /// (`NGUON_SERVER_SHUTDOWN_GRACE_SECS`, default 10, 0 to 600); connections still open then
    /// (board event streams) are closed.
    pub shutdown_grace_secs: u64,
    /// How long an HTTP connection may wait for its next request's headers (or its first's)
    /// before it is closed, seconds (`NGUON_SERVER_KEEPALIVE_TIMEOUT_SECS`, default 15, 1 to
    /// 3600): nginx's `keepalive_timeout`. A response being sent is not cut.
    pub keepalive_timeout_secs: u64,
    /// Most HTTP connections open at once (`NGUON_SERVER_MAX_CONNECTIONS`, default 0: automatic,
    /// from the file-descriptor limit; else 1 to 1000000). At the cap new connections wait in the
    /// listen backlog (http::serve).
    pub max_connections: u64,
    /// Approved media held in memory, MiB (`NGUON_SERVER_MEDIA_MEMORY_MB`, default 64, 0 to
    /// 65536; 0: every request reads the file): a file of at most an eighth of it is read once
    /// and served from memory (`services::media::hot`).
    pub media_memory_mb: u64,
    /// The HTTP listener's backlog (`NGUON_SERVER_LISTEN_BACKLOG`, default 4096, 1 to 65535; the
    /// kernel caps it at `net.core.somaxconn`): connections completed by the kernel and not yet
    /// accepted. When an emergency makes every device connect in the same second, a full
    /// backlog drops connections, which clients retry after 1, 3, 7 s…
    pub listen_backlog: u32,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            shutdown_grace_secs: 10,
            keepalive_timeout_secs: 15,
            max_connections: 0,
            media_memory_mb: 64,
            listen_backlog: 4096,
        }
    }
}

/// The `NGUON_HA_*` and `NGUON_SERVER_*` variables of `env` onto `s`, then the checks.
pub fn apply(s: &mut Settings, env: &[(String, String)], source: &str) -> Result<(), ConfigError> {
    for (k, v) in env {
        let bad = |m: String| ConfigError {
            key: k.clone(),
            source_name: "environment".into(),
            message: m,
        };
        let num = |v: &str| v.parse::<u64>().map_err(|e| bad(format!("`{v}`: {e}")));
        let text = |v: &str| Some(v.trim().to_string()).filter(|v| !v.is_empty());
        match k.as_str() {
            "NGUON_HA_LEASE_TTL_SECS" => s.ha.lease_ttl_secs = num(v)?,
            "NGUON_HA_INSTANCE_ID" => s.ha.instance_id = text(v),
            "NGUON_HA_SHARED_GROUP" => s.ha.shared_group = text(v),
            "NGUON_HA_SUBSCRIBE_QOS" => {
                s.ha.subscribe_qos = v.parse().map_err(|e| bad(format!("`{v}`: {e}")))?
            }
            "NGUON_HA_DISPATCH_CHUNK" => s.ha.dispatch_chunk = num(v)?,
            "NGUON_SERVER_SHUTDOWN_GRACE_SECS" => s.server.shutdown_grace_secs = num(v)?,
            "NGUON_SERVER_KEEPALIVE_TIMEOUT_SECS" => s.server.keepalive_timeout_secs = num(v)?,
            "NGUON_SERVER_MAX_CONNECTIONS" => s.server.max_connections = num(v)?,
            "NGUON_SERVER_MEDIA_MEMORY_MB" => s.server.media_memory_mb = num(v)?,
            "NGUON_SERVER_LISTEN_BACKLOG" => {
                s.server.listen_backlog = v.parse().map_err(|e| bad(format!("`{v}`: {e}")))?
            }
            _ => {}
        }
    }
    check(s).map_err(|(key, message)| ConfigError {
        key: key.into(),
        source_name: source.to_string(),
        message,
    })
}

fn check(s: &Settings) -> Result<(), (&'static str, String)> {
    if !(2..=60).contains(&s.ha.lease_ttl_secs) {
        return Err((
            "ha.lease_ttl_secs",
            format!("{} is not between 2 and 60", s.ha.lease_ttl_secs),
        ));
    }
    if !(1..=100_000).contains(&s.ha.dispatch_chunk) {
        return Err((
            "ha.dispatch_chunk",
            format!("{} is not between 1 and 100000", s.ha.dispatch_chunk),
        ));
    }
    if s.server.shutdown_grace_secs > 600 {
        return Err((
            "server.shutdown_grace_secs",
            format!("{} is not between 0 and 600", s.server.shutdown_grace_secs),
        ));
    }
    if !(1..=3600).contains(&s.server.keepalive_timeout_secs) {
        return Err((
            "server.keepalive_timeout_secs",
            format!("{} is not between 1 and 3600", s.server.keepalive_timeout_secs),
        ));
    }
    if s.server.max_connections > 1_000_000 {
        return Err((
            "server.max_connections",
            format!(
                "{} is not 0 (automatic) or between 1 and 1000000",
                s.server.max_connections
            ),
        ));
    }
    if s.server.media_memory_mb > 65_536 {
        return Err((
            "server.media_memory_mb",
            format!("{} is not between 0 and 65536", s.server.media_memory_mb),
        ));
    }
    if !(1..=65_535).contains(&s.server.listen_backlog) {
        return Err((
            "server.listen_backlog",
            format!("{} is not between 1 and 65535", s.server.listen_backlog),
        ));
    }
    if s.ha.subscribe_qos > 1 {
        return Err((
            "ha.subscribe_qos",
            format!("{} is not 0 or 1", s.ha.subscribe_qos),
        ));
    }
    if let Some(id) = &s.ha.instance_id
        && (id.len() > 200 || id.chars().any(char::is_control))
    {
        return Err((
            "ha.instance_id",
            "must be at most 200 characters without control characters".into(),
        ));
    }
    if let Some(g) = &s.ha.shared_group {
        let ok = g.len() <= 64
            && g.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err((
                "ha.shared_group",
                format!("`{g}`: letters, digits, `-` and `_` only, at most 64 (no `/`, `+` or `#`)"),
            ));
        }
        if s.mqtt_url.is_none() && s.broker_cluster.is_none() {
            return Err((
                "ha.shared_group",
                "needs an external broker (mqtt_url) or the embedded broker's cluster \
                 ([broker_cluster]): a single embedded broker serves one instance"
                    .into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Settings;

    fn load(env: &[(&str, &str)]) -> Result<Settings, super::ConfigError> {
        Settings::load(None, env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn ha_settings_are_checked_by_name() {
        let s = load(&[]).unwrap();
        assert_eq!(s.ha.lease_ttl_secs, 5);
        assert_eq!(s.server.shutdown_grace_secs, 10);
        assert_eq!(s.server.keepalive_timeout_secs, 15);
        assert_eq!(s.server.max_connections, 0);
        assert_eq!((s.server.media_memory_mb, s.server.listen_backlog), (64, 4096));
        for (k, v, key) in [
            ("NGUON_SERVER_MEDIA_MEMORY_MB", "65537", "server.media_memory_mb"),
            ("NGUON_SERVER_LISTEN_BACKLOG", "0", "server.listen_backlog"),
            ("NGUON_SERVER_LISTEN_BACKLOG", "70000", "server.listen_backlog"),
        ] {
            assert_eq!(load(&[(k, v)]).unwrap_err().key, key, "{k}={v}");
        }
        let s = load(&[
            ("NGUON_SERVER_MEDIA_MEMORY_MB", "0"),
            ("NGUON_SERVER_LISTEN_BACKLOG", "128"),
        ])
        .unwrap();
        assert_eq!((s.server.media_memory_mb, s.server.listen_backlog), (0, 128));
        assert_eq!(
            load(&[("NGUON_SERVER_KEEPALIVE_TIMEOUT_SECS", "0")])
                .unwrap_err()
                .key,
            "server.keepalive_timeout_secs"
        );
        assert_eq!(
            load(&[("NGUON_SERVER_MAX_CONNECTIONS", "1000001")])
                .unwrap_err()
                .key,
            "server.max_connections"
        );
        assert_eq!(
            load(&[("NGUON_SERVER_MAX_CONNECTIONS", "many")]).unwrap_err().key,
            "NGUON_SERVER_MAX_CONNECTIONS"
        );
        assert_eq!(s.ha.subscribe_qos, 1);
        assert_eq!(s.ha.dispatch_chunk, 2000);
        assert_eq!(
            load(&[("NGUON_HA_DISPATCH_CHUNK", "0")]).unwrap_err().key,
            "ha.dispatch_chunk"
        );
        assert_eq!(
            load(&[("NGUON_HA_DISPATCH_CHUNK", "500")])
                .unwrap()
                .ha
                .dispatch_chunk,
            500
        );
        assert_eq!(
            load(&[("NGUON_HA_SUBSCRIBE_QOS", "2")]).unwrap_err().key,
            "ha.subscribe_qos"
        );
        assert_eq!(
            load(&[("NGUON_HA_SUBSCRIBE_QOS", "0")]).unwrap().ha.subscribe_qos,
            0
        );
        assert_eq!(
            load(&[("NGUON_HA_LEASE_TTL_SECS", "1")]).unwrap_err().key,
            "ha.lease_ttl_secs"
        );
        assert_eq!(
            load(&[("NGUON_HA_LEASE_TTL_SECS", "soon")]).unwrap_err().key,
            "NGUON_HA_LEASE_TTL_SECS"
        );
        assert_eq!(
            load(&[("NGUON_SERVER_SHUTDOWN_GRACE_SECS", "601")])
                .unwrap_err()
                .key,
            "server.shutdown_grace_secs"
        );
        let e = load(&[("NGUON_HA_SHARED_GROUP", "nguon")]).unwrap_err();
        assert_eq!(e.key, "ha.shared_group");
        assert!(e.message.contains("external broker"), "{e}");
        let e = load(&[
            ("NGUON_HA_SHARED_GROUP", "a/b"),
            ("NGUON_MQTT_URL", "mqtt://127.0.0.1:1883"),
        ])
        .unwrap_err();
        assert_eq!(e.key, "ha.shared_group");
        let s = load(&[
            ("NGUON_HA_SHARED_GROUP", "nguon"),
            ("NGUON_MQTT_URL", "mqtt://127.0.0.1:1883"),
            ("NGUON_HA_LEASE_TTL_SECS", "3"),
        ])
        .unwrap();
        assert_eq!(s.ha.shared_group.as_deref(), Some("nguon"));
        assert_eq!(s.ha.lease_ttl_secs, 3);
    }
}
