//! The dispatcher: keeps every device's signed desired manifest published, retained, on
//! `d/{id}/desired`.
//!
//! Changes reach it through the outbox: a use case inserts a `dispatch_outbox` row in the same
//! transaction as the change (`store::outbox::insert`) and then calls `Wake::dispatch`. The
//! dispatcher wakes on that signal or on a 5 s tick, waits `dispatch_debounce_ms`, merges every
//! pending change into one device set (so a province-wide change publishes each device once) and
//! runs one batch ([`run_batch`]):
//!
//! 1. recompute those devices in memory (`domain::manifest`: schedules, targets, the area tree and
//!    devices loaded once per batch, occurrences evaluated once per schedule), shorten the window
//!    of a device whose signed manifest would exceed `max_manifest_bytes` (`manifest::fit`: it
//!    ends before the first occurrence that does not fit; logged and counted in
//!    `nguon_manifests_shortened_total`), and sign the manifests whose content changed (or that
//!    are due again);
//! 2. in steps of `ha.dispatch_chunk` manifests (default 2,000; [`publish_step`]): a transaction
//!    records the step's manifests unconfirmed (`store::manifests::record`) under the lease's
//!    fence, each is published with `Link::publish_confirmed` (the broker's QoS 1 ack; the
//!    lease checked again before each), and a second transaction stamps the confirmed ones;
//! 3. once every step is confirmed, a last transaction deletes the batch's outbox rows.
//!
//! So a province-wide batch of 100,000 makes progress a step at a time and never holds the
//! database (SQLite's one write lock, the PostgreSQL lease row its fence locks) for longer than a
//! step: the lease's renewal gets in between steps. A deposed leader stops at its next step's
//! fence; the next leader recomputes, finds the steps already confirmed unchanged (not due) and
//! publishes the rest, each device's recorded-but-unconfirmed manifest under the same version.
//!
//! A batch that fails anywhere keeps its outbox rows; the dispatcher retries it after a backoff
//! (0.5 s doubling to 30 s; logged, `nguon_dispatch_failures_total`), and an unconfirmed manifest
//! is due again at the next batch even if its content did not change. At start it republishes
//! every device's manifest (an embedded broker forgets retained messages), which also covers
//! outbox rows left by a crash. Every hour it recomputes everything, so the look-ahead window
//! rolls forward. See `docs/scheduling.md` for versions and sequence numbers.
//!
//! Each batch also reads the emergency and priority play-now commands inside their validity
//! window (`store::commands::active_catch_up`) and makes them items of their target devices'
//! manifests ([`messages`]), or lists them as cancelled where a stop cancelled them. It also
//! reads the active rollouts and puts in each selected device's manifest the agent release it
//! should run, every build signed with the server key (`domain::ota::desired`, docs/ota.md), and
//! applies the communes' decisions on province content (`workers::autonomy`, docs/autonomy.md).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use nguon_protocol::{Audience, Command, DeviceId, Manifest, ServerBody, topic};
use tokio_util::sync::CancellationToken;

use crate::domain::change::Change;
use crate::domain::manifest::{self, DeviceMessages, LateWindows, Messages, Window};
use crate::domain::ota;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::mqtt::broker::Credentials;
use crate::store::commands::ActiveTarget;
use crate::store::manifests::{self, Record};
use crate::store::{now_ms, outbox};
use crate::workers::Context;

/// Outcome of one dispatch batch.
#[derive(Debug, Default, Clone, Copy)]
pub struct BatchReport {
    /// Devices recomputed.
    pub computed: usize,
    /// Manifests published and confirmed by the broker.
    pub published: usize,
}

/// Publishes waiting for their ack at once in a batch.
const IN_FLIGHT: usize = 2_000;

