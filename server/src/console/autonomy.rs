//! The console's commune autonomy page (Circular 39, issue 16; docs/autonomy.md):
//! `/console/autonomy` lists the province content awaiting the acceptance of the communes in the
//! user's scope ("Chờ xã tiếp nhận") with accept, decline (with a reason) and choose-a-slot
//! forms, the clashes of priority content with a commune's own item to order, and the answers
//! given. Each form (`POST /console/autonomy/{id}/answer`, CSRF-checked) is the API's answer use
//! case, audited the same way. Slots are typed in the server's time zone. An admin also turns a
//! commune's setting on or off there (`POST /console/autonomy/settings`).

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use chrono::NaiveDateTime;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::console::{Console, PageError, PageForm, PageResult};
use crate::domain::autonomy::{Answer, Decision, First, Kind, Request, State as QuestionState};
use crate::domain::schedule::local_to_utc;
use crate::domain::scope::Role;
use crate::error::Error;
use crate::services::AppState;
use crate::services::autonomy::{self, ListQuery};

/// Routes of the autonomy page.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/autonomy", get(page))
        .route("/console/autonomy/{id}/answer", post(answer))
        .route("/console/autonomy/settings", post(save_setting))
}

fn row(r: &Request, area_name: &str) -> Value {
    json!({
        "id": r.id, "area": r.area, "area_name": area_name, "kind": r.kind.as_str(),
        "title": r.title, "other_title": r.other_title, "state": r.state.as_str(),
        "first_at": r.first_at.map(|t| t.timestamp_millis()),
        "slot_at": r.slot_at.map(|t| t.timestamp_millis()),
        "reason": r.reason, "first": r.first.map(First::as_str), "outcome": r.outcome,
        "answered_at": r.answered_at.map(|t| t.timestamp_millis()), "answered_by": r.answered_by,
    })
}

async fn page(c: Console, State(state): State<AppState>) -> PageResult {
    let lang = c.lang;
    let all = autonomy::list(&state, &c.caller, &ListQuery::default())
        .await
        .map_err(|e| PageError(e, lang))?;
    let areas = crate::store::areas::list(&state.store, &c.caller).await?;
    let names: std::collections::HashMap<String, String> =
        areas.iter().map(|a| (a.code.clone(), a.name.clone())).collect();
    let is_admin = c.caller.grants(Role::Admin);
    let settings: Vec<Value> = if is_admin {
        crate::store::autonomy::settings(&state.store)
            .await?
            .into_iter()
            .filter(|s| s.enabled)
            .map(|s| {
                let name = names.get(&s.area).cloned().unwrap_or_else(|| s.area.clone());
                json!({"area": s.area, "name": name, "unanswered": s.unanswered.as_str()})
            })
            .collect()
    } else {
        Vec::new()
    };
    let communes: Vec<Value> = areas
        .iter()
        .filter(|a| a.parent.is_some())
        .map(|a| json!({"code": a.code, "name": a.name}))
        .collect();
    let name = |r: &Request| names.get(&r.area).cloned().unwrap_or_else(|| r.area.clone());
    let pending = |k: Kind| -> Vec<Value> {
        all.iter()
            .filter(|r| r.kind == k && r.state == QuestionState::Pending)
            .map(|r| row(r, &name(r)))
            .collect()
    };
    let answered: Vec<Value> = all
        .iter()
        .filter(|r| r.state != QuestionState::Pending)
        .take(100)
        .map(|r| row(r, &name(r)))
        .collect();
    c.page(
        "autonomy.html",
        json!({
            "acceptance": pending(Kind::Acceptance),
            "orders": pending(Kind::Order),
            "answered": answered,
            "can_answer": c.caller.grants(Role::Operator),
            "is_admin": is_admin,
            "settings": settings,
            "communes": communes,
        }),
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct AnswerForm {
    decision: String,
    #[serde(default)]
    reason: Option<String>,
    /// Local date-time (`YYYY-MM-DDTHH:MM`) in the server's time zone.
    #[serde(default)]
    slot: Option<String>,
    #[serde(default)]
    first: Option<String>,
}

async fn answer(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(f): PageForm<AnswerForm>,
) -> PageResult {
    let lang = c.lang;
    let decision = match f.decision.as_str() {
        "accept" => Decision::Accept,
        "decline" => Decision::Decline,
        "reslot" => Decision::Reslot,
        _ => Decision::Order,
    };
    let slot_at = match f.slot.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => {
            let local = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
                .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
                .map_err(|_| {
                    PageError(
                        Error::unprocessable("invalid_slot", "`slot`: a date and time"),
                        lang,
                    )
                })?;
            let tz: chrono_tz::Tz = state
                .settings
                .time_zone
                .parse()
                .unwrap_or(chrono_tz::Asia::Ho_Chi_Minh);
            Some(local_to_utc(tz, local))
        }
    };
    let a = Answer {
        decision,
        reason: f.reason,
        slot_at,
        first: f.first.as_deref().map(First::parse),
    };
    autonomy::answer(&state, &c.caller, &id, a)
        .await
        .map_err(|e| PageError(e, lang))?;
    Ok(super::done("/console/autonomy", "autonomy_answered"))
}

#[derive(Debug, Deserialize)]
pub(super) struct SettingForm {
    area: String,
    /// `1` when the commune decides on province content.
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    unanswered: Option<String>,
}

/// An admin turns a commune's decisions on or off (the API's use case, audited `area.autonomy`).
async fn save_setting(
    c: Console,
    State(state): State<AppState>,
    PageForm(f): PageForm<SettingForm>,
) -> PageResult {
    let req = crate::domain::autonomy::SettingIn {
        enabled: f.enabled.as_deref() == Some("1"),
        unanswered: f
            .unanswered
            .as_deref()
            .map(crate::domain::autonomy::Unanswered::parse),
    };
    autonomy::set_setting(&state, &c.caller, f.area.trim(), req)
        .await
        .map_err(|e| PageError(e, c.lang))?;
    Ok(super::done("/console/autonomy", "autonomy_saved"))
}
