//! Schedule use cases: create, update (content and enabled flag), enable/disable and delete. Each
//! checks the caller (role `operator`, every old and new target inside their scope, media visible
//! to them), validates the request (`domain::schedule::validate`, then targets that exist and media
//! that is approved), and runs ONE transaction that writes the schedule, its dispatch outbox row
//! (the old and new targets' devices) and its audit entry, and refuses (422, naming the devices)
//! a schedule that would make a device's manifest exceed `max_manifest_bytes`
//! ([`check_manifest_cap`]); after the commit it wakes the dispatcher. A use case that creates schedules as part of another change (bulletin publish)
//! uses [`prepare`] and [`create_in`] inside its own transaction.

use std::collections::HashMap;

use chrono::{Duration, Utc};
use serde_json::Value;

use crate::domain::change::Change;
use crate::domain::manifest;
use crate::domain::schedule::{
    self, Created, MediaInfo, NewSchedule, Schedule, Valid, Warnings, occurrence, overlap,
};
use crate::domain::scope::{Caller, Role};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::services::auth::check_targets;
use crate::store::{self, Conn, Store, audit, from_ms, now_ms, outbox};

/// Media rows needed by schedules and play-now commands, by sha256 (missing media is absent).
pub async fn media_info(store: &Store, shas: &[String]) -> Result<HashMap<String, MediaInfo>> {
    store::media::info(store, shas).await
}

/// 422 `media_not_approved` naming the first sha that is missing or not approved (422
/// `media_required` for an empty list).
pub async fn require_approved(store: &Store, shas: &[String]) -> Result<HashMap<String, MediaInfo>> {
    if shas.is_empty() {
        return Err(Error::unprocessable(
            "media_required",
            "`media` must list at least one sha256",
        ));
    }
    let info = media_info(store, shas).await?;
    for sha in shas {
        match info.get(sha) {
            Some(m) if m.approved => {}
            Some(_) => {
                return Err(Error::unprocessable(
                    "media_not_approved",
                    format!("media {sha} is not approved"),
                ));
            }
            None => {
                return Err(Error::unprocessable(
                    "media_not_approved",
                    format!("media {sha} does not exist"),
                ));
            }
        }
    }
    Ok(info)
}

/// A request that passed every check of [`check`], with its playlist's media.
pub struct Checked {
    /// What `domain::schedule::validate` made of the request.
    pub valid: Valid,
    /// The playlist's media (all approved).
    pub media: HashMap<String, MediaInfo>,
    /// A relay whose stream could not be reached at the check: why (accepted; the alarm is
    /// raised at play time).
    pub relay_unreachable: Option<String>,
}

/// Validate a schedule request: title, rule, time zone, validity, volume, repeat
/// (`domain::schedule::validate`), then existing targets and approved media. The one validation
/// of creation and edit (API, console, bulletins).
pub async fn check(state: &AppState, req: &NewSchedule) -> Result<Checked> {
    let valid = schedule::validate(req, &state.settings.time_zone, state.settings.min_repeat_every_s)?;
    if valid.repetition.is_some()
        && valid.valid_for_s.is_none()
        && state.settings.late_window(nguon_protocol::Priority::Emergency) <= Duration::zero()
    {
        return Err(Error::unprocessable(
            "invalid_repetition",
            "`repetition`: a repeating emergency needs a validity window (`valid_for_s`)",
        ));
    }
    if !valid.areas.is_empty() {
        let tree = store::areas::tree(&state.store).await?;
        if let Some(a) = valid.areas.iter().find(|a| !tree.contains(a)) {
            return Err(Error::unprocessable(
                "unknown_area",
                format!("area `{a}` does not exist"),
            ));
        }
    }
    for d in &valid.devices {
        if store::devices::area_of(&state.store, d).await?.is_none() {
            return Err(Error::unprocessable(
                "unknown_device",
                format!("device `{d}` does not exist"),
            ));
        }
    }
    // A relay's fallback recording is optional.
    let media = if valid.relay.is_some() && req.media.is_empty() {
        HashMap::new()
    } else {
        require_approved(&state.store, &req.media).await?
    };
    let relay_unreachable = match &valid.relay {
        Some(r) => crate::services::relay::check_url(state, &r.url).await?,
        None => None,
    };
    Ok(Checked {
        valid,
        media,
        relay_unreachable,
    })
}