/// Recompute the devices `change` covers and publish what changed, step by step. `force`
/// republishes unchanged manifests too (at start). The outbox rows `outbox_ids` are deleted once
/// every manifest of the batch is confirmed by the broker; otherwise the batch fails (after the
/// steps already confirmed) and they stay.
pub async fn run_batch(
    ctx: &Context,
    change: &Change,
    force: bool,
    outbox_ids: &[String],
) -> Result<BatchReport> {
    let store = &ctx.store;
    let fleet = manifests::fleet(store).await?;
    let targets = fleet.devices_changed(change);
    let schedules = crate::store::schedules::load_all(store, true).await?;
    let media = crate::store::media::all_info(store).await?;
    let stored = manifests::stored(store).await?;
    let now = Utc::now();
    let messages = messages(crate::store::commands::active_catch_up(store, now.timestamp_millis()).await?);
    let (rollouts, builds) = crate::store::ota::active(store).await?;
    let s = &ctx.settings;
    let late = LateWindows {
        emergency: s.late_window(nguon_protocol::Priority::Emergency),
        priority: s.late_window(nguon_protocol::Priority::Priority),
        normal: s.late_window(nguon_protocol::Priority::Normal),
    };
    let lookahead = chrono::Duration::hours(ctx.settings.lookahead_hours as i64);
    // Commune autonomy: what each deciding commune's manifests lose, move or reorder.
    let plans = crate::workers::autonomy::prepare(ctx, &fleet, &schedules, &media, now, lookahead).await?;
    let public_url = ctx.public_url.clone();
    let signer = ctx.signer.clone();
    let refresh_before = now_ms() - 24 * 3600 * 1000;
    let ttl = chrono::Duration::hours(ctx.settings.lookahead_hours as i64 + 24);
    let cap = ctx.settings.max_manifest_bytes as usize;
    let relay_proxy = ctx.settings.relay.mode == crate::config::relay::RelayMode::Proxy;
    let ota_test_confirm_s = ctx.settings.ota.test_confirm_s;
    // CPU work (evaluation, JSON, signatures) off the async workers.
    let (computed, rows, shortened) = tokio::task::spawn_blocking(move || {
        let w = Window {
            now,
            lookahead,
            public_url: &public_url,
            late,
            messages: &messages,
            relay_proxy,
        };
        let mut contents = manifest::compute(&fleet, &schedules, &media, &targets, w);
        crate::domain::autonomy::apply(&fleet, &schedules, &media, &plans, w, &mut contents);
        // The agent release each device is asked to run (docs/ota.md), its builds signed here
        // with the key that signs the manifests.
        let mut agents = ota::desired(&fleet, &rollouts, &builds, &public_url, |v, a, sha| {
            signer.sign_release(v, a, sha)
        });
        // `[ota] test_confirm_s` (test installations) replaces every rollout's confirm time.
        if ota_test_confirm_s != 0 {
            for t in agents.values_mut() {
                t.confirm_s = ota_test_confirm_s;
            }
        }
        let computed = contents.len();
        let mut rows: Vec<Record> = Vec::new();
        let mut shortened = 0u64;
        for (device, c) in contents {
            // Over the cap: the window ends before the first occurrence that does not fit.
            let total = c.items.len();
            let agent = agents.remove(&device);
            let room = cap.saturating_sub(agent.as_ref().map_or(0, ota::signed_size));
            let (mut c, window_end) = manifest::fit(c, &device, now, now + lookahead, room);
            c.hash = ota::hash_with(c.hash, agent.as_ref());
            if window_end < now + lookahead {
                shortened += 1;
                tracing::warn!(
                    %device,
                    items = c.items.len(),
                    items_in_full_window = total,
                    window_end = %window_end,
                    max_manifest_bytes = cap,
                    "manifest over the cap: look-ahead window shortened"
                );
            }
            let Some(version) = manifest::next_version(stored.get(&device), &c.hash, force, refresh_before)
            else {
                continue;
            };
            let Ok(did) = DeviceId::parse(device.clone()) else {
                continue;
            };
            let m = Manifest {
                version: version as u64,
                generated_at: now,
                window_start: now,
                window_end,
                items: c.items,
                media: c.media,
                settings: c.settings,
                cancelled: c.cancelled,
                agent,
            };
            let msg = signer.numbered(Audience::Device(did), ttl, ServerBody::Desired(m));
            let body = String::from_utf8(signer.sign_message(&msg)).unwrap_or_default();
            rows.push(Record {
                device_id: device,
                version,
                hash: c.hash,
                body,
                seq: msg.seq as i64,
            });
        }
        (computed, rows, shortened)
    })
    .await
    .map_err(Error::context("dispatch compute"))?;

    ctx.metrics
        .manifests_shortened
        .fetch_add(shortened, Ordering::Relaxed);
    let total = rows.len();
    let step_len = ctx.settings.ha.dispatch_chunk.max(1) as usize;
    let mut published = 0usize;
    let mut rows = rows.into_iter();
    loop {
        let step: Vec<Record> = rows.by_ref().take(step_len).collect();
        if step.is_empty() {
            break;
        }
        let (confirmed, failed) = match publish_step(ctx, step).await {
            Ok(x) => x,
            Err(e) => (0, Some(e)),
        };
        published += confirmed;
        ctx.metrics
            .manifests_published
            .fetch_add(confirmed as u64, Ordering::Relaxed);
        if let Some(e) = failed {
            return Err(Error::internal_from(
                format!(
                    "{} of {total} manifests not confirmed by the broker ({published} confirmed, in \
                     steps of {step_len}); the outbox keeps the change",
                    total - published
                ),
                e,
            ));
        }
    }
    if !outbox_ids.is_empty() {
        let mut tx = store.begin_write().await?;
        outbox::delete(&mut tx, outbox_ids).await?;
        tx.commit().await?;
    }
    Ok(BatchReport { computed, published })
}

