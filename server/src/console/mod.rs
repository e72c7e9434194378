//! The operator console (issue 7): a Vietnamese-first, server-rendered web app under `/console`
//! for editors, approvers, operators and admins. Templates are minijinja (auto-escaping `.html`)
//! embedded with `include_str!`; every string comes from [`i18n`]; a few lines of vendored JS
//! (`static/console.js`) add the upload progress bar. Every page needs a session (else a redirect
//! to the login page); every form carries the session's CSRF token (else 403); errors render an
//! error page, not JSON. Users see and target only their area subtree.
//!
//! Layer `console`: pages built on `services` and the `http` extractors; it may import `http`,
//! `services`, `store`, `domain` and the foundation. This file holds the router, the shared
//! rendering (templates, [`Console`], [`PageError`], language) and small shared helpers; each
//! page group has its own file.

mod admin;
mod admin_areas;
mod admin_devices;
mod admin_schedules;
mod admin_users;
mod alarms;
mod alerts;
mod audit;
mod autonomy;
mod bulletins;
mod calendar;
mod commands;
mod dashboard;
mod devices;
mod feedback;
pub mod i18n;
mod live;
mod login;
mod media;
mod policies;
mod policy_edit;
pub mod reports;
mod rollouts;
mod schedule_form;
mod schedules;
mod submissions;
mod users;
mod voices;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::Router;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;
use minijinja::Environment;
use serde::Deserialize;
use serde_json::{Value, json};

pub use crate::domain::area::Area as AreaInfo;
use crate::error::{Error, Result};
use crate::http::auth::{Caller, Via, cookie};
use crate::http::form::{CSRF_REFUSAL, CsrfForm};
use crate::services::AppState;
pub use crate::store::devices::DeviceRow;
pub use i18n::Lang;

/// All areas by code (`store::areas::all`).
pub async fn all_areas(state: &AppState) -> Result<BTreeMap<String, AreaInfo>> {
    crate::store::areas::all(&state.store).await
}

/// Devices inside the caller's scope (`store::devices::scoped`).
pub async fn scoped_devices(state: &AppState, caller: &Caller) -> Result<Vec<DeviceRow>> {
    crate::store::devices::scoped(&state.store, caller).await
}

/// Every template, by name (embedded at build time).
pub(crate) const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("error.html", include_str!("templates/error.html")),
    ("dashboard.html", include_str!("templates/dashboard.html")),
    ("plays.html", include_str!("templates/plays.html")),
    ("media.html", include_str!("templates/media.html")),
    ("media_detail.html", include_str!("templates/media_detail.html")),
    (
        "review_buttons.html",
        include_str!("templates/review_buttons.html"),
    ),
    ("approvals.html", include_str!("templates/approvals.html")),
    ("schedules.html", include_str!("templates/schedules.html")),
    ("calendar.html", include_str!("templates/calendar.html")),
    ("devices.html", include_str!("templates/devices.html")),
    ("device.html", include_str!("templates/device.html")),
    ("areas.html", include_str!("templates/areas.html")),
    ("users.html", include_str!("templates/users.html")),
    ("user_edit.html", include_str!("templates/user_edit.html")),
    ("schedule_edit.html", include_str!("templates/schedule_edit.html")),
    ("device_edit.html", include_str!("templates/device_edit.html")),
    ("report_body.html", include_str!("templates/report_body.html")),
    ("reports_print.html", include_str!("templates/reports_print.html")),
    ("audit.html", include_str!("templates/audit.html")),
    ("reports.html", include_str!("templates/reports.html")),
    ("bulletins.html", include_str!("templates/bulletins.html")),
    ("bulletin_edit.html", include_str!("templates/bulletin_edit.html")),
    ("commands.html", include_str!("templates/commands.html")),
    ("command.html", include_str!("templates/command.html")),
    ("command_live.html", include_str!("templates/command_live.html")),
    ("alarms.html", include_str!("templates/alarms.html")),
    ("autonomy.html", include_str!("templates/autonomy.html")),
    ("rollouts.html", include_str!("templates/rollouts.html")),
    ("rollout.html", include_str!("templates/rollout.html")),
    ("alerts.html", include_str!("templates/alerts.html")),
    ("alert.html", include_str!("templates/alert.html")),
    ("live.html", include_str!("templates/live.html")),
    ("feedback.html", include_str!("templates/feedback.html")),
    ("feedback_item.html", include_str!("templates/feedback_item.html")),
    ("submissions.html", include_str!("templates/submissions.html")),
    ("submission.html", include_str!("templates/submission.html")),
    (
        "submissions_monthly.html",
        include_str!("templates/submissions_monthly.html"),
    ),
    ("policies.html", include_str!("templates/policies.html")),
    ("policy.html", include_str!("templates/policy.html")),
    ("policy_edit.html", include_str!("templates/policy_edit.html")),
];

