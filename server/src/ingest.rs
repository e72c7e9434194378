//! Ingest of everything devices send: retained presence (`state`), heartbeats (`telemetry`) and
//! signed event batches (`events`: proof of play, acks, rejections, media errors).
//!
//! Messages are taken from the link in bursts (up to [`BURST`] at a time) and written in one
//! transaction per burst: events with multi-row `INSERT … ON CONFLICT (event_id) DO NOTHING`, so
//! an event uuid is stored once however often it is sent. A device that has a `public_key` must
//! sign its batches with it; unsigned or badly signed batches are refused and counted. Malformed
//! payloads (bad JSON, wrong shape, unknown device, topic mismatch) are counted and logged at most
//! once a second; nothing a device sends stops ingest.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ed25519_dalek::VerifyingKey;
use nguon_protocol::topic::Topic;
use nguon_protocol::{DeviceState, EventBatch, EventBody, Signed, Telemetry, verifying_key_from_b64};
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::domain::presence::{Presence, RECONCILE_AFTER};
use crate::metrics::Metrics;
use crate::mqtt::link::{Incoming, LinkEvents};
use crate::store::history;
use crate::store::{now_ms, push_values};
use crate::{AppState, Result};

/// Most messages handled in one transaction.
pub const BURST: usize = 4_000;
/// How long a device's key (or its absence) is trusted before it is read again.
const KEY_TTL: Duration = Duration::from_secs(30);

/// Consume incoming MQTT traffic until cancelled.
pub async fn run(state: AppState, mut events: LinkEvents, cancel: CancellationToken) -> Result<()> {
    let store = state.store.clone();
    let started = now_ms();
    let mut ingest = Ingest::new(state);
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
                if let Err(e) = history::close_unconfirmed(&store, started).await {
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
        if let Err(e) = ingest.process(burst).await {
            tracing::error!(error = %e, "ingest: a burst could not be stored");
        }
    }
}

/// What one burst did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IngestReport {
    /// Events newly stored.
    pub stored: u64,
    /// Events already stored before.
    pub duplicate: u64,
    /// Payloads refused.
    pub rejected: u64,
}

#[derive(Clone)]
enum DevKey {
    /// The device has no key: reports may be unsigned.
    None,
    /// Reports must verify against this key.
    Key(VerifyingKey),
    /// A key is registered but unreadable: every report is refused.
    Broken,
}

struct KeyEntry {
    /// `None`: no such device.
    device: Option<DevKey>,
    loaded: Instant,
}

/// At most one warning per second; the rest are counted and reported with the next one.
struct RateLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLog {
    fn warn(&mut self, topic: &str, why: &str) {
        if self.last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(
            topic,
            reason = why,
            suppressed_since_last = self.suppressed,
            "ingest refused a payload"
        );
        self.last = Some(Instant::now());
        self.suppressed = 0;
    }
}

struct Play {
    id: String,
    device: String,
    p: nguon_protocol::ProofOfPlay,
}

struct DevEvent {
    id: String,
    device: String,
    kind: &'static str,
    message_id: Option<String>,
    body: String,
    at: i64,
}

/// The ingest pipeline (public so the benchmark can feed it directly).
pub struct Ingest {
    state: AppState,
    keys: HashMap<String, KeyEntry>,
    log: RateLog,
}

fn ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

impl Ingest {
    /// A pipeline writing to `state.store`.
    pub fn new(state: AppState) -> Ingest {
        Ingest {
            state,
            keys: HashMap::new(),
            log: RateLog {
                last: None,
                suppressed: 0,
            },
        }
    }

    fn reject(&mut self, topic: &str, why: &str, report: &mut IngestReport) {
        Metrics::inc(&self.state.metrics.payloads_rejected);
        report.rejected += 1;
        self.log.warn(topic, why);
    }

    async fn load_keys(&mut self, ids: &HashSet<String>) -> Result<()> {
        let missing: Vec<String> = ids
            .iter()
            .filter(|d| self.keys.get(*d).is_none_or(|e| e.loaded.elapsed() > KEY_TTL))
            .cloned()
            .collect();
        for chunk in missing.chunks(500) {
            let sql = format!(
                "SELECT id, public_key FROM devices WHERE id IN ({})",
                (1..=chunk.len())
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for d in chunk {
                q = q.bind(d.clone());
            }
            let now = Instant::now();
            for d in chunk {
                self.keys.insert(
                    d.clone(),
                    KeyEntry {
                        device: None,
                        loaded: now,
                    },
                );
            }
            for r in q.fetch_all(&self.state.store.pool).await? {
                let id: String = r.try_get("id")?;
                let pk: Option<String> = r.try_get("public_key")?;
                let key = match pk.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                    None => DevKey::None,
                    Some(b64) => match verifying_key_from_b64(b64) {
                        Ok(k) => DevKey::Key(k),
                        Err(e) => {
                            tracing::warn!(device = %id, error = %e, "device public key unreadable; its reports are refused");
                            DevKey::Broken
                        }
                    },
                };
                self.keys.insert(
                    id,
                    KeyEntry {
                        device: Some(key),
                        loaded: now,
                    },
                );
            }
        }
        if self.keys.len() > 200_000 {
            self.keys.retain(|_, e| e.loaded.elapsed() < KEY_TTL);
        }
        Ok(())
    }

