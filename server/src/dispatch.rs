//! The dispatcher: keeps every device's signed desired manifest published, retained, on
//! `d/{id}/desired`, and runs the background tasks (dispatcher, ingest).
//!
//! Changes reach it through an outbox: API handlers insert a `dispatch_outbox` row in the same
//! transaction as the change (`store::outbox::insert`) and then call `Wake::dispatch`. The
//! dispatcher wakes on that signal or on a 5 s tick, waits `dispatch_debounce_ms`, merges every
//! pending change into one device set (so a province-wide change publishes each device once),
//! recomputes those devices in memory (schedules, targets, the area tree and devices are loaded
//! once per batch, occurrences evaluated once per schedule), records the manifests whose content
//! changed and deletes the outbox rows in one transaction, then publishes. At start it
//! republishes every device's manifest (an embedded broker forgets retained messages) and so also
//! covers outbox rows left by a crash. Every hour it recomputes everything, so the look-ahead
//! window rolls forward. See `docs/scheduling.md` for versions and sequence numbers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use nguon_protocol::{
    Audience, DeviceId, DeviceSettings, Manifest, ManifestItem, MediaRef, ServerBody, topic,
};
use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::domain::area::AreaTree;
pub use crate::domain::change::Change;
use crate::domain::schedule::{Schedule, Targets};
use crate::mqtt::broker::{Broker, Credentials};
use crate::mqtt::link::{Link, LinkEvents};
use crate::store::{now_ms, outbox};
use crate::{AppState, Error, Result, Store};

/// Raise the sequencer's floor to the largest sequence stored (manifests, commands), so sequences
/// stay strictly increasing across restarts even if the clock stepped back.
async fn raise_seq_floor(state: &AppState) -> Result<()> {
    for sql in [
        "SELECT MAX(seq) AS m FROM manifests",
        "SELECT MAX(seq) AS m FROM commands",
    ] {
        let row = sqlx::query(sql).fetch_one(&state.store.pool).await?;
        if let Some(m) = row.try_get::<Option<i64>, _>("m")? {
            state.signer.sequencer().raise_floor(m.max(0) as u64);
        }
    }
    Ok(())
}

/// A device as the dispatcher sees it.
#[derive(Debug, Clone)]
pub struct FleetDevice {
    /// Id.
    pub id: String,
    /// Area code.
    pub area: String,
    /// Whether enabled.
    pub enabled: bool,
    /// Default volume pushed in the manifest's settings.
    pub volume: Option<u8>,
}

/// Devices and the area tree, loaded in two queries and walked in memory.
#[derive(Debug, Default)]
pub struct Fleet {
    /// Every device.
    pub devices: Vec<FleetDevice>,
    /// The area tree.
    pub tree: AreaTree,
    by_area: HashMap<String, Vec<usize>>,
}

impl Fleet {
    /// Load devices and areas.
    pub async fn load(store: &Store) -> Result<Fleet> {
        let mut f = Fleet {
            tree: crate::store::areas::tree(store).await?,
            ..Fleet::default()
        };
        for r in sqlx::query("SELECT id, area, enabled, volume FROM devices ORDER BY id")
            .fetch_all(&store.pool)
            .await?
        {
            let d = FleetDevice {
                id: r.try_get("id")?,
                area: r.try_get("area")?,
                enabled: r.try_get::<i64, _>("enabled")? != 0,
                volume: r
                    .try_get::<Option<i64>, _>("volume")?
                    .map(|v| v.clamp(0, 100) as u8),
            };
            f.by_area.entry(d.area.clone()).or_default().push(f.devices.len());
            f.devices.push(d);
        }
        Ok(f)
    }

    /// Device ids covered by a target set.
    pub fn devices_for(&self, t: &Targets) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = t.devices.iter().cloned().collect();
        for a in self.tree.subtree(&t.areas) {
            if let Some(ix) = self.by_area.get(&a) {
                out.extend(ix.iter().map(|&i| self.devices[i].id.clone()));
            }
        }
        out
    }
}

/// A computed manifest before versioning: its content and the hash of that content.
struct Content {
    items: Vec<ManifestItem>,
    media: Vec<MediaRef>,
    settings: DeviceSettings,
    hash: String,
}