pub(crate) const LOGIN_CSRF_COOKIE: &str = "nguon_login_csrf";
const LANG_COOKIE: &str = "lang";

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, src) in TEMPLATES {
            env.add_template(name, src).expect("console template parses");
        }
        env.add_function("t", |state: &minijinja::State, key: &str| -> String {
            let lang = state.lookup("lang");
            i18n::t(key, Lang::parse(lang.as_ref().and_then(|v| v.as_str()))).to_string()
        });
        env.add_filter("dt", |v: Option<i64>| {
            v.map_or_else(|| "—".to_string(), i18n::datetime)
        });
        env.add_filter("num", |v: Option<i64>| {
            v.map_or_else(|| "—".to_string(), i18n::number)
        });
        env.add_filter("dec", |v: f64| i18n::decimal(v));
        env.add_filter("dur", |v: i64| i18n::duration(v));
        env
    })
}

/// Render a template with `ctx` (a JSON object).
pub fn render(name: &str, ctx: Value) -> Result<String> {
    let tmpl = env()
        .get_template(name)
        .map_err(Error::context(format!("template {name}")))?;
    tmpl.render(minijinja::Value::from_serialize(&ctx))
        .map_err(|e| Error::internal(format!("render {name}: {e:#}")))
}

/// A logged-in console user and the page language.
#[derive(Debug, Clone)]
pub struct Console {
    /// Who (role, scope, session CSRF token).
    pub caller: Caller,
    /// Shown name.
    pub display_name: String,
    /// Language of the page.
    pub lang: Lang,
    /// The confirmation of the action that redirected here (`?ok=<key>`, a `flash.*` key of the
    /// catalogue), already translated.
    pub flash: Option<String>,
    /// Open alarms of the user's areas (the menu's badge).
    pub open_alarms: i64,
}

impl Console {
    /// The common context of every page merged with `extra`.
    pub fn ctx(&self, extra: Value) -> Value {
        let mut base = json!({
            "lang": self.lang.code(),
            "csrf": self.caller.csrf.clone().unwrap_or_default(),
            "open_alarms": self.open_alarms,
            "user": {"username": self.caller.username, "display_name": self.display_name, "role": self.caller.role.as_str(),
                     "roles": self.caller.roles().iter().map(|r| r.as_str()).collect::<Vec<_>>()},
        });
        if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
            b.extend(e);
        }
        if let (Some(f), Some(b)) = (&self.flash, base.as_object_mut())
            && b.get("flash").is_none_or(Value::is_null)
        {
            b.insert("flash".into(), json!(f));
        }
        base
    }

    /// Render a page.
    pub fn page(&self, name: &str, extra: Value) -> PageResult {
        Ok(Html(render(name, self.ctx(extra))?).into_response())
    }

    /// 403 unless the form carried this session's CSRF token (forms read with [`PageForm`] are
    /// checked already).
    pub fn check_csrf(&self, sent: &str) -> Result<()> {
        self.caller.check_csrf(sent, CSRF_REFUSAL)
    }
}

/// The translated confirmation named by `ok=<key>` in a query string: only `flash.*` keys of the
/// catalogue, so a link cannot put arbitrary text on a page.
fn flash_of(query: Option<&str>, lang: Lang) -> Option<String> {
    let key = query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("ok="))?
        .to_string();
    let key = format!("flash.{key}");
    let text = i18n::t(&key, lang);
    (text != key).then(|| text.to_string())
}

fn lang_of(headers: &HeaderMap) -> Lang {
    Lang::parse(cookie(headers, LANG_COOKIE).as_deref())
}

impl FromRequestParts<AppState> for Console {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> std::result::Result<Self, Self::Rejection> {
        let lang = lang_of(&parts.headers);
        let caller = match crate::http::auth::session_caller(parts, state).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(Redirect::to("/console/login").into_response()),
            Err(e) => return Err(PageError(e, lang).into_response()),
        };
        debug_assert_eq!(caller.via, Via::Session);
        // An organisation's account sees only its submissions' pages (issue 15), and can log out.
        let path = parts.uri.path();
        if caller.contributor_only()
            && !(path == "/console/submissions"
                || path.starts_with("/console/submissions/")
                || path == "/console/logout")
        {
            return Err(Redirect::to("/console/submissions").into_response());
        }
        let display_name = match crate::store::users::get(&state.store, &caller.user_id).await {
            Ok(Some(u)) => u.display_name,
            Ok(None) => return Err(Redirect::to("/console/login").into_response()),
            Err(e) => return Err(PageError(e, lang).into_response()),
        };
        let flash = flash_of(parts.uri.query(), lang);
        let open_alarms = crate::services::alarms::open_count(state, &caller)
            .await
            .unwrap_or(0);
        let c = Console {
            caller,
            display_name,
            lang,
            flash,
            open_alarms,
        };
        let ctx = c.ctx(json!({}));
        let _ = REQUEST_USER.try_with(|u| {
            *u.borrow_mut() = Some((
                ctx["user"].clone(),
                ctx["csrf"].as_str().unwrap_or_default().to_string(),
            ));
        });
        Ok(c)
    }
}