/// One step of a batch: record `rows` unconfirmed under the lease's fence (a deposed leader
/// stops here: docs/deployment.md, "Leader lease"), publish them, and stamp the ones the broker
/// confirmed. Returns how many were, and the first publish's error if any was not (those stay
/// due); `Err` when the step could not be recorded or stamped.
/// Each transaction is one step's: the database (and on SQLite its one write lock, which the
/// lease's renewal needs too) is never held for a whole province's batch.
async fn publish_step(ctx: &Context, rows: Vec<Record>) -> Result<(usize, Option<Error>)> {
    let store = &ctx.store;
    let mut tx = store.begin_write().await?;
    ctx.lease.fence(&mut tx).await?;
    manifests::record(&mut tx, store.backend, &rows).await?;
    tx.commit().await?;

    let results: Vec<((String, i64), Result<()>)> = futures::stream::iter(rows)
        .map(|r| async move {
            let sent = match DeviceId::parse(r.device_id.clone()) {
                // Past the lease's trusted time a newer leader may be publishing: stop.
                Ok(_) if !ctx.lease.valid() => {
                    Err(Error::internal("leader lease no longer held; not published"))
                }
                Ok(did) => {
                    ctx.link
                        .publish_confirmed(&topic::desired(&did), r.body.into_bytes(), true)
                        .await
                }
                Err(e) => Err(Error::internal(format!("device id: {e}"))),
            };
            ((r.device_id, r.seq), sent)
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let mut confirmed = Vec::with_capacity(results.len());
    let mut first_error = None;
    for (published, r) in results {
        match r {
            Ok(()) => confirmed.push(published),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if !confirmed.is_empty() {
        let mut tx = store.begin_write().await?;
        manifests::confirmed(&mut tx, &confirmed, now_ms()).await?;
        tx.commit().await?;
    }
    Ok((confirmed.len(), first_error))
}

/// A play-now's item and media.
type Play = (nguon_protocol::ManifestItem, Vec<nguon_protocol::MediaRef>);

/// The messages of each device from the active (message, device) rows: the play-now item and its
/// media where it is not cancelled, its id in `cancelled` where it is. A row whose command cannot
/// be read as a play-now is skipped (logged).
pub fn messages(rows: Vec<ActiveTarget>) -> Messages {
    let mut out = Messages::new();
    // The command being read (rows come by command) and its play-now, if readable.
    let mut parsed: Option<(String, Option<Play>)> = None;
    for r in rows {
        if parsed.as_ref().is_none_or(|(id, _)| *id != r.command_id) {
            let play = match serde_json::from_str::<Command>(&r.body) {
                Ok(Command::PlayNow { item, media }) => Some((item, media)),
                Ok(_) | Err(_) => {
                    tracing::error!(command = %r.command_id, "a catch-up command is not a readable play_now; skipped");
                    None
                }
            };
            parsed = Some((r.command_id.clone(), play));
        }
        let Some((_, Some((item, media)))) = &parsed else {
            continue;
        };
        let m: &mut DeviceMessages = out.entry(r.device_id).or_default();
        if r.cancelled {
            m.cancelled.push(item.id.clone());
        } else {
            m.items.push(item.clone());
            m.media.extend(media.iter().cloned());
        }
    }
    out
}

/// How often the whole fleet is recomputed so the window rolls forward.
const ROLL_EVERY: Duration = Duration::from_secs(3600);
const TICK: Duration = Duration::from_secs(5);
/// Wait before the first retry of a failed batch; it doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Most outbox rows merged into one batch.
const OUTBOX_BATCH: i64 = 10_000;

/// The outbox rows written at least `debounce_ms` before `now` (oldest first, as read).
fn settled(rows: Vec<outbox::Pending>, now: i64, debounce_ms: i64) -> Vec<outbox::Pending> {
    rows.into_iter()
        .filter(|r| now - r.created_at >= debounce_ms)
        .collect()
}

/// The dispatcher task: batches until `cancel`. `credentials` is the embedded broker's cache,
/// reloaded when devices change and every minute.
pub async fn run(ctx: Context, credentials: Option<Credentials>, cancel: CancellationToken) -> Result<()> {
    let debounce = Duration::from_millis(ctx.settings.dispatch_debounce_ms);
    let mut last_roll: Option<Instant> = None;
    let mut last_cred = Instant::now();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut retry: Option<Duration> = None;
    let mut failures = 0u32;
    loop {
        let woke = Instant::now();
        if let Some(wait) = retry {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
        } else {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = ctx.wake.dispatch_woken() => {
                    // Let the writer finish its burst of changes.
                    tokio::select! {
                        _ = cancel.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(debounce) => {}
                    }
                }
                _ = tick.tick() => {}
            }
        }
        if let Err(e) = crate::workers::autonomy::close_unanswered(&ctx).await {
            tracing::warn!(error = %e, "cannot close the communes' unanswered questions");
        }
        let roll = last_roll.is_none_or(|t| t.elapsed() >= ROLL_EVERY);
        let rows = match outbox::pending(&ctx.store, OUTBOX_BATCH).await {
            // A row younger than the debounce belongs to a burst still being written (its wake
            // is pending): the tick leaves it to that wake, so the debounce holds on every path.
            Ok(x) => settled(x, now_ms(), ctx.settings.dispatch_debounce_ms as i64),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the dispatch outbox");
                continue;
            }
        };
        let reload = roll
            || last_cred.elapsed() >= Duration::from_secs(60)
            || rows
                .iter()
                .any(|r| r.change.touches_devices() || matches!(r.change, Change::Areas(_)));
        if let (true, Some(c)) = (reload, &credentials) {
            if let Err(e) = c.reload(&ctx.store).await {
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
            retry = None;
            continue;
        };
        let force = last_roll.is_none();
        let started = Instant::now();
        match run_batch(&ctx, &change, force, &ids).await {
            Ok(r) => {
                failures = 0;
                retry = None;
                if roll {
                    last_roll = Some(Instant::now());
                }
                let lag = oldest.map_or(woke.elapsed().as_millis() as i64, |o| now_ms() - o);
                ctx.metrics.dispatch_lag_ms.store(lag, Ordering::Relaxed);
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
                Metrics::inc(&ctx.metrics.dispatch_failures);
                let wait = retry.map_or(RETRY_FIRST, |w| (w * 2).min(RETRY_MAX));
                retry = Some(wait);
                tracing::error!(
                    error = %e,
                    failures,
                    outbox_rows = ids.len(),
                    retry_in_ms = wait.as_millis() as u64,
                    "dispatch batch failed; the outbox keeps the change, retrying"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, created_at: i64) -> outbox::Pending {
        outbox::Pending {
            id: id.into(),
            change: Change::All,
            created_at,
        }
    }

    #[test]
    fn a_row_younger_than_the_debounce_is_left_for_its_own_wake() {
        let rows = vec![row("old", 1_000), row("edge", 9_800), row("young", 9_900)];
        let ids: Vec<String> = settled(rows, 10_000, 200).into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["old", "edge"]);
        assert!(settled(vec![row("x", 9_999)], 10_000, 600_000).is_empty());
        assert_eq!(settled(vec![row("x", 10_000)], 10_000, 0).len(), 1);
    }
}
