//! The operator console (issue 7): a Vietnamese-first, server-rendered web app under `/console`
//! for editors, approvers, operators and admins. Templates are minijinja (auto-escaping `.html`)
//! embedded with `include_str!`; every string comes from [`i18n`]; a few lines of vendored JS
//! (`static/console.js`) add the upload progress bar. Every page needs a session (else a redirect
//! to the login page); every form carries the session's CSRF token (else 403); errors render an
//! error page, not JSON. Users see and target only their area subtree.

mod admin;
mod bulletins;
pub mod i18n;
pub mod reports;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};
use minijinja::Environment;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;

use crate::domain::user::constant_time_eq;
use crate::http::auth::{Caller, SESSION_COOKIE, Via, cookie};
use crate::user::{self, LoginError, Role};
use crate::{AppState, Error, Result, media};
pub use i18n::Lang;

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
    ("audit.html", include_str!("templates/audit.html")),
    ("reports.html", include_str!("templates/reports.html")),
    ("bulletins.html", include_str!("templates/bulletins.html")),
    ("bulletin_edit.html", include_str!("templates/bulletin_edit.html")),
];

const LOGIN_CSRF_COOKIE: &str = "nguon_login_csrf";
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
}

impl Console {
    /// The common context of every page merged with `extra`.
    pub fn ctx(&self, extra: Value) -> Value {
        let mut base = json!({
            "lang": self.lang.code(),
            "csrf": self.caller.csrf.clone().unwrap_or_default(),
            "user": {"username": self.caller.username, "display_name": self.display_name, "role": self.caller.role.as_str()},
        });
        if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
            b.extend(e);
        }
        base
    }

    /// Render a page.
    pub fn page(&self, name: &str, extra: Value) -> PageResult {
        Ok(Html(render(name, self.ctx(extra))?).into_response())
    }

    /// 403 unless the form carried this session's CSRF token.
    pub fn check_csrf(&self, sent: &str) -> Result<()> {
        let want = self.caller.csrf.as_deref().unwrap_or("");
        if want.is_empty() || !constant_time_eq(sent.as_bytes(), want.as_bytes()) {
            return Err(Error::Forbidden(
                "missing or wrong CSRF token; reload the page and try again".into(),
            ));
        }
        Ok(())
    }
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
        let display_name = match user::get(&state.store, &caller.user_id).await {
            Ok(Some(u)) => u.display_name,
            Ok(None) => return Err(Redirect::to("/console/login").into_response()),
            Err(e) => return Err(PageError(e, lang).into_response()),
        };
        Ok(Console {
            caller,
            display_name,
            lang,
        })
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

impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> Self {
        PageError(Error::Db(e), Lang::Vi)
    }
}

/// What console handlers return.
pub type PageResult = std::result::Result<Response, PageError>;

tokio::task_local! {
    /// The language of the request being served (from the `lang` cookie), so that an error page
    /// is in the user's language whichever way the error reached [`PageError`].
    static REQUEST_LANG: Lang;
}

/// Middleware: serve the request with its `lang` cookie's language in [`REQUEST_LANG`].
async fn with_lang(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let lang = lang_of(req.headers());
    REQUEST_LANG.scope(lang, next.run(req)).await
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let PageError(err, lang) = self;
        let lang = REQUEST_LANG.try_with(|l| *l).unwrap_or(lang);
        if matches!(err, Error::Unauthorized) {
            return Redirect::to("/console/login").into_response();
        }
        let shown = err.to_string();
        let status = err.into_response().status(); // also logs a 500
        let message = if status.is_server_error() {
            i18n::t("common.error", lang).to_string()
        } else if status == StatusCode::FORBIDDEN {
            format!("{} ({shown})", i18n::t("common.forbidden", lang))
        } else {
            shown
        };
        let key = format!("error.{}", status.as_u16());
        let title = match i18n::t(&key, lang) {
            t if t == key => i18n::t("common.error", lang),
            t => t,
        };
        let ctx = json!({"lang": lang.code(), "csrf": "", "user": null, "status": status.as_u16(), "title": title,
                         "message": message});
        match render("error.html", ctx) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, message).into_response(),
        }
    }
}

