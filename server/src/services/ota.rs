//! Signed agent updates (issue 16, docs/ota.md), the use cases: upload a release (an admin; the
//! binary is checked to be an ELF of its architecture, hashed and kept at
//! `<data_dir>/agent-releases/<sha256>`), start a rollout, change its share or state, and read a
//! rollout's progress. Each write runs one transaction with its audit entry (`agent_release.create`
//! on `agent_release:{version}/{arch}`, `rollout.create` / `rollout.update` on `rollout:{id}`) and,
//! for rollouts, its dispatch outbox row over the rollout's areas; then it wakes the dispatcher,
//! which signs each build into the manifests of the devices the rollout selects.

use std::path::PathBuf;

use nguon_protocol::Arch;
use sha2::{Digest, Sha256};

use crate::domain::change::Change;
use crate::domain::ota::{self, NewRollout, Release, Rollout, RolloutPatch, RolloutProgress, RolloutState};
use crate::domain::scope::{Caller, Role};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::store::{self, audit, now_ms, outbox};

/// Where the binary of `sha256` is kept.
pub fn binary_file(state: &AppState, sha256: &str) -> PathBuf {
    state.settings.data_dir.join("agent-releases").join(sha256)
}

/// An upload's fields, as the HTTP layer read them.
#[derive(Debug, Default)]
pub struct Upload {
    /// `version`.
    pub version: Option<String>,
    /// `arch`.
    pub arch: Option<String>,
    /// `notes`.
    pub notes: Option<String>,
    /// `binary`.
    pub binary: Option<Vec<u8>>,
}

fn missing(field: &str) -> Error {
    Error::unprocessable("missing_field", format!("`{field}` is required"))
}

/// Store a release: 422 naming the field for a bad version, an unknown architecture, a binary
/// that is not an ELF of it; 409 when the version has a build for the architecture already.
pub async fn upload(state: &AppState, caller: &Caller, u: Upload) -> Result<Release> {
    caller.require(Role::Admin)?;
    let version = u.version.ok_or_else(|| missing("version"))?.trim().to_string();
    let arch: Arch = u
        .arch
        .ok_or_else(|| missing("arch"))?
        .trim()
        .parse()
        .map_err(|e: String| Error::unprocessable("invalid_arch", format!("`arch`: {e}")))?;
    let binary = u.binary.ok_or_else(|| missing("binary"))?;
    ota::check_release(&version, arch, &binary)?;
    let notes = u.notes.unwrap_or_default().trim().to_string();
    if notes.chars().count() > 2000 {
        return Err(Error::unprocessable(
            "field_too_long",
            "`notes`: at most 2000 characters",
        ));
    }
    let sha256 = hex::encode(Sha256::digest(&binary));
    let path = binary_file(state, &sha256);
    let dir = path.parent().expect("a directory").to_path_buf();
    let tmp = dir.join(format!(".{sha256}.part"));
    tokio::fs::create_dir_all(&dir).await?;
    tokio::fs::write(&tmp, &binary).await?;
    tokio::fs::rename(&tmp, &path).await?;
    let release = Release {
        version: version.clone(),
        arch,
        url: ota::binary_path(&sha256),
        sha256,
        size: binary.len() as i64,
        notes,
        created_at: now_ms(),
        created_by: caller.username.clone(),
    };
    let mut tx = state.store.begin_write().await?;
    if store::ota::release_in(&mut tx, &version, arch.as_str())
        .await?
        .is_some()
    {
        return Err(Error::Conflict(format!(
            "release `{version}` has a build for `{arch}` already; upload a new version"
        )));
    }
    store::ota::insert_release(&mut tx, &release).await?;
    audit::record(
        &mut tx,
        &caller.username,
        "agent_release.create",
        &format!("agent_release:{version}/{arch}"),
        None,
        serde_json::to_value(&release).ok(),
    )
    .await?;
    tx.commit().await?;
    Ok(release)
}

/// Start a rollout: 422 naming the field for an unknown release or area, a share outside
/// 1–100.
pub async fn create(state: &AppState, caller: &Caller, n: NewRollout) -> Result<Rollout> {
    caller.require(Role::Admin)?;
    ota::check_new(&n)?;
    let now = now_ms();
    let mut areas = n.areas.clone();
    areas.sort();
    areas.dedup();
    let r = Rollout {
        id: uuid::Uuid::now_v7().to_string(),
        version: n.release.trim().to_string(),
        areas: areas.clone(),
        percent: n.percent,
        confirm_minutes: n
            .confirm_minutes
            .unwrap_or(state.settings.ota.confirm_minutes as u32),
        state: RolloutState::Active,
        created_at: now,
        created_by: caller.username.clone(),
        updated_at: now,
    };
    let mut tx = state.store.begin_write().await?;
    if !store::ota::version_exists(&mut tx, &r.version).await? {
        return Err(Error::unprocessable(
            "unknown_release",
            format!("`release`: no agent release has version `{}`", r.version),
        ));
    }
    for a in &areas {
        if !store::areas::exists_in(&mut tx, a).await? {
            return Err(Error::unprocessable(
                "unknown_area",
                format!("`areas`: no area `{a}`"),
            ));
        }
    }
    store::ota::insert_rollout(&mut tx, &r).await?;
    outbox::insert(&mut tx, &Change::Areas(areas)).await?;
    audit::record(
        &mut tx,
        &caller.username,
        "rollout.create",
        &format!("rollout:{}", r.id),
        None,
        serde_json::to_value(&r).ok(),
    )
    .await?;
    tx.commit().await?;
    state.wake.dispatch();
    Ok(r)
}

/// Raise a rollout's share, pause, resume or cancel it.
pub async fn update(state: &AppState, caller: &Caller, id: &str, p: RolloutPatch) -> Result<Rollout> {
    caller.require(Role::Admin)?;
    let mut tx = state.store.begin_write().await?;
    let before = store::ota::rollout_in(&mut tx, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("rollout `{id}`")))?;
    let mut after = ota::apply(&before, &p)?;
    after.updated_at = now_ms();
    store::ota::update_rollout(&mut tx, &after).await?;
    outbox::insert(&mut tx, &Change::Areas(after.areas.clone())).await?;
    audit::record(
        &mut tx,
        &caller.username,
        "rollout.update",
        &format!("rollout:{id}"),
        serde_json::to_value(&before).ok(),
        serde_json::to_value(&after).ok(),
    )
    .await?;
    tx.commit().await?;
    state.wake.dispatch();
    Ok(after)
}

/// A rollout with the state of each of its devices.
pub async fn progress(state: &AppState, caller: &Caller, id: &str) -> Result<RolloutProgress> {
    caller.require(Role::Operator)?;
    let mut conn = state.store.pool.acquire().await?;
    let r = store::ota::rollout_in(&mut conn, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("rollout `{id}`")))?;
    drop(conn);
    let fleet = store::manifests::fleet(&state.store).await?;
    let reports = store::ota::reports(&state.store, id).await?;
    let versions = store::ota::agent_versions(&state.store).await?;
    let mut p = ota::progress(&fleet, &r, &reports, &versions);
    if !caller.grants(Role::Admin) {
        p.devices.retain(|d| caller.check_area(&d.area).is_ok());
    }
    Ok(p)
}
