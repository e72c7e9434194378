//! The console's policy editing (issue 15): `/console/policies/{id}/edit` edits a policy's
//! fields and each stage's dates, and the policy page's "unlink" buttons take content off a
//! stage. Editors and approvers of the policy's areas only; every form is CSRF-checked and goes
//! through `services::policies`, so each change is one transaction with its audit entry
//! (`policy.update`, `policy.unlink`) like the API's `PATCH /api/v1/policies/{id}` and
//! `DELETE /api/v1/policies/{id}/links`.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::console::policies::{LinkForm, set_link};
use crate::console::{Console, PageError, PageForm, PageResult};
use crate::domain::policy::{PolicyIn, Stage, StageDates};
use crate::error::Error;
use crate::services::AppState;
use crate::services::policies;

/// Routes of the edit page and the unlink action.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/policies/{id}/edit", get(edit_page).post(save))
        .route("/console/policies/{id}/unlink", post(unlink))
}

async fn edit_page(c: Console, State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    let lang = c.lang;
    let p = policies::get(&state.store, &c.caller, &id)
        .await
        .map_err(|e| PageError(e, lang))?;
    let stages: Vec<_> = Stage::ALL
        .iter()
        .map(|s| {
            let d = p.stages.iter().find(|d| d.stage == *s);
            json!({"stage": s.as_str(), "starts_on": d.map(|d| d.starts_on.clone()),
                   "ends_on": d.and_then(|d| d.ends_on.clone())})
        })
        .collect();
    c.page(
        "policy_edit.html",
        json!({"p": p, "stages": stages, "groups": p.groups.join(", "), "areas": p.areas.join(", ")}),
    )
}

/// The edit form: the fields, and `starts_on.<stage>` / `ends_on.<stage>` for each stage.
#[derive(Debug, Deserialize)]
pub(super) struct EditForm {
    title: String,
    issuer: String,
    #[serde(default)]
    doc_number: String,
    #[serde(default)]
    doc_url: String,
    field: String,
    #[serde(default)]
    groups: String,
    areas: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    direct_impact: String,
    stage: String,
    #[serde(flatten)]
    rest: HashMap<String, String>,
}

fn list_of(s: &str) -> Vec<String> {
    s.split([',', ';'])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// Each stage's dates from the form (a stage with an end but no start is refused, naming it).
fn dates(rest: &HashMap<String, String>) -> crate::error::Result<Vec<StageDates>> {
    let field = |k: String| rest.get(&k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mut out = Vec::new();
    for s in Stage::ALL {
        let start = field(format!("starts_on.{}", s.as_str()));
        let end = field(format!("ends_on.{}", s.as_str()));
        match (start, end) {
            (Some(a), e) => out.push(StageDates {
                stage: s,
                starts_on: a.to_string(),
                ends_on: e.map(str::to_string),
            }),
            (None, Some(_)) => {
                return Err(Error::unprocessable(
                    "invalid_policy",
                    format!(
                        "`stages[].starts_on`: giai đoạn «{}» có ngày kết thúc nhưng chưa có ngày bắt đầu",
                        s.label_vi()
                    ),
                ));
            }
            (None, None) => {}
        }
    }
    Ok(out)
}

async fn save(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(f): PageForm<EditForm>,
) -> PageResult {
    let lang = c.lang;
    let req = PolicyIn {
        title: Some(f.title),
        issuer: Some(f.issuer),
        doc_number: Some(f.doc_number),
        doc_url: Some(f.doc_url),
        field: Some(f.field),
        groups: Some(list_of(&f.groups)),
        areas: Some(list_of(&f.areas)),
        summary: Some(f.summary),
        direct_impact: Some(!f.direct_impact.is_empty()),
        stage: Some(Stage::parse(&f.stage).map_err(|e| PageError(e, lang))?),
        stages: Some(dates(&f.rest).map_err(|e| PageError(e, lang))?),
    };
    policies::update(&state.store, &c.caller, &id, req)
        .await
        .map_err(|e| PageError(e, lang))?;
    Ok(super::done(&format!("/console/policies/{id}"), "policy_saved"))
}

async fn unlink(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(f): PageForm<LinkForm>,
) -> PageResult {
    set_link(c, &state, &id, f, false).await
}
