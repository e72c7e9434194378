//! Device use cases (the API's and the console's one path): register, change, import a
//! `nguon-provision` registry file, and the status history read. Each write validates
//! (`domain::device`), then runs ONE transaction with the change, its dispatch outbox row
//! (`Change::Devices` of the devices changed; `Change::All` when a registry import changed an
//! area) and its audit entry (`device.create`/`device.update` on `device:{id}`, `fleet.import` on
//! `devices`); commits; then wakes the dispatcher.

use nguon_provision::registry::Registry;

use crate::domain::area::AreaFields;
use crate::domain::change::Change;
use crate::domain::device::{self, Credential, Device, DevicePatch, FleetImportSummary, NewDevice};
use crate::domain::presence::{self, MAX_INTERVALS, StatusHistory};
use crate::domain::scope::{Caller, Role};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::store::constraint::NameViolation;
use crate::store::{self, Conn, areas::Upserted, audit, now_ms, outbox};

fn subject(id: &str) -> String {
    format!("device:{id}")
}

async fn stored(conn: &mut Conn, id: &str) -> Result<Device> {
    store::devices::get_in(conn, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("device `{id}`")))
}

/// Register a device; returns it.
pub async fn create(state: &AppState, caller: &Caller, b: NewDevice) -> Result<Device> {
    let checked = b.validate()?;
    let id = checked.id.to_string();
    let credential_hash = match checked.credential {
        Credential::None => None,
        Credential::Password(p) => Some(nguon_provision::credential::hash_password(p)),
        Credential::Hash(h) => Some(h.to_string()),
    };
    let mut tx = state.store.begin_write().await?;
    device::require_area(&b.area, store::areas::exists_in(&mut tx, &b.area).await?)?;
    if store::devices::exists_in(&mut tx, &id).await? {
        return Err(Error::Conflict(format!("device `{id}` already exists")));
    }
    let row = store::devices::NewRow {
        id: id.clone(),
        kind: b.kind.clone(),
        area: b.area.clone(),
        name: checked.name,
        lat: b.lat,
        lon: b.lon,
        enabled: b.enabled.unwrap_or(true),
        credential_hash,
        public_key: b.public_key.clone(),
        language: b.language.clone(),
        volume: b.volume,
    };
    store::devices::insert_in(&mut tx, &row)
        .await
        .name_violation(&format!("device `{id}`"))?;
    outbox::insert(&mut tx, &Change::Devices(vec![id.clone()])).await?;
    let d = stored(&mut tx, &id).await?;
    audit::record(
        &mut tx,
        &caller.username,
        "device.create",
        &subject(&id),
        None,
        serde_json::to_value(&d).ok(),
    )
    .await?;
    tx.commit().await?;
    state.wake.dispatch();
    Ok(d)
}

/// Who may apply `p` to device `id`: an admin anything; an operator the name, area, position
/// and enabled flag of a device in scope, to an area in scope. 403 naming the reason.
pub async fn check_edit(state: &AppState, caller: &Caller, id: &str, p: &DevicePatch) -> Result<()> {
    if caller.role == Role::Admin {
        return crate::services::auth::check_device(state, caller, id).await;
    }
    caller.require(Role::Operator)?;
    crate::services::auth::check_device(state, caller, id).await?;
    if p.has_admin_fields() {
        return Err(Error::Forbidden(
            "only an admin may change a device's volume, language, password or key".into(),
        ));
    }
    if let Some(a) = &p.area {
        caller.check_area(a)?;
    }
    Ok(())
}

/// A device before and after a change.
#[derive(Debug, Clone)]
pub struct Updated {
    /// As it was.
    pub before: Device,
    /// As it is now.
    pub after: Device,
}