/// 403 unless the caller may schedule `req`: role `operator`, every target inside their scope,
/// every media file visible to them.
async fn allow(state: &AppState, caller: &Caller, req: &NewSchedule) -> Result<()> {
    caller.require(Role::Operator)?;
    check_targets(state, caller, &req.targets.areas, &req.targets.devices).await?;
    store::media::require_visible(&state.store, caller, &req.media).await
}

/// 403 unless every target of `s` is inside the caller's scope (the rule for reading, editing
/// and deleting a schedule; creation checks the requested targets).
pub async fn check_scope(state: &AppState, caller: &Caller, s: &Schedule) -> Result<()> {
    check_targets(state, caller, &s.targets.areas, &s.targets.devices)
        .await
        .map_err(|_| Error::Forbidden(format!("schedule `{}` targets areas outside your scope", s.id)))
}

/// One schedule, if every target of it is inside the caller's scope (404, 403).
pub async fn get_visible(state: &AppState, caller: &Caller, id: &str) -> Result<Schedule> {
    let s = store::schedules::get(&state.store, id).await?;
    check_scope(state, caller, &s).await?;
    Ok(s)
}

/// A validated new schedule, not yet written ([`prepare`]).
pub struct Prepared {
    /// The schedule as it will be stored (a new id, enabled).
    pub schedule: Schedule,
    /// Its playlist's media.
    media: HashMap<String, MediaInfo>,
    relay_unreachable: Option<String>,
}

/// Validate `req` ([`check`]) into a new schedule, ready for [`create_in`]. Reads only: call it
/// before the transaction begins.
pub async fn prepare(state: &AppState, req: &NewSchedule) -> Result<Prepared> {
    let Checked {
        valid,
        media,
        relay_unreachable,
    } = check(state, req).await?;
    let id = uuid::Uuid::now_v7().to_string();
    Ok(Prepared {
        schedule: schedule::draft(id, valid, req, from_ms(now_ms())),
        media,
        relay_unreachable,
    })
}

/// Write a prepared schedule and its dispatch outbox row in the caller's transaction (pass
/// `&mut *tx`). The caller writes its own audit entry, commits, then wakes the dispatcher.
pub async fn create_in(conn: &mut Conn, p: &Prepared) -> Result<()> {
    store::schedules::insert(conn, &p.schedule).await?;
    let t = &p.schedule.targets;
    outbox::insert(conn, &Change::targets(&t.areas, &t.devices)).await
}

/// Devices named at most in a [`check_manifest_cap`] refusal.
const NAMED_DEVICES: usize = 20;

