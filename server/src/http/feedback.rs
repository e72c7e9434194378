//! The feedback API (issue 15). Public, no login: `GET /api/v1/feedback/challenge` (the
//! proof-of-work challenge), `POST /api/v1/feedback` (multipart: `area`, `policy_id`, `text`,
//! `name`, `contact`, `show_name`, `challenge`, `nonce`, up to three `photo` files),
//! `GET /api/v1/feedback/track/{code}` (status by tracking code) and
//! `GET /api/v1/feedback/published` (published answers). Staff: the queue
//! `GET /api/v1/feedback?status=&overdue=&organisation_id=`, `GET /api/v1/feedback/{id}`, its photos
//! `GET /api/v1/feedback/{id}/photos/{n}`, and `POST /api/v1/feedback/{id}/assign|answer|close`
//! (audited). Organisations: `GET/POST /api/v1/organisations`. The use cases are
//! `services::feedback`; [`read_submission`] also reads the public site's form.

use axum::extract::multipart::Field;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::domain::feedback::{self, Answer, Assign, Feedback, NewFeedback, Status, Tracked};
use crate::domain::organisation::{NewOrganisation, Organisation};
use crate::domain::report::engagement::{Engagement, FeedbackFigures, OrgSubmissions};
use crate::domain::text::clean_text;
use crate::error::{Error, Result};
use crate::http::auth::Caller;
use crate::http::json::ApiJson;
use crate::http::multipart::{OTHER_FIELD_MAX_BYTES, error as multipart_error};
use crate::http::throttle::ClientIp;
use crate::services::AppState;
use crate::services::feedback::{self as svc, Challenge, Received, Step, Submission, Upload};
use crate::store::feedback::Filter;

/// OpenAPI description of this module's endpoints (merged in `http::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        get_challenge,
        submit,
        track,
        published,
        list,
        get_one,
        get_photo,
        assign,
        answer,
        close,
        list_organisations,
        create_organisation,
        engagement_report
    ),
    components(schemas(
        Challenge,
        Received,
        Tracked,
        Feedback,
        Status,
        Assign,
        Answer,
        NewFeedback,
        Organisation,
        NewOrganisation,
        Engagement,
        FeedbackFigures,
        OrgSubmissions
    ))
)]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/feedback/challenge", get(get_challenge))
        .route(
            "/api/v1/feedback",
            get(list).post(submit).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/feedback/track/{code}", get(track))
        .route("/api/v1/feedback/published", get(published))
        .route("/api/v1/feedback/{id}", get(get_one))
        .route("/api/v1/feedback/{id}/photos/{n}", get(get_photo))
        .route("/api/v1/feedback/{id}/assign", post(assign))
        .route("/api/v1/feedback/{id}/answer", post(answer))
        .route("/api/v1/feedback/{id}/close", post(close))
        .route(
            "/api/v1/organisations",
            get(list_organisations).post(create_organisation),
        )
        .route("/api/v1/reports/engagement", get(engagement_report))
}

async fn bounded(
    max_upload_mb: u64,
    mut field: Field<'_>,
    max: usize,
    on_over: impl Fn() -> Error,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| multipart_error(max_upload_mb, &e))?
    {
        if out.len() + chunk.len() > max {
            return Err(on_over());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Read the public form's multipart body: text fields (each at most 64 KiB, checked for control
/// characters), photos stopped as soon as one passes `feedback.photo_max_kb` (413 in Vietnamese)
/// or a fourth one arrives (422). Empty file inputs are skipped.
pub async fn read_submission(state: &AppState, mut mp: Multipart) -> Result<Submission> {
    let mb = state.settings.max_upload_mb;
    let max_kb = state.settings.feedback.photo_max_kb;
    let mut s = Submission::default();
    while let Some(field) = mp.next_field().await.map_err(|e| multipart_error(mb, &e))? {
        let name = field.name().unwrap_or("").to_string();
        if name == "photo" {
            let file = field
                .file_name()
                .unwrap_or("ảnh")
                .chars()
                .filter(|c| !c.is_control())
                .take(100)
                .collect::<String>();
            let bytes = bounded(mb, field, (max_kb * 1024) as usize, || {
                svc::photo_too_large(&file, max_kb)
            })
            .await?;
            if bytes.is_empty() {
                continue;
            }
            if s.photos.len() == feedback::MAX_PHOTOS {
                return Err(svc::too_many_photos());
            }
            s.photos.push(Upload { name: file, bytes });
            continue;
        }
        let raw = bounded(mb, field, OTHER_FIELD_MAX_BYTES, || {
            Error::TooLarge(format!(
                "Trường «{name}» dài quá {} KB.",
                OTHER_FIELD_MAX_BYTES / 1024
            ))
        })
        .await?;
        let v = String::from_utf8(raw)
            .map_err(|_| Error::bad("invalid_text", format!("`{name}` is not UTF-8")))?;
        clean_text(&name, &v)?;
        match name.as_str() {
            "area" => s.fields.area = v,
            "policy_id" => s.fields.policy_id = Some(v),
            "text" => s.fields.text = v,
            "name" => s.fields.name = Some(v),
            "contact" => s.fields.contact = Some(v),
            "show_name" => s.fields.show_name = matches!(v.as_str(), "1" | "on" | "true" | "yes"),
            "challenge" => s.challenge = v,
            "nonce" => s.nonce = v,
            _ => {}
        }
    }
    Ok(s)
}

/// A proof-of-work challenge for one submission (public).
#[utoipa::path(get, path = "/api/v1/feedback/challenge", tag = "feedback", security(()),
    responses((status = 200, body = Challenge)))]
