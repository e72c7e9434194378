//! The calendar: a day or week of occurrences of the caller's schedules in Asia/Ho_Chi_Minh,
//! with overlapping occurrences that reach the same area or device marked as conflicts.

use std::collections::{HashMap, HashSet};

use axum::extract::{Query, State};
use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;

use super::schedules::{targets_label, visible_schedules};
use super::{Console, PageResult, priority_str};
use crate::error::Result;
use crate::services::AppState;

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
