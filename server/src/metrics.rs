//! Prometheus text metrics. Counters are plain atomics incremented where things happen; gauges
//! that live in the database (devices online) are read at scrape time.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// Connections to the embedded broker's cluster port refused at the TLS handshake (no
/// certificate signed by the cluster CA). Process-wide, as the cluster's TLS is
/// (`mqtt::cluster`).
pub static CLUSTER_REFUSED: AtomicU64 = AtomicU64::new(0);

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// MQTT messages received by the server.
    pub mqtt_in: AtomicU64,
    /// MQTT messages published by the server.
    pub mqtt_out: AtomicU64,
    /// Desired manifests published.
    pub manifests_published: AtomicU64,
    /// Commands published.
    pub commands_published: AtomicU64,
    /// Dispatch batches that failed (some manifest not confirmed by the broker, or a database
    /// error); each is retried with its outbox rows kept.
    pub dispatch_failures: AtomicU64,
    /// Manifests whose look-ahead window was shortened to fit `max_manifest_bytes`.
    pub manifests_shortened: AtomicU64,
    /// Manifests sent again to a device whose heartbeat showed an older one (`workers::resync`).
    pub manifests_resent: AtomicU64,
    /// Milliseconds between the last change commit and its manifests being published.
    pub dispatch_lag_ms: AtomicI64,
    /// Device events stored (proof of play, acks, rejections), after de-duplication.
    pub events_stored: AtomicU64,
    /// Device events received that were already stored (duplicates).
    pub events_duplicate: AtomicU64,
    /// Payloads that could not be parsed or were refused (malformed JSON, wrong shape, topic mismatch).
    pub payloads_rejected: AtomicU64,
    /// Reports refused because they were unsigned or badly signed from a device that has a key.
    pub reports_bad_signature: AtomicU64,
    /// Reports refused because their device has no key and unsigned devices are not allowed.
    pub reports_unkeyed: AtomicU64,
    /// HTTP uploads refused.
    pub uploads_rejected: AtomicU64,
    /// 1 while this instance holds the leader lease (`workers::leader`), 0 as a follower.
    pub is_leader: AtomicU64,
    /// The fencing epoch of the lease this instance last took (0: never).
    pub leader_epoch: AtomicI64,
    /// Times this instance took the leader lease.
    pub leader_acquired: AtomicU64,
    /// Times it took the lease over from another instance that let it lapse (a failover).
    pub leader_failovers: AtomicU64,
    /// Set at a graceful stop: `/readyz` answers 503 while HTTP drains.
    pub draining: AtomicBool,
}

impl Metrics {
    /// Add one.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Render in the Prometheus text format; `devices_online`/`devices_total` come from the store.
    pub fn render(&self, devices_online: i64, devices_total: i64) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            "nguon_mqtt_messages_in_total",
            "MQTT messages received by the server.",
            g(&self.mqtt_in),
        );
        counter(
            "nguon_mqtt_messages_out_total",
            "MQTT messages published by the server.",
            g(&self.mqtt_out),
        );
        counter(
            "nguon_manifests_published_total",
            "Desired manifests published.",
            g(&self.manifests_published),
        );
        counter(
            "nguon_dispatch_failures_total",
            "Dispatch batches that failed and are retried (outbox rows kept).",
            g(&self.dispatch_failures),
        );
        counter(
            "nguon_commands_published_total",
            "Immediate commands published.",
            g(&self.commands_published),
        );
        counter(
            "nguon_events_stored_total",
            "Device events stored after de-duplication.",
            g(&self.events_stored),
        );
        counter(
            "nguon_events_duplicate_total",
            "Device events received again and ignored.",
            g(&self.events_duplicate),
        );
        counter(
            "nguon_manifests_shortened_total",
            "Manifests whose look-ahead window was shortened to fit max_manifest_bytes.",
            g(&self.manifests_shortened),
        );
        counter(
            "nguon_manifests_resent_total",
            "Manifests sent again to a device whose heartbeat showed an older version.",
            g(&self.manifests_resent),
        );
        counter(
            "nguon_payloads_rejected_total",
            "MQTT payloads refused as malformed or mismatched.",
            g(&self.payloads_rejected),
        );
        counter(
            "nguon_reports_bad_signature_total",
            "Reports refused: unsigned or badly signed from a device that has a key.",
            g(&self.reports_bad_signature),
        );
        counter(
            "nguon_reports_unkeyed_total",
            "Reports refused: the device has no key and allow_unsigned_devices is off.",
            g(&self.reports_unkeyed),
        );
        counter(
            "nguon_uploads_rejected_total",
            "Media uploads refused.",
            g(&self.uploads_rejected),
        );
        counter(
            "nguon_broker_cluster_refused_total",
            "Connections to the broker cluster port refused at the TLS handshake (no certificate signed by the cluster CA).",
            CLUSTER_REFUSED.load(Ordering::Relaxed),
        );
        counter(
            "nguon_leader_acquired_total",
            "Times this instance took the leader lease.",
            g(&self.leader_acquired),
        );
        counter(
            "nguon_leader_failovers_total",
            "Times this instance took the leader lease over from an instance that let it lapse.",
            g(&self.leader_failovers),
        );
        let _ = writeln!(
            out,
            "# HELP nguon_leader 1 while this instance is the leader, 0 as a follower.\n# TYPE nguon_leader gauge\nnguon_leader {}\n# HELP nguon_leader_epoch Fencing epoch of the lease this instance last took.\n# TYPE nguon_leader_epoch gauge\nnguon_leader_epoch {}",
            g(&self.is_leader),
            self.leader_epoch.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP nguon_dispatch_lag_ms Milliseconds from the last change commit to its manifests published.\n# TYPE nguon_dispatch_lag_ms gauge\nnguon_dispatch_lag_ms {}",
            self.dispatch_lag_ms.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP nguon_devices_online Devices whose last state is online.\n# TYPE nguon_devices_online gauge\nnguon_devices_online {devices_online}"
        );
        let _ = writeln!(
            out,
            "# HELP nguon_devices_total Registered devices.\n# TYPE nguon_devices_total gauge\nnguon_devices_total {devices_total}"
        );
        out
    }
}
