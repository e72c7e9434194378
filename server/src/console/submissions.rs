//! The console's submissions pages (issue 15): `/console/submissions` (a contributor: its
//! organisation's submissions and the form to send one, multipart with files, CSRF field
//! first; staff: the editorial queue with a status filter), `/console/submissions/{id}` (the
//! submission with its files and notices; staff: edit, receive, approve, reject, request changes;
//! the contributor: edit and send again after changes were requested) and
//! `/console/submissions/monthly` (submissions per organisation, who has not submitted).

use axum::Router;
use axum::extract::{Multipart, Path, Query, State};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::console::{Console, PageError, PageForm, PageResult};
use crate::domain::scope::Role;
use crate::domain::submission::{Status, Step, SubmissionPatch};
use crate::services::AppState;
use crate::services::submissions as svc;

/// Routes of the submissions pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/console/submissions",
            get(list)
                .post(create)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/console/submissions/monthly", get(monthly))
        .route("/console/submissions/{id}", get(one))
        .route("/console/submissions/{id}/edit", post(edit))
        .route("/console/submissions/{id}/step", post(step))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    status: Option<String>,
}

async fn list(c: Console, State(state): State<AppState>, Query(q): Query<ListQuery>) -> PageResult {
    let lang = c.lang;
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(Status::parse(s, "status").map_err(|e| PageError(e, lang))?),
        None => None,
    };
    let subs = svc::list(&state, &c.caller, None, status)
        .await
        .map_err(|e| PageError(e, lang))?;
    let orgs = crate::store::organisations::list(&state.store).await?;
    let org_name = |id: &str| {
        orgs.iter()
            .find(|o| o.id == id)
            .map_or_else(|| id.to_string(), |o| o.name.clone())
    };
    let rows: Vec<_> = subs
        .iter()
        .map(|s| {
            json!({"id": s.id, "title": s.title, "org": org_name(&s.organisation_id), "status": s.status,
                         "created_at": s.created_at, "author": s.author})
        })
        .collect();
    let areas: Vec<_> = super::all_areas(&state)
        .await?
        .into_values()
        .map(|a| json!({"code": a.code, "name": a.name}))
        .collect();
    let statuses: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    c.page(
        "submissions.html",
        json!({"items": rows, "areas": areas, "statuses": statuses, "filter": q.status.unwrap_or_default(),
               "policies": policy_options(&state).await?,
               "contributor": c.caller.grants(Role::Contributor) && !c.caller.grants(Role::Viewer),
               "staff": c.caller.grants(Role::Viewer)}),
    )
}

/// The policies a submission may name (id, title), newest first.
async fn policy_options(state: &AppState) -> crate::error::Result<Vec<serde_json::Value>> {
    Ok(crate::store::policies::all(&state.store, false)
        .await?
        .into_iter()
        .map(|p| json!({"id": p.id, "title": p.title}))
        .collect())
}

async fn create(c: Console, State(state): State<AppState>, mp: Multipart) -> PageResult {
    let lang = c.lang;
    let (s, files) = crate::http::submissions::read_multipart(&state, mp, Some(&c.caller))
        .await
        .map_err(|e| PageError(e, lang))?;
    let sub = svc::create(&state, &c.caller, &s, files)
        .await
        .map_err(|e| PageError(e, lang))?;
    Ok(super::done(
        &format!("/console/submissions/{}", sub.id),
        "submission_sent",
    ))
}

async fn one(c: Console, State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    let lang = c.lang;
    let s = svc::get(&state, &c.caller, &id)
        .await
        .map_err(|e| PageError(e, lang))?;
    let org = crate::store::organisations::get(&state.store, &s.organisation_id).await?;
    let staff = c.caller.grants(Role::Viewer);
    let editor = c.caller.require_any(&[Role::Editor, Role::Approver]).is_ok();
    c.page(
        "submission.html",
        json!({"s": s, "org": org.map(|o| o.name), "staff": staff, "editor": editor,
               "policies": policy_options(&state).await?,
               "approver": c.caller.grants(Role::Approver), "areas_text": s.areas.join(", ")}),
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct EditForm {
    title: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    policy_id: String,
    #[serde(default)]
    areas: String,
}

async fn edit(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(f): PageForm<EditForm>,
) -> PageResult {
    let p = SubmissionPatch {
        title: Some(f.title),
        body: Some(f.body),
        policy_id: Some(f.policy_id),
        areas: Some(
            f.areas
                .split(',')
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty())
                .collect(),
        ),
    };
    svc::edit(&state, &c.caller, &id, &p)
        .await
        .map_err(|e| PageError(e, c.lang))?;
    Ok(super::done(
        &format!("/console/submissions/{id}"),
        "submission_done",
    ))
}

#[derive(Debug, Deserialize)]
pub(super) struct StepForm {
    step: String,
    #[serde(default)]
    note: Option<String>,
}

async fn step(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(f): PageForm<StepForm>,
) -> PageResult {
    let step = match f.step.as_str() {
        "receive" => Step::Receive,
        "approve" => Step::Approve,
        "reject" => Step::Reject,
        "request_changes" => Step::RequestChanges,
        "resubmit" => Step::Resubmit,
        other => {
            return Err(PageError(
                crate::error::Error::bad("invalid_step", format!("`step`: `{other}` is not a step")),
                c.lang,
            ));
        }
    };
    svc::step(&state, &c.caller, &id, step, f.note)
        .await
        .map_err(|e| PageError(e, c.lang))?;
    Ok(super::done(
        &format!("/console/submissions/{id}"),
        "submission_done",
    ))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct MonthQuery {
    #[serde(default)]
    month: Option<String>,
}

async fn monthly(c: Console, State(state): State<AppState>, Query(q): Query<MonthQuery>) -> PageResult {
    let month = q.month.filter(|m| !m.is_empty()).unwrap_or_else(|| {
        chrono::Utc::now()
            .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
            .format("%Y-%m")
            .to_string()
    });
    let m = svc::monthly(&state, &c.caller, &month)
        .await
        .map_err(|e| PageError(e, c.lang))?;
    c.page("submissions_monthly.html", json!({"m": m}))
}
