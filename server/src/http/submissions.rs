//! The submissions API (issue 15): `POST /api/v1/submissions` (a contributor; JSON, or
//! multipart with `title`, `body`, `policy_id`, `areas` (repeated or comma-separated) and `file`
//! parts), `GET /api/v1/submissions?status=&organisation_id=` (a contributor sees its
//! organisation's only), `GET/PATCH /api/v1/submissions/{id}`, the editorial steps
//! `POST /api/v1/submissions/{id}/receive|approve|reject|request-changes` and the contributor's
//! `…/resubmit`, the monthly tracking `GET /api/v1/submissions/monthly?month=YYYY-MM`, and
//! `POST /api/v1/organisations/{id}/members` (admin). All audited; use cases in
//! `services::submissions`.

use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::domain::submission::{
    Decision, MonthLine, Monthly, NewSubmission, Notice, Status, Step, Submission, SubmissionFile,
    SubmissionPatch,
};
use crate::domain::text::clean_text;
use crate::error::{Error, Result};
use crate::http::auth::Caller;
use crate::http::json::ApiJson;
use crate::http::multipart::{OTHER_FIELD_MAX_BYTES, error as multipart_error};
use crate::services::AppState;
use crate::services::submissions::{self as svc, FileIn};

/// OpenAPI description of this module's endpoints (merged in `http::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        create,
        list,
        monthly,
        get_one,
        patch,
        receive,
        approve,
        reject,
        request_changes,
        resubmit,
        add_member
    ),
    components(schemas(
        Submission,
        SubmissionFile,
        Notice,
        Status,
        NewSubmission,
        SubmissionPatch,
        Decision,
        Monthly,
        MonthLine,
        Member
    ))
)]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/submissions",
            get(list).post(create).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/submissions/monthly", get(monthly))
        .route("/api/v1/submissions/{id}", get(get_one).patch(patch))
        .route("/api/v1/submissions/{id}/receive", post(receive))
        .route("/api/v1/submissions/{id}/approve", post(approve))
        .route("/api/v1/submissions/{id}/reject", post(reject))
        .route("/api/v1/submissions/{id}/request-changes", post(request_changes))
        .route("/api/v1/submissions/{id}/resubmit", post(resubmit))
        .route("/api/v1/organisations/{id}/members", post(add_member))
}

/// Read a multipart submission: its fields and files (each within `max_upload_mb`). A console
/// form passes its session's `csrf` caller: the `csrf` field must then come first and match.
pub async fn read_multipart(
    state: &AppState,
    mut mp: Multipart,
    csrf: Option<&Caller>,
) -> Result<(NewSubmission, Vec<FileIn>)> {
    let mb = state.settings.max_upload_mb;
    let mut s = NewSubmission::default();
    let mut files = Vec::new();
    let mut checked = csrf.is_none();
    while let Some(mut field) = mp.next_field().await.map_err(|e| multipart_error(mb, &e))? {
        let name = field.name().unwrap_or("").to_string();
        if !checked {
            let c = csrf.ok_or_else(|| Error::internal("csrf caller"))?;
            if name != "csrf" {
                c.check_csrf("", crate::http::form::CSRF_REFUSAL)?;
            }
            let v = field.text().await.map_err(|e| multipart_error(mb, &e))?;
            c.check_csrf(&v, crate::http::form::CSRF_REFUSAL)?;
            checked = true;
            continue;
        }
        let is_file = name == "file";
        let max = if is_file {
            (mb * 1024 * 1024) as usize
        } else {
            OTHER_FIELD_MAX_BYTES
        };
        let filename = field
            .file_name()
            .unwrap_or("file")
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect::<String>();
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(mb, &e))? {
            if bytes.len() + chunk.len() > max {
                return Err(Error::TooLarge(format!(
                    "multipart field `{name}` is larger than {max} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        if is_file {
            if !bytes.is_empty() {
                files.push(FileIn { filename, bytes });
            }
            continue;
        }
        let v = String::from_utf8(bytes)
            .map_err(|_| Error::bad("invalid_text", format!("`{name}` is not UTF-8")))?;
        clean_text(&name, &v)?;
        match name.as_str() {
            "title" => s.title = v,
            "body" => s.body = v,
            "policy_id" => s.policy_id = Some(v),
            "areas" => s.areas.extend(
                v.split(',')
                    .map(|a| a.trim().to_string())
                    .filter(|a| !a.is_empty()),
            ),
            _ => {}
        }
    }
    Ok((s, files))
}

/// Send a submission (contributor of an organisation): JSON [`NewSubmission`] or multipart with files.
#[utoipa::path(post, path = "/api/v1/submissions", tag = "submissions", request_body = NewSubmission,
    responses((status = 201, body = Submission), (status = 403, description = "not a contributor of an organisation"),
              (status = 413), (status = 415, description = "a file that is neither audio, picture, video nor PDF"), (status = 422)))]
async fn create(caller: Caller, State(state): State<AppState>, req: Request) -> Result<Response> {
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let (s, files) = if multipart {
        let mp = Multipart::from_request(req, &state)
            .await
            .map_err(|e| Error::bad("bad_multipart", e.body_text()))?;
        read_multipart(&state, mp, None).await?
    } else {
        let ApiJson(s) = ApiJson::<NewSubmission>::from_request(req, &state).await?;
        (s, Vec::new())
    };
    let sub = svc::create(&state, &caller, &s, files).await?;
    Ok((StatusCode::CREATED, Json(sub)).into_response())
}

/// Filter of the list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ListFilter {
    /// One status.
    pub status: Option<String>,
    /// One organisation (staff only; a contributor sees its own anyway).
    pub organisation_id: Option<String>,
}

