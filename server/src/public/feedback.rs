//! The public feedback pages (issue 15): the form `GET /feedback` (a fresh proof-of-work
//! challenge in it, solved by `/feedback/feedback.js` when the citizen sends), `POST /feedback`
//! (the same multipart fields as `POST /api/v1/feedback`; a refusal shows the form again with
//! what was typed and the reason in Vietnamese, with the refusal's status), the status page by
//! tracking code `GET /feedback/track?code=` and `/feedback/track/{code}`, and the published
//! answers `GET /feedback/answers`. Nothing personal is shown on any of them.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::area::Area;
use crate::domain::feedback::{MAX_PHOTOS, MAX_TEXT_CHARS, NewFeedback};
use crate::error::{Error, Result};
use crate::http::throttle::ClientIp;
use crate::public::render;
use crate::services::AppState;
use crate::services::feedback as svc;

/// Routes of the feedback pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/feedback",
            get(form_page).post(send).layer(DefaultBodyLimit::disable()),
        )
        .route("/feedback/track", get(track_query))
        .route("/feedback/track/{code}", get(track_path))
        .route("/feedback/answers", get(answers))
        .route("/feedback/feedback.js", get(script))
        .route("/feedback/site.css", get(style))
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("static/feedback.js"),
    )
        .into_response()
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("static/site.css"),
    )
        .into_response()
}

fn page(status: StatusCode, name: &str, ctx: Value) -> Response {
    match render(name, ctx) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "public page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Lỗi máy chủ. Vui lòng thử lại sau.",
            )
                .into_response()
        }
    }
}

/// Areas as `code → "Name (parent's name)"`, for the select.
fn area_options(areas: &BTreeMap<String, Area>) -> Vec<Value> {
    let mut out: Vec<(String, String)> = areas
        .values()
        .map(|a| {
            let parent = a
                .parent
                .as_deref()
                .and_then(|p| areas.get(p))
                .map(|p| format!(" — {}", p.name))
                .unwrap_or_default();
            (format!("{}{parent}", a.name), a.code.clone())
        })
        .collect();
    out.sort();
    out.into_iter()
        .map(|(label, code)| json!({"code": code, "label": label}))
        .collect()
}

/// The form, with `error` and the fields typed so far.
async fn render_form(
    state: &AppState,
    status: StatusCode,
    error: Option<String>,
    typed: &NewFeedback,
) -> Result<Response> {
    let c = svc::challenge(state).await?;
    let areas = crate::store::areas::all(&state.store).await?;
    let policies: Vec<Value> = crate::store::policies::all(&state.store, true)
        .await?
        .into_iter()
        .map(|p| json!({"id": p.id, "title": p.title}))
        .collect();
    Ok(page(
        status,
        "feedback_form.html",
        json!({
            "error": error,
            "challenge": c.challenge,
            "bits": c.bits,
            "areas": area_options(&areas),
            "policies": policies,
            "max_text": MAX_TEXT_CHARS,
            "max_photos": MAX_PHOTOS,
            "photo_mb": state.settings.feedback.photo_max_kb.div_ceil(1024),
            "form": {"area": typed.area, "policy_id": typed.policy_id.clone().unwrap_or_default(), "text": typed.text,
                     "name": typed.name.clone().unwrap_or_default(),
                     "contact": typed.contact.clone().unwrap_or_default(), "show_name": typed.show_name},
        }),
    ))
}

#[derive(Debug, Deserialize)]
struct FormQuery {
    #[serde(default)]
    area: Option<String>,
    #[serde(default)]
    policy: Option<String>,
}

async fn form_page(State(state): State<AppState>, Query(q): Query<FormQuery>) -> Response {
    let typed = NewFeedback {
        area: q.area.unwrap_or_default(),
        policy_id: q.policy,
        ..Default::default()
    };
    render_form(&state, StatusCode::OK, None, &typed)
        .await
        .unwrap_or_else(|e| failure(&e))
}