    /// Parse, check and store one burst of messages in one transaction.
    pub async fn process(&mut self, msgs: Vec<Incoming>) -> Result<IngestReport> {
        let mut report = IngestReport::default();
        let parsed: Vec<(Topic, Incoming)> = msgs
            .into_iter()
            .filter_map(|m| match Topic::parse(&m.topic) {
                Some(t @ (Topic::State(_) | Topic::Telemetry(_) | Topic::Events(_))) => Some((t, m)),
                _ => {
                    Metrics::inc(&self.state.metrics.payloads_rejected);
                    self.log.warn(&m.topic, "not a device → server topic");
                    None
                }
            })
            .collect();
        let ids: HashSet<String> = parsed
            .iter()
            .map(|(t, _)| match t {
                Topic::State(d) | Topic::Telemetry(d) | Topic::Events(d) => d.as_str().to_string(),
                _ => String::new(),
            })
            .collect();
        self.load_keys(&ids).await?;
        let now = now_ms();
        let mut states: Vec<Presence> = Vec::new();
        let mut telemetry: HashMap<String, (Telemetry, String)> = HashMap::new();
        let mut plays: Vec<Play> = Vec::new();
        let mut dev_events: Vec<DevEvent> = Vec::new();
        let mut seen: HashSet<uuid::Uuid> = HashSet::new();
        // Every event of every accepted batch, per device: receipted once the burst is committed.
        let mut receipts: HashMap<nguon_protocol::DeviceId, Vec<uuid::Uuid>> = HashMap::new();
        let mut in_batch_dupes = 0u64;
        for (topic, m) in parsed {
            let (Topic::State(dev) | Topic::Telemetry(dev) | Topic::Events(dev)) = &topic else {
                continue;
            };
            let device = dev.as_str().to_string();
            let key = match self.keys.get(&device).and_then(|e| e.device.clone()) {
                Some(k) => k,
                None => {
                    self.reject(&m.topic, "unknown device", &mut report);
                    continue;
                }
            };
            match topic {
                Topic::State(_) => {
                    if m.payload.is_empty() {
                        continue; // a cleared retained message
                    }
                    match serde_json::from_slice::<DeviceState>(&m.payload) {
                        Ok(s) if s.device == *dev => states.push(Presence {
                            device,
                            online: s.online,
                            session: s.session.min(i64::MAX as u64) as i64,
                            at: ms(s.at),
                            retained: m.retain,
                        }),
                        Ok(_) => self.reject(&m.topic, "state names another device", &mut report),
                        Err(_) => self.reject(&m.topic, "state is not a DeviceState", &mut report),
                    }
                }
                Topic::Telemetry(_) => match serde_json::from_slice::<Telemetry>(&m.payload) {
                    Ok(t) if t.device == *dev => {
                        let raw = String::from_utf8_lossy(&m.payload).into_owned();
                        telemetry.insert(device, (t, raw));
                    }
                    Ok(_) => self.reject(&m.topic, "telemetry names another device", &mut report),
                    Err(_) => self.reject(&m.topic, "telemetry is not a Telemetry", &mut report),
                },
                Topic::Events(_) => {
                    let env = match Signed::from_bytes(&m.payload) {
                        Ok(e) => e,
                        Err(_) => {
                            self.reject(&m.topic, "events payload is not a signed envelope", &mut report);
                            continue;
                        }
                    };
                    let verdict = match &key {
                        DevKey::None => Ok(()),
                        DevKey::Key(k) => env.verify(k).map_err(|e| e.to_string()),
                        DevKey::Broken => Err("the registered key is unreadable".to_string()),
                    };
                    if let Err(e) = verdict {
                        self.state
                            .metrics
                            .reports_bad_signature
                            .fetch_add(1, Ordering::Relaxed);
                        let why = format!("report refused: {e} (device has a key)");
                        self.reject(&m.topic, &why, &mut report);
                        continue;
                    }
                    let batch: EventBatch = match env.parse_payload() {
                        Ok(b) => b,
                        Err(_) => {
                            self.reject(&m.topic, "events payload is not an EventBatch", &mut report);
                            continue;
                        }
                    };
                    if batch.device != *dev {
                        self.reject(&m.topic, "batch names another device than its topic", &mut report);
                        continue;
                    }
                    receipts
                        .entry(dev.clone())
                        .or_default()
                        .extend(batch.events.iter().map(|e| e.id));
                    for ev in batch.events {
                        if !seen.insert(ev.id) {
                            in_batch_dupes += 1;
                            continue;
                        }
                        let id = ev.id.to_string();
                        match ev.body {
                            EventBody::Play(p) => plays.push(Play {
                                id,
                                device: device.clone(),
                                p,
                            }),
                            body => {
                                let (kind, message_id) = match &body {
                                    EventBody::Ack { message_id, .. } => {
                                        ("ack", Some(message_id.to_string()))
                                    }
                                    EventBody::Rejected { message_id, .. } => {
                                        ("rejected", message_id.map(|u| u.to_string()))
                                    }
                                    EventBody::MediaError { .. } => ("media_error", None),
                                    EventBody::Play(_) => ("play", None),
                                };
                                dev_events.push(DevEvent {
                                    id,
                                    device: device.clone(),
                                    kind,
                                    message_id,
                                    body: serde_json::to_string(&body).unwrap_or_default(),
                                    at: ms(ev.at),
                                });
                            }
                        }
                    }
                }
                _ => {}
            }
        }

        let mut tx = self.state.store.begin_write().await?;
        // Before device_status: its `last_seen` dates the ends the server did not see happen.
        history::record(&mut tx, &states, now).await?;
        for Presence {
            device,
            online,
            session,
            at,
            ..
        } in &states
        {
            sqlx::query(
                "INSERT INTO device_status (device_id, online, session, state_at, last_seen) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (device_id) DO UPDATE SET online = excluded.online, session = excluded.session, \
                 state_at = excluded.state_at, last_seen = COALESCE(excluded.last_seen, device_status.last_seen) \
                 WHERE device_status.session <= excluded.session",
            )
            .bind(device.clone())
            .bind(*online as i64)
            .bind(*session)
            .bind(*at)
            .bind(if *online { Some(now) } else { None })
            .execute(&mut *tx)
            .await?;
        }
        for (device, (t, raw)) in &telemetry {
            let now_playing = t.now_playing.as_ref().and_then(|n| serde_json::to_string(n).ok());
            sqlx::query(
                "INSERT INTO device_status (device_id, last_seen, last_heartbeat, manifest_version, now_playing, telemetry) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device_id) DO UPDATE SET last_seen = excluded.last_seen, \
                 last_heartbeat = excluded.last_heartbeat, manifest_version = excluded.manifest_version, \
                 now_playing = excluded.now_playing, telemetry = excluded.telemetry",
            )
            .bind(device.clone())
            .bind(now)
            .bind(now)
            .bind(t.manifest_version.map(|v| v.min(i64::MAX as u64) as i64))
            .bind(now_playing)
            .bind(raw.clone())
            .execute(&mut *tx)
            .await?;
        }
        let mut stored = 0u64;
        for chunk in plays.chunks(1000) {
            let mut sql = String::from(
                "INSERT INTO plays (event_id, device_id, item_id, schedule_id, occurrence_at, sha256, priority, \
                 started_at, ended_at, outcome, reason, received_at) VALUES ",
            );
            push_values(&mut sql, chunk.len(), 12, self.state.store.backend);
            sql.push_str(" ON CONFLICT (event_id) DO NOTHING");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for p in chunk {
                q = q
                    .bind(p.id.clone())
                    .bind(p.device.clone())
                    .bind(p.p.item_id.clone())
                    .bind(p.p.schedule_id.clone())
                    .bind(ms(p.p.occurrence_at))
                    .bind(p.p.sha256.clone())
                    .bind(p.p.priority.as_str())
                    .bind(p.p.started_at.map(ms))
                    .bind(p.p.ended_at.map(ms))
                    .bind(p.p.outcome.as_str())
                    .bind(p.p.reason.clone())
                    .bind(now);
            }
            stored += q.execute(&mut *tx).await?.rows_affected();
        }
        for chunk in dev_events.chunks(2000) {
            let mut sql = String::from(
                "INSERT INTO device_events (event_id, device_id, kind, message_id, body, at, received_at) VALUES ",
            );
            push_values(&mut sql, chunk.len(), 7, self.state.store.backend);
            sql.push_str(" ON CONFLICT (event_id) DO NOTHING");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for e in chunk {
                q = q
                    .bind(e.id.clone())
                    .bind(e.device.clone())
                    .bind(e.kind)
                    .bind(e.message_id.clone())
                    .bind(e.body.clone())
                    .bind(e.at)
                    .bind(now);
            }
            stored += q.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        crate::report::send_receipts(&self.state, receipts);
        let total = (plays.len() + dev_events.len()) as u64;
        report.stored = stored;
        report.duplicate = total.saturating_sub(stored) + in_batch_dupes;
        self.state
            .metrics
            .events_stored
            .fetch_add(report.stored, Ordering::Relaxed);
        self.state
            .metrics
            .events_duplicate
            .fetch_add(report.duplicate, Ordering::Relaxed);
        Ok(report)
    }
}
