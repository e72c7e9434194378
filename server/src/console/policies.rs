//! The console's policy pages (issue 15): `/console/policies` lists the policies of the user's
//! areas with their current stage and flags those with a stage reached that nothing
//! communicated (a gap); editors create a policy there. `/console/policies/{id}` shows the
//! policy's timeline (each stage's dates, linked content, plays, devices, displays, public
//! items) and lets editors link content to a stage and approvers put the policy on the public
//! site. Every form is CSRF-checked and goes through `services::policies` (audited like the API).

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::console::{Console, PageError, PageForm, PageResult};
use crate::domain::policy::{Link, LinkKind, PolicyIn, Stage, StageDates};
use crate::domain::scope::Role;
use crate::services::AppState;
use crate::services::policies;

/// Routes of the policy pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/policies", get(list_page).post(create))
        .route("/console/policies/{id}", get(policy_page))
        .route("/console/policies/{id}/link", post(link))
        .route("/console/policies/{id}/publish", post(publish))
}

async fn list_page(c: Console, State(state): State<AppState>) -> PageResult {
    let lang = c.lang;
    let list = policies::list(&state.store, &c.caller)
        .await
        .map_err(|e| PageError(e, lang))?;
    let today = policies::today();
    let mut rows = Vec::with_capacity(list.len());
    for p in list {
        let cov = policies::coverage_of(&state.store, p, None, (today, today)).await?;
        rows.push(json!({
            "id": cov.policy.id, "title": cov.policy.title, "issuer": cov.policy.issuer,
            "stage": cov.policy.stage.as_str(), "published": cov.policy.published,
            "direct_impact": cov.policy.direct_impact,
            "gaps": cov.gaps.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        }));
    }
    let areas: Vec<_> = crate::store::areas::list(&state.store, &c.caller)
        .await?
        .into_iter()
        .map(|a| json!({"code": a.code, "name": a.name}))
        .collect();
    c.page(
        "policies.html",
        json!({
            "policies": rows,
            "areas": areas,
            "stages": Stage::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "can_edit": c.caller.grants(Role::Editor) || c.caller.grants(Role::Approver),
        }),
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct NewForm {
    title: String,
    issuer: String,
    #[serde(default)]
    doc_number: String,
    #[serde(default)]
    doc_url: String,
    field: String,
    #[serde(default)]
    groups: String,
    area: String,
    stage: String,
    #[serde(default)]
    starts_on: String,
    #[serde(default)]
    direct_impact: Option<String>,
}

fn list_of(s: &str) -> Vec<String> {
    s.split([',', ';'])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

async fn create(c: Console, State(state): State<AppState>, PageForm(f): PageForm<NewForm>) -> PageResult {
    let lang = c.lang;
    let stage = Stage::parse(&f.stage).map_err(|e| PageError(e, lang))?;
    let req = PolicyIn {
        title: Some(f.title),
        issuer: Some(f.issuer),
        doc_number: Some(f.doc_number),
        doc_url: Some(f.doc_url),
        field: Some(f.field),
        groups: Some(list_of(&f.groups)),
        areas: Some(vec![f.area]),
        summary: None,
        direct_impact: Some(f.direct_impact.is_some()),
        stage: Some(stage),
        stages: (!f.starts_on.trim().is_empty()).then(|| {
            vec![StageDates {
                stage,
                starts_on: f.starts_on.trim().to_string(),
                ends_on: None,
            }]
        }),
    };
    let p = policies::create(&state.store, &c.caller, req)
        .await
        .map_err(|e| PageError(e, lang))?;
    Ok(super::done(
        &format!("/console/policies/{}", p.id),
        "policy_saved",
    ))
}

async fn policy_page(c: Console, State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    let lang = c.lang;
    let cov = policies::coverage_for(&state.store, &c.caller, &id)
        .await
        .map_err(|e| PageError(e, lang))?;
    let feedback = crate::services::feedback::about_policy(&state, &c.caller, &id).await?;
    c.page(
        "policy.html",
        json!({
            "p": cov.policy,
            "stages": cov.stages,
            "links": cov.links,
            "gaps": cov.gaps,
            "kinds": ["bulletin", "media", "command", "cap"],
            "can_edit": c.caller.grants(Role::Editor) || c.caller.grants(Role::Approver) || c.caller.grants(Role::Operator),
            "can_publish": c.caller.grants(Role::Approver),
            "can_write": c.caller.grants(Role::Editor) || c.caller.grants(Role::Approver),
            "feedback": feedback,
        }),
    )
}

/// A link of content to a policy stage, as the policy page's link and unlink forms send it.
#[derive(Debug, Deserialize)]
pub(super) struct LinkForm {
    stage: String,
    kind: String,
    ref_id: String,
}

async fn link(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(f): PageForm<LinkForm>,
) -> PageResult {
    set_link(c, &state, &id, f, true).await
}

/// Link (`on`) or unlink the form's content and go back to the policy page with its flash.
pub(super) async fn set_link(c: Console, state: &AppState, id: &str, f: LinkForm, on: bool) -> PageResult {
    let lang = c.lang;
    let l = Link {
        stage: Stage::parse(&f.stage).map_err(|e| PageError(e, lang))?,
        kind: LinkKind::parse(&f.kind).map_err(|e| PageError(e, lang))?,
        ref_id: f.ref_id,
    };
    policies::link(&state.store, &c.caller, id, l, on)
        .await
        .map_err(|e| PageError(e, lang))?;
    let flash = if on { "policy_linked" } else { "policy_unlinked" };
    Ok(super::done(&format!("/console/policies/{id}"), flash))
}

#[derive(Debug, Deserialize)]
pub(super) struct PublishForm {
    publish: String,
}

async fn publish(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(f): PageForm<PublishForm>,
) -> PageResult {
    policies::set_published(&state.store, &c.caller, &id, f.publish == "1")
        .await
        .map_err(|e| PageError(e, c.lang))?;
    Ok(super::done(&format!("/console/policies/{id}"), "policy_saved"))
}
