//! The console's alarm list (issue 12 §6): `/console/alarms` shows the alarms of the user's
//! areas, open ones first (critical first), with filters by state, area and kind, and an
//! acknowledge button (a CSRF-checked form, `POST /console/alarms/{id}/ack`, audited like the API
//! call). The count of open alarms is the badge of the menu (`Console::open_alarms`).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::console::{Console, PageError, PageForm, PageResult};
use crate::domain::alarm::AlarmKind;
use crate::domain::scope::Role;
use crate::services::AppState;
use crate::services::alarms::{self, ListQuery};

/// Routes of the alarm pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/alarms", get(alarms_page))
        .route("/console/alarms/{id}/ack", post(ack))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Filter {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    area: Option<String>,
    #[serde(default)]
    kind: Option<String>,
}

async fn alarms_page(c: Console, State(state): State<AppState>, Query(f): Query<Filter>) -> PageResult {
    let lang = c.lang;
    let q = ListQuery {
        state: f.state.clone().filter(|s| !s.is_empty()),
        area: f.area.clone().filter(|s| !s.is_empty()),
        kind: f.kind.clone().filter(|s| !s.is_empty()),
    };
    let list = alarms::list(&state, &c.caller, &q)
        .await
        .map_err(|e| PageError(e, lang))?;
    let areas: Vec<_> = crate::store::areas::list(&state.store, &c.caller)
        .await?
        .into_iter()
        .map(|a| json!({"code": a.code, "name": a.name}))
        .collect();
    let kinds: Vec<&str> = AlarmKind::ALL.iter().map(|k| k.as_str()).collect();
    c.page(
        "alarms.html",
        json!({
            "alarms": list,
            "areas": areas,
            "kinds": kinds,
            "filter": {"state": f.state.unwrap_or_default(), "area": f.area.unwrap_or_default(),
                       "kind": f.kind.unwrap_or_default()},
            "can_ack": c.caller.grants(Role::Operator),
        }),
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct AckForm {}

async fn ack(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(_f): PageForm<AckForm>,
) -> PageResult {
    alarms::ack(&state, &c.caller, &id)
        .await
        .map_err(|e| PageError(e, c.lang))?;
    Ok(super::done("/console/alarms", "alarm_acked"))
}
