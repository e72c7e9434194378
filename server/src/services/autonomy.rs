//! Commune autonomy use cases (Circular 39, issue 16; docs/autonomy.md): a commune's setting
//! (read by anyone who sees the area, changed by an admin), the questions put to communes (read
//! inside the caller's scope) and their answers (an operator whose scope holds the commune; a
//! question outside it is 404). Every change is audited in its transaction and re-dispatches
//! the commune's devices.

use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;

use crate::domain::autonomy::{self, Answer, Request, Setting, SettingIn, State};
use crate::domain::change::Change;
use crate::domain::scope::{Caller, Role};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::store::{self, audit, now_ms, outbox};

/// A commune's setting (the default, off, when none is stored); 404 for an unknown area, 403
/// outside the caller's scope.
pub async fn setting(state: &AppState, caller: &Caller, area: &str) -> Result<Setting> {
    caller.require(Role::Viewer)?;
    let tree = store::areas::tree(&state.store).await?;
    if !tree.contains(area) {
        return Err(Error::NotFound(format!("area `{area}`")));
    }
    caller.check_area(area)?;
    let mut conn = state.store.pool.acquire().await?;
    Ok(store::autonomy::setting(&mut conn, area)
        .await?
        .unwrap_or_else(|| off(area)))
}

fn off(area: &str) -> Setting {
    Setting {
        area: area.to_string(),
        enabled: false,
        unanswered: autonomy::Unanswered::Play,
        enabled_since: 0,
        updated_at: 0,
        updated_by: String::new(),
    }
}

/// Change a commune's setting (admin; audited as `area.autonomy`). Turning it on asks about the
/// province content created or changed from then on.
pub async fn set_setting(state: &AppState, caller: &Caller, area: &str, req: SettingIn) -> Result<Setting> {
    caller.require(Role::Admin)?;
    let before = setting(state, caller, area).await?;
    let now = now_ms();
    let after = Setting {
        area: area.to_string(),
        enabled: req.enabled,
        unanswered: req.unanswered.unwrap_or(before.unanswered),
        enabled_since: if req.enabled && !before.enabled {
            now
        } else {
            before.enabled_since
        },
        updated_at: now,
        updated_by: caller.username.clone(),
    };
    let mut tx = state.store.begin_write().await?;
    store::autonomy::save_setting(&mut tx, &after).await?;
    audit::record(
        &mut tx,
        &caller.username,
        "area.autonomy",
        &format!("area:{area}"),
        serde_json::to_value(&before).ok(),
        serde_json::to_value(&after).ok(),
    )
    .await?;
    outbox::insert(&mut tx, &Change::Areas(vec![area.to_string()])).await?;
    tx.commit().await?;
    state.wake.dispatch();
    Ok(after)
}

/// Filters of the question list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this commune.
    #[serde(default)]
    pub area: Option<String>,
    /// Only this state (`pending`, `accepted`, …).
    #[serde(default)]
    pub state: Option<String>,
}

/// The questions inside the caller's scope, newest first.
pub async fn list(state: &AppState, caller: &Caller, q: &ListQuery) -> Result<Vec<Request>> {
    caller.require(Role::Viewer)?;
    Ok(store::autonomy::requests(&state.store)
        .await?
        .into_iter()
        .filter(|r| caller.in_scope(&r.area))
        .filter(|r| q.area.as_deref().is_none_or(|a| r.area == a))
        .filter(|r| q.state.as_deref().is_none_or(|s| r.state.as_str() == s))
        .collect())
}

/// One question inside the caller's scope (404 otherwise).
pub async fn get(state: &AppState, caller: &Caller, id: &str) -> Result<Request> {
    caller.require(Role::Viewer)?;
    let mut conn = state.store.pool.acquire().await?;
    match store::autonomy::get(&mut conn, id).await? {
        Some(r) if caller.in_scope(&r.area) => Ok(r),
        _ => Err(Error::NotFound(format!("question `{id}`"))),
    }
}

/// Answer a question (operator of the commune; audited as `autonomy.accept`, `.decline`,
/// `.reslot` or `.order`). A question may be answered again: the last answer counts.
pub async fn answer(state: &AppState, caller: &Caller, id: &str, a: Answer) -> Result<Request> {
    let before = get(state, caller, id).await?;
    caller.require(Role::Operator)?;
    let after = autonomy::answered(&before, &a, &caller.username, Utc::now())?;
    let mut tx = state.store.begin_write().await?;
    store::autonomy::save_answer(&mut tx, &after, false).await?;
    let action = match after.state {
        State::Accepted => "autonomy.accept",
        State::Declined => "autonomy.decline",
        State::Reslotted => "autonomy.reslot",
        _ => "autonomy.order",
    };
    audit::record(
        &mut tx,
        &caller.username,
        action,
        &format!("autonomy:{id}"),
        Some(json!({"area": before.area, "schedule_id": before.schedule_id, "state": before.state})),
        serde_json::to_value(&after).ok(),
    )
    .await?;
    outbox::insert(&mut tx, &Change::Areas(vec![after.area.clone()])).await?;
    tx.commit().await?;
    state.wake.dispatch();
    Ok(after)
}
