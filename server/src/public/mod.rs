//! Layer `public`: the province's public site at `/` (issue 15), no login, Vietnamese, built on
//! `services::public`; it may import `http`, `services`, `store`, `domain` and the foundation.
//! Handlers here run no SQL.
//!
//! Pages ([`pages`]): the home page (newest bulletins, published policies, the areas), an area's
//! page, the policy list and a policy's page with its stages, a bulletin's page with its audio
//! (listen again), its QR code and short link. Feeds ([`feeds`]): RSS 2.0, Atom and JSON Feed,
//! site-wide, per area and per policy, with ETag / If-None-Match and Cache-Control. Short links
//! and QR codes ([`qr`]): `/b/{code}` → the bulletin's page, `/b/{code}/qr.svg` and `.png`.
//! Every page advertises its feeds (`<link rel="alternate">`, RSS and Atom) in `site_base.html`.
//!
//! **Where to add a public page** (e.g. the citizen feedback form): a module here with its
//! `routes()` merged in [`router`] and its templates added to [`TEMPLATE_SETS`]; templates extend
//! `site_base.html` and set `feeds` (see [`Feeds`]) in their context. Every successful GET of a
//! public route is counted once per path and day ([`count`]), without cookies.

mod feedback;
pub mod feeds;
pub mod pages;
pub mod qr;

use std::sync::OnceLock;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::services::AppState;

/// The templates of the public site, per module (a new public module adds its own slice).
pub const TEMPLATE_SETS: &[&[(&str, &str)]] = &[pages::TEMPLATES, FEEDBACK_TEMPLATES];

/// The citizen feedback pages' templates (`feedback`).
const FEEDBACK_TEMPLATES: &[(&str, &str)] = &[
    ("feedback_base.html", include_str!("templates/feedback_base.html")),
    ("feedback_form.html", include_str!("templates/feedback_form.html")),
    ("feedback_done.html", include_str!("templates/feedback_done.html")),
    (
        "feedback_track.html",
        include_str!("templates/feedback_track.html"),
    ),
    (
        "feedback_answers.html",
        include_str!("templates/feedback_answers.html"),
    ),
];

/// Render a public template with `ctx` (a JSON object) to a string.
pub fn render(name: &str, ctx: Value) -> Result<String> {
    let tmpl = env()
        .get_template(name)
        .map_err(Error::context(format!("template {name}")))?;
    tmpl.render(minijinja::Value::from_serialize(&ctx))
        .map_err(|e| Error::internal(format!("render {name}: {e:#}")))
}

/// The public site's stylesheet.
const SITE_CSS: &str = include_str!("static/site.css");

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for set in TEMPLATE_SETS {
            for (name, src) in *set {
                env.add_template(name, src).expect("public template parses");
            }
        }
        env.add_filter("day", |v: i64| day(v));
        env
    })
}

/// `dd/mm/yyyy HH:MM` in Vietnam time.
pub fn day(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .format("%d/%m/%Y %H:%M")
        .to_string()
}

/// The feeds a page advertises: their base path (`/feeds`, `/feeds/khu-vuc/08`, ...) and title.
#[derive(Debug, Clone, Serialize)]
pub struct Feeds {
    /// Base path; the feeds are `{base}/rss.xml`, `{base}/atom.xml` and `{base}/feed.json`.
    pub base: String,
    /// Title of the feeds.
    pub title: String,
}

impl Feeds {
    /// The site-wide feeds.
    pub fn site() -> Feeds {
        Feeds {
            base: "/feeds".into(),
            title: "Bản tin".into(),
        }
    }
}

/// Render a public page: `ctx` must hold `title` and `feeds` ([`Feeds`]).
pub fn page(name: &str, ctx: Value) -> Result<Response> {
    let tmpl = env()
        .get_template(name)
        .map_err(Error::context(format!("template {name}")))?;
    let html = tmpl
        .render(minijinja::Value::from_serialize(&ctx))
        .map_err(|e| Error::internal(format!("render {name}: {e:#}")))?;
    Ok((
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=60"),
        )],
        Html(html),
    )
        .into_response())
}

/// A public error page (404 or other), in Vietnamese, with the site's layout.
pub fn error_page(e: Error) -> Response {
    let status = e.into_response().status();
    let (title, text) = if status == StatusCode::NOT_FOUND {
        ("Không tìm thấy", "Trang bạn tìm không có hoặc chưa được công bố.")
    } else {
        ("Có lỗi", "Hệ thống đang bận, xin vui lòng thử lại sau.")
    };
    let ctx = serde_json::json!({"title": title, "text": text, "feeds": Feeds::site()});
    match page("site_error.html", ctx) {
        Ok(mut r) => {
            *r.status_mut() = status;
            r
        }
        Err(_) => status.into_response(),
    }
}

/// Middleware: count a successful GET (200 or 304) of a public route once, by its path
/// (`page:/chinh-sach`, `feed:/feeds/khu-vuc/08/rss.xml`); no cookie is read or set.
pub async fn count(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let counted = req.method() == Method::GET
        && req.extensions().get::<MatchedPath>().is_some()
        && !req.uri().path().starts_with("/site-assets/");
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    if counted && matches!(resp.status(), StatusCode::OK | StatusCode::NOT_MODIFIED) {
        let kind = if path.starts_with("/feeds") {
            "feed"
        } else if path.contains("/qr.") {
            "qr"
        } else {
            "page"
        };
        crate::services::public::count_hit(&state, &format!("{kind}:{path}")).await;
    }
    resp
}

/// The public site's routes, with hits counted.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .merge(pages::routes())
        .merge(feeds::routes())
        .merge(qr::routes())
        .merge(feedback::router())
        .route_layer(axum::middleware::from_fn_with_state(state, count))
        .route("/site-assets/site.css", axum::routing::get(css))
        .layer(crate::http::headers::console_csp())
}

async fn css() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        SITE_CSS,
    )
        .into_response()
}
