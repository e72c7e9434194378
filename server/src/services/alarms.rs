//! The alarm use cases (issue 12 §6): the list an operator sees (only alarms of areas in their
//! scope), the acknowledgement (operator role, audited with the caller) and the per-area offline
//! threshold (admin or operator of the area, audited). The alarms themselves are raised and
//! cleared by `workers::alarms`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::alarm::{Alarm, AlarmKind, AlarmState};
use crate::domain::scope::{Caller, Role};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::store::{self, now_ms};

/// Most alarms one list returns.
pub const MAX_LIST: i64 = 1_000;

/// The filters of a list, as received.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// `open` (default), `acked` or `all`.
    pub state: Option<String>,
    /// An area code: alarms of it and its descendants.
    pub area: Option<String>,
    /// A kind.
    pub kind: Option<String>,
}

/// The alarms `q` keeps that the caller may see, open ones first.
pub async fn list(state: &AppState, caller: &Caller, q: &ListQuery) -> Result<Vec<Alarm>> {
    let st = AlarmState::parse(q.state.as_deref())?;
    let kind = match q.kind.as_deref().filter(|k| !k.is_empty()) {
        Some(k) => Some(AlarmKind::parse(k, "kind")?),
        None => None,
    };
    let areas = match q.area.as_deref().filter(|a| !a.is_empty()) {
        Some(a) => {
            if !store::areas::exists(&state.store, a).await? {
                return Err(Error::unprocessable(
                    "unknown_area",
                    format!("`area`: `{a}` does not exist"),
                ));
            }
            Some(store::areas::subtree(&state.store, &[a.to_string()]).await?)
        }
        None => None,
    };
    let f = store::alarms::Filter {
        state: st,
        areas,
        kind,
        limit: MAX_LIST,
    };
    store::alarms::list(&state.store, caller, &f).await
}

/// Open alarms the caller may see (the console's badge).
pub async fn open_count(state: &AppState, caller: &Caller) -> Result<i64> {
    store::alarms::count_open(&state.store, caller).await
}

/// Acknowledge alarm `id` (operator role; an alarm outside the caller's scope is not found).
pub async fn ack(state: &AppState, caller: &Caller, id: &str) -> Result<Alarm> {
    caller.require(Role::Operator)?;
    let mut tx = state.store.begin_write().await?;
    let before = match store::alarms::get_in(&mut tx, id).await? {
        Some(a) if caller.in_scope(&a.area) => a,
        _ => return Err(Error::NotFound(format!("alarm {id}"))),
    };
    store::alarms::ack(&mut tx, id, &caller.username, now_ms()).await?;
    let after = store::alarms::get_in(&mut tx, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("alarm {id}")))?;
    let json = |a: &Alarm| serde_json::json!({"kind": a.kind, "subject": a.subject_id, "acked_at": a.acked_at, "acked_by": a.acked_by});
    store::audit::record(
        &mut tx,
        &caller.username,
        "alarm.ack",
        &format!("alarm:{id}"),
        Some(json(&before)),
        Some(json(&after)),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// An area's offline threshold as shown and set through the API.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AreaAlarmSettings {
    /// Area code (ignored on input).
    #[serde(default)]
    pub area: String,
    /// A device of the area offline this long raises `device_offline`, seconds (60 to 2592000).
    pub offline_after_s: u64,
    /// Where the value comes from: the area itself, an ancestor, or `null` for the configured
    /// default (ignored on input).
    #[serde(default)]
    pub from_area: Option<String>,
}

/// The offline threshold that applies to `area`.
pub async fn area_settings(state: &AppState, caller: &Caller, area: &str) -> Result<AreaAlarmSettings> {
    caller.check_area(area)?;
    let tree = store::areas::tree(&state.store).await?;
    if !tree.contains(area) {
        return Err(Error::NotFound(format!("area {area}")));
    }
    let own = store::alarms::area_offline_ms(&state.store).await?;
    let found = tree
        .chain(area)
        .into_iter()
        .find_map(|a| own.get(&a).map(|ms| (a, *ms)));
    Ok(match found {
        Some((from, ms)) => AreaAlarmSettings {
            area: area.to_string(),
            offline_after_s: (ms / 1000) as u64,
            from_area: Some(from),
        },
        None => AreaAlarmSettings {
            area: area.to_string(),
            offline_after_s: state.settings.alarms.offline_after_s,
            from_area: None,
        },
    })
}

/// Set (`Some`) or clear (`None`: the area takes its parent's again) an area's own offline
/// threshold (operator of the area).
pub async fn set_area_settings(
    state: &AppState,
    caller: &Caller,
    area: &str,
    v: Option<&AreaAlarmSettings>,
) -> Result<AreaAlarmSettings> {
    caller.require(Role::Operator)?;
    caller.check_area(area)?;
    if !store::areas::exists(&state.store, area).await? {
        return Err(Error::NotFound(format!("area {area}")));
    }
    if let Some(v) = v
        && !(60..=30 * 86_400).contains(&v.offline_after_s)
    {
        return Err(Error::unprocessable(
            "invalid_offline_after_s",
            "`offline_after_s`: must be between 60 and 2592000 seconds",
        ));
    }
    let secs = v.map(|v| v.offline_after_s as i64);
    let mut tx = state.store.begin_write().await?;
    let before = store::alarms::set_area_offline(&mut tx, area, secs, now_ms()).await?;
    let json = |s: Option<i64>| s.map(|s| serde_json::json!({"offline_after_s": s}));
    store::audit::record(
        &mut tx,
        &caller.username,
        "alarm.area_settings",
        &format!("area:{area}"),
        json(before),
        json(secs),
    )
    .await?;
    tx.commit().await?;
    area_settings(state, caller, area).await
}
