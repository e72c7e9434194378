//! The ingest loop: messages devices send are taken from the link in bursts (up to [`BURST`] at
//! a time), decoded by `mqtt::inbound`, written by `store::ingest` in one transaction per burst,
//! and answered with signed receipts (`mqtt::outbound::receipt`) once committed. Refused payloads
//! are counted and logged at most once a second; nothing a device sends stops ingest.
//!
//! The receipts tell each device which of its events the server holds. The device keeps every
//! event until a receipt names it, so nothing a broker drops on the way (queue limits, the server
//! restarting) is lost; a lost receipt only makes the device send the events again, and ingest
//! stores each id once. They are published from a task of their own, so that ingest does not wait
//! for the broker. Each burst's heartbeats go on to [`super::resync`], which sends a newer manifest
//! to a device that holds an older one.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nguon_protocol::DeviceId;
use tokio_util::sync::CancellationToken;

use crate::domain::presence::RECONCILE_AFTER;
use crate::error::Result;
use crate::metrics::Metrics;
use crate::mqtt::inbound::{self, DevKey};
use crate::mqtt::link::{Incoming, LinkEvents};
use crate::mqtt::{Link, Signer, outbound};
use crate::store::{Store, history, now_ms};
use crate::workers::Context;

/// Most messages handled in one transaction.
pub const BURST: usize = 4_000;
/// How long a device's key (or its absence) is trusted before it is read again.
const KEY_TTL: Duration = Duration::from_secs(30);

/// Where the receipts go: the link, signed by the server's key.
#[derive(Clone)]
pub struct Receipts {
    /// The server's MQTT connection.
    pub link: Link,
    /// The signing key and sequencer.
    pub signer: Signer,
}

impl From<&Context> for Receipts {
    fn from(c: &Context) -> Receipts {
        Receipts {
            link: c.link.clone(),
            signer: c.signer.clone(),
        }
    }
}

impl Receipts {
    /// Sign and publish one receipt per device, in a task of its own.
    fn send(&self, receipts: HashMap<DeviceId, Vec<uuid::Uuid>>) {
        if receipts.is_empty() {
            return;
        }
        let out = self.clone();
        tokio::spawn(async move {
            for (device, events) in receipts {
                let m = outbound::receipt(&out.signer, &device, events);
                if let Err(e) = out.link.publish(&m.topic, m.bytes, m.retain).await {
                    tracing::warn!(error = %e, "cannot publish a receipt; the device will send its events again");
                }
            }
        });
    }
}

/// Consume incoming MQTT traffic until cancelled.
pub async fn run(
    mut ingest: Ingest,
    receipts: Receipts,
    resync: super::resync::Resync,
    mut events: LinkEvents,
    cancel: CancellationToken,
) -> Result<()> {
    let started = now_ms();
    // Status history: once the retained states had time to re-confirm the open intervals, close
    // those of devices not heard from since the start (see `domain::presence`).
    let reconcile = tokio::time::sleep(RECONCILE_AFTER);
    tokio::pin!(reconcile);
    let mut reconciled = false;
    loop {
        let first = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = &mut reconcile, if !reconciled => {
                reconciled = true;
                if let Err(e) = history::close_unconfirmed(&ingest.store, started).await {
                    tracing::error!(error = %e, "status history: reconciliation after start failed");
                }
                continue;
            }
            m = events.rx.recv() => match m { Some(m) => m, None => return Ok(()) },
        };
        let mut burst = vec![first];
        while burst.len() < BURST {
            match events.rx.try_recv() {
                Ok(m) => burst.push(m),
                Err(_) => break,
            }
        }
        match ingest.process(burst).await {
            Ok(r) => {
                receipts.send(r.receipts);
                resync.check(r.held);
            }
            Err(e) => tracing::error!(error = %e, "ingest: a burst could not be stored"),
        }
    }
}

/// What one burst did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngestReport {
    /// Events newly stored.
    pub stored: u64,
    /// Events already stored before.
    pub duplicate: u64,
    /// Payloads refused.
    pub rejected: u64,
    /// The events of every accepted batch, per device, to receipt now that they are stored.
    pub receipts: HashMap<DeviceId, Vec<uuid::Uuid>>,
    /// The manifest version each device that sent a heartbeat holds (`workers::resync`).
    pub held: HashMap<String, Option<u64>>,
}

struct KeyEntry {
    /// `None`: no such device.
    device: Option<DevKey>,
    loaded: Instant,
}