/// The occurrences of every enabled schedule, evaluated once, assigned to devices in memory.
fn compute(
    fleet: &Fleet,
    schedules: &[Schedule],
    media: &HashMap<String, crate::domain::media::MediaInfo>,
    public_url: &str,
    devices: &BTreeSet<String>,
    now: DateTime<Utc>,
    lookahead: chrono::Duration,
) -> BTreeMap<String, Content> {
    // Per schedule: its items in the window and its media refs.
    let mut prepared: Vec<(Vec<ManifestItem>, Vec<MediaRef>)> = Vec::with_capacity(schedules.len());
    let mut by_area: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_device: HashMap<&str, Vec<usize>> = HashMap::new();
    for s in schedules {
        let refs: Option<Vec<MediaRef>> = s
            .media
            .iter()
            .map(|sha| {
                media.get(sha).filter(|m| m.approved).map(|m| MediaRef {
                    sha256: sha.clone(),
                    size: m.size.max(0) as u64,
                    url: format!("{public_url}/media/{sha}"),
                    duration_ms: m.duration_ms.max(0) as u64,
                })
            })
            .collect();
        let Some(refs) = refs else {
            tracing::warn!(schedule = %s.id, "schedule skipped: some of its media is missing or no longer approved");
            prepared.push((Vec::new(), Vec::new()));
            continue;
        };
        let dur: i64 = refs.iter().map(|m| m.duration_ms as i64).sum::<i64>() * s.repeat as i64;
        let items = s
            .occurrences(now - chrono::Duration::milliseconds(dur), now + lookahead)
            .into_iter()
            .map(|t| ManifestItem {
                id: format!("{}@{}", s.id, t.timestamp()),
                schedule_id: s.id.clone(),
                title: s.title.clone(),
                starts_at: t,
                priority: s.priority,
                volume: s.volume,
                media: s.media.clone(),
                repeat: s.repeat,
                on_preempt: s.on_preempt,
            })
            .collect();
        let i = prepared.len();
        prepared.push((items, refs));
        for a in &s.targets.areas {
            by_area.entry(a.as_str()).or_default().push(i);
        }
        for d in &s.targets.devices {
            by_device.entry(d.as_str()).or_default().push(i);
        }
    }
    let mut out = BTreeMap::new();
    for d in fleet
        .devices
        .iter()
        .filter(|d| d.enabled && devices.contains(&d.id))
    {
        let mut ix: Vec<usize> = by_device.get(d.id.as_str()).cloned().unwrap_or_default();
        for a in fleet.tree.chain(&d.area) {
            if let Some(v) = by_area.get(a.as_str()) {
                ix.extend(v);
            }
        }
        ix.sort_unstable();
        ix.dedup();
        let mut items: Vec<ManifestItem> = Vec::new();
        let mut refs: BTreeMap<String, MediaRef> = BTreeMap::new();
        for i in ix {
            let (it, rf) = &prepared[i];
            if it.is_empty() {
                continue;
            }
            items.extend(it.iter().cloned());
            for r in rf {
                refs.entry(r.sha256.clone()).or_insert_with(|| r.clone());
            }
        }
        items.sort_by(|a, b| a.starts_at.cmp(&b.starts_at).then_with(|| a.id.cmp(&b.id)));
        let media: Vec<MediaRef> = refs.into_values().collect();
        let settings = DeviceSettings {
            volume: d.volume,
            ..DeviceSettings::default()
        };
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(&(&items, &media, &settings)).unwrap_or_default());
        out.insert(
            d.id.clone(),
            Content {
                items,
                media,
                settings,
                hash: hex::encode(h.finalize()),
            },
        );
    }
    out
}

struct Stored {
    version: i64,
    hash: String,
    published_at: i64,
}

/// Outcome of one dispatch batch.
#[derive(Debug, Default, Clone, Copy)]
pub struct BatchReport {
    /// Devices recomputed.
    pub computed: usize,
    /// Manifests published.
    pub published: usize,
}

