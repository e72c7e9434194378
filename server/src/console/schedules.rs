//! The schedules page: the caller's schedules with their rules described in words, and the quick
//! form that creates a one-area schedule through `services::schedules` (the full editor is in
//! `admin_schedules`).

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::all_areas;
use super::media::media_rows;
use super::{Console, Lang, PageError, PageForm, PageResult, priority_str, see_other, visible_areas};
use crate::domain::review::ReviewStatus;
use crate::domain::schedule::{self, NewSchedule, RuleSpec, Schedule};
use crate::domain::scope::{Caller, Role};
use crate::error::{Error, Result};
use crate::services::{self, AppState};

/// Schedules whose every target is inside the caller's scope.
pub(super) async fn visible_schedules(state: &AppState, caller: &Caller) -> Result<Vec<Schedule>> {
    crate::store::schedules::load_visible(&state.store, caller).await
}

pub(super) fn targets_label(s: &Schedule) -> String {
    s.targets
        .areas
        .iter()
        .chain(s.targets.devices.iter())
        .cloned()
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) async fn schedules_page(c: Console, State(state): State<AppState>) -> PageResult {
    let areas = all_areas(&state).await?;
    let approved = media_rows(&state, &c.caller, Some(ReviewStatus::Approved)).await?;
    let list: Vec<Value> = visible_schedules(&state, &c.caller)
        .await?
        .iter()
        .map(|s| {
            let rule = match &s.rule {
                RuleSpec::Once { at } => at.clone(),
                RuleSpec::Cron { cron } => cron.clone(),
            };
            json!({"id": s.id, "title": s.title, "priority": priority_str(&s.priority), "targets": targets_label(s),
                   "rule": rule, "time_zone": s.time_zone, "enabled": s.enabled,
                   "describe": schedule::describe(&s.rule, c.lang == Lang::En)})
        })
        .collect();
    c.page(
        "schedules.html",
        json!({"schedules": list, "approved": approved, "areas": visible_areas(&c, &areas),
               "can_schedule": c.caller.role.grants(Role::Operator)}),
    )
}

#[derive(Deserialize)]
pub(super) struct ScheduleForm {
    title: String,
    media: String,
    area: String,
    #[serde(default)]
    priority: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    at: Option<String>,
    #[serde(default)]
    cron: Option<String>,
    #[serde(default)]
    time_zone: Option<String>,
}

pub(super) async fn create_schedule(
    c: Console,
    State(state): State<AppState>,
    PageForm(f): PageForm<ScheduleForm>,
) -> PageResult {
    let lang = c.lang;
    let step = async {
        c.caller.require(Role::Operator)?;
        c.caller.check_area(&f.area)?;
        let rule = match f.kind.as_deref() {
            Some("cron") => json!({"kind": "cron", "cron": f.cron.clone().unwrap_or_default()}),
            _ => json!({"kind": "once", "at": f.at.clone().unwrap_or_default()}),
        };
        let req = json!({
            "title": f.title, "media": [f.media], "targets": {"areas": [f.area]},
            "priority": f.priority.clone().unwrap_or_else(|| "normal".into()), "rule": rule,
            "time_zone": f.time_zone.clone().filter(|z| !z.trim().is_empty()),
        });
        let req: NewSchedule =
            serde_json::from_value(req).map_err(|e| Error::bad("invalid_field", e.to_string()))?;
        services::schedules::create(&state, &c.caller, req).await?;
        Ok::<_, Error>(())
    };
    step.await.map_err(|e| PageError(e, lang))?;
    Ok(see_other("/console/calendar?view=week"))
}