/// 422 `manifest_too_large` naming the devices whose signed manifest, with `new` as they will be
/// stored (added, replaced or disabled), would exceed `max_manifest_bytes` even over the shortest
/// window the dispatcher may cut to (`domain::manifest::MIN_WINDOW_HOURS`, or the look-ahead when
/// shorter). Call it inside the write transaction, before the commit: it first takes the
/// schedule writers' lock (`store::schedules::lock_writes`), so two schedules that each fit alone
/// cannot together exceed the cap.
pub async fn check_manifest_cap(state: &AppState, conn: &mut Conn, new: &[&Schedule]) -> Result<()> {
    if new.iter().all(|s| !s.enabled) {
        return Ok(());
    }
    store::schedules::lock_writes(conn, state.store.backend).await?;
    let mut all = store::schedules::load_all(&state.store, true).await?;
    all.retain(|x| new.iter().all(|s| s.id != x.id));
    all.extend(new.iter().filter(|s| s.enabled).map(|s| (*s).clone()));
    let mut targets = schedule::Targets::default();
    for s in new.iter().filter(|s| s.enabled) {
        targets.areas.extend(s.targets.areas.iter().cloned());
        targets.devices.extend(s.targets.devices.iter().cloned());
    }
    let fleet = store::manifests::fleet(&state.store).await?;
    let media = store::media::all_info(&state.store).await?;
    let cap = state.settings.max_manifest_bytes as usize;
    let hours = manifest::MIN_WINDOW_HOURS.min(state.settings.lookahead_hours as i64);
    let public_url = state.public_url.clone();
    let late = manifest::LateWindows {
        emergency: state.settings.late_window(nguon_protocol::Priority::Emergency),
        priority: state.settings.late_window(nguon_protocol::Priority::Priority),
        normal: state.settings.late_window(nguon_protocol::Priority::Normal),
    };
    let relay_proxy = state.settings.relay.mode == crate::config::relay::RelayMode::Proxy;
    let over = tokio::task::spawn_blocking(move || {
        let devices = fleet.devices_for(&targets);
        let now = Utc::now();
        let w = manifest::Window {
            now,
            lookahead: Duration::hours(hours),
            public_url: &public_url,
            late,
            messages: &manifest::NO_MESSAGES,
            relay_proxy,
        };
        manifest::compute(&fleet, &all, &media, &devices, w)
            .into_iter()
            .filter_map(|(d, c)| {
                let n = manifest::signed_size(&c, &d, now, now + w.lookahead);
                (n > cap).then_some((d, n))
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(Error::context("manifest size check"))?;
    if over.is_empty() {
        return Ok(());
    }
    let largest = over.iter().map(|(_, n)| *n).max().unwrap_or_default();
    let mut names: Vec<&str> = over.iter().map(|(d, _)| d.as_str()).take(NAMED_DEVICES).collect();
    if over.len() > NAMED_DEVICES {
        names.push("…");
    }
    Err(Error::unprocessable(
        "manifest_too_large",
        format!(
            "with this schedule the manifest of {} device(s) would exceed the limit of {cap} bytes \
             even over the next {hours} h (largest: {largest} bytes): {}; play it less often, \
             shorten its title or target fewer devices",
            over.len(),
            names.join(", ")
        ),
    ))
}

fn subject(id: &str) -> String {
    format!("schedule:{id}")
}

fn json(s: &Schedule) -> Option<Value> {
    serde_json::to_value(s).ok()
}

/// Create a schedule for `caller`: the schedule, its outbox row and its audit entry in one
/// transaction, then the dispatcher is woken. The answer has the next occurrences and the
/// overlap warnings.
pub async fn create(state: &AppState, caller: &Caller, req: NewSchedule) -> Result<Created> {
    allow(state, caller, &req).await?;
    let p = prepare(state, &req).await?;
    let mut tx = state.store.begin_write().await?;
    create_in(&mut tx, &p).await?;
    check_manifest_cap(state, &mut tx, &[&p.schedule]).await?;
    audit::record(
        &mut tx,
        &caller.username,
        "schedule.create",
        &subject(&p.schedule.id),
        None,
        json(&p.schedule),
    )
    .await?;
    tx.commit().await?;
    state.wake.dispatch();
    Ok(answer(state, p).await)
}

/// What [`create`] would answer for `req`, without writing anything: the same checks (role,
/// scope, rule, approved media), the next occurrences and the overlap warnings (the console's
/// preview before saving).
pub async fn preview(state: &AppState, caller: &Caller, req: &NewSchedule) -> Result<Created> {
    allow(state, caller, req).await?;
    let p = prepare(state, req).await?;
    Ok(answer(state, p).await)
}

/// The `201` answer: the next occurrences in the look-ahead window and the overlap warnings (a
/// failed overlap check is logged and gives none).
async fn answer(state: &AppState, p: Prepared) -> Created {
    let Prepared {
        schedule,
        media,
        relay_unreachable,
    } = p;
    let tz = schedule.tz.unwrap_or(chrono_tz::Asia::Ho_Chi_Minh);
    let now_t = Utc::now();
    let end = now_t + Duration::hours(state.settings.lookahead_hours as i64);
    let occ = schedule.occurrences(now_t, end);
    let next_occurrences = occ.iter().take(10).map(|t| occurrence(tz, *t)).collect();
    let duration = match &schedule.relay {
        Some(r) => i64::from(r.duration_s) * 1000,
        None => {
            overlap::playlist_ms(&schedule.media, |s| media.get(s).map(|m| m.duration_ms))
                * schedule.repeat as i64
        }
    };
    let mut warnings = warnings(state, &schedule, &occ, duration, (now_t, end))
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "overlap check failed");
            Warnings::default()
        });
    warnings.relay_unreachable = relay_unreachable;
    Created {
        schedule,
        next_occurrences,
        warnings,
    }
}

/// Overlaps of `new` (playing at `occ` for `duration` ms each) with the other enabled schedules
/// at its priority on a device both reach, inside `window`.
async fn warnings(
    state: &AppState,
    new: &Schedule,
    occ: &[chrono::DateTime<Utc>],
    duration: i64,
    window: (chrono::DateTime<Utc>, chrono::DateTime<Utc>),
) -> Result<Warnings> {
    if occ.is_empty() {
        return Ok(Warnings::default());
    }
    let all = store::schedules::load_all(&state.store, true).await?;
    let others = overlap::competing(new, &all);
    if others.is_empty() {
        return Ok(Warnings::default());
    }
    let fleet = store::manifests::fleet(&state.store).await?;
    let shas: Vec<String> = others.iter().flat_map(|s| s.media.iter().cloned()).collect();
    let durations = store::schedules::media_durations(&state.store, &shas).await?;
    Ok(overlap::overlaps(
        new,
        occ,
        duration,
        &others,
        |s| durations.get(s).copied(),
        |t| fleet.devices_for(t),
        window,
    ))
}

/// Replace a schedule's content (same checks as [`create`]) and, when given, its enabled flag;
/// the old and the new targets' manifests are re-published. Returns (before, after).
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: &str,
    req: NewSchedule,
    enabled: Option<bool>,
) -> Result<(Schedule, Schedule)> {
    caller.require(Role::Operator)?;
    let before = get_visible(state, caller, id).await?;
    allow(state, caller, &req).await?;
    let Checked { valid, .. } = check(state, &req).await?;
    let mut s = schedule::draft(id.to_string(), valid, &req, before.created_at);
    s.enabled = enabled.unwrap_or(before.enabled);
    let u = schedule::union(&before.targets, &s.targets);
    let mut tx = state.store.begin_write().await?;
    store::schedules::update(&mut tx, &s).await?;
    check_manifest_cap(state, &mut tx, &[&s]).await?;
    outbox::insert(&mut tx, &Change::targets(&u.areas, &u.devices)).await?;
    let after = store::schedules::get_in(&mut tx, id).await?;
    audit::record(
        &mut tx,
        &caller.username,
        "schedule.update",
        &subject(id),
        json(&before),
        json(&after),
    )
    .await?;
    tx.commit().await?;
    state.wake.dispatch();
    Ok((before, after))
}

