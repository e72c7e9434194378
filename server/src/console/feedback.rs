//! The console's moderation of citizens' feedback (issue 15): `/console/feedback` (the queue of
//! the user's areas, waiting items by deadline first, filters by status and overdue) and
//! `/console/feedback/{id}` (the item with its photos and, while kept, the sender's name and
//! contact; forms to assign it to an organisation, answer it, optionally publishing the answer,
//! and close it: CSRF-checked, audited like the API calls).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::console::{Console, PageError, PageForm, PageResult};
use crate::domain::feedback::{Answer, Assign, Status};
use crate::domain::scope::Role;
use crate::services::AppState;
use crate::services::feedback::{self as svc, Step};
use crate::store::feedback::Filter;

/// Routes of the feedback pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/feedback", get(queue))
        .route("/console/feedback/{id}", get(item))
        .route("/console/feedback/{id}/assign", post(assign))
        .route("/console/feedback/{id}/answer", post(answer))
        .route("/console/feedback/{id}/close", post(close))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct QueueQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    overdue: Option<String>,
    #[serde(default)]
    policy: Option<String>,
}

async fn queue(c: Console, State(state): State<AppState>, Query(q): Query<QueueQuery>) -> PageResult {
    let lang = c.lang;
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(Status::parse(s, "status").map_err(|e| PageError(e, lang))?),
        None => None,
    };
    let overdue = q.overdue.as_deref().is_some_and(|v| !v.is_empty());
    let f = Filter {
        status,
        overdue,
        organisation_id: None,
        policy_id: q.policy.clone().filter(|p| !p.is_empty()),
    };
    let list = svc::list(&state, &c.caller, &f)
        .await
        .map_err(|e| PageError(e, lang))?;
    let areas = super::all_areas(&state).await?;
    let rows: Vec<_> = list
        .iter()
        .map(|f| {
            let area = areas
                .get(&f.area)
                .map_or_else(|| f.area.clone(), |a| a.name.clone());
            let short: String = f.text.chars().take(140).collect();
            json!({"id": f.id, "code": f.code, "area": area, "text": short, "status": f.status,
                   "received_at": f.received_at, "due_at": f.due_at, "overdue": f.overdue})
        })
        .collect();
    let statuses: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    c.page(
        "feedback.html",
        json!({"items": rows, "statuses": statuses,
               "filter": {"status": q.status.unwrap_or_default(), "overdue": overdue,
                          "policy": q.policy.unwrap_or_default()}}),
    )
}

async fn item(c: Console, State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    let lang = c.lang;
    let f = svc::get(&state, &c.caller, &id)
        .await
        .map_err(|e| PageError(e, lang))?;
    let orgs = svc::organisations(&state, &c.caller)
        .await
        .map_err(|e| PageError(e, lang))?;
    let areas = super::all_areas(&state).await?;
    let area = areas
        .get(&f.area)
        .map_or_else(|| f.area.clone(), |a| a.name.clone());
    let org_name = f
        .organisation_id
        .as_ref()
        .and_then(|o| orgs.iter().find(|x| &x.id == o))
        .map(|o| o.name.clone());
    let can = c
        .caller
        .require_any(&[Role::Editor, Role::Operator, Role::Approver])
        .is_ok();
    // The policy it is about, linked when the moderator sees it (its id only otherwise).
    let policy = match &f.policy_id {
        Some(p) => crate::services::policies::get(&state.store, &c.caller, p)
            .await
            .ok()
            .map(|p| json!({"id": p.id, "title": p.title})),
        None => None,
    };
    c.page(
        "feedback_item.html",
        json!({"f": f, "area": area, "orgs": orgs, "org_name": org_name, "can_moderate": can,
               "policy": policy}),
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct AssignForm {
    organisation_id: String,
}

async fn assign(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(f): PageForm<AssignForm>,
) -> PageResult {
    let step = Step::Assign(Assign {
        organisation_id: f.organisation_id,
    });
    svc::moderate(&state, &c.caller, &id, step)
        .await
        .map_err(|e| PageError(e, c.lang))?;
    Ok(super::done(
        &format!("/console/feedback/{id}"),
        "feedback_assigned",
    ))
}

#[derive(Debug, Deserialize)]
pub(super) struct AnswerForm {
    answer: String,
    #[serde(default)]
    publish: Option<String>,
}

async fn answer(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(f): PageForm<AnswerForm>,
) -> PageResult {
    let step = Step::Answer(Answer {
        answer: f.answer,
        publish: f.publish.is_some_and(|v| !v.is_empty()),
    });
    svc::moderate(&state, &c.caller, &id, step)
        .await
        .map_err(|e| PageError(e, c.lang))?;
    Ok(super::done(
        &format!("/console/feedback/{id}"),
        "feedback_answered",
    ))
}

#[derive(Debug, Deserialize)]
pub(super) struct CloseForm {}

async fn close(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(_f): PageForm<CloseForm>,
) -> PageResult {
    svc::moderate(&state, &c.caller, &id, Step::Close)
        .await
        .map_err(|e| PageError(e, c.lang))?;
    Ok(super::done(&format!("/console/feedback/{id}"), "feedback_closed"))
}
