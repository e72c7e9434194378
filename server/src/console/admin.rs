//! Administration from the console (issue 7): users (edit, disable, password, API tokens), schedule
//! edit and delete, the area tree (create, rename, move, delete, CSV import) and device edit. Every
//! handler goes through the same functions as the API (`user`, `schedule`, `area`, `fleet`), so
//! validation, scope rules, manifest re-publication and the audit log are the API's. Every POST
//! reads its form through `PageForm`, which checks the session's CSRF token; a refused form is
//! shown again with the message.

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;

use super::{Console, PageError, PageForm, PageResult, all_areas, i18n, see_other, visible_areas};
use crate::http::form::Fields;
use crate::schedule::{self, NewSchedule, RuleSpec, Targets};
use crate::user::{self, Role, UserPatch};
use crate::{AppState, Error, Result, area, fleet, media};

/// Routes of the administration pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/users/{id}", get(user_page).post(user_save))
        .route("/console/users/{id}/enabled", post(user_enabled))
        .route("/console/users/{id}/password", post(user_password))
        .route("/console/users/{id}/tokens", post(token_issue))
        .route("/console/users/{id}/tokens/{token_id}/revoke", post(token_revoke))
        .route("/console/schedules/describe", get(describe))
        .route("/console/schedules/{id}", get(schedule_page).post(schedule_save))
        .route(
            "/console/schedules/{id}/delete",
            get(schedule_delete_page).post(schedule_delete),
        )
        .route("/console/areas", get(areas_page).post(area_create))
        .route("/console/areas/import", post(area_import))
        .route("/console/areas/{code}", post(area_save))
        .route("/console/areas/{code}/delete", post(area_delete))
        .route("/console/devices/{id}/edit", get(device_page).post(device_save))
}

// ---------------------------------------------------------------- forms

/// Whether an error is one to show on the form (a refused value) rather than as an error page.
fn shown_on_form(e: &Error) -> bool {
    matches!(
        e,
        Error::BadRequest { .. } | Error::Unprocessable { .. } | Error::Conflict(_)
    )
}

fn page_with(c: &Console, name: &str, status: StatusCode, extra: Value) -> PageResult {
    let html = super::render(name, c.ctx(extra))?;
    Ok((status, Html(html)).into_response())
}

// ---------------------------------------------------------------- users

async fn user_view(c: &Console, state: &AppState, id: &str, extra: Value, status: StatusCode) -> PageResult {
    let lang = c.lang;
    c.caller.require(Role::Admin).map_err(|e| PageError(e, lang))?;
    let u = user::get(&state.store, id)
        .await?
        .ok_or_else(|| PageError(Error::NotFound(format!("user `{id}`")), lang))?;
    let tokens = user::list_tokens(&state.store, id).await?;
    let areas = all_areas(state).await?;
    let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    let mut ctx = json!({"u": u, "tokens": tokens, "roles": roles, "areas": visible_areas(c, &areas),
                         "is_self": u.id == c.caller.user_id});
    if let (Some(o), Value::Object(e)) = (ctx.as_object_mut(), extra) {
        o.extend(e);
    }
    page_with(c, "user_edit.html", status, ctx)
}

async fn user_page(c: Console, State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    user_view(&c, &state, &id, json!({}), StatusCode::OK).await
}

/// Apply a user patch with the self-protection rule and audit it; a refused value re-renders
/// the form with the message.
async fn apply_user(c: &Console, state: &AppState, id: &str, p: UserPatch, flash: &str) -> PageResult {
    let lang = c.lang;
    c.caller.require(Role::Admin).map_err(|e| PageError(e, lang))?;
    let res = async {
        user::guard_self(&c.caller, id, &p)?;
        user::update(&state.store, id, p).await
    }
    .await;
    match res {
        Ok((before, after)) => {
            crate::store::audit::record_outside(
                &state.store,
                &c.caller.username,
                "user.update",
                &format!("user:{}", after.username),
                Some(json!(before)),
                Some(json!(after)),
            )
            .await;
            user_view(
                c,
                state,
                id,
                json!({"flash": i18n::t(flash, lang)}),
                StatusCode::OK,
            )
            .await
        }
        Err(e) if shown_on_form(&e) => {
            let status = e.status();
            user_view(c, state, id, json!({"error": e.to_string()}), status).await
        }
        Err(e) => Err(PageError(e, lang)),
    }
}

