//! The schedules page (issue 13): the caller's schedules with their rules in words and their
//! areas by name, and the form that creates one without cron: an approved clip, communes and
//! villages ticked in the area tree, weekday checkboxes (T2…CN) with one or more times of day (or
//! one date and time; cron under "nâng cao"), validity dates and a time zone from a list. The
//! form previews before saving (what it will do in plain words, the next plays and any overlap,
//! live through `GET /console/schedules/preview` or with the "Xem trước" button), keeps what
//! was typed when refused (the message in the user's language beside its field), refuses a
//! one-off time in the past, and "Phát ngay" plays the clip now through the play-now command.
//! Saving redirects to the week's calendar with a confirmation (POST-redirect-GET). The full
//! editor of one schedule is `admin_schedules`.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use serde_json::{Value, json};

use super::admin::{form_error, page_with, shown_on_form};
use super::schedule_form::{Input, USUAL_TIMES, WEEK};
use super::{AreaInfo, Console, Lang, PageError, PageForm, PageResult, all_areas, i18n, priority_str};
use crate::domain::command::CommandRequest;
use crate::domain::review::ReviewStatus;
use crate::domain::schedule::{self, NewSchedule, RuleSpec, Schedule};
use crate::domain::scope::{Caller, Role};
use crate::error::{Error, Result};
use crate::http::form::Fields;
use crate::services::{self, AppState};

/// Schedules whose every target is inside the caller's scope.
pub(super) async fn visible_schedules(state: &AppState, caller: &Caller) -> Result<Vec<Schedule>> {
    crate::store::schedules::load_visible(&state.store, caller).await
}

/// Every schedule that reaches a loudspeaker in the caller's scope, with whether it is inherited
/// (set for a wider or other area: province-wide, several communes; read-only to the caller)
/// rather than the caller's own (every target inside their scope). Unrestricted callers own all.
pub(super) async fn reaching_schedules(state: &AppState, caller: &Caller) -> Result<Vec<(Schedule, bool)>> {
    let Some(scope) = &caller.scope_areas else {
        return Ok(visible_schedules(state, caller)
            .await?
            .into_iter()
            .map(|s| (s, false))
            .collect());
    };
    let own: std::collections::HashSet<String> = visible_schedules(state, caller)
        .await?
        .into_iter()
        .map(|s| s.id)
        .collect();
    let tree = crate::store::areas::tree(&state.store).await?;
    let devices: std::collections::HashSet<String> = super::scoped_devices(state, caller)
        .await?
        .into_iter()
        .map(|d| d.id)
        .collect();
    let scope: std::collections::HashSet<&String> = scope.iter().collect();
    Ok(crate::store::schedules::load_all(&state.store, false)
        .await?
        .into_iter()
        .filter(|s| {
            own.contains(&s.id)
                || tree.subtree(&s.targets.areas).iter().any(|a| scope.contains(a))
                || s.targets.devices.iter().any(|d| devices.contains(d))
        })
        .map(|s| {
            let inherited = !own.contains(&s.id);
            (s, inherited)
        })
        .collect())
}