/// At most one warning per second; the rest are counted and reported with the next one.
#[derive(Default)]
struct RateLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLog {
    fn warn(&mut self, topic: &str, device: Option<&str>, why: &str) {
        if self.last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            self.suppressed += 1;
            tracing::debug!(
                device = device.unwrap_or("-"),
                topic,
                reason = why,
                "ingest refused a payload"
            );
            return;
        }
        tracing::warn!(
            device = device.unwrap_or("-"),
            topic,
            reason = why,
            suppressed_since_last = self.suppressed,
            "ingest refused a payload"
        );
        self.last = Some(Instant::now());
        self.suppressed = 0;
    }
}

/// The ingest pipeline: decode, check and store bursts (public so the benchmark can feed it
/// directly, without MQTT).
pub struct Ingest {
    store: Store,
    metrics: Arc<Metrics>,
    allow_unsigned: bool,
    keys: HashMap<String, KeyEntry>,
    log: RateLog,
}

impl Ingest {
    /// A pipeline writing to `store`, counting in `metrics`; `allow_unsigned` accepts reports of
    /// devices that have no key (the `allow_unsigned_devices` setting).
    pub fn new(store: Store, metrics: Arc<Metrics>, allow_unsigned: bool) -> Ingest {
        Ingest {
            store,
            metrics,
            allow_unsigned,
            keys: HashMap::new(),
            log: RateLog::default(),
        }
    }

    async fn load_keys(&mut self, msgs: &[Incoming]) -> Result<()> {
        let missing: Vec<String> = inbound::devices_of(msgs)
            .into_iter()
            .filter(|d| self.keys.get(d).is_none_or(|e| e.loaded.elapsed() > KEY_TTL))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let found = crate::store::ingest::public_keys(&self.store, &missing).await?;
        let now = Instant::now();
        for id in missing {
            let device = found.get(&id).map(|pk| {
                let (key, broken) = inbound::key_from_stored(pk.as_deref());
                if let Some(e) = broken {
                    tracing::warn!(device = %id, error = %e, "device public key unreadable; its reports are refused");
                }
                key
            });
            self.keys.insert(id, KeyEntry { device, loaded: now });
        }
        if self.keys.len() > 200_000 {
            self.keys.retain(|_, e| e.loaded.elapsed() < KEY_TTL);
        }
        Ok(())
    }

    /// Decode, check and store one burst of messages in one transaction.
    pub async fn process(&mut self, msgs: Vec<Incoming>) -> Result<IngestReport> {
        self.load_keys(&msgs).await?;
        let keys = &self.keys;
        let decoded = inbound::decode(
            msgs,
            |d| keys.get(d).and_then(|e| e.device.as_ref()),
            self.allow_unsigned,
        );
        for r in &decoded.refused {
            Metrics::inc(&self.metrics.payloads_rejected);
            if r.bad_signature {
                Metrics::inc(&self.metrics.reports_bad_signature);
            }
            if r.unkeyed {
                Metrics::inc(&self.metrics.reports_unkeyed);
            }
            self.log.warn(&r.topic, r.device.as_deref(), &r.reason);
        }
        let mut receipts = decoded.receipts;
        let mut rejected = decoded.refused.len() as u64;
        let mut total = decoded.burst.event_count() as u64;
        let stored = match crate::store::ingest::write(&self.store, &decoded.burst, now_ms()).await {
            Ok(n) => n,
            // The database refused the burst: store it device by device, so that whatever one
            // device sent costs only that device its rows (and its receipt: it sends again).
            Err(e) => {
                tracing::warn!(error = %e, "ingest: a burst was refused; storing it device by device");
                let mut stored = 0;
                for (device, part) in decoded.burst.by_device() {
                    match crate::store::ingest::write(&self.store, &part, now_ms()).await {
                        Ok(n) => stored += n,
                        Err(e) => {
                            tracing::warn!(%device, error = %e, "ingest: refused what this device sent");
                            Metrics::inc(&self.metrics.payloads_rejected);
                            rejected += 1;
                            total -= part.event_count() as u64;
                            if let Ok(d) = DeviceId::parse(device) {
                                receipts.remove(&d);
                            }
                        }
                    }
                }
                stored
            }
        };
        let held = decoded
            .burst
            .telemetry
            .iter()
            .map(|(d, h)| (d.clone(), h.telemetry.manifest_version))
            .collect();
        let report = IngestReport {
            held,
            stored,
            duplicate: total.saturating_sub(stored) + decoded.in_burst_duplicates,
            rejected,
            receipts,
        };
        self.metrics
            .events_stored
            .fetch_add(report.stored, Ordering::Relaxed);
        self.metrics
            .events_duplicate
            .fetch_add(report.duplicate, Ordering::Relaxed);
        Ok(report)
    }
}
