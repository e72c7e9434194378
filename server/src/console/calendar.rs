//! The calendar: a day or week of occurrences in Asia/Ho_Chi_Minh of every schedule that reaches
//! the caller's loudspeakers (for a commune operator also the province-wide and multi-commune
//! ones, marked "kế thừa"), each day named (Thứ Hai …), each entry a link to its schedule, areas
//! by name, no occurrence before its schedule was created, and overlapping occurrences that reach
//! the same area or device marked as conflicts (`domain::schedule::overlap::conflicts`). Reads
//! only, through `store`.

use std::collections::HashSet;

use axum::extract::{Query, State};
use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::schedules::{reaching_schedules, targets_label};
use super::{Console, PageResult, all_areas, i18n, priority_str};
use crate::domain::schedule::local_to_utc;
use crate::domain::schedule::overlap::{Slot, conflicts};
use crate::services::AppState;
use crate::store;

#[derive(Deserialize)]
pub(super) struct CalendarQuery {
    view: Option<String>,
    date: Option<String>,
}

pub(super) async fn calendar(
    c: Console,
    State(state): State<AppState>,
    Query(q): Query<CalendarQuery>,
) -> PageResult {
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
    let local_midnight = |d: NaiveDate| local_to_utc(tz, d.and_hms_opt(0, 0, 0).unwrap_or_default());
    let from = local_midnight(start);
    let to = local_midnight(start + Duration::days(days));
    let reaching = reaching_schedules(&state, &c.caller).await?;
    let inherited: Vec<bool> = reaching.iter().map(|(_, i)| *i).collect();
    let schedules: Vec<_> = reaching.into_iter().map(|(s, _)| s).collect();
    let names = all_areas(&state).await?;
    let shas: Vec<String> = schedules.iter().flat_map(|s| s.media.iter().cloned()).collect();
    let durations = store::schedules::media_durations(&state.store, &shas).await?;
    let tree = store::areas::tree(&state.store).await?;
    // Each schedule's footprint: the areas it reaches (subtrees) and its devices.
    let mut occs: Vec<Slot> = Vec::new();
    for (i, s) in schedules.iter().enumerate().filter(|(_, s)| s.enabled) {
        let mut reach: HashSet<String> = tree.subtree(&s.targets.areas).into_iter().collect();
        reach.extend(s.targets.devices.iter().map(|d| format!("device:{d}")));
        let len: i64 = s
            .media
            .iter()
            .map(|m| durations.get(m).copied().unwrap_or(0))
            .sum::<i64>()
            * i64::from(s.repeat.max(1));
        // Nothing is drawn before the schedule existed.
        for t in s.occurrences(from.max(s.created_at), to) {
            let t = t.timestamp_millis();
            occs.push(Slot {
                start: t,
                end: t + len.max(60_000),
                schedule: i,
                reach: reach.clone(),
            });
        }
    }
    occs.sort_by_key(|o| o.start);
    let conflict = conflicts(&occs);
    let mut day_items: Vec<Vec<Value>> = vec![Vec::new(); days as usize];
    for (k, slot) in occs.iter().enumerate() {
        let local = tz
            .timestamp_millis_opt(slot.start)
            .single()
            .unwrap_or_else(|| tz.timestamp_millis_opt(0).unwrap());
        let idx = (local.date_naive() - start).num_days();
        if !(0..days).contains(&idx) {
            continue;
        }
        let s = &schedules[slot.schedule];
        day_items[idx as usize].push(json!({
            "time": local.format("%H:%M").to_string(), "title": s.title, "priority": priority_str(&s.priority),
            "targets": targets_label(s, &names), "conflict": conflict[k], "id": s.id,
            "inherited": inherited[slot.schedule],
        }));
    }
    let days_json: Vec<Value> = day_items
        .into_iter()
        .enumerate()
        .map(|(i, items)| {
            let d = start + Duration::days(i as i64);
            let wday = i18n::t(&format!("wday.{}", d.weekday().num_days_from_sunday()), c.lang).to_string();
            json!({"label": d.format("%d/%m/%Y").to_string(), "weekday": wday, "items": items,
                   "today": d == today})
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