async fn user_save(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(f): PageForm<Fields>,
) -> PageResult {
    let role = match Role::parse(&f.one("role")) {
        Ok(r) => r,
        Err(e) => {
            return user_view(
                &c,
                &state,
                &id,
                json!({"error": e.to_string()}),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    let p = UserPatch {
        display_name: Some(f.one("display_name")),
        role: Some(role),
        areas: Some(f.all("areas")),
        ..UserPatch::default()
    };
    apply_user(&c, &state, &id, p, "admin.saved").await
}

async fn user_enabled(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(f): PageForm<Fields>,
) -> PageResult {
    let enabled = f.one("enabled") == "1";
    let p = UserPatch {
        enabled: Some(enabled),
        ..UserPatch::default()
    };
    let flash = if enabled {
        "admin.user_enabled"
    } else {
        "admin.user_disabled"
    };
    apply_user(&c, &state, &id, p, flash).await
}

async fn user_password(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(f): PageForm<Fields>,
) -> PageResult {
    let p = UserPatch {
        password: Some(f.raw("password")),
        ..UserPatch::default()
    };
    apply_user(&c, &state, &id, p, "admin.password_set").await
}

async fn token_issue(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(f): PageForm<Fields>,
) -> PageResult {
    let lang = c.lang;
    c.caller.require(Role::Admin).map_err(|e| PageError(e, lang))?;
    let u = user::get(&state.store, &id)
        .await?
        .ok_or_else(|| PageError(Error::NotFound(format!("user `{id}`")), lang))?;
    let name: String = f
        .opt("name")
        .unwrap_or_else(|| "console".into())
        .chars()
        .take(100)
        .collect();
    let t = user::issue_token(&state.store, &u.id, &name).await?;
    crate::store::audit::record_outside(
        &state.store,
        &c.caller.username,
        "token.create",
        &format!("user:{}", u.username),
        None,
        Some(json!({"token_id": t.id, "name": name})),
    )
    .await;
    // Shown once, in this answer only; the page is not cached.
    let mut resp = user_view(
        &c,
        &state,
        &id,
        json!({"new_token": t.token, "new_token_name": name}),
        StatusCode::OK,
    )
    .await?;
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

async fn token_revoke(
    c: Console,
    State(state): State<AppState>,
    Path((id, token_id)): Path<(String, String)>,
    _checked: PageForm<Fields>,
) -> PageResult {
    let lang = c.lang;
    c.caller.require(Role::Admin).map_err(|e| PageError(e, lang))?;
    let u = user::get(&state.store, &id)
        .await?
        .ok_or_else(|| PageError(Error::NotFound(format!("user `{id}`")), lang))?;
    let t = user::revoke_token(&state.store, &id, &token_id)
        .await
        .map_err(|e| PageError(e, lang))?;
    crate::store::audit::record_outside(
        &state.store,
        &c.caller.username,
        "token.revoke",
        &format!("user:{}", u.username),
        Some(json!({"token_id": t.id, "name": t.name, "revoked": false})),
        Some(json!(t)),
    )
    .await;
    user_view(
        &c,
        &state,
        &id,
        json!({"flash": i18n::t("admin.token_revoked", lang)}),
        StatusCode::OK,
    )
    .await
}

// ---------------------------------------------------------------- schedules

#[derive(Deserialize)]
struct DescribeQuery {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    at: Option<String>,
    #[serde(default)]
    cron: Option<String>,
}

fn rule_of(kind: Option<&str>, at: Option<String>, cron: Option<String>) -> RuleSpec {
    match kind {
        Some("cron") => RuleSpec::Cron {
            cron: cron.unwrap_or_default(),
        },
        _ => RuleSpec::Once {
            at: at.unwrap_or_default(),
        },
    }
}

/// The live description of a rule being typed (plain text), for the edit form's script.
async fn describe(c: Console, Query(q): Query<DescribeQuery>) -> impl IntoResponse {
    let spec = rule_of(q.kind.as_deref(), q.at, q.cron);
    (
        [(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        schedule::describe(&spec, c.lang == super::Lang::En),
    )
}

/// The schedule's time zone, or Asia/Ho_Chi_Minh when it does not parse.
fn zone(tz: &str) -> chrono_tz::Tz {
    tz.parse().unwrap_or(chrono_tz::Asia::Ho_Chi_Minh)
}

fn parse_local(v: &str, tz: &str, field: &'static str) -> Result<Option<DateTime<Utc>>> {
    super::parse_datetime_local(v, zone(tz)).ok_or_else(|| {
        Error::bad(
            "invalid_validity",
            format!("`{field}`: `{v}` is not a date and time"),
        )
    })
}

async fn visible_schedule(
    c: &Console,
    state: &AppState,
    id: &str,
) -> std::result::Result<schedule::Schedule, PageError> {
    let lang = c.lang;
    let s = schedule::get_one(&state.store, id)
        .await
        .map_err(|e| PageError(e, lang))?;
    schedule::check_scope(state, &c.caller, &s)
        .await
        .map_err(|e| PageError(e, lang))?;
    Ok(s)
}

/// The edit form for `req` (the stored schedule or what was just refused).
async fn schedule_view(
    c: &Console,
    state: &AppState,
    s: &schedule::Schedule,
    req: &NewSchedule,
    enabled: bool,
    extra: Value,
    status: StatusCode,
) -> PageResult {
    let areas = all_areas(state).await?;
    let devices = super::scoped_devices(state, &c.caller).await?;
    let approved = media::list_visible(&state.store, &c.caller, Some("approved")).await?;
    // Playlist items first, in their order, then the other approved media.
    let titles: HashMap<String, (String, i64)> = approved
        .iter()
        .map(|m| (m.sha256.clone(), (m.title.clone(), m.duration_ms)))
        .collect();
    let mut media_opts: Vec<Value> = req
        .media
        .iter()
        .map(|sha| {
            let (title, d) = titles.get(sha).cloned().unwrap_or_else(|| (sha.clone(), 0));
            json!({"sha256": sha, "title": title, "duration_ms": d, "selected": true})
        })
        .collect();
    media_opts.extend(approved.iter().filter(|m| !req.media.contains(&m.sha256)).map(
        |m| json!({"sha256": m.sha256, "title": m.title, "duration_ms": m.duration_ms, "selected": false}),
    ));
    let area_opts: Vec<Value> = visible_areas(c, &areas)
        .into_iter()
        .map(|mut a| {
            let code = a["code"].as_str().unwrap_or_default().to_string();
            a["selected"] = json!(req.targets.areas.contains(&code));
            a
        })
        .collect();
    let device_opts: Vec<Value> = devices
        .iter()
        .map(|d| json!({"id": d.id, "name": d.name, "selected": req.targets.devices.contains(&d.id)}))
        .collect();
    let tz = req.time_zone.clone().unwrap_or_else(|| s.time_zone.clone());
    let (kind, at, cron) = match &req.rule {
        RuleSpec::Once { at } => ("once", at.chars().take(16).collect::<String>(), String::new()),
        RuleSpec::Cron { cron } => ("cron", String::new(), cron.clone()),
    };
    let now = Utc::now();
    let next: Vec<String> = s
        .occurrences(now, now + chrono::Duration::days(366))
        .into_iter()
        .take(5)
        .map(|t| i18n::datetime(t.timestamp_millis()))
        .collect();
    let mut ctx = json!({
        "s": {"id": s.id, "title": req.title, "priority": super::priority_str(&req.priority), "kind": kind, "at": at,
              "cron": cron, "time_zone": tz, "valid_from": super::datetime_local(req.valid_from, zone(&tz)),
              "valid_until": super::datetime_local(req.valid_until, zone(&tz)), "volume": req.volume.unwrap_or(80),
              "repeat": req.repeat.unwrap_or(1), "enabled": enabled},
        "describe": schedule::describe(&req.rule, c.lang == super::Lang::En),
        "next": next, "media": media_opts, "areas": area_opts, "devices": device_opts,
        "can_edit": c.caller.role.grants(Role::Operator),
    });
    if let (Some(o), Value::Object(e)) = (ctx.as_object_mut(), extra) {
        o.extend(e);
    }
    page_with(c, "schedule_edit.html", status, ctx)
}

async fn schedule_page(c: Console, State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    let s = visible_schedule(&c, &state, &id).await?;
    let req = schedule::as_request(&s);
    schedule_view(&c, &state, &s, &req, s.enabled, json!({}), StatusCode::OK).await
}

async fn schedule_save(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(f): PageForm<Fields>,
) -> PageResult {
    let lang = c.lang;
    c.caller.require(Role::Operator).map_err(|e| PageError(e, lang))?;
    let s = visible_schedule(&c, &state, &id).await?;
    let tz = f.opt("time_zone").unwrap_or_else(|| s.time_zone.clone());
    let enabled = f.has("enabled");
    let req = NewSchedule {
        title: f.one("title"),
        media: f.all("media"),
        targets: Targets {
            areas: f.all("area"),
            devices: f.all("device"),
        },
        priority: f.one("priority").parse().unwrap_or_default(),
        rule: rule_of(Some(f.one("kind").as_str()), f.opt("at"), f.opt("cron")),
        time_zone: Some(tz.clone()),
        valid_from: None,
        valid_until: None,
        volume: None,
        repeat: None,
        on_preempt: s.on_preempt,
    };
    let res = async {
        let mut req = req.clone();
        req.valid_from = parse_local(&f.one("valid_from"), &tz, "valid_from")?;
        req.valid_until = parse_local(&f.one("valid_until"), &tz, "valid_until")?;
        req.volume = Some(
            f.one("volume")
                .parse::<u8>()
                .map_err(|_| Error::bad("invalid_volume", "`volume` must be 0–100"))?,
        );
        req.repeat = Some(
            f.opt("repeat")
                .unwrap_or_else(|| "1".into())
                .parse::<u32>()
                .map_err(|_| Error::bad("invalid_repeat", "`repeat` must be 1–100"))?,
        );
        crate::services::auth::check_targets(&state, &c.caller, &req.targets.areas, &req.targets.devices)
            .await?;
        media::require_visible(&state.store, &c.caller, &req.media).await?;
        schedule::update(&state, &id, req, Some(enabled)).await
    }
    .await;
    match res {
        Ok((before, after)) => {
            schedule::audit_change(&state, &c.caller, "schedule.update", Some(&before), Some(&after)).await;
            let req = schedule::as_request(&after);
            schedule_view(
                &c,
                &state,
                &after,
                &req,
                after.enabled,
                json!({"flash": i18n::t("admin.saved", lang)}),
                StatusCode::OK,
            )
            .await
        }
        Err(e) if shown_on_form(&e) || matches!(e, Error::NotFound(_) | Error::Forbidden(_)) => {
            let status = e.status();
            schedule_view(
                &c,
                &state,
                &s,
                &req,
                enabled,
                json!({"error": e.to_string()}),
                status,
            )
            .await
        }
        Err(e) => Err(PageError(e, lang)),
    }
}

async fn schedule_delete_page(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> PageResult {
    c.caller
        .require(Role::Operator)
        .map_err(|e| PageError(e, c.lang))?;
    let s = visible_schedule(&c, &state, &id).await?;
    let req = schedule::as_request(&s);
    schedule_view(
        &c,
        &state,
        &s,
        &req,
        s.enabled,
        json!({"confirm_delete": true}),
        StatusCode::OK,
    )
    .await
}

async fn schedule_delete(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    _checked: PageForm<Fields>,
) -> PageResult {
    let lang = c.lang;
    c.caller.require(Role::Operator).map_err(|e| PageError(e, lang))?;
    visible_schedule(&c, &state, &id).await?;
    let before = schedule::delete(&state, &id)
        .await
        .map_err(|e| PageError(e, lang))?;
    schedule::audit_change(&state, &c.caller, "schedule.delete", Some(&before), None).await;
    Ok(see_other("/console/schedules"))
}

// ---------------------------------------------------------------- areas

/// The area tree in scope, depth first, with device counts; forms for admins.
async fn areas_view(c: &Console, state: &AppState, extra: Value, status: StatusCode) -> PageResult {
    let areas = all_areas(state).await?;
    let counts: HashMap<String, i64> = sqlx::query("SELECT area, COUNT(*) AS n FROM devices GROUP BY area")
        .fetch_all(&state.store.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("area")?, r.try_get("n")?)))
        .collect::<Result<_>>()?;
    let mut children: BTreeMap<Option<String>, Vec<String>> = BTreeMap::new();
    for a in areas.values() {
        let parent = a.parent.clone().filter(|p| areas.contains_key(p));
        children.entry(parent).or_default().push(a.code.clone());
    }
    let mut out = Vec::new();
    let mut stack: Vec<(String, usize)> = children
        .get(&None)
        .into_iter()
        .flatten()
        .rev()
        .map(|c| (c.clone(), 0))
        .collect();
    let mut seen = HashSet::new();
    while let Some((code, depth)) = stack.pop() {
        if !seen.insert(code.clone()) {
            continue;
        }
        if let Some(a) = areas.get(&code)
            && c.caller.in_scope(&code)
        {
            let key = format!("level.{}", a.level.to_lowercase());
            let label = match i18n::t(&key, c.lang) {
                l if l == key => a.level.clone(),
                l => l.to_string(),
            };
            out.push(
                json!({"code": a.code, "name": a.name, "level": a.level, "level_label": label, "depth": depth,
                            "parent": a.parent, "devices": counts.get(&code).copied().unwrap_or(0)}),
            );
        }
        for ch in children.get(&Some(code.clone())).into_iter().flatten().rev() {
            stack.push((ch.clone(), depth + 1));
        }
    }
    let mut ctx = json!({"areas": out, "can_admin": c.caller.role == Role::Admin});
    if let (Some(o), Value::Object(e)) = (ctx.as_object_mut(), extra) {
        o.extend(e);
    }
    page_with(c, "areas.html", status, ctx)
}

async fn areas_page(c: Console, State(state): State<AppState>) -> PageResult {
    areas_view(&c, &state, json!({}), StatusCode::OK).await
}

/// Run an admin area action; a refused one re-renders the page with the message.
async fn area_action<T>(
    c: &Console,
    state: &AppState,
    run: impl std::future::Future<Output = Result<T>>,
    done: impl FnOnce(T) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
) -> PageResult {
    let lang = c.lang;
    c.caller.require(Role::Admin).map_err(|e| PageError(e, lang))?;
    match run.await {
        Ok(v) => {
            done(v).await;
            areas_view(
                c,
                state,
                json!({"flash": i18n::t("admin.saved", lang)}),
                StatusCode::OK,
            )
            .await
        }
        Err(e) if shown_on_form(&e) => {
            let status = e.status();
            areas_view(c, state, json!({"error": e.to_string()}), status).await
        }
        Err(e) => Err(PageError(e, lang)),
    }
}

async fn area_create(c: Console, State(state): State<AppState>, PageForm(f): PageForm<Fields>) -> PageResult {
    let req = area::NewArea {
        code: f.one("code"),
        name: f.one("name"),
        parent: f.opt("parent"),
        level: f.one("level"),
    };
    let (st, caller) = (state.clone(), c.caller.clone());
    area_action(&c, &state, area::create(&state, req), move |a| {
        Box::pin(
            async move { area::audit_change(&st, &caller, "area.create", &a.code, None, Some(&a)).await },
        )
    })
    .await
}

async fn area_save(
    c: Console,
    State(state): State<AppState>,
    Path(code): Path<String>,
    PageForm(f): PageForm<Fields>,
) -> PageResult {
    let parent = if f.has("parent") {
        Some(f.opt("parent"))
    } else {
        None
    };
    let patch = area::AreaPatch {
        name: f.opt("name"),
        level: f.opt("level"),
        parent,
    };
    let (st, caller) = (state.clone(), c.caller.clone());
    area_action(&c, &state, area::update(&state, &code, patch), move |(b, a)| {
        Box::pin(
            async move { area::audit_change(&st, &caller, "area.update", &a.code, Some(&b), Some(&a)).await },
        )
    })
    .await
}

async fn area_delete(
    c: Console,
    State(state): State<AppState>,
    Path(code): Path<String>,
    _checked: PageForm<Fields>,
) -> PageResult {
    let (st, caller) = (state.clone(), c.caller.clone());
    area_action(&c, &state, area::delete(&state, &code), move |b| {
        Box::pin(
            async move { area::audit_change(&st, &caller, "area.delete", &b.code, Some(&b), None).await },
        )
    })
    .await
}

async fn area_import(c: Console, State(state): State<AppState>, PageForm(f): PageForm<Fields>) -> PageResult {
    let lang = c.lang;
    c.caller.require(Role::Admin).map_err(|e| PageError(e, lang))?;
    let csv = f.raw("csv");
    match area::import(&state, &csv).await? {
        Ok(s) => {
            crate::store::audit::record_outside(
                &state.store,
                &c.caller.username,
                "area.import",
                "areas",
                None,
                serde_json::to_value(&s).ok(),
            )
            .await;
            areas_view(&c, &state, json!({"import": s}), StatusCode::OK).await
        }
        Err(lines) => {
            areas_view(
                &c,
                &state,
                json!({"import_errors": lines, "csv": csv}),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

// ---------------------------------------------------------------- devices

async fn device_view(
    c: &Console,
    state: &AppState,
    id: &str,
    extra: Value,
    status: StatusCode,
) -> PageResult {
    let lang = c.lang;
    crate::services::auth::check_device(state, &c.caller, id)
        .await
        .map_err(|e| PageError(e, lang))?;
    if c.caller.role != Role::Admin {
        c.caller.require(Role::Operator).map_err(|e| PageError(e, lang))?;
    }
    let d = fleet::get(&state.store, id)
        .await?
        .ok_or_else(|| PageError(Error::NotFound(format!("device `{id}`")), lang))?;
    let areas = all_areas(state).await?;
    let mut ctx = json!({"d": d, "areas": visible_areas(c, &areas)});
    if let (Some(o), Value::Object(e)) = (ctx.as_object_mut(), extra) {
        o.extend(e);
    }
    page_with(c, "device_edit.html", status, ctx)
}

async fn device_page(c: Console, State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    device_view(&c, &state, &id, json!({}), StatusCode::OK).await
}

fn parse_coord(f: &Fields, name: &'static str) -> Result<Option<f64>> {
    match f.opt(name) {
        None => Ok(None),
        Some(v) => v
            .replace(',', ".")
            .parse::<f64>()
            .map(Some)
            .map_err(|_| Error::bad("invalid_position", format!("`{name}`: `{v}` is not a number"))),
    }
}

async fn device_save(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(f): PageForm<Fields>,
) -> PageResult {
    let lang = c.lang;
    let res = async {
        let p = fleet::DevicePatch {
            name: f.opt("name"),
            area: f.opt("area"),
            enabled: Some(f.has("enabled")),
            lat: parse_coord(&f, "lat")?,
            lon: parse_coord(&f, "lon")?,
            volume: None,
            language: None,
            password: None,
            public_key: None,
        };
        fleet::check_edit(&state, &c.caller, &id, &p).await?;
        fleet::update(&state, &id, p).await
    }
    .await;
    match res {
        Ok((before, after)) => {
            fleet::audit_change(&state, &c.caller, Some(&before), Some(&after)).await;
            device_view(
                &c,
                &state,
                &id,
                json!({"flash": i18n::t("admin.saved", lang)}),
                StatusCode::OK,
            )
            .await
        }
        Err(e) if shown_on_form(&e) => {
            let status = e.status();
            device_view(&c, &state, &id, json!({"error": e.to_string()}), status).await
        }
        Err(e) => Err(PageError(e, lang)),
    }
}