/// Submissions, newest first: a contributor's organisation's, or (staff) every one.
#[utoipa::path(get, path = "/api/v1/submissions", tag = "submissions", params(ListFilter),
    responses((status = 200, body = [Submission])))]
async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Query(f): Query<ListFilter>,
) -> Result<Json<Vec<Submission>>> {
    let status = match f.status.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(Status::parse(s, "status")?),
        None => None,
    };
    Ok(Json(
        svc::list(
            &state,
            &caller,
            f.organisation_id.as_deref().filter(|s| !s.is_empty()),
            status,
        )
        .await?,
    ))
}

/// `?month=YYYY-MM`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct MonthQuery {
    /// The month (default: the current one in Asia/Ho_Chi_Minh).
    pub month: Option<String>,
}

/// Submissions per organisation in a month, with the organisations that sent none (staff).
#[utoipa::path(get, path = "/api/v1/submissions/monthly", tag = "submissions", params(MonthQuery),
    responses((status = 200, body = Monthly), (status = 422, description = "bad month")))]
async fn monthly(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<MonthQuery>,
) -> Result<Json<Monthly>> {
    let month = q.month.filter(|m| !m.is_empty()).unwrap_or_else(|| {
        chrono::Utc::now()
            .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
            .format("%Y-%m")
            .to_string()
    });
    Ok(Json(svc::monthly(&state, &caller, &month).await?))
}

/// One submission (a contributor: its organisation's only).
#[utoipa::path(get, path = "/api/v1/submissions/{id}", tag = "submissions", params(("id" = String, Path)),
    responses((status = 200, body = Submission), (status = 404)))]
async fn get_one(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Submission>> {
    Ok(Json(svc::get(&state, &caller, &id).await?))
}

/// Edit: an editor while open, the contributor while changes are requested.
#[utoipa::path(patch, path = "/api/v1/submissions/{id}", tag = "submissions", params(("id" = String, Path)),
    request_body = SubmissionPatch, responses((status = 200, body = Submission), (status = 409)))]
async fn patch(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(p): ApiJson<SubmissionPatch>,
) -> Result<Json<Submission>> {
    Ok(Json(svc::edit(&state, &caller, &id, &p).await?))
}

async fn step(
    state: &AppState,
    caller: &Caller,
    id: &str,
    s: Step,
    note: Option<String>,
) -> Result<Json<Submission>> {
    Ok(Json(svc::step(state, caller, id, s, note).await?))
}

/// Take a submission into the editorial queue (editor or approver).
#[utoipa::path(post, path = "/api/v1/submissions/{id}/receive", tag = "submissions", params(("id" = String, Path)),
    responses((status = 200, body = Submission), (status = 403), (status = 409)))]
async fn receive(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Submission>> {
    step(&state, &caller, &id, Step::Receive, None).await
}

/// Approve (approver role): a draft bulletin is made of it, for the bulletins' own review.
#[utoipa::path(post, path = "/api/v1/submissions/{id}/approve", tag = "submissions", params(("id" = String, Path)),
    responses((status = 200, body = Submission), (status = 403, description = "not an approver (a contributor never is)"), (status = 409)))]
async fn approve(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Submission>> {
    step(&state, &caller, &id, Step::Approve, None).await
}

/// Reject with a reason (editor or approver).
#[utoipa::path(post, path = "/api/v1/submissions/{id}/reject", tag = "submissions", params(("id" = String, Path)),
    request_body = Decision, responses((status = 200, body = Submission), (status = 400, description = "no note"), (status = 409)))]
async fn reject(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(d): ApiJson<Decision>,
) -> Result<Json<Submission>> {
    step(&state, &caller, &id, Step::Reject, d.note).await
}

/// Send back with the changes wanted (editor or approver).
#[utoipa::path(post, path = "/api/v1/submissions/{id}/request-changes", tag = "submissions", params(("id" = String, Path)),
    request_body = Decision, responses((status = 200, body = Submission), (status = 400, description = "no note"), (status = 409)))]
async fn request_changes(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(d): ApiJson<Decision>,
) -> Result<Json<Submission>> {
    step(&state, &caller, &id, Step::RequestChanges, d.note).await
}

/// Send again after changes were requested (the contributor).
#[utoipa::path(post, path = "/api/v1/submissions/{id}/resubmit", tag = "submissions", params(("id" = String, Path)),
    responses((status = 200, body = Submission), (status = 409)))]
async fn resubmit(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Submission>> {
    step(&state, &caller, &id, Step::Resubmit, None).await
}

/// Body of `POST /api/v1/organisations/{id}/members`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// The user (give it the `contributor` role).
    pub user_id: String,
}

/// Make a user a contributor account of an organisation (admin).
#[utoipa::path(post, path = "/api/v1/organisations/{id}/members", tag = "organisations", params(("id" = String, Path)),
    request_body = Member, responses((status = 204), (status = 404), (status = 422)))]
async fn add_member(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(m): ApiJson<Member>,
) -> Result<StatusCode> {
    svc::add_member(&state, &caller, &id, &m.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