async fn get_challenge(State(state): State<AppState>) -> Result<Json<Challenge>> {
    Ok(Json(svc::challenge(&state).await?))
}

/// Send a citizen's feedback (public; multipart). Errors are in Vietnamese.
#[utoipa::path(post, path = "/api/v1/feedback", tag = "feedback", security(()),
    request_body(content_type = "multipart/form-data", description = "area, policy_id, text, name, contact, show_name, challenge, nonce, photo (0–3)"),
    responses((status = 201, body = Received), (status = 400, description = "no or bad proof of work"),
              (status = 409, description = "challenge used already"), (status = 413, description = "photo over the limit"),
              (status = 415, description = "not a JPEG, PNG or WebP photo"), (status = 422, description = "bad field"),
              (status = 429, description = "too many from this address")))]
async fn submit(State(state): State<AppState>, ClientIp(ip): ClientIp, mp: Multipart) -> Result<Response> {
    let s = read_submission(&state, mp).await?;
    let r = svc::submit(&state, ip, s).await?;
    Ok((StatusCode::CREATED, Json(r)).into_response())
}

/// The status of a feedback by its tracking code (public; never the name or contact).
#[utoipa::path(get, path = "/api/v1/feedback/track/{code}", tag = "feedback", security(()), params(("code" = String, Path)),
    responses((status = 200, body = Tracked), (status = 404)))]
async fn track(State(state): State<AppState>, Path(code): Path<String>) -> Result<Json<Tracked>> {
    Ok(Json(svc::track(&state, &code).await?))
}

/// Published answers, newest first (public).
#[utoipa::path(get, path = "/api/v1/feedback/published", tag = "feedback", security(()),
    responses((status = 200, body = [Tracked])))]
async fn published(State(state): State<AppState>) -> Result<Json<Vec<Tracked>>> {
    Ok(Json(svc::published(&state, 100).await?))
}

/// Filter of the queue.
#[derive(Debug, Deserialize, IntoParams)]
pub struct QueueFilter {
    /// received, assigned, answered or closed.
    pub status: Option<String>,
    /// `true`: only waiting items past their deadline.
    pub overdue: Option<bool>,
    /// Only items of this organisation.
    pub organisation_id: Option<String>,
    /// Only items about this policy.
    pub policy_id: Option<String>,
}

impl QueueFilter {
    /// As the store's filter (422 naming a bad status).
    pub fn filter(&self) -> Result<Filter> {
        Ok(Filter {
            status: match self.status.as_deref().filter(|s| !s.is_empty()) {
                Some(s) => Some(Status::parse(s, "status")?),
                None => None,
            },
            overdue: self.overdue.unwrap_or(false),
            organisation_id: self.organisation_id.clone().filter(|s| !s.is_empty()),
            policy_id: self.policy_id.clone().filter(|s| !s.is_empty()),
        })
    }
}

/// The moderation queue of the caller's areas: waiting items by deadline, then the others.
#[utoipa::path(get, path = "/api/v1/feedback", tag = "feedback", params(QueueFilter),
    responses((status = 200, body = [Feedback]), (status = 403)))]