/// Check who may ([`check_edit`]), validate and apply a device change; the device's manifest is
/// recomputed (outbox `Change::Devices`). The audit entry keeps the record before and after
/// without live status.
pub async fn update(state: &AppState, caller: &Caller, id: &str, p: DevicePatch) -> Result<Updated> {
    check_edit(state, caller, id, &p).await?;
    let mut tx = state.store.begin_write().await?;
    let before = stored(&mut tx, id).await?;
    let area_stored = match &p.area {
        Some(a) => store::areas::exists_in(&mut tx, a).await?,
        None => true,
    };
    p.validate(area_stored)?;
    let hash = p
        .password
        .as_deref()
        .map(nguon_provision::credential::hash_password);
    store::devices::update_in(&mut tx, id, &p.apply(&before, hash)).await?;
    outbox::insert(&mut tx, &Change::Devices(vec![id.to_string()])).await?;
    let after = stored(&mut tx, id).await?;
    audit::record(
        &mut tx,
        &caller.username,
        "device.update",
        &subject(id),
        before.audit_json(),
        after.audit_json(),
    )
    .await?;
    tx.commit().await?;
    state.wake.dispatch();
    Ok(Updated { before, after })
}

/// Import a registration file (areas, then devices, then `disabled`) in one transaction, after
/// validating it completely (every problem listed). Idempotent: importing the same file again
/// changes nothing and writes no outbox row.
pub async fn import_registry(state: &AppState, caller: &Caller, r: &Registry) -> Result<FleetImportSummary> {
    let mut tx = state.store.begin_write().await?;
    let stored = store::areas::tree_in(&mut tx).await?;
    device::validate_registry(r, &stored)?;
    let mut s = FleetImportSummary::default();
    let mut changed_ids: Vec<String> = Vec::new();
    let mut area_moved = false;
    for a in &r.areas {
        let fields = AreaFields {
            code: a.code.clone(),
            name: a.name.clone(),
            parent: a.parent.clone(),
            level: a.level.clone(),
        };
        match store::areas::upsert(&mut tx, &fields).await? {
            Upserted::Created => s.areas_created += 1,
            Upserted::Updated => {
                s.areas_updated += 1;
                area_moved = true;
            }
            Upserted::Unchanged => {}
        }
        // The station list's languages; an area the file gives none keeps its own list.
        if !a.languages.is_empty()
            && store::bulletins::area_languages_in(&mut tx, &a.code).await? != a.languages
        {
            store::bulletins::set_area_languages(&mut tx, &a.code, &a.languages).await?;
            s.area_languages_set += 1;
        }
    }
    let now = now_ms();
    for d in &r.devices {
        match store::devices::registered_in(&mut tx, &d.id).await? {
            None => {
                store::devices::insert_registered_in(&mut tx, d, now).await?;
                s.created += 1;
                changed_ids.push(d.id.clone());
            }
            Some(existing) if existing.matches(d) => s.unchanged += 1,
            Some(_) => {
                store::devices::update_registered_in(&mut tx, d, now).await?;
                s.updated += 1;
                changed_ids.push(d.id.clone());
            }
        }
    }
    for id in &r.disabled {
        if store::devices::disable_in(&mut tx, id, now).await? {
            s.disabled += 1;
            changed_ids.push(id.clone());
        }
    }
    let change = if area_moved {
        Some(Change::All)
    } else {
        (!changed_ids.is_empty()).then_some(Change::Devices(changed_ids))
    };
    if let Some(c) = &change {
        outbox::insert(&mut tx, c).await?;
    }
    audit::record(
        &mut tx,
        &caller.username,
        "fleet.import",
        "devices",
        None,
        serde_json::to_value(&s).ok(),
    )
    .await?;
    tx.commit().await?;
    if change.is_some() {
        state.wake.dispatch();
    }
    if s.area_languages_set > 0 {
        state.bulletins.bump();
    }
    Ok(s)
}

/// A device's online intervals and availability over the period `from`..`to` (RFC 3339 or unix
/// ms; default the last 30 days), for a caller who may see the device.
pub async fn status_history(
    state: &AppState,
    caller: &Caller,
    id: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<StatusHistory> {
    crate::services::auth::check_device(state, caller, id).await?;
    let d = store::devices::get(&state.store, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("device `{id}`")))?;
    let now = now_ms();
    let (from, to) = presence::period(from, to, now)?;
    let avail =
        store::history::availability(&state.store, &[(d.id.clone(), d.created_at)], from, to, now).await?;
    let mut list = store::history::intervals(&state.store, &d.id, from, to, MAX_INTERVALS + 1).await?;
    let truncated = list.len() > MAX_INTERVALS;
    list.truncate(MAX_INTERVALS);
    Ok(StatusHistory {
        availability: avail.get(&d.id).copied(),
        device_id: d.id,
        from,
        to,
        intervals: list,
        truncated,
    })
}
