//! Area use cases (the API's and the console's one path): create, update (rename, level, move),
//! delete, and the CSV import. Each validates (`domain::area`), then runs ONE transaction with
//! the change, its dispatch outbox row when devices' desired state may change (a parent change,
//! or an import that changed a stored area: targets resolved through the tree may now reach other
//! devices, so `Change::All`), and its audit entry (`area.create`/`update`/`delete` on
//! `area:{code}`, `area.import` on `areas`); commits; then wakes the dispatcher.

use crate::domain::area::{self, Area, AreaPatch, ImportSummary, LineError, NewArea};
use crate::domain::change::Change;
use crate::domain::scope::Caller;
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::store::constraint::NameViolation;
use crate::store::{self, Conn, areas::Upserted, audit, outbox};

fn subject(code: &str) -> String {
    format!("area:{code}")
}

fn json(a: &Area) -> Option<serde_json::Value> {
    serde_json::to_value(a).ok()
}

async fn stored(conn: &mut Conn, code: &str) -> Result<Area> {
    store::areas::get_in(conn, code)
        .await?
        .ok_or_else(|| Error::NotFound(format!("area `{code}`")))
}

/// Validate and create an area; returns it.
pub async fn create(state: &AppState, caller: &Caller, body: NewArea) -> Result<Area> {
    let f = body.validate()?;
    let mut tx = state.store.begin_write().await?;
    if let Some(p) = &f.parent {
        area::require_parent(p, store::areas::exists_in(&mut tx, p).await?)?;
    }
    if store::areas::exists_in(&mut tx, &f.code).await? {
        return Err(Error::Conflict(format!("area `{}` already exists", f.code)));
    }
    store::areas::upsert(&mut tx, &f)
        .await
        .name_violation(&format!("area `{}`", f.code))?;
    let created = stored(&mut tx, &f.code).await?;
    audit::record(
        &mut tx,
        &caller.username,
        "area.create",
        &subject(&f.code),
        None,
        json(&created),
    )
    .await?;
    tx.commit().await?;
    Ok(created)
}

/// The area before and after a change.
#[derive(Debug, Clone)]
pub struct Updated {
    /// As it was.
    pub before: Area,
    /// As it is now.
    pub after: Area,
}

/// Validate and apply an area change (rename, level, move). A parent change writes the outbox
/// row (`Change::All`).
pub async fn update(state: &AppState, caller: &Caller, code: &str, patch: AreaPatch) -> Result<Updated> {
    let mut tx = state.store.begin_write().await?;
    let before = stored(&mut tx, code).await?;
    let f = patch.apply(&before)?;
    let parent_changed = f.parent != before.parent;
    if let (Some(p), Some(_)) = (&f.parent, &patch.parent) {
        area::check_parent(&store::areas::tree_in(&mut tx).await?, code, p)?;
    }
    store::areas::upsert(&mut tx, &f).await?;
    if parent_changed {
        outbox::insert(&mut tx, &Change::All).await?;
    }
    let after = stored(&mut tx, code).await?;
    audit::record(
        &mut tx,
        &caller.username,
        "area.update",
        &subject(code),
        json(&before),
        json(&after),
    )
    .await?;
    tx.commit().await?;
    if parent_changed {
        state.wake.dispatch();
    }
    Ok(Updated { before, after })
}

/// Delete an area unless it still has children, devices, schedules targeting it or media owned
/// by it (409 naming what is left); returns the deleted area.
pub async fn delete(state: &AppState, caller: &Caller, code: &str) -> Result<Area> {
    let mut tx = state.store.begin_write().await?;
    let before = stored(&mut tx, code).await?;
    store::areas::dependents_in(&mut tx, code)
        .await?
        .check_delete(code)?;
    store::areas::delete_in(&mut tx, code).await?;
    audit::record(
        &mut tx,
        &caller.username,
        "area.delete",
        &subject(code),
        json(&before),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(before)
}

/// Import a CSV (`code,name,parent,level`): every bad line (`Err`, nothing written) or the
/// summary of the upsert. If a stored area changed, the outbox row is `Change::All`.
pub async fn import(
    state: &AppState,
    caller: &Caller,
    body: &str,
) -> Result<std::result::Result<ImportSummary, Vec<LineError>>> {
    let mut tx = state.store.begin_write().await?;
    let stored = store::areas::tree_in(&mut tx).await?;
    let areas = match area::parse_csv(body, &stored) {
        Ok(a) => a,
        Err(lines) => return Ok(Err(lines)),
    };
    let mut s = ImportSummary::default();
    for a in &areas {
        match store::areas::upsert(&mut tx, a).await? {
            Upserted::Created => s.created += 1,
            Upserted::Updated => s.updated += 1,
            Upserted::Unchanged => s.unchanged += 1,
        }
    }
    if s.updated > 0 {
        outbox::insert(&mut tx, &Change::All).await?;
    }
    audit::record(
        &mut tx,
        &caller.username,
        "area.import",
        "areas",
        None,
        serde_json::to_value(&s).ok(),
    )
    .await?;
    tx.commit().await?;
    if s.updated > 0 {
        state.wake.dispatch();
    }
    Ok(Ok(s))
}