fn failure(e: &Error) -> Response {
    tracing::error!(error = %e, "public feedback page");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "Lỗi máy chủ. Vui lòng thử lại sau.",
    )
        .into_response()
}

/// The status of a refusal and the message a citizen reads.
fn refusal(e: Error) -> (StatusCode, String) {
    if e.is_internal() {
        tracing::error!(error = %e, "feedback submission failed");
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Lỗi máy chủ, phản ánh chưa được lưu. Vui lòng thử lại sau.".into(),
        );
    }
    let message = e.to_string();
    (e.into_response().status(), message)
}

async fn send(State(state): State<AppState>, ClientIp(ip): ClientIp, mp: Multipart) -> Response {
    let s = match crate::http::feedback::read_submission(&state, mp).await {
        Ok(s) => s,
        Err(e) => {
            let (status, msg) = refusal(e);
            return render_form(&state, status, Some(msg), &NewFeedback::default())
                .await
                .unwrap_or_else(|e| failure(&e));
        }
    };
    let typed = s.fields.clone();
    match svc::submit(&state, ip, s).await {
        Ok(r) => page(StatusCode::CREATED, "feedback_done.html", json!({"code": r.code})),
        Err(e) => {
            let (status, msg) = refusal(e);
            render_form(&state, status, Some(msg), &typed)
                .await
                .unwrap_or_else(|e| failure(&e))
        }
    }
}

#[derive(Debug, Deserialize)]
struct TrackQuery {
    #[serde(default)]
    code: Option<String>,
}

async fn track_query(State(state): State<AppState>, Query(q): Query<TrackQuery>) -> Response {
    track_page(&state, q.code.unwrap_or_default()).await
}

async fn track_path(State(state): State<AppState>, Path(code): Path<String>) -> Response {
    track_page(&state, code).await
}

fn date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
                .format("%d/%m/%Y %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

async fn track_page(state: &AppState, code: String) -> Response {
    let code = code.trim().chars().take(40).collect::<String>();
    if code.is_empty() {
        return page(StatusCode::OK, "feedback_track.html", json!({"code": ""}));
    }
    match svc::track(state, &code).await {
        Ok(item) => {
            let area_name = crate::store::areas::get(&state.store, &item.area)
                .await
                .ok()
                .flatten()
                .map_or_else(|| item.area.clone(), |a| a.name);
            // The policy's title and page while it is public.
            let policy = match &item.policy_id {
                Some(p) => crate::store::policies::get(&state.store, p)
                    .await
                    .ok()
                    .flatten()
                    .filter(|p| p.published)
                    .map(|p| json!({"id": p.id, "title": p.title})),
                None => None,
            };
            page(
                StatusCode::OK,
                "feedback_track.html",
                json!({"code": item.code, "received": date(item.received_at),
                       "answered": item.answered_at.map(date), "area_name": area_name, "item": item,
                       "policy": policy}),
            )
        }
        Err(Error::NotFound(_)) => page(
            StatusCode::NOT_FOUND,
            "feedback_track.html",
            json!({"code": code, "error": format!("Không tìm thấy phản ánh có mã «{code}». Vui lòng kiểm tra lại mã theo dõi.")}),
        ),
        Err(e) => failure(&e),
    }
}

async fn answers(State(state): State<AppState>) -> Response {
    let (list, areas) = match (
        svc::published(&state, 100).await,
        crate::store::areas::all(&state.store).await,
    ) {
        (Ok(l), Ok(a)) => (l, a),
        (Err(e), _) | (_, Err(e)) => return failure(&e),
    };
    let items: Vec<Value> = list
        .into_iter()
        .map(|i| {
            let area_name = areas.get(&i.area).map_or_else(|| i.area.clone(), |a| a.name.clone());
            json!({"code": i.code, "text": i.text, "answer": i.answer, "name": i.name, "area_name": area_name})
        })
        .collect();
    page(StatusCode::OK, "feedback_answers.html", json!({"items": items}))
}
