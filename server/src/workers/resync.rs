//! Manifest resync: every heartbeat names the manifest version the device holds (and an agent
//! sends one as soon as its subscriptions are in place after each connect). When the server has
//! recorded a newer manifest for that device, it sends that signed manifest again on the
//! device's `desired` topic (QoS 1, not retained), exactly as it was recorded: the agent applies
//! it, or ignores it if it already holds it (same message id).
//!
//! So a device's manifest does not rest on the broker alone: not on its retained copy (a broker
//! cluster may keep retained messages per node, RabbitMQ does), nor on a delivery lost while a
//! cluster node died (NATS loses QoS 1 deliveries while its JetStream streams elect new leaders).
//! The same signed message is sent, so nothing new is signed and the dispatcher's fencing is
//! untouched: what is sent is the latest the leader recorded.
//!
//! Who answers: with `ha.shared_group` the instance the heartbeat reached; without, every instance
//! receives every heartbeat and only the leader answers. A device is sent the same manifest at
//! most once per [`AGAIN_AFTER`], so a device that cannot apply it costs one message per period;
//! and only a manifest the broker confirmed at least [`SETTLED_MS`] ago, so the dispatcher's own
//! publish (and a newer one committed meanwhile) is not overtaken by an older copy.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nguon_protocol::{DeviceId, topic};

use crate::metrics::Metrics;
use crate::mqtt::Link;
use crate::store::{Store, manifests};
use crate::workers::Context;
use crate::workers::leader::Lease;

/// The shortest wait before the same manifest is sent again to the same device.
pub const AGAIN_AFTER: Duration = Duration::from_secs(30);

/// How long after the broker confirmed a manifest it may be sent again (ms).
pub const SETTLED_MS: i64 = 1_000;

/// Sends newer manifests to devices whose heartbeat shows an older one.
#[derive(Clone)]
pub struct Resync {
    store: Store,
    link: Link,
    metrics: Arc<Metrics>,
    /// `None`: this instance answers every heartbeat it gets (shared ingest); `Some`: only while
    /// it holds this lease.
    leader_only: Option<Lease>,
    /// Per device: the sequence number last sent again, and when.
    sent: Arc<Mutex<HashMap<String, (i64, Instant)>>>,
}

impl From<&Context> for Resync {
    fn from(c: &Context) -> Resync {
        Resync {
            store: c.store.clone(),
            link: c.link.clone(),
            metrics: c.metrics.clone(),
            leader_only: c.settings.ha.shared_group.is_none().then(|| c.lease.clone()),
            sent: Arc::default(),
        }
    }
}

/// The devices of `held` (device id, manifest version it holds) that `current` is newer for,
/// confirmed by the broker [`SETTLED_MS`] before `now_ms` (unix ms), and not sent again within
/// [`AGAIN_AFTER`] (recorded in `sent` as sent `now`).
pub fn due(
    held: &HashMap<String, Option<u64>>,
    current: Vec<manifests::Current>,
    sent: &mut HashMap<String, (i64, Instant)>,
    now: Instant,
    now_ms: i64,
) -> Vec<manifests::Current> {
    let due: Vec<manifests::Current> = current
        .into_iter()
        .filter(|c| c.published_at > 0 && now_ms - c.published_at >= SETTLED_MS)
        .filter(|c| {
            held.get(&c.device_id)
                .is_some_and(|h| h.is_none_or(|v| (v.min(i64::MAX as u64) as i64) < c.version))
        })
        .filter(|c| {
            sent.get(&c.device_id)
                .is_none_or(|(seq, at)| *seq != c.seq || now.duration_since(*at) >= AGAIN_AFTER)
        })
        .collect();
    for c in &due {
        sent.insert(c.device_id.clone(), (c.seq, now));
    }
    if sent.len() > 200_000 {
        sent.retain(|_, (_, at)| now.duration_since(*at) < AGAIN_AFTER);
    }
    due
}

impl Resync {
    /// Compare what the devices of one burst hold (device id, manifest version) with what is
    /// recorded, and send the newer manifests; in a task of its own, so ingest does not wait.
    pub fn check(&self, held: HashMap<String, Option<u64>>) {
        if held.is_empty() || self.leader_only.as_ref().is_some_and(|l| !l.valid()) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let devices: Vec<String> = held.keys().cloned().collect();
            let current = match manifests::current(&me.store, &devices).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "manifest resync: cannot read the current manifests");
                    return;
                }
            };
            let due = {
                let mut sent = me.sent.lock().unwrap_or_else(|p| p.into_inner());
                due(&held, current, &mut sent, Instant::now(), crate::store::now_ms())
            };
            for c in due {
                let Ok(did) = DeviceId::parse(c.device_id.clone()) else {
                    continue;
                };
                tracing::info!(
                    device = %c.device_id,
                    held = ?held.get(&c.device_id).copied().flatten(),
                    version = c.version,
                    "device holds an older manifest; sending the current one again"
                );
                Metrics::inc(&me.metrics.manifests_resent);
                if let Err(e) = me
                    .link
                    .publish(&topic::desired(&did), c.body.into_bytes(), false)
                    .await
                {
                    tracing::warn!(device = %c.device_id, error = %e, "manifest resync: not sent");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_000_000;

    fn cur(d: &str, version: i64, seq: i64) -> manifests::Current {
        manifests::Current {
            device_id: d.into(),
            version,
            seq,
            body: format!("{d}-{version}"),
            published_at: T - SETTLED_MS,
        }
    }

    #[test]
    fn only_devices_behind_and_not_sent_recently() {
        let held: HashMap<String, Option<u64>> = [
            ("a".to_string(), Some(3)),
            ("b".to_string(), Some(5)),
            ("c".to_string(), None),
        ]
        .into();
        let mut sent = HashMap::new();
        let t0 = Instant::now();
        let current = || vec![cur("a", 5, 50), cur("b", 5, 51), cur("c", 2, 52)];
        let names = |v: Vec<manifests::Current>| v.into_iter().map(|c| c.device_id).collect::<Vec<_>>();
        // Not yet settled (the dispatcher's own publish is on its way) or never confirmed: not sent.
        assert!(due(&held, current(), &mut sent, t0, T - 1).is_empty());
        let unconfirmed = manifests::Current {
            published_at: 0,
            ..cur("a", 5, 50)
        };
        assert!(due(&held, vec![unconfirmed], &mut sent, t0, T).is_empty());
        assert_eq!(names(due(&held, current(), &mut sent, t0, T)), ["a", "c"]);
        // The same manifest is not sent again within the period, a newer one is.
        let later = t0 + Duration::from_secs(5);
        assert!(due(&held, current(), &mut sent, later, T + 5_000).is_empty());
        assert_eq!(
            names(due(&held, vec![cur("a", 6, 60)], &mut sent, later, T + 5_000)),
            ["a"]
        );
        let again = t0 + AGAIN_AFTER + Duration::from_secs(5);
        assert_eq!(
            names(due(&held, current(), &mut sent, again, T + 40_000)),
            ["a", "c"]
        );
    }
}