async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<QueueFilter>,
) -> Result<Json<Vec<Feedback>>> {
    Ok(Json(svc::list(&state, &caller, &q.filter()?).await?))
}

/// One feedback (with its personal fields while they are kept).
#[utoipa::path(get, path = "/api/v1/feedback/{id}", tag = "feedback", params(("id" = String, Path)),
    responses((status = 200, body = Feedback), (status = 404)))]
async fn get_one(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Feedback>> {
    Ok(Json(svc::get(&state, &caller, &id).await?))
}

/// A photo of a feedback (JPEG, re-encoded without metadata).
#[utoipa::path(get, path = "/api/v1/feedback/{id}/photos/{n}", tag = "feedback",
    params(("id" = String, Path), ("n" = i64, Path)), responses((status = 200, description = "the photo", content_type = "image/jpeg"), (status = 404)))]
async fn get_photo(
    caller: Caller,
    State(state): State<AppState>,
    Path((id, n)): Path<(String, i64)>,
) -> Result<Response> {
    let bytes = svc::photo(&state, &caller, &id, n).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        bytes,
    )
        .into_response())
}

/// Give a feedback to the responsible organisation (editor, operator or approver; audited).
#[utoipa::path(post, path = "/api/v1/feedback/{id}/assign", tag = "feedback", params(("id" = String, Path)), request_body = Assign,
    responses((status = 200, body = Feedback), (status = 409, description = "answered or closed"), (status = 422)))]
async fn assign(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(a): ApiJson<Assign>,
) -> Result<Json<Feedback>> {
    Ok(Json(svc::moderate(&state, &caller, &id, Step::Assign(a)).await?))
}

/// Answer a feedback; `publish` also lists it among the public answers (audited).
#[utoipa::path(post, path = "/api/v1/feedback/{id}/answer", tag = "feedback", params(("id" = String, Path)), request_body = Answer,
    responses((status = 200, body = Feedback), (status = 409, description = "closed"), (status = 422)))]
async fn answer(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(a): ApiJson<Answer>,
) -> Result<Json<Feedback>> {
    Ok(Json(svc::moderate(&state, &caller, &id, Step::Answer(a)).await?))
}

/// Close a feedback (audited).
#[utoipa::path(post, path = "/api/v1/feedback/{id}/close", tag = "feedback", params(("id" = String, Path)),
    responses((status = 200, body = Feedback), (status = 409, description = "closed already")))]
async fn close(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Feedback>> {
    Ok(Json(svc::moderate(&state, &caller, &id, Step::Close).await?))
}

/// Every organisation.
#[utoipa::path(get, path = "/api/v1/organisations", tag = "organisations", responses((status = 200, body = [Organisation])))]
async fn list_organisations(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Vec<Organisation>>> {
    Ok(Json(svc::organisations(&state, &caller).await?))
}

/// Create an organisation (admin; audited).
#[utoipa::path(post, path = "/api/v1/organisations", tag = "organisations", request_body = NewOrganisation,
    responses((status = 201, body = Organisation), (status = 409, description = "name taken"), (status = 422)))]
async fn create_organisation(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(o): ApiJson<NewOrganisation>,
) -> Result<Response> {
    let org = svc::create_organisation(&state, &caller, &o).await?;
    Ok((StatusCode::CREATED, Json(org)).into_response())
}

/// Period of the engagement report.
#[derive(Debug, Deserialize, IntoParams)]
pub struct EngagementQuery {
    /// First day, `YYYY-MM-DD` (Asia/Ho_Chi_Minh).
    pub from: String,
    /// Last day, included.
    pub to: String,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// The report's engagement sections: feedback received, answered, overdue and the median
/// response time; submissions per organisation (issue 15). Also `format=csv`.
#[utoipa::path(get, path = "/api/v1/reports/engagement", tag = "reports", params(EngagementQuery),
    responses((status = 200, body = Engagement), (status = 400, description = "bad day")))]
async fn engagement_report(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<EngagementQuery>,
) -> Result<Response> {
    let e = crate::services::reports::engagement::engagement(&state, &caller, &q.from, &q.to).await?;
    if q.format.as_deref() == Some("csv") {
        let body = crate::services::reports::engagement::csv(&e)?;
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"engagement.csv\"",
                ),
            ],
            body,
        )
            .into_response());
    }
    Ok(Json(e).into_response())
}