/// Enable or disable a schedule (its targets' manifests re-published); returns (before, after).
pub async fn set_enabled(
    state: &AppState,
    caller: &Caller,
    id: &str,
    enabled: bool,
) -> Result<(Schedule, Schedule)> {
    caller.require(Role::Operator)?;
    let before = get_visible(state, caller, id).await?;
    let t = &before.targets;
    let mut tx = state.store.begin_write().await?;
    store::schedules::set_enabled(&mut tx, id, enabled).await?;
    let mut now_enabled = before.clone();
    now_enabled.enabled = enabled;
    check_manifest_cap(state, &mut tx, &[&now_enabled]).await?;
    outbox::insert(&mut tx, &Change::targets(&t.areas, &t.devices)).await?;
    let after = store::schedules::get_in(&mut tx, id).await?;
    audit::record(
        &mut tx,
        &caller.username,
        "schedule.update",
        &subject(id),
        json(&before),
        json(&after),
    )
    .await?;
    tx.commit().await?;
    state.wake.dispatch();
    Ok((before, after))
}

/// Delete a schedule (its future occurrences leave the manifests); returns what was deleted.
pub async fn delete(state: &AppState, caller: &Caller, id: &str) -> Result<Schedule> {
    caller.require(Role::Operator)?;
    let before = get_visible(state, caller, id).await?;
    let t = &before.targets;
    let mut tx = state.store.begin_write().await?;
    store::schedules::delete(&mut tx, id).await?;
    outbox::insert(&mut tx, &Change::targets(&t.areas, &t.devices)).await?;
    audit::record(
        &mut tx,
        &caller.username,
        "schedule.delete",
        &subject(id),
        json(&before),
        None,
    )
    .await?;
    tx.commit().await?;
    state.wake.dispatch();
    Ok(before)
}
