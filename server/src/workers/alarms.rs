//! The alarm worker (issue 12 §6): every `alarms.evaluate_every_s` it reads what is stored about
//! the devices, their latest proofs of play and the running emergencies (each emergency's
//! delivery counts from `domain::tracking`, as `GET /api/v1/commands/{id}` shows them), asks
//! `domain::alarm::conditions` which conditions hold, and in one transaction raises an alarm for
//! each condition without an open one and clears the open alarms whose condition ended. Raising
//! goes through the partial unique index (`store::alarms::raise`), so two evaluations at once
//! (two server processes on one database) still leave one open alarm per kind and subject.
//!
//! [`evaluate`] takes the time as an argument: the tests move it instead of waiting.

use std::collections::HashSet;
use std::time::Duration;

use nguon_protocol::{Command, Priority};
use tokio_util::sync::CancellationToken;

use crate::config::alarms::AlarmSettings;
use crate::domain::alarm::{self, Alarm, EmergencyFacts, Thresholds};
use crate::error::Result;
use crate::store::{self, Store, now_ms};
use crate::workers::Context;

/// What one evaluation did.
#[derive(Debug, Default, Clone)]
pub struct Evaluation {
    /// Alarms this evaluation raised.
    pub raised: Vec<Alarm>,
    /// Alarms it cleared.
    pub cleared: usize,
}

/// The thresholds of `a` with the per-area offline thresholds.
async fn thresholds(store: &Store, a: &AlarmSettings) -> Result<Thresholds> {
    Ok(Thresholds {
        offline_after_ms: (a.offline_after_s * 1000) as i64,
        area_offline_ms: store::alarms::area_offline_ms(store).await?,
        heartbeat_ms: (a.heartbeat_interval_s * 1000 * u64::from(a.heartbeats_missed)) as i64,
        delivery_pct: a.delivery_threshold_pct.into(),
        low_disk_pct: a.low_disk_pct.into(),
    })
}

/// The emergencies issued at least `delivery_after_s` before `now`, inside their window, with
/// their tracking counts at `now`.
async fn emergencies(store: &Store, a: &AlarmSettings, now: i64) -> Result<Vec<EmergencyFacts>> {
    let mut out = Vec::new();
    let issued_before = now - (a.delivery_after_s * 1000) as i64;
    for c in store::alarms::catch_up_commands(store, now, issued_before).await? {
        let emergency = matches!(
            serde_json::from_str::<Command>(&c.body),
            Ok(Command::PlayNow { item, .. }) if item.priority == Priority::Emergency
        );
        if !emergency {
            continue;
        }
        let Some((cmd, observed)) = store::tracking::load(store, &c.id).await? else {
            continue;
        };
        let area = match (c.target_kind.as_str(), observed.first()) {
            ("area", _) => c.target.clone(),
            (_, Some(o)) => o.area.clone(),
            _ => continue,
        };
        let t = crate::domain::tracking::derive(&cmd, &observed, now);
        out.push(EmergencyFacts {
            command_id: c.id,
            area,
            targets: t.targets.len() as u64,
            reached: t.reached,
        });
    }
    Ok(out)
}

/// Evaluate every condition at `now` (unix ms): raise the alarms of new conditions, clear those
/// whose condition ended.
pub async fn evaluate(store: &Store, a: &AlarmSettings, now: i64) -> Result<Evaluation> {
    let th = thresholds(store, a).await?;
    let tree = store::areas::tree(store).await?;
    let devices = store::alarms::device_facts(store).await?;
    let since = now - (a.play_lookback_h * 3_600_000) as i64;
    let decisive = store::alarms::latest_decisive_plays(store, since).await?;
    let measured = store::alarms::latest_measured_plays(store, since).await?;
    let emergencies = emergencies(store, a, now).await?;
    let mut conditions = alarm::conditions(now, &tree, &th, &devices, &decisive, &measured, &emergencies);
    // Citizens' feedback past its answer deadline (issue 15).
    let waiting = store::feedback::waiting(store).await?;
    conditions.extend(crate::domain::feedback::overdue_conditions(now, &waiting));
    // Relays whose stream failed on a device (issue 17).
    let relays = store::alarms::latest_relay_plays(store, since).await?;
    conditions.extend(alarm::relay_conditions(&relays));
    let holding: HashSet<(String, String, String)> = conditions
        .iter()
        .map(|c| {
            let (k, t, s) = c.key();
            (k.as_str().to_string(), t, s)
        })
        .collect();
    let open = store::alarms::open(store).await?;
    let open_keys: HashSet<(String, String, String)> = open
        .iter()
        .map(|o| (o.kind.clone(), o.subject_type.clone(), o.subject_id.clone()))
        .collect();
    let mut done = Evaluation::default();
    let new: Vec<_> = conditions
        .iter()
        .filter(|c| {
            let (k, t, s) = c.key();
            !open_keys.contains(&(k.as_str().to_string(), t, s))
        })
        .collect();
    let ended: Vec<_> = open
        .iter()
        .filter(|o| !holding.contains(&(o.kind.clone(), o.subject_type.clone(), o.subject_id.clone())))
        .collect();
    if new.is_empty() && ended.is_empty() {
        return Ok(done);
    }
    let mut tx = store.begin_write().await?;
    for c in new {
        if let Some(raised) = store::alarms::raise(&mut tx, c, now).await? {
            // Its notifications go out with it (the notifier sends them after the commit).
            store::notifications::enqueue(&mut tx, &raised, &tree.chain(&raised.area), now).await?;
            done.raised.push(raised);
        }
    }
    for o in ended {
        if store::alarms::clear(&mut tx, &o.id, now).await? {
            done.cleared += 1;
        }
    }
    tx.commit().await?;
    for r in &done.raised {
        tracing::warn!(alarm = %r.id, kind = r.kind.as_str(), subject = %r.subject_id, area = %r.area,
            message = %r.message, "alarm raised");
    }
    if done.cleared > 0 {
        tracing::info!(cleared = done.cleared, "alarms cleared");
    }
    Ok(done)
}

/// Run until cancelled: evaluate every `alarms.evaluate_every_s`, the first time one period
/// after start (an instance that just became leader does not evaluate before its devices had
/// a period to reconnect, and a test that evaluates at chosen times is not raced at start).
pub async fn run(ctx: Context, cancel: CancellationToken) -> Result<()> {
    let a = ctx.settings.alarms.clone();
    let period = Duration::from_secs(a.evaluate_every_s);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        if let Err(e) = evaluate(&ctx.store, &a, now_ms()).await {
            tracing::warn!(error = %e, "alarm evaluation failed; retrying at the next tick");
        }
    }
}
