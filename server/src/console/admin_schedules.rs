//! Console schedule edit and delete, and the live description of a rule while it is typed
//! (issue 7). Saving and deleting go through `services::schedules`, so validation, scope,
//! manifest re-publication and the audit entry are the API's.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::admin::{page_with, shown_on_form};
use super::{Console, PageError, PageForm, PageResult, all_areas, i18n, visible_areas};
use crate::domain::schedule::{self, NewSchedule, RuleSpec, Schedule, Targets};
use crate::domain::scope::Role;
use crate::error::{Error, Result};
use crate::http::form::Fields;
use crate::services::{self, AppState};

// ---------------------------------------------------------------- schedules

#[derive(Deserialize)]
pub(super) struct DescribeQuery {
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
pub(super) async fn describe(c: Console, Query(q): Query<DescribeQuery>) -> impl IntoResponse {
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
) -> std::result::Result<Schedule, PageError> {
    services::schedules::get_visible(state, &c.caller, id)
        .await
        .map_err(|e| PageError(e, c.lang))
}

/// The edit form for `req` (the stored schedule or what was just refused).
async fn schedule_view(
    c: &Console,
    state: &AppState,
    s: &Schedule,
    req: &NewSchedule,
    enabled: bool,
    extra: Value,
    status: StatusCode,
) -> PageResult {
    let areas = all_areas(state).await?;
    let devices = super::scoped_devices(state, &c.caller).await?;
    let approved = crate::store::media::list_visible(
        &state.store,
        &c.caller,
        Some(crate::domain::review::ReviewStatus::Approved),
    )
    .await?;
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
        "can_edit": c.caller.grants(Role::Operator), "zones": super::schedules::time_zones(),
    });
    if let (Some(o), Value::Object(e)) = (ctx.as_object_mut(), extra) {
        o.extend(e);
    }
    page_with(c, "schedule_edit.html", status, ctx)
}

pub(super) async fn schedule_page(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> PageResult {
    let (s, extra) = match services::schedules::get_visible(&state, &c.caller, &id).await {
        Ok(s) => (s, json!({})),
        Err(Error::Forbidden(why)) => {
            // A schedule set above the caller's area that plays on their speakers: read-only.
            let reaching = super::schedules::reaching_schedules(&state, &c.caller).await?;
            let Some((s, _)) = reaching.into_iter().find(|(s, _)| s.id == id) else {
                return Err(PageError(Error::Forbidden(why), c.lang));
            };
            let areas = all_areas(&state).await?;
            let label = super::schedules::targets_label(&s, &areas);
            (s, json!({"can_edit": false, "inherited": label}))
        }
        Err(e) => return Err(PageError(e, c.lang)),
    };
    let req = schedule::as_request(&s);
    schedule_view(&c, &state, &s, &req, s.enabled, extra, StatusCode::OK).await
}

pub(super) async fn schedule_save(
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
        // The edit form does not show them: kept as they are.
        repetition: s.repetition.as_ref().and_then(|r| serde_json::to_value(r).ok()),
        valid_for_s: s.valid_for_s,
        relay: s.relay.clone(),
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
        services::schedules::update(&state, &c.caller, &id, req, Some(enabled)).await
    }
    .await;
    match res {
        Ok(_) => Ok(super::done(&format!("/console/schedules/{id}"), "saved")),
        Err(e) if shown_on_form(&e) || matches!(e, Error::NotFound(_) | Error::Forbidden(_)) => {
            let status = e.status();
            schedule_view(
                &c,
                &state,
                &s,
                &req,
                enabled,
                super::admin::form_error(&c, &e),
                status,
            )
            .await
        }
        Err(e) => Err(PageError(e, lang)),
    }
}

pub(super) async fn schedule_delete_page(
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

pub(super) async fn schedule_delete(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    _checked: PageForm<Fields>,
) -> PageResult {
    let lang = c.lang;
    c.caller.require(Role::Operator).map_err(|e| PageError(e, lang))?;
    visible_schedule(&c, &state, &id).await?;
    services::schedules::delete(&state, &c.caller, &id)
        .await
        .map_err(|e| PageError(e, lang))?;
    Ok(super::done("/console/schedules", "schedule_deleted"))
}