/// An error shown as an HTML page (401 becomes a redirect to the login page).
#[derive(Debug)]
pub struct PageError(pub Error, pub Lang);

impl From<Error> for PageError {
    fn from(e: Error) -> Self {
        PageError(e, Lang::Vi)
    }
}

/// A console form ([`CsrfForm`]: the session's CSRF token checked, then decoded into `T`) whose
/// refusal is shown as an error page.
pub struct PageForm<T>(pub T);

impl<T: serde::de::DeserializeOwned> axum::extract::FromRequest<AppState> for PageForm<T> {
    type Rejection = PageError;

    async fn from_request(
        req: axum::extract::Request,
        state: &AppState,
    ) -> std::result::Result<Self, PageError> {
        let CsrfForm(v) = CsrfForm::<T>::from_request(req, state).await?;
        Ok(PageForm(v))
    }
}

/// What console handlers return.
pub type PageResult = std::result::Result<Response, PageError>;

tokio::task_local! {
    /// The language of the request being served (from the `lang` cookie), so that an error page
    /// is in the user's language whichever way the error reached [`PageError`].
    static REQUEST_LANG: Lang;
    /// The page context's `user` and `csrf` of the logged-in user once [`Console`] was extracted,
    /// so that an error page keeps the menu.
    static REQUEST_USER: std::cell::RefCell<Option<(Value, String)>>;
}

/// Middleware: serve the request with its `lang` cookie's language in [`REQUEST_LANG`].
async fn with_lang(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let lang = lang_of(req.headers());
    let user = std::cell::RefCell::new(None);
    REQUEST_LANG
        .scope(lang, REQUEST_USER.scope(user, next.run(req)))
        .await
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let PageError(err, lang) = self;
        let lang = REQUEST_LANG.try_with(|l| *l).unwrap_or(lang);
        if matches!(err, Error::Unauthorized) {
            return Redirect::to("/console/login").into_response();
        }
        let shown = i18n::error_text(&err, lang);
        let status = err.into_response().status(); // also logs a 500
        let message = if status.is_server_error() {
            i18n::t("common.error", lang).to_string()
        } else {
            shown
        };
        let key = format!("error.{}", status.as_u16());
        let title = match i18n::t(&key, lang) {
            t if t == key => i18n::t("common.error", lang),
            t => t,
        };
        let (user, csrf) = REQUEST_USER
            .try_with(|u| u.borrow().clone())
            .ok()
            .flatten()
            .unwrap_or((Value::Null, String::new()));
        let ctx = json!({"lang": lang.code(), "csrf": csrf, "user": user, "status": status.as_u16(), "title": title,
                         "message": message});
        match render("error.html", ctx) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, message).into_response(),
        }
    }
}

/// The client's address (the TCP peer, or behind a trusted proxy the address it forwarded).
pub use crate::http::throttle::ClientIp;

fn secure(state: &AppState) -> &'static str {
    if state.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    }
}

fn set_cookie(resp: &mut Response, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Routes of the console.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(dashboard::dashboard))
        .route("/console/", get(|| async { Redirect::to("/console") }))
        .route("/console/login", get(login::login_page).post(login::login))
        .route("/console/logout", post(login::logout))
        .route("/console/lang", get(set_lang))
        .route("/console/static/{file}", get(static_file))
        .route("/favicon.ico", get(favicon))
        .route("/console/media", get(media::media_page))
        .route("/console/media/{sha}", get(media::media_detail))
        .route("/console/media/{sha}/review", post(media::media_review))
        .route("/console/approvals", get(media::approvals))
        .route(
            "/console/schedules",
            get(schedules::schedules_page).post(schedules::create_schedule),
        )
        .route("/console/schedules/preview", get(schedules::preview_json))
        .route("/console/calendar", get(calendar::calendar))
        .route("/console/devices", get(devices::devices_page))
        .route("/console/devices/{id}", get(devices::device_page))
        .route("/console/devices/{id}/command", post(devices::device_command))
        .route("/console/users", get(users::users_page).post(users::create_user))
        .route("/console/audit", get(audit::audit_page))
        .route("/console/live", get(live::live_page))
        .merge(reports::router())
        .merge(commands::router())
        .merge(alarms::router())
        .merge(autonomy::router())
        .merge(policies::router())
        .merge(policy_edit::router())
        .merge(alerts::router())
        .merge(feedback::router())
        .merge(submissions::router())
        .merge(bulletins::router())
        .merge(voices::router())
        .merge(admin::router())
        .merge(rollouts::router())
        .layer(axum::middleware::from_fn(with_lang))
        .layer(crate::http::headers::console_csp())
}