/// A schedule's targets by name (areas) and id (devices).
pub(super) fn targets_label(s: &Schedule, areas: &BTreeMap<String, AreaInfo>) -> String {
    s.targets
        .areas
        .iter()
        .map(|a| areas.get(a).map_or_else(|| a.clone(), |x| x.name.clone()))
        .chain(s.targets.devices.iter().cloned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The areas the caller may target, in tree order with their depth (for indentation), ticked
/// when in `chosen`.
fn area_tree(
    c: &Console,
    state_areas: &BTreeMap<String, AreaInfo>,
    tree: &crate::domain::area::AreaTree,
    chosen: &[String],
) -> Vec<Value> {
    tree.depth_first()
        .into_iter()
        .filter(|(code, _)| c.caller.in_scope(code))
        .filter_map(|(code, depth)| {
            let a = state_areas.get(&code)?;
            Some(
                json!({"code": code, "name": a.name, "level": a.level, "depth": depth.min(10),
                        "checked": chosen.contains(&code)}),
            )
        })
        .collect()
}

/// Time zones offered: Vietnam's first, then every IANA zone.
pub(super) fn time_zones() -> Vec<&'static str> {
    let mut z = vec!["Asia/Ho_Chi_Minh"];
    z.extend(
        chrono_tz::TZ_VARIANTS
            .iter()
            .map(|t| t.name())
            .filter(|n| *n != "Asia/Ho_Chi_Minh"),
    );
    z
}

/// The plain-language description of what the form will do.
fn describe(input: &Input, reqs: &[NewSchedule], areas: &BTreeMap<String, AreaInfo>, lang: Lang) -> String {
    let names: Vec<String> = input
        .areas
        .iter()
        .map(|a| areas.get(a).map_or_else(|| a.clone(), |x| x.name.clone()))
        .collect();
    let en = lang == Lang::En;
    let when = if input.mode == "weekly" {
        let mut days: Vec<u8> = input.days.clone();
        days.sort_by_key(|d| WEEK.iter().position(|w| w == d));
        let days = if days.len() == 7 {
            i18n::t("sched.everyday", lang).to_lowercase()
        } else {
            days.iter()
                .map(|d| i18n::t(&format!("wday.{d}"), lang).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut times = input.times.clone();
        times.sort();
        let joiner = if en { " and " } else { " và " };
        if en {
            format!("Every week on {days}, at {}", times.join(joiner))
        } else {
            format!("Hằng tuần vào {days}, lúc {}", times.join(joiner))
        }
    } else {
        reqs.iter()
            .map(|r| schedule::describe(&r.rule, en))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mut out = if en {
        format!("{when}, in {}", names.join(", "))
    } else {
        format!("{when}, tại {}", names.join(", "))
    };
    if !input.valid_from.is_empty() || !input.valid_until.is_empty() {
        let d = |v: &str| {
            chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map(|d| d.format("%d/%m/%Y").to_string())
                .unwrap_or_default()
        };
        let (from, until) = (d(&input.valid_from), d(&input.valid_until));
        out.push_str(&match (en, from.is_empty(), until.is_empty()) {
            (true, false, false) => format!(", from {from} to {until}"),
            (true, false, true) => format!(", from {from}"),
            (true, true, _) => format!(", until {until}"),
            (false, false, false) => format!(", từ {from} đến {until}"),
            (false, false, true) => format!(", từ {from}"),
            (false, true, _) => format!(", đến hết {until}"),
        });
    }
    out.push('.');
    out
}

/// The preview of a form: its description, the next plays and the overlaps with other
/// schedules (`services::schedules::preview`, which checks everything saving would).
async fn preview(c: &Console, state: &AppState, input: &Input) -> Result<Value> {
    let reqs = input.requests(Utc::now())?;
    let areas = all_areas(state).await?;
    let mut next: Vec<chrono::DateTime<Utc>> = Vec::new();
    let mut overlaps = Vec::new();
    let now = Utc::now();
    for r in &reqs {
        let p = services::schedules::preview(state, &c.caller, r).await?;
        next.extend(p.schedule.occurrences(now, now + chrono::Duration::days(31)));
        overlaps.extend(p.warnings.overlaps);
    }
    next.sort();
    let titles: HashMap<String, String> = visible_schedules(state, &c.caller)
        .await?
        .into_iter()
        .map(|s| (s.id, s.title))
        .collect();
    let conflicts: Vec<String> = overlaps
        .iter()
        .take(5)
        .map(|o| {
            let title = titles
                .get(&o.schedule_id)
                .cloned()
                .unwrap_or_else(|| o.schedule_id.clone());
            format!(
                "{} — {title} ({})",
                i18n::datetime(o.at.timestamp_millis()),
                o.device
            )
        })
        .collect();
    Ok(json!({
        "describe": describe(input, &reqs, &areas, c.lang),
        "next": next.iter().take(5).map(|t| i18n::datetime(t.timestamp_millis())).collect::<Vec<_>>(),
        "conflicts": conflicts,
    }))
}

/// The page with `input` in the form and `extra` (a refusal, a preview) merged in.
async fn schedules_view(
    c: &Console,
    state: &AppState,
    input: &Input,
    extra: Value,
    status: StatusCode,
) -> PageResult {
    let areas = all_areas(state).await?;
    let tree = crate::store::areas::tree(&state.store).await?;
    let approved = super::media::media_rows(state, &c.caller, Some(ReviewStatus::Approved)).await?;
    let list: Vec<Value> = reaching_schedules(state, &c.caller)
        .await?
        .iter()
        .map(|(s, inherited)| {
            let rule = match &s.rule {
                RuleSpec::Once { at } => at.clone(),
                RuleSpec::Cron { cron } => cron.clone(),
            };
            json!({"id": s.id, "title": s.title, "priority": priority_str(&s.priority), "targets": targets_label(s, &areas),
                   "rule": rule, "time_zone": s.time_zone, "enabled": s.enabled, "inherited": inherited,
                   "describe": schedule::describe(&s.rule, c.lang == Lang::En)})
        })
        .collect();
    let mut form = input.to_json();
    if input.times.is_empty() {
        form["times"] = json!([""]);
    }
    let mut ctx = json!({"schedules": list, "approved": approved, "tree": area_tree(c, &areas, &tree, &input.areas),
        "form": form, "week": WEEK, "usual_times": USUAL_TIMES, "zones": time_zones(),
        "can_schedule": c.caller.grants(Role::Operator)});
    if let (Some(o), Value::Object(e)) = (ctx.as_object_mut(), extra) {
        o.extend(e);
    }
    page_with(c, "schedules.html", status, ctx)
}

pub(super) async fn schedules_page(c: Console, State(state): State<AppState>) -> PageResult {
    let input = Input {
        mode: "weekly".into(),
        priority: "normal".into(),
        time_zone: state.settings.time_zone.clone(),
        ..Input::default()
    };
    schedules_view(&c, &state, &input, json!({}), StatusCode::OK).await
}

/// Save, preview or play now, by the button pressed (`action`).
pub(super) async fn create_schedule(
    c: Console,
    State(state): State<AppState>,
    PageForm(f): PageForm<Fields>,
) -> PageResult {
    let lang = c.lang;
    c.caller.require(Role::Operator).map_err(|e| PageError(e, lang))?;
    let input = Input::read(&f, &state.settings.time_zone);
    let action = f.opt("action").unwrap_or_else(|| "save".into());
    let res: Result<axum::response::Response> = async {
        for a in &input.areas {
            c.caller.check_area(a)?;
        }
        match action.as_str() {
            "preview" => {
                let p = preview(&c, &state, &input).await?;
                schedules_view(&c, &state, &input, json!({"preview": p}), StatusCode::OK)
                    .await
                    .map_err(|PageError(e, _)| e)
            }
            "play_now" => play_now(&c, &state, &input).await,
            _ => {
                let reqs = input.requests(Utc::now())?;
                // Every rule is checked before the first is written.
                for r in &reqs {
                    services::schedules::preview(&state, &c.caller, r).await?;
                }
                let mut first: Option<chrono::DateTime<Utc>> = None;
                for r in &reqs {
                    let created = services::schedules::create(&state, &c.caller, r.clone()).await?;
                    let next = created.next_occurrences.first().map(|o| o.utc);
                    first = first.into_iter().chain(next).min();
                }
                let ok = if reqs.len() > 1 {
                    "schedules_created"
                } else {
                    "schedule_created"
                };
                // The week of the first occurrence, so the new schedule is on the page even when
                // this week has none of its days left (a weekday schedule saved on a Saturday).
                let week = match first {
                    Some(t) => format!(
                        "/console/calendar?view=week&date={}",
                        t.with_timezone(&chrono_tz::Asia::Ho_Chi_Minh).format("%Y-%m-%d")
                    ),
                    None => "/console/calendar?view=week".to_string(),
                };
                Ok(super::done(&week, ok))
            }
        }
    }
    .await;
    match res {
        Ok(r) => Ok(r),
        Err(e) if shown_on_form(&e) || matches!(e, Error::Forbidden(_)) => {
            let status = e.status();
            schedules_view(&c, &state, &input, form_error(&c, &e), status).await
        }
        Err(e) => Err(PageError(e, lang)),
    }
}

/// "Phát ngay": the chosen clip now in every chosen area (`services::commands::issue`, one
/// play-now command per area), then the command's delivery view (or the list for several).
async fn play_now(c: &Console, state: &AppState, input: &Input) -> Result<axum::response::Response> {
    if input.media.is_empty() {
        return Err(Error::bad("media_required", "`media`: choose an approved clip"));
    }
    if input.areas.is_empty() {
        return Err(Error::unprocessable(
            "targets_required",
            "`area`: choose at least one area",
        ));
    }
    let mut last = String::new();
    for a in &input.areas {
        let req = CommandRequest::PlayNow {
            media: vec![input.media.clone()],
            priority: Some(input.priority.parse().unwrap_or_default()),
            volume: None,
            title: Some(input.title.trim().to_string()).filter(|t| !t.is_empty()),
            // A repeating emergency repeats for the longest window (24 h) unless stopped: the
            // late window alone (30 min) would end an `every_2h` before its first replay.
            valid_for_s: input
                .repetition_request()
                .map(|_| crate::domain::command::MAX_WINDOW_SECS as u32),
            expires_at: None,
            repetition: input.repetition_request(),
        };
        let issued =
            services::commands::issue(state, &c.caller, services::commands::Target::Area(a.clone()), req)
                .await?;
        last = issued.command_id;
    }
    Ok(if input.areas.len() == 1 {
        super::done(&format!("/console/commands/{last}"), "play_now_sent")
    } else {
        super::done("/console/commands", "play_now_sent")
    })
}

/// The live preview the form's script asks for while it is filled in (JSON: `describe`, `next`,
/// `conflicts`, or `error` with its `error_field`).
pub(super) async fn preview_json(
    c: Console,
    State(state): State<AppState>,
    Query(f): Query<Fields>,
) -> axum::response::Response {
    let input = Input::read(&f, &state.settings.time_zone);
    let body = match preview(&c, &state, &input).await {
        Ok(p) => p,
        Err(e) if !e.is_internal() => form_error(&c, &e),
        Err(e) => return PageError(e, c.lang).into_response(),
    };
    axum::Json(body).into_response()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn the_schedule_form_renders_empty_refused_and_previewed() {
        let base = json!({"lang": "vi", "csrf": "x", "user": {"username": "u", "display_name": "U", "role": "operator", "roles": ["operator"]},
            "schedules": [], "approved": [{"sha256": "ab", "title": "Tin", "duration_ms": 1000}],
            "tree": [{"code": "a", "name": "Xã A", "level": "commune", "depth": 1, "checked": false}],
            "form": super::Input { mode: "weekly".into(), ..Default::default() }.to_json(), "week": super::WEEK,
            "usual_times": super::USUAL_TIMES, "zones": ["Asia/Ho_Chi_Minh"], "can_schedule": true});
        let html = super::super::render("schedules.html", base.clone()).unwrap();
        assert!(html.contains("id=\"time-0630\"") && !html.contains("field-error"));
        let mut refused = base.clone();
        refused["error"] = json!("Thời điểm phát đã qua");
        refused["error_field"] = json!("at");
        let html = super::super::render("schedules.html", refused).unwrap();
        assert!(html.contains("id=\"at-error\""));
        let mut previewed = base;
        previewed["preview"] =
            json!({"describe": "Hằng tuần", "next": ["01/12/2026 06:30"], "conflicts": []});
        let html = super::super::render("schedules.html", previewed).unwrap();
        assert!(html.contains(">Hằng tuần</span>") && html.contains("2026 06:30</span>"));
    }
}