/// Recompute the devices `change` covers and publish what changed. `force` republishes unchanged
/// manifests too (at start). Outbox rows `outbox_ids` are deleted in the same transaction as the
/// manifests are recorded.
pub async fn run_batch(
    state: &AppState,
    change: &Change,
    force: bool,
    outbox_ids: &[String],
) -> Result<BatchReport> {
    let store = &state.store;
    let fleet = Fleet::load(store).await?;
    let targets: BTreeSet<String> = match change {
        Change::All => fleet.devices.iter().map(|d| d.id.clone()).collect(),
        Change::Devices(ids) => ids.iter().cloned().collect(),
        Change::Areas(a) => fleet.devices_for(&Targets {
            areas: a.clone(),
            devices: Vec::new(),
        }),
        Change::Targets { areas, devices } => fleet.devices_for(&Targets {
            areas: areas.clone(),
            devices: devices.clone(),
        }),
    };
    let schedules = crate::store::schedules::load_all(store, true).await?;
    let media = crate::store::media::all_info(store).await?;
    let mut stored: HashMap<String, Stored> = HashMap::new();
    for r in sqlx::query("SELECT device_id, version, content_hash, published_at FROM manifests")
        .fetch_all(&store.pool)
        .await?
    {
        stored.insert(
            r.try_get("device_id")?,
            Stored {
                version: r.try_get("version")?,
                hash: r.try_get("content_hash")?,
                published_at: r.try_get("published_at")?,
            },
        );
    }
    let now = Utc::now();
    let lookahead = chrono::Duration::hours(state.settings.lookahead_hours as i64);
    let public_url = state.public_url.clone();
    let signer = state.signer.clone();
    let refresh_before = now_ms() - 24 * 3600 * 1000;
    let ttl = chrono::Duration::hours(state.settings.lookahead_hours as i64 + 24);
    // CPU work (evaluation, JSON, signatures) off the async workers.
    let (computed, rows) = tokio::task::spawn_blocking(move || {
        let contents = compute(&fleet, &schedules, &media, &public_url, &targets, now, lookahead);
        let computed = contents.len();
        let mut rows: Vec<(String, i64, String, String, i64)> = Vec::new();
        for (device, c) in contents {
            let (version, due) = match stored.get(&device) {
                Some(s) if s.hash == c.hash => (s.version, force || s.published_at < refresh_before),
                Some(s) => (s.version + 1, true),
                None => (1, true),
            };
            if !due {
                continue;
            }
            let Ok(did) = DeviceId::parse(device.clone()) else {
                continue;
            };
            let manifest = Manifest {
                version: version as u64,
                generated_at: now,
                window_start: now,
                window_end: now + lookahead,
                items: c.items,
                media: c.media,
                settings: c.settings,
            };
            let msg = signer.numbered(Audience::Device(did), ttl, ServerBody::Desired(manifest));
            let body = String::from_utf8(signer.sign_message(&msg)).unwrap_or_default();
            rows.push((device, version, c.hash, body, msg.seq as i64));
        }
        (computed, rows)
    })
    .await
    .map_err(Error::context("dispatch compute"))?;

    let published_at = now_ms();
    let mut tx = store.begin_write().await?;
    for chunk in rows.chunks(500) {
        let mut sql = String::from(
            "INSERT INTO manifests (device_id, version, content_hash, body, seq, published_at) VALUES ",
        );
        crate::store::push_values(&mut sql, chunk.len(), 6, store.backend);
        sql.push_str(
            " ON CONFLICT (device_id) DO UPDATE SET version = excluded.version, content_hash = excluded.content_hash, \
             body = excluded.body, seq = excluded.seq, published_at = excluded.published_at",
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (d, v, h, b, s) in chunk {
            q = q
                .bind(d.clone())
                .bind(*v)
                .bind(h.clone())
                .bind(b.clone())
                .bind(*s)
                .bind(published_at);
        }
        q.execute(&mut *tx).await?;
    }
    outbox::delete(&mut tx, outbox_ids).await?;
    tx.commit().await?;
    let published = rows.len();
    for (device, _, _, body, _) in rows {
        let Ok(did) = DeviceId::parse(device) else {
            continue;
        };
        state
            .link
            .publish(&topic::desired(&did), body.into_bytes(), true)
            .await?;
        state.metrics.manifests_published.fetch_add(1, Ordering::Relaxed);
    }
    Ok(BatchReport { computed, published })
}

/// How often the whole fleet is recomputed so the window rolls forward.
const ROLL_EVERY: Duration = Duration::from_secs(3600);
const TICK: Duration = Duration::from_secs(5);

/// Most outbox rows merged into one batch.
const OUTBOX_BATCH: i64 = 10_000;

async fn dispatcher(
    state: AppState,
    credentials: Option<Credentials>,
    cancel: CancellationToken,
) -> Result<()> {
    raise_seq_floor(&state).await?;
    let debounce = Duration::from_millis(state.settings.dispatch_debounce_ms);
    let mut last_roll: Option<Instant> = None;
    let mut last_cred = Instant::now();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failures = 0u32;
    loop {
        let woke = Instant::now();
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = state.wake.dispatch_woken() => {
                // Let the writer finish its burst of changes.
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(debounce) => {}
                }
            }
            _ = tick.tick() => {}
        }
        let roll = last_roll.is_none_or(|t| t.elapsed() >= ROLL_EVERY);
        let rows = match outbox::pending(&state.store, OUTBOX_BATCH).await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the dispatch outbox");
                continue;
            }
        };
        let reload = roll
            || last_cred.elapsed() >= Duration::from_secs(60)
            || rows.iter().any(|r| r.change.touches_devices());
        if let (true, Some(c)) = (reload, &credentials) {
            if let Err(e) = c.reload(&state.store).await {
                tracing::warn!(error = %e, "credential cache reload failed");
            }
            last_cred = Instant::now();
        }
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let oldest = rows.iter().map(|r| r.created_at).min();
        let mut changes: Vec<Change> = rows.into_iter().map(|r| r.change).collect();
        if roll {
            changes.push(Change::All);
        }
        let Some(change) = Change::merge(changes) else {
            continue;
        };
        let force = last_roll.is_none();
        let started = Instant::now();
        match run_batch(&state, &change, force, &ids).await {
            Ok(r) => {
                failures = 0;
                if roll {
                    last_roll = Some(Instant::now());
                }
                let lag = oldest.map_or(woke.elapsed().as_millis() as i64, |o| now_ms() - o);
                state.metrics.dispatch_lag_ms.store(lag, Ordering::Relaxed);
                if r.published > 0 || !ids.is_empty() {
                    tracing::info!(
                        computed = r.computed,
                        published = r.published,
                        outbox_rows = ids.len(),
                        took_ms = started.elapsed().as_millis() as u64,
                        "dispatched manifests"
                    );
                }
            }
            Err(e) => {
                failures += 1;
                tracing::error!(error = %e, failures, "dispatch batch failed; the outbox keeps the change, retrying");
                if failures > 3 {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
    }
}

/// Background tasks: the dispatcher and ingest.
pub struct Background {
    tasks: JoinSet<(&'static str, Result<()>)>,
    cancel: CancellationToken,
    link: Link,
}

impl Background {
    /// Start them.
    pub async fn start(state: AppState, broker: Broker, events: LinkEvents) -> Result<Background> {
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let credentials = broker.credentials().cloned();
        let (s, c) = (state.clone(), cancel.clone());
        tasks.spawn(async move { ("dispatcher", dispatcher(s, credentials, c).await) });
        let (s, c) = (state.clone(), cancel.clone());
        let ingest = crate::workers::ingest::Ingest::new(s.store.clone(), s.metrics.clone());
        let receipts = crate::workers::ingest::Receipts {
            link: s.link.clone(),
            signer: s.signer.clone(),
        };
        tasks.spawn(async move {
            let r = crate::workers::ingest::run(ingest, receipts, events, c).await;
            ("ingest", r)
        });
        let sender = crate::workers::commands::Sender {
            store: state.store.clone(),
            metrics: state.metrics.clone(),
            link: state.link.clone(),
            signer: state.signer.clone(),
            wake: state.wake.clone(),
        };
        let c = cancel.clone();
        tasks.spawn(async move { ("command sender", sender.run(c).await) });
        Ok(Background {
            tasks,
            cancel,
            link: state.link.clone(),
        })
    }

    /// Wait until one ends; the log says which and how.
    pub async fn wait(&mut self) -> Result<()> {
        match self.tasks.join_next().await {
            Some(Ok((name, r))) => {
                tracing::warn!(task = name, result = ?r, "background task ended");
                r
            }
            Some(Err(e)) => Err(Error::internal_from("background task panicked", e)),
            None => std::future::pending().await,
        }
    }

    /// Stop all and disconnect the MQTT link.
    pub async fn stop(&mut self) {
        self.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(r) = self.tasks.join_next().await {
                if let Ok((name, r)) = r {
                    tracing::info!(task = name, result = ?r, "background task stopped");
                }
            }
        })
        .await;
        self.link.disconnect().await;
    }
}