/// The console's icon (also asked for by browsers at `/favicon.ico`): a small SVG loudspeaker.
async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        include_str!("static/favicon.svg"),
    )
        .into_response()
}

async fn static_file(Path(file): Path<String>) -> Response {
    let (body, ctype) = match file.as_str() {
        "console.css" => (include_str!("static/console.css"), "text/css; charset=utf-8"),
        "report.css" => (include_str!("static/report.css"), "text/css; charset=utf-8"),
        "console.js" => (
            include_str!("static/console.js"),
            "text/javascript; charset=utf-8",
        ),
        "favicon.svg" => (include_str!("static/favicon.svg"), "image/svg+xml"),
        "leaflet.js" => (
            include_str!("static/vendor/leaflet/leaflet.js"),
            "text/javascript; charset=utf-8",
        ),
        "leaflet.css" => (
            include_str!("static/vendor/leaflet/leaflet.css"),
            "text/css; charset=utf-8",
        ),
        "map.js" => (include_str!("static/map.js"), "text/javascript; charset=utf-8"),
        "forms.js" => (include_str!("static/forms.js"), "text/javascript; charset=utf-8"),
        "live.js" => (include_str!("static/live.js"), "text/javascript; charset=utf-8"),
        "live-worklet.js" => (
            include_str!("static/live-worklet.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [(header::CONTENT_TYPE, ctype), (header::CACHE_CONTROL, "no-cache")],
        body,
    )
        .into_response()
}

#[derive(Deserialize)]
struct LangQuery {
    l: Option<String>,
}

async fn set_lang(headers: HeaderMap, Query(q): Query<LangQuery>) -> Response {
    let lang = Lang::parse(q.l.as_deref());
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.find("/console").map(|i| r[i..].to_string()))
        .filter(|p| !p.starts_with("/console/lang"))
        .unwrap_or_else(|| "/console".into());
    let mut resp = Redirect::to(&back).into_response();
    set_cookie(
        &mut resp,
        format!(
            "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
            lang.code()
        ),
    );
    resp
}

/// POST-redirect-GET after a successful action: a 303 to `to` that shows the confirmation
/// `flash.<ok>` there.
pub(crate) fn done(to: &str, ok: &str) -> Response {
    let sep = if to.contains('?') { '&' } else { '?' };
    see_other(&format!("{to}{sep}ok={ok}"))
}

pub(crate) fn see_other(to: &str) -> Response {
    let mut r = Redirect::to(to).into_response();
    *r.status_mut() = StatusCode::SEE_OTHER;
    r
}

pub use crate::domain::report::is_commune;

/// The nearest commune at or above `code` (the area itself when none).
pub fn commune_of(areas: &BTreeMap<String, AreaInfo>, code: &str) -> String {
    crate::domain::area::chain_with(code, |c| areas.get(c).and_then(|a| a.parent.as_deref()))
        .into_iter()
        .find(|c| areas.get(c).is_some_and(|a| is_commune(&a.level)))
        .unwrap_or_else(|| code.to_string())
}

fn now_playing_label(raw: &str) -> String {
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Null) | Err(_) => String::new(),
        Ok(v) => v
            .get("title")
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| {
                v.get("sha256")
                    .and_then(|s| s.as_str())
                    .map(|s| s[..s.len().min(12)].to_string())
                    .unwrap_or_else(|| v.to_string())
            }),
    }
}

fn visible_areas(c: &Console, areas: &BTreeMap<String, AreaInfo>) -> Vec<Value> {
    areas
        .values()
        .filter(|a| c.caller.in_scope(&a.code))
        .map(|a| json!({"code": a.code, "name": a.name, "level": a.level}))
        .collect()
}

fn priority_str(p: &impl serde::Serialize) -> String {
    serde_json::to_value(p)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A `datetime-local` form value (`YYYY-MM-DDTHH:MM[:SS]`) read in `tz`: `Some(None)` when empty,
/// `None` when it is not a date and time.
pub(crate) fn parse_datetime_local(v: &str, tz: chrono_tz::Tz) -> Option<Option<chrono::DateTime<Utc>>> {
    let v = v.trim();
    if v.is_empty() {
        return Some(None);
    }
    let t = chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    Some(Some(crate::domain::schedule::local_to_utc(tz, t)))
}

/// An instant as a `datetime-local` form value in `tz` (empty for none).
pub(crate) fn datetime_local(t: Option<chrono::DateTime<Utc>>, tz: chrono_tz::Tz) -> String {
    t.map(|t| t.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}