/// The client's address (from the connection; proxies' headers are not trusted).
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> std::result::Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "unknown".into());
        Ok(ClientIp(ip))
    }
}

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
        .route("/console", get(dashboard))
        .route("/console/", get(|| async { Redirect::to("/console") }))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/lang", get(set_lang))
        .route("/console/static/{file}", get(static_file))
        .route("/console/media", get(media_page))
        .route("/console/media/{sha}", get(media_detail))
        .route("/console/media/{sha}/review", post(media_review))
        .route("/console/approvals", get(approvals))
        .route("/console/schedules", get(schedules_page).post(create_schedule))
        .route("/console/calendar", get(calendar))
        .route("/console/devices", get(devices_page))
        .route("/console/devices/{id}", get(device_page))
        .route("/console/devices/{id}/command", post(device_command))
        .route("/console/users", get(users_page).post(create_user))
        .route("/console/audit", get(audit_page))
        .merge(reports::router())
        .merge(bulletins::router())
        .merge(admin::router())
        .layer(axum::middleware::from_fn(with_lang))
}

async fn static_file(Path(file): Path<String>) -> Response {
    let (body, ctype) = match file.as_str() {
        "console.css" => (include_str!("static/console.css"), "text/css; charset=utf-8"),
        "console.js" => (
            include_str!("static/console.js"),
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

// ---------------------------------------------------------------- login / logout

fn login_html(
    state: &AppState,
    lang: Lang,
    error: Option<&str>,
    username: &str,
    status: StatusCode,
) -> PageResult {
    let token = crate::services::auth::generate_token();
    let html = render(
        "login.html",
        json!({"lang": lang.code(), "csrf": "", "user": null, "login_csrf": token, "error": error, "username": username}),
    )?;
    let mut resp = (status, Html(html)).into_response();
    set_cookie(
        &mut resp,
        format!(
            "{LOGIN_CSRF_COOKIE}={token}; Path=/console; HttpOnly; SameSite=Lax{}",
            secure(state)
        ),
    );
    Ok(resp)
}

async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> PageResult {
    login_html(&state, lang_of(&headers), None, "", StatusCode::OK)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> PageResult {
    let lang = lang_of(&headers);
    let want = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if want.is_empty() || !constant_time_eq(want.as_bytes(), f.csrf.as_bytes()) {
        return Err(PageError(
            Error::Forbidden("missing or wrong CSRF token on the login form".into()),
            lang,
        ));
    }
    match user::authenticate(&state.store, &f.username, &f.password, &ip).await? {
        Ok(u) => {
            let (sid, _csrf) = user::create_session(&state.store, &u.id).await?;
            let mut resp = Redirect::to("/console").into_response();
            *resp.status_mut() = StatusCode::SEE_OTHER;
            set_cookie(
                &mut resp,
                format!(
                    "{SESSION_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
                    user::SESSION_MS / 1000,
                    secure(&state)
                ),
            );
            set_cookie(
                &mut resp,
                format!("{LOGIN_CSRF_COOKIE}=; Path=/console; Max-Age=0"),
            );
            Ok(resp)
        }
        Err(LoginError::BadCredentials) => login_html(
            &state,
            lang,
            Some(i18n::t("login.bad", lang)),
            &f.username,
            StatusCode::UNAUTHORIZED,
        ),
        Err(LoginError::Locked) => login_html(
            &state,
            lang,
            Some(i18n::t("login.locked", lang)),
            &f.username,
            StatusCode::TOO_MANY_REQUESTS,
        ),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    c: Console,
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    c.check_csrf(&f.csrf).map_err(|e| PageError(e, c.lang))?;
    if let Some(sid) = cookie(&headers, SESSION_COOKIE) {
        user::delete_session(&state.store, &sid).await?;
    }
    let mut resp = Redirect::to("/console/login").into_response();
    *resp.status_mut() = StatusCode::SEE_OTHER;
    set_cookie(
        &mut resp,
        format!(
            "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
            secure(&state)
        ),
    );
    Ok(resp)
}

fn see_other(to: &str) -> Response {
    let mut r = Redirect::to(to).into_response();
    *r.status_mut() = StatusCode::SEE_OTHER;
    r
}

// ---------------------------------------------------------------- shared queries

/// An area row with its parent.
#[derive(Debug, Clone)]
pub struct AreaInfo {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Parent code.
    pub parent: Option<String>,
    /// Level (`province`, `commune`, `village`...).
    pub level: String,
}

/// All areas by code.
pub async fn all_areas(state: &AppState) -> Result<BTreeMap<String, AreaInfo>> {
    let rows = sqlx::query("SELECT code, name, parent, level FROM areas ORDER BY code")
        .fetch_all(&state.store.pool)
        .await?;
    let mut out = BTreeMap::new();
    for r in rows {
        let a = AreaInfo {
            code: r.try_get("code")?,
            name: r.try_get("name")?,
            parent: r.try_get("parent")?,
            level: r.try_get("level")?,
        };
        out.insert(a.code.clone(), a);
    }
    Ok(out)
}

/// Whether a level names a commune (xã / phường / thị trấn).
pub fn is_commune(level: &str) -> bool {
    matches!(
        level.to_lowercase().as_str(),
        "commune" | "ward" | "xa" | "xã" | "phuong" | "phường"
    )
}

/// The nearest commune at or above `code` (the area itself when none).
pub fn commune_of(areas: &BTreeMap<String, AreaInfo>, code: &str) -> String {
    let mut cur = Some(code.to_string());
    let mut guard = 0;
    while let Some(c) = cur {
        guard += 1;
        let Some(a) = areas.get(&c) else { break };
        if is_commune(&a.level) || guard > 32 {
            return a.code.clone();
        }
        cur = a.parent.clone();
    }
    code.to_string()
}

/// A device with its live status, as the console lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceRow {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// `loudspeaker` or `board`.
    pub kind: String,
    /// Area.
    pub area: String,
    /// Online now.
    pub online: bool,
    /// Last message (unix ms).
    pub last_seen: Option<i64>,
    /// Now playing JSON (from the last heartbeat).
    pub now_playing: Option<String>,
}

/// Devices inside the caller's scope.
pub async fn scoped_devices(state: &AppState, caller: &Caller) -> Result<Vec<DeviceRow>> {
    let scope = crate::store::scope::scope_sql(&caller, "d.area", 1);
    let sql = format!(
        "SELECT d.id, d.name, d.kind, d.area, s.online, s.last_seen, s.now_playing FROM devices d \
         LEFT JOIN device_status s ON s.device_id = d.id WHERE {} ORDER BY d.id",
        scope.sql
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in scope.binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(&state.store.pool).await?;
    let mut out = Vec::new();
    for r in rows {
        let area: String = r.try_get("area")?;
        out.push(DeviceRow {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            kind: r.try_get("kind")?,
            area,
            online: r.try_get::<Option<i64>, _>("online")?.unwrap_or(0) != 0,
            last_seen: r.try_get("last_seen")?,
            now_playing: r.try_get("now_playing")?,
        });
    }
    Ok(out)
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

/// Recent proofs of play of the caller's devices matching `extra` (an SQL condition on `p`).
async fn recent_plays(
    state: &AppState,
    caller: &Caller,
    extra: &'static str,
    limit: usize,
    device: Option<&str>,
) -> Result<Vec<Value>> {
    let mut sql = String::from(
        "SELECT p.device_id, p.priority, p.outcome, p.reason, p.started_at, p.occurrence_at, p.received_at, m.title, d.area \
         FROM plays p JOIN devices d ON d.id = p.device_id LEFT JOIN media m ON m.sha256 = p.sha256 WHERE ",
    );
    sql.push_str(extra);
    let scope = crate::store::scope::scope_sql(&caller, "d.area", 1);
    sql.push_str(&format!(" AND {}", scope.sql));
    if device.is_some() {
        sql.push_str(&format!(" AND p.device_id = ${}", scope.next(1)));
    }
    sql.push_str(&format!(" ORDER BY p.received_at DESC LIMIT {limit}"));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in scope.binds {
        q = q.bind(b);
    }
    if let Some(d) = device {
        q = q.bind(d.to_string());
    }
    let rows = q.fetch_all(&state.store.pool).await?;
    let mut out = Vec::new();
    for r in rows {
        let started: Option<i64> = r.try_get("started_at")?;
        let occ: i64 = r.try_get("occurrence_at")?;
        out.push(json!({
            "device_id": r.try_get::<String, _>("device_id")?,
            "priority": r.try_get::<String, _>("priority")?,
            "outcome": r.try_get::<String, _>("outcome")?,
            "reason": r.try_get::<Option<String>, _>("reason")?,
            "title": r.try_get::<Option<String>, _>("title")?.unwrap_or_default(),
            "at": started.unwrap_or(occ),
        }));
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- dashboard

async fn dashboard(c: Console, State(state): State<AppState>) -> PageResult {
    let areas = all_areas(&state).await?;
    let devices = scoped_devices(&state, &c.caller).await?;
    let mut by: BTreeMap<String, (i64, i64, Vec<Value>)> = BTreeMap::new();
    let mut playing = Vec::new();
    for d in &devices {
        let e = by.entry(commune_of(&areas, &d.area)).or_default();
        if d.online {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
        e.2.push(json!({"id": d.id, "online": d.online}));
        if let Some(np) = d
            .now_playing
            .as_deref()
            .map(now_playing_label)
            .filter(|s| !s.is_empty())
        {
            playing.push(json!({"id": d.id, "what": np}));
        }
    }
    let online: i64 = by.values().map(|v| v.0).sum();
    let offline: i64 = by.values().map(|v| v.1).sum();
    let rows: Vec<Value> = by
        .into_iter()
        .map(|(code, (on, off, devs))| {
            let name = areas
                .get(&code)
                .map(|a| a.name.clone())
                .unwrap_or_else(|| code.clone());
            json!({"code": code, "name": name, "online": on, "offline": off, "devices": devs})
        })
        .collect();
    let plays = recent_plays(&state, &c.caller, "1 = 1", 20, None).await?;
    let emergencies = recent_plays(&state, &c.caller, "p.priority = 'emergency'", 10, None).await?;
    let failures = recent_plays(&state, &c.caller, "p.outcome IN ('failed', 'missed')", 10, None).await?;
    c.page(
        "dashboard.html",
        json!({"online": online, "offline": offline, "areas": rows, "playing": playing, "plays": plays,
               "emergencies": emergencies, "failures": failures}),
    )
}

// ---------------------------------------------------------------- media and approval

/// The media the caller may see (province-wide and their subtree's), filtered in SQL.
async fn media_rows(state: &AppState, caller: &Caller, status: Option<&str>) -> Result<Vec<Value>> {
    media::list_visible(&state.store, caller, status)
        .await?
        .into_iter()
        .map(|m| serde_json::to_value(m).map_err(Error::context("media json")))
        .collect()
}

async fn media_page(c: Console, State(state): State<AppState>) -> PageResult {
    let list = media_rows(&state, &c.caller, None).await?;
    let areas = all_areas(&state).await?;
    c.page(
        "media.html",
        json!({"media": list, "can_upload": c.caller.role.grants(Role::Editor),
               "upload_areas": visible_areas(&c, &areas), "scoped": c.caller.scope_areas.is_some()}),
    )
}

async fn media_detail(c: Console, State(state): State<AppState>, Path(sha): Path<String>) -> PageResult {
    let m = media::get_visible(&state.store, &c.caller, &sha)
        .await
        .map_err(|e| PageError(e, c.lang))?;
    c.page(
        "media_detail.html",
        json!({"m": m, "can_submit": c.caller.role.grants(Role::Editor), "can_approve": c.caller.role.grants(Role::Approver)}),
    )
}

#[derive(Deserialize)]
struct ReviewForm {
    #[serde(default)]
    csrf: String,
    step: String,
    #[serde(default)]
    note: Option<String>,
}

async fn media_review(
    c: Console,
    State(state): State<AppState>,
    Path(sha): Path<String>,
    Form(f): Form<ReviewForm>,
) -> PageResult {
    let lang = c.lang;
    c.check_csrf(&f.csrf).map_err(|e| PageError(e, lang))?;
    let note = f
        .note
        .map(|n| n.trim().chars().take(2000).collect::<String>())
        .filter(|n| !n.is_empty());
    media::review(&state, &c.caller, &sha, &f.step, note)
        .await
        .map_err(|e| PageError(e, lang))?;
    Ok(see_other(if f.step == "submit" {
        "/console/media"
    } else {
        "/console/approvals"
    })
    .into_response())
}

async fn approvals(c: Console, State(state): State<AppState>) -> PageResult {
    let list = media_rows(&state, &c.caller, Some("pending")).await?;
    // `review_buttons.html` reads `m`; the approvals page loops with `m` as the loop variable.
    c.page(
        "approvals.html",
        json!({"media": list, "can_approve": c.caller.role.grants(Role::Approver),
               "bulletins": bulletins::pending_for(&state, &c).await?}),
    )
}

// ---------------------------------------------------------------- schedules and calendar

fn visible_areas(c: &Console, areas: &BTreeMap<String, AreaInfo>) -> Vec<Value> {
    areas
        .values()
        .filter(|a| c.caller.in_scope(&a.code))
        .map(|a| json!({"code": a.code, "name": a.name, "level": a.level}))
        .collect()
}

/// Schedules whose every target is inside the caller's scope.
async fn visible_schedules(state: &AppState, caller: &Caller) -> Result<Vec<crate::schedule::Schedule>> {
    crate::schedule::load_visible(&state.store, caller).await
}

fn targets_label(s: &crate::schedule::Schedule) -> String {
    s.targets
        .areas
        .iter()
        .chain(s.targets.devices.iter())
        .cloned()
        .collect::<Vec<_>>()
        .join(", ")
}

fn priority_str(p: &impl serde::Serialize) -> String {
    serde_json::to_value(p)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

async fn schedules_page(c: Console, State(state): State<AppState>) -> PageResult {
    let areas = all_areas(&state).await?;
    let approved = media_rows(&state, &c.caller, Some("approved")).await?;
    let list: Vec<Value> = visible_schedules(&state, &c.caller)
        .await?
        .iter()
        .map(|s| {
            let rule = match &s.rule {
                crate::schedule::RuleSpec::Once { at } => at.clone(),
                crate::schedule::RuleSpec::Cron { cron } => cron.clone(),
            };
            json!({"id": s.id, "title": s.title, "priority": priority_str(&s.priority), "targets": targets_label(s),
                   "rule": rule, "time_zone": s.time_zone, "enabled": s.enabled,
                   "describe": crate::schedule::describe(&s.rule, c.lang == Lang::En)})
        })
        .collect();
    c.page(
        "schedules.html",
        json!({"schedules": list, "approved": approved, "areas": visible_areas(&c, &areas),
               "can_schedule": c.caller.role.grants(Role::Operator)}),
    )
}

#[derive(Deserialize)]
struct ScheduleForm {
    #[serde(default)]
    csrf: String,
    title: String,
    media: String,
    area: String,
    #[serde(default)]
    priority: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    at: Option<String>,
    #[serde(default)]
    cron: Option<String>,
    #[serde(default)]
    time_zone: Option<String>,
}

async fn create_schedule(
    c: Console,
    State(state): State<AppState>,
    Form(f): Form<ScheduleForm>,
) -> PageResult {
    let lang = c.lang;
    let step = async {
        c.check_csrf(&f.csrf)?;
        c.caller.require(Role::Operator)?;
        c.caller.check_area(&f.area)?;
        media::require_visible(&state.store, &c.caller, std::slice::from_ref(&f.media)).await?;
        let rule = match f.kind.as_deref() {
            Some("cron") => json!({"kind": "cron", "cron": f.cron.clone().unwrap_or_default()}),
            _ => json!({"kind": "once", "at": f.at.clone().unwrap_or_default()}),
        };
        let req = json!({
            "title": f.title, "media": [f.media], "targets": {"areas": [f.area]},
            "priority": f.priority.clone().unwrap_or_else(|| "normal".into()), "rule": rule,
            "time_zone": f.time_zone.clone().filter(|z| !z.trim().is_empty()),
        });
        let req: crate::schedule::NewSchedule =
            serde_json::from_value(req).map_err(|e| Error::bad("invalid_field", e.to_string()))?;
        let created = crate::schedule::create(&state, req).await?;
        let after = serde_json::to_value(&created.schedule).ok();
        crate::store::audit::record_outside(
            &state.store,
            &c.caller.username,
            "schedule.create",
            &format!("schedule:{}", created.schedule.id),
            None,
            after,
        )
        .await;
        Ok::<_, Error>(())
    };
    step.await.map_err(|e| PageError(e, lang))?;
    Ok(see_other("/console/calendar?view=week"))
}

#[derive(Deserialize)]
struct CalendarQuery {
    view: Option<String>,
    date: Option<String>,
}

async fn calendar(c: Console, State(state): State<AppState>, Query(q): Query<CalendarQuery>) -> PageResult {
    let tz = chrono_tz::Asia::Ho_Chi_Minh;
    let view = if q.view.as_deref() == Some("day") {
        "day"
    } else {
        "week"
    };
    let today = Utc::now().with_timezone(&tz).date_naive();
    let date = q
        .date
        .as_deref()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .unwrap_or(today);
    let (start, days) = if view == "day" {
        (date, 1)
    } else {
        (
            date - Duration::days(i64::from(date.weekday().num_days_from_monday())),
            7,
        )
    };
    let step = if view == "day" { 1 } else { 7 };
    let local_midnight =
        |d: NaiveDate| crate::schedule::local_to_utc(tz, d.and_hms_opt(0, 0, 0).unwrap_or_default());
    let from = local_midnight(start);
    let to = local_midnight(start + Duration::days(days));
    let schedules = visible_schedules(&state, &c.caller).await?;
    let durations: HashMap<String, i64> = sqlx::query("SELECT sha256, duration_ms FROM media")
        .fetch_all(&state.store.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("sha256")?, r.try_get("duration_ms")?)))
        .collect::<Result<_>>()?;
    // Each schedule's footprint: the areas it reaches (subtrees) and its devices.
    let mut occs: Vec<(i64, i64, usize, HashSet<String>)> = Vec::new();
    for (i, s) in schedules.iter().enumerate().filter(|(_, s)| s.enabled) {
        let mut reach: HashSet<String> = crate::area::subtree(&state.store, &s.targets.areas)
            .await?
            .into_iter()
            .collect();
        reach.extend(s.targets.devices.iter().map(|d| format!("device:{d}")));
        let len: i64 = s
            .media
            .iter()
            .map(|m| durations.get(m).copied().unwrap_or(0))
            .sum::<i64>()
            * i64::from(s.repeat.max(1));
        for t in s.occurrences(from, to) {
            let t = t.timestamp_millis();
            occs.push((t, t + len.max(60_000), i, reach.clone()));
        }
    }
    occs.sort_by_key(|o| o.0);
    let mut conflict = vec![false; occs.len()];
    for a in 0..occs.len() {
        for b in a + 1..occs.len() {
            if occs[b].0 >= occs[a].1 {
                break;
            }
            if occs[a].2 != occs[b].2 && !occs[a].3.is_disjoint(&occs[b].3) {
                conflict[a] = true;
                conflict[b] = true;
            }
        }
    }
    let mut day_items: Vec<Vec<Value>> = vec![Vec::new(); days as usize];
    for (k, (t, _, i, _)) in occs.iter().enumerate() {
        let local = tz
            .timestamp_millis_opt(*t)
            .single()
            .unwrap_or_else(|| tz.timestamp_millis_opt(0).unwrap());
        let idx = (local.date_naive() - start).num_days();
        if !(0..days).contains(&idx) {
            continue;
        }
        let s = &schedules[*i];
        day_items[idx as usize].push(json!({
            "time": local.format("%H:%M").to_string(), "title": s.title, "priority": priority_str(&s.priority),
            "targets": targets_label(s), "conflict": conflict[k],
        }));
    }
    let days_json: Vec<Value> = day_items
        .into_iter()
        .enumerate()
        .map(|(i, items)| {
            let d = start + Duration::days(i as i64);
            json!({"label": d.format("%d/%m/%Y").to_string(), "items": items})
        })
        .collect();
    let label = if view == "day" {
        start.format("%d/%m/%Y").to_string()
    } else {
        format!(
            "{} – {}",
            start.format("%d/%m/%Y"),
            (start + Duration::days(6)).format("%d/%m/%Y")
        )
    };
    c.page(
        "calendar.html",
        json!({"view": view, "date": date.format("%Y-%m-%d").to_string(), "label": label, "days": days_json,
               "prev": (date - Duration::days(step)).format("%Y-%m-%d").to_string(),
               "next": (date + Duration::days(step)).format("%Y-%m-%d").to_string()}),
    )
}

// ---------------------------------------------------------------- devices and areas

async fn devices_page(c: Console, State(state): State<AppState>) -> PageResult {
    let devices = scoped_devices(&state, &c.caller).await?;
    c.page(
        "devices.html",
        json!({"devices": devices, "can_edit": c.caller.role.grants(Role::Operator)}),
    )
}

async fn device_page(c: Console, State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    let lang = c.lang;
    crate::services::auth::check_device(&state, &c.caller, &id)
        .await
        .map_err(|e| PageError(e, lang))?;
    let d = crate::fleet::get(&state.store, &id)
        .await?
        .ok_or_else(|| PageError(Error::NotFound(format!("device `{id}`")), lang))?;
    let plays = recent_plays(&state, &c.caller, "1 = 1", 30, Some(&id)).await?;
    let now_playing = d.now_playing.as_ref().map(|v| now_playing_label(&v.to_string()));
    let history = crate::fleet::history::page_data(&state.store, &d.id, d.created_at, lang).await?;
    c.page(
        "device.html",
        json!({"d": d, "plays": plays, "now_playing": now_playing, "can_control": c.caller.role.grants(Role::Operator),
               "history": history}),
    )
}

#[derive(Deserialize)]
struct CommandForm {
    #[serde(default)]
    csrf: String,
    action: String,
    #[serde(default)]
    level: Option<u8>,
}

async fn device_command(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(f): Form<CommandForm>,
) -> PageResult {
    let lang = c.lang;
    let step = async {
        c.check_csrf(&f.csrf)?;
        c.caller.require(Role::Operator)?;
        crate::services::auth::check_device(&state, &c.caller, &id).await?;
        let req = match f.action.as_str() {
            "stop" => crate::command::CommandRequest::Stop { item_id: None },
            "sync" => crate::command::CommandRequest::Sync,
            "volume" => crate::command::CommandRequest::Volume {
                level: f.level.unwrap_or(80).min(100),
            },
            other => return Err(Error::bad("invalid_action", format!("unknown action `{other}`"))),
        };
        let dev = nguon_protocol::DeviceId::parse(id.clone())
            .map_err(|e| Error::bad("invalid_device", e.to_string()))?;
        let issued = crate::command::issue(&state, nguon_protocol::Audience::Device(dev), req).await?;
        crate::store::audit::record_outside(
            &state.store,
            &c.caller.username,
            &format!("device.command.{}", f.action),
            &format!("device:{id}"),
            None,
            serde_json::to_value(&issued).ok(),
        )
        .await;
        Ok::<_, Error>(())
    };
    step.await.map_err(|e| PageError(e, lang))?;
    Ok(see_other(&format!("/console/devices/{id}")))
}

// ---------------------------------------------------------------- users and audit (admin)

async fn users_page(c: Console, State(state): State<AppState>) -> PageResult {
    c.caller.require(Role::Admin).map_err(|e| PageError(e, c.lang))?;
    let users = user::list(&state.store).await?;
    let areas = all_areas(&state).await?;
    let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    c.page(
        "users.html",
        json!({"users": users, "roles": roles, "areas": visible_areas(&c, &areas)}),
    )
}

#[derive(Deserialize)]
struct UserForm {
    #[serde(default)]
    csrf: String,
    username: String,
    #[serde(default)]
    display_name: Option<String>,
    role: String,
    #[serde(default)]
    area: Option<String>,
    password: String,
}

async fn create_user(c: Console, State(state): State<AppState>, Form(f): Form<UserForm>) -> PageResult {
    let lang = c.lang;
    let step = async {
        c.check_csrf(&f.csrf)?;
        c.caller.require(Role::Admin)?;
        let req = user::NewUser {
            username: f.username,
            display_name: f.display_name,
            role: Role::parse(&f.role)?,
            areas: f.area.into_iter().filter(|a| !a.is_empty()).collect(),
            password: f.password,
        };
        let u = user::create(&state.store, req).await?;
        crate::store::audit::record_outside(
            &state.store,
            &c.caller.username,
            "user.create",
            &format!("user:{}", u.username),
            None,
            serde_json::to_value(&u).ok(),
        )
        .await;
        Ok::<_, Error>(())
    };
    step.await.map_err(|e| PageError(e, lang))?;
    Ok(see_other("/console/users"))
}

async fn audit_page(c: Console, State(state): State<AppState>) -> PageResult {
    c.caller.require(Role::Admin).map_err(|e| PageError(e, c.lang))?;
    let entries = crate::store::audit::recent(&state.store, 300).await?;
    c.page("audit.html", json!({"entries": entries}))
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
    Some(Some(crate::schedule::local_to_utc(tz, t)))
}

/// An instant as a `datetime-local` form value in `tz` (empty for none).
pub(crate) fn datetime_local(t: Option<chrono::DateTime<Utc>>, tz: chrono_tz::Tz) -> String {
    t.map(|t| t.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

/// The first day of `year`'s half-year and annual report periods, and their last days
/// (1 Jan–14 Jun, due before 15 June; 1 Jan–14 Dec, due before 15 December).
pub fn preset_period(preset: &str, year: i32) -> Option<(NaiveDate, NaiveDate)> {
    let start = NaiveDate::from_ymd_opt(year, 1, 1)?;
    match preset {
        "half" => Some((start, NaiveDate::from_ymd_opt(year, 6, 14)?)),
        "annual" => Some((start, NaiveDate::from_ymd_opt(year, 12, 14)?)),
        _ => None,
    }
}

/// `[from 00:00, to+1 00:00)` in Asia/Ho_Chi_Minh as unix ms.
pub fn period_ms(from: NaiveDate, to: NaiveDate) -> (i64, i64) {
    let tz = chrono_tz::Asia::Ho_Chi_Minh;
    let a = tz
        .from_local_datetime(&from.and_hms_opt(0, 0, 0).unwrap_or_default())
        .single();
    let b = tz
        .from_local_datetime(&(to + Duration::days(1)).and_hms_opt(0, 0, 0).unwrap_or_default())
        .single();
    (
        a.map_or(0, |t| t.timestamp_millis()),
        b.map_or(0, |t| t.timestamp_millis()),
    )
}
