//! The public site's pages (issue 15): `/` (newest bulletins, published policies, the areas),
//! `/khu-vuc/{code}` (an area's bulletins), `/chinh-sach` and `/chinh-sach/{id}` (published
//! policies and a policy's stages with its bulletins), `/ban-tin/{id}` (a bulletin with its audio
//! to listen again, images, short link and QR code). Only what `services::public` returns is
//! shown: approved bulletins on the boards and published policies; anything else is 404.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::{Feeds, day, error_page, page};
use crate::domain::policy::{Policy, Stage};
use crate::domain::shortlink;
use crate::error::Result;
use crate::services::AppState;
use crate::services::public;
use crate::store::public::PublicBulletin;

/// This module's templates.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("site_base.html", include_str!("templates/site_base.html")),
    ("site_list.html", include_str!("templates/site_list.html")),
    ("site_policies.html", include_str!("templates/site_policies.html")),
    ("site_policy.html", include_str!("templates/site_policy.html")),
    ("site_bulletin.html", include_str!("templates/site_bulletin.html")),
    ("site_error.html", include_str!("templates/site_error.html")),
];

/// This module's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/khu-vuc/{code}", get(area))
        .route("/chinh-sach", get(policies))
        .route("/chinh-sach/{id}", get(policy))
        .route("/ban-tin/{id}", get(bulletin))
}

/// A bulletin as the templates show it.
pub fn bulletin_view(state: &AppState, b: &PublicBulletin) -> Value {
    let v = b.variants.first();
    let code = shortlink::code(&b.id);
    json!({
        "id": b.id,
        "url": format!("/ban-tin/{}", b.id),
        "title": v.map(|v| v.title.clone()).unwrap_or_default(),
        "html": v.map(|v| v.html.clone()).unwrap_or_default(),
        "category": b.category,
        "priority": b.priority,
        "published": day(b.published_at),
        "audio": b.audio.iter().map(|a| json!({
            "language": a.language, "url": format!("/media/{}", a.sha256),
            "minutes": (a.duration_ms + 30_000) / 60_000,
        })).collect::<Vec<_>>(),
        "images": b.files.iter().filter(|f| f.kind == "image").map(|f| json!({"url": f.url, "name": f.filename})).collect::<Vec<_>>(),
        "attachments": b.files.iter().filter(|f| f.kind == "attachment").map(|f| json!({"url": f.url, "name": f.filename})).collect::<Vec<_>>(),
        "short_path": format!("/b/{code}"),
        "short_url": format!("{}/b/{code}", state.public_url),
        "qr_svg": format!("/b/{code}/qr.svg"),
        "qr_png": format!("/b/{code}/qr.png"),
    })
}

/// A policy as the templates show it, with its stages in order.
pub fn policy_view(p: &Policy) -> Value {
    let stages: Vec<Value> = Stage::ALL
        .iter()
        .map(|s| {
            let d = p.stages.iter().find(|d| d.stage == *s);
            json!({
                "label": s.label_vi(),
                "current": *s == p.stage,
                "done": *s < p.stage,
                "starts_on": d.map(|d| vn_day(&d.starts_on)),
                "ends_on": d.and_then(|d| d.ends_on.as_deref().map(vn_day)),
            })
        })
        .collect();
    json!({
        "id": p.id, "url": format!("/chinh-sach/{}", p.id), "title": p.title, "issuer": p.issuer,
        "doc_number": p.doc_number, "doc_url": p.doc_url, "field": p.field, "groups": p.groups,
        "summary": p.summary, "stage": p.stage.label_vi(), "stages": stages,
    })
}

/// `YYYY-MM-DD` as `dd/mm/yyyy`.
fn vn_day(d: &str) -> String {
    chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
        .map(|d| d.format("%d/%m/%Y").to_string())
        .unwrap_or_else(|_| d.to_string())
}

async fn home(State(state): State<AppState>) -> Response {
    home_page(&state).await.unwrap_or_else(error_page)
}

async fn home_page(state: &AppState) -> Result<Response> {
    let list = public::latest(state).await?;
    let ps = public::policies(state).await?;
    let areas = public::areas(state).await?;
    page(
        "site_list.html",
        json!({
            "title": "Thông tin cơ sở",
            "heading": "Bản tin mới",
            "bulletins": list.iter().map(|b| bulletin_view(state, b)).collect::<Vec<_>>(),
            "policies": ps.iter().take(10).map(policy_view).collect::<Vec<_>>(),
            "areas": areas.iter().map(|a| json!({"code": a.code, "name": a.name, "top": a.parent.is_none()})).collect::<Vec<_>>(),
            "feeds": Feeds::site(),
        }),
    )
}

async fn area(State(state): State<AppState>, Path(code): Path<String>) -> Response {
    area_page(&state, &code).await.unwrap_or_else(error_page)
}

async fn area_page(state: &AppState, code: &str) -> Result<Response> {
    let (a, list) = public::area(state, code).await?;
    page(
        "site_list.html",
        json!({
            "title": a.name,
            "heading": format!("Bản tin: {}", a.name),
            "bulletins": list.iter().map(|b| bulletin_view(state, b)).collect::<Vec<_>>(),
            "feeds": Feeds { base: format!("/feeds/khu-vuc/{}", a.code), title: format!("Bản tin {}", a.name) },
        }),
    )
}

async fn policies(State(state): State<AppState>) -> Response {
    policies_page(&state).await.unwrap_or_else(error_page)
}

async fn policies_page(state: &AppState) -> Result<Response> {
    let ps = public::policies(state).await?;
    page(
        "site_policies.html",
        json!({
            "title": "Chính sách",
            "policies": ps.iter().map(policy_view).collect::<Vec<_>>(),
            "feeds": Feeds::site(),
        }),
    )
}

async fn policy(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    policy_page(&state, &id).await.unwrap_or_else(error_page)
}

async fn policy_page(state: &AppState, id: &str) -> Result<Response> {
    let (p, list) = public::policy(state, id).await?;
    page(
        "site_policy.html",
        json!({
            "title": p.title,
            "policy": policy_view(&p),
            "bulletins": list.iter().map(|b| bulletin_view(state, b)).collect::<Vec<_>>(),
            "feeds": Feeds { base: format!("/feeds/chinh-sach/{}", p.id), title: format!("Chính sách: {}", p.title) },
        }),
    )
}

async fn bulletin(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    bulletin_page(&state, &id).await.unwrap_or_else(error_page)
}

async fn bulletin_page(state: &AppState, id: &str) -> Result<Response> {
    let (b, ps) = public::bulletin(state, id).await?;
    let view = bulletin_view(state, &b);
    page(
        "site_bulletin.html",
        json!({
            "title": view["title"].clone(),
            "b": view,
            "policies": ps.iter().map(policy_view).collect::<Vec<_>>(),
            "feeds": Feeds::site(),
        }),
    )
}
