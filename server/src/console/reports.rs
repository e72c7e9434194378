//! The broadcast report (issue 7) for any period, with shortcuts for the half-year report
//! (1 Jan–14 Jun, due before 15 June) and the annual report (1 Jan–14 Dec, due before 15
//! December). One row per commune in the caller's scope (areas whose level is a commune; when
//! there is none, the top areas of the scope):
//!
//! - **items broadcast**: proofs of play with outcome `played`, `resumed` or `interrupted` whose
//!   occurrence falls in the period, on the devices of the commune's subtree;
//! - **minutes on air**: the sum of `ended_at − started_at` of those plays;
//! - **scheduled**: occurrences of the enabled schedules in the period, re-evaluated from their
//!   rules (not from published manifests), times each loudspeaker of the commune they target;
//! - **delivered**: distinct (device, schedule, occurrence) among those plays whose schedule exists;
//!   **delivery rate** = delivered ÷ scheduled;
//! - **availability**: for each loudspeaker, its online time in the period (from the status
//!   history, `fleet::history`) ÷ the part of the period it existed (registered, and not after
//!   now); per commune the mean over its loudspeakers, the total the mean over all of them;
//! - **emergencies**: distinct emergency items played, and their mean time to first play
//!   (first `started_at` − occurrence).
//!
//! Pages: `/console/reports` (table, SVG bar charts, print CSS), `/console/reports.csv`,
//! `/console/reports.xlsx`.

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::{Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;

use super::{AreaInfo, Console, PageError, PageResult, all_areas, i18n, period_ms, preset_period};
use crate::http::auth::Caller;
use crate::{AppState, Error, Result};

/// One report row (a commune) or the total.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AreaReport {
    /// Area code (empty for the total).
    pub code: String,
    /// Area name.
    pub name: String,
    /// Loudspeakers in the area's subtree.
    pub devices: i64,
    /// Loudspeakers online now.
    pub online: i64,
    /// Loudspeakers that existed during the period (those the availability is the mean over).
    pub availability_devices: i64,
    /// Plays that went on air.
    pub items: i64,
    /// Minutes on air.
    pub minutes: f64,
    /// Scheduled (device, occurrence) pairs.
    pub scheduled: i64,
    /// Of which played.
    pub delivered: i64,
    /// delivered ÷ scheduled (None when nothing was scheduled).
    pub delivery_rate: Option<f64>,
    /// Mean over the loudspeakers that existed in the period of (online time in the period ÷ the
    /// part of the period the loudspeaker existed); None when there is none.
    pub availability: Option<f64>,
    /// Distinct emergency items on air.
    pub emergencies: i64,
    /// Mean time to first play of those emergencies, seconds.
    pub ttfp_seconds: Option<f64>,
    #[serde(skip)]
    ttfp_sum_ms: i64,
    #[serde(skip)]
    availability_sum: f64,
}

impl AreaReport {
    fn finish(&mut self) {
        self.delivery_rate = (self.scheduled > 0).then(|| self.delivered as f64 / self.scheduled as f64);
        self.availability =
            (self.availability_devices > 0).then(|| self.availability_sum / self.availability_devices as f64);
        self.ttfp_seconds =
            (self.emergencies > 0).then(|| self.ttfp_sum_ms as f64 / 1000.0 / self.emergencies as f64);
    }
}

/// A computed report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Period start, unix ms (inclusive).
    pub from_ms: i64,
    /// Period end, unix ms (exclusive).
    pub to_ms: i64,
    /// One row per commune.
    pub rows: Vec<AreaReport>,
    /// Sums over the rows.
    pub total: AreaReport,
}

fn unit_of(areas: &BTreeMap<String, AreaInfo>, units: &HashSet<String>, code: &str) -> Option<String> {
    let mut cur = Some(code.to_string());
    for _ in 0..64 {
        let c = cur?;
        if units.contains(&c) {
            return Some(c);
        }
        cur = areas.get(&c).and_then(|a| a.parent.clone());
    }
    None
}

/// Compute the report for `[from_ms, to_ms)` over the caller's scope.
pub async fn compute(state: &AppState, caller: &Caller, from_ms: i64, to_ms: i64) -> Result<Report> {
    let areas = all_areas(state).await?;
    let mut units: Vec<&AreaInfo> = areas
        .values()
        .filter(|a| caller.in_scope(&a.code) && super::is_commune(&a.level))
        .collect();
    if units.is_empty() {
        units = areas
            .values()
            .filter(|a| {
                caller.in_scope(&a.code)
                    && a.parent
                        .as_ref()
                        .is_none_or(|p| !caller.in_scope(p) || !areas.contains_key(p))
            })
            .collect();
    }
    let unit_set: HashSet<String> = units.iter().map(|a| a.code.clone()).collect();
    let mut rows: BTreeMap<String, AreaReport> = units
        .iter()
        .map(|a| {
            (
                a.code.clone(),
                AreaReport {
                    code: a.code.clone(),
                    name: a.name.clone(),
                    ..Default::default()
                },
            )
        })
        .collect();

    // Devices → unit.
    let dev_rows = sqlx::query(
        "SELECT d.id, d.kind, d.area, d.created_at, s.online FROM devices d LEFT JOIN device_status s ON s.device_id = d.id",
    )
    .fetch_all(&state.store.pool)
    .await?;
    let mut dev_unit: HashMap<String, String> = HashMap::new();
    let mut speakers_by_area: HashMap<String, Vec<String>> = HashMap::new();
    let mut speaker_unit: HashMap<String, String> = HashMap::new();
    let mut speakers: Vec<(String, i64)> = Vec::new();
    for r in dev_rows {
        let id: String = r.try_get("id")?;
        let kind: String = r.try_get("kind")?;
        let area: String = r.try_get("area")?;
        let online = r.try_get::<Option<i64>, _>("online")?.unwrap_or(0) != 0;
        if !caller.in_scope(&area) {
            continue;
        }
        let Some(u) = unit_of(&areas, &unit_set, &area) else {
            continue;
        };
        if kind == "loudspeaker" {
            let row = rows.get_mut(&u).expect("unit row");
            row.devices += 1;
            row.online += i64::from(online);
            speakers_by_area.entry(area.clone()).or_default().push(id.clone());
            speaker_unit.insert(id.clone(), u.clone());
            speakers.push((id.clone(), r.try_get("created_at")?));
        }
        dev_unit.insert(id, u);
    }

    // Availability over the period, from the status history rows of the period.
    let avail =
        crate::fleet::history::availability(&state.store, &speakers, from_ms, to_ms, crate::store::now_ms())
            .await?;
    for (id, a) in &avail {
        if let Some(row) = speaker_unit.get(id).and_then(|u| rows.get_mut(u)) {
            row.availability_devices += 1;
            row.availability_sum += a.ratio;
        }
    }

    // Proof of play.
    let plays = sqlx::query(
        "SELECT device_id, schedule_id, item_id, occurrence_at, priority, outcome, started_at, ended_at FROM plays \
         WHERE occurrence_at >= $1 AND occurrence_at < $2",
    )
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(&state.store.pool)
    .await?;
    let schedules = crate::store::schedules::load_all(&state.store, false).await?;
    let known: HashSet<&str> = schedules.iter().map(|s| s.id.as_str()).collect();
    let mut delivered: HashSet<(String, String, i64)> = HashSet::new();
    let mut first_emergency: HashMap<(String, String), i64> = HashMap::new(); // (unit, item) → ttfp ms
    for r in plays {
        let device: String = r.try_get("device_id")?;
        let Some(u) = dev_unit.get(&device) else { continue };
        let outcome: String = r.try_get("outcome")?;
        if !matches!(outcome.as_str(), "played" | "resumed" | "interrupted") {
            continue;
        }
        let row = rows.get_mut(u).expect("unit row");
        row.items += 1;
        let started: Option<i64> = r.try_get("started_at")?;
        let ended: Option<i64> = r.try_get("ended_at")?;
        if let (Some(s), Some(e)) = (started, ended)
            && e > s
        {
            row.minutes += (e - s) as f64 / 60_000.0;
        }
        let schedule: String = r.try_get("schedule_id")?;
        let occ: i64 = r.try_get("occurrence_at")?;
        if known.contains(schedule.as_str()) && delivered.insert((device.clone(), schedule, occ)) {
            row.delivered += 1;
        }
        let priority: String = r.try_get("priority")?;
        if priority == "emergency" {
            let item: String = r.try_get("item_id")?;
            let t = started.map_or(0, |s| (s - occ).max(0));
            first_emergency
                .entry((u.clone(), item))
                .and_modify(|v| *v = (*v).min(t))
                .or_insert(t);
        }
    }
    for ((u, _), t) in first_emergency {
        let row = rows.get_mut(&u).expect("unit row");
        row.emergencies += 1;
        row.ttfp_sum_ms += t;
    }

    // Scheduled occurrences, re-evaluated from the rules.
    let from = crate::store::from_ms(from_ms);
    let to = crate::store::from_ms(to_ms);
    for s in schedules.iter().filter(|s| s.enabled) {
        let n = s.occurrences(from, to).len() as i64;
        if n == 0 {
            continue;
        }
        let mut targets: HashSet<String> = HashSet::new();
        for a in crate::area::subtree(&state.store, &s.targets.areas).await? {
            targets.extend(speakers_by_area.get(&a).into_iter().flatten().cloned());
        }
        targets.extend(
            s.targets
                .devices
                .iter()
                .filter(|d| speaker_unit.contains_key(*d))
                .cloned(),
        );
        for d in targets {
            if let Some(u) = speaker_unit.get(&d) {
                rows.get_mut(u).expect("unit row").scheduled += n;
            }
        }
    }

    let mut total = AreaReport::default();
    let mut out = Vec::new();
    for (_, mut r) in rows {
        total.devices += r.devices;
        total.online += r.online;
        total.availability_devices += r.availability_devices;
        total.availability_sum += r.availability_sum;
        total.items += r.items;
        total.minutes += r.minutes;
        total.scheduled += r.scheduled;
        total.delivered += r.delivered;
        total.emergencies += r.emergencies;
        total.ttfp_sum_ms += r.ttfp_sum_ms;
        r.finish();
        out.push(r);
    }
    total.finish();
    Ok(Report {
        from_ms,
        to_ms,
        rows: out,
        total,
    })
}

#[derive(Debug, Deserialize)]
struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
    preset: Option<String>,
    year: Option<i32>,
}

fn period(q: &PeriodQuery) -> (NaiveDate, NaiveDate) {
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .date_naive();
    let year = q.year.unwrap_or(today.year());
    if let Some(p) = q.preset.as_deref().and_then(|p| preset_period(p, year)) {
        return p;
    }
    let parse = |s: &Option<String>| {
        s.as_deref()
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    };
    let from = parse(&q.from).unwrap_or_else(|| NaiveDate::from_ymd_opt(today.year(), 1, 1).unwrap_or(today));
    let to = parse(&q.to).unwrap_or(today).max(from);
    (from, to)
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "—".into(), |v| format!("{} %", i18n::decimal(v * 100.0)))
}

fn secs(x: Option<f64>) -> String {
    x.map_or_else(|| "—".into(), i18n::decimal)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A horizontal bar chart as inline SVG (labels escaped).
pub fn bars_svg(items: &[(String, f64, String)]) -> String {
    let max = items.iter().map(|i| i.1).fold(0.0_f64, f64::max).max(1e-9);
    let h = 22 * items.len().max(1) + 4;
    let mut s = format!(
        r#"<svg class="bars" role="img" viewBox="0 0 640 {h}" width="100%" height="{h}" xmlns="http://www.w3.org/2000/svg">"#
    );
    for (i, (label, v, shown)) in items.iter().enumerate() {
        let y = 4 + i * 22;
        let w = (v / max * 380.0).max(0.0);
        s.push_str(&format!(
            r#"<text x="0" y="{}">{}</text><rect x="180" y="{y}" width="{w:.1}" height="16"></rect><text x="{:.1}" y="{}">{}</text>"#,
            y + 12,
            esc(&label.chars().take(28).collect::<String>()),
            185.0 + w,
            y + 12,
            esc(shown)
        ));
    }
    s.push_str("</svg>");
    s
}

/// Routes of the report pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/reports", get(report_page))
        .route("/console/reports.csv", get(report_csv))
        .route("/console/reports.xlsx", get(report_xlsx))
}

async fn report_page(c: Console, State(state): State<AppState>, Query(q): Query<PeriodQuery>) -> PageResult {
    let (from, to) = period(&q);
    let (a, b) = period_ms(from, to);
    let rep = compute(&state, &c.caller, a, b).await?;
    let row_json = |r: &AreaReport| {
        json!({"code": r.code, "name": r.name, "devices": r.devices, "items": r.items, "minutes": r.minutes,
               "scheduled": r.scheduled, "delivered": r.delivered, "delivery_pct": pct(r.delivery_rate),
               "availability_pct": pct(r.availability), "emergencies": r.emergencies, "ttfp": secs(r.ttfp_seconds)})
    };
    let minutes: Vec<(String, f64, String)> = rep
        .rows
        .iter()
        .map(|r| (r.name.clone(), r.minutes, i18n::decimal(r.minutes)))
        .collect();
    let delivery: Vec<(String, f64, String)> = rep
        .rows
        .iter()
        .map(|r| {
            (
                r.name.clone(),
                r.delivery_rate.unwrap_or(0.0) * 100.0,
                pct(r.delivery_rate),
            )
        })
        .collect();
    c.page(
        "reports.html",
        json!({
            "from": from.format("%Y-%m-%d").to_string(), "to": to.format("%Y-%m-%d").to_string(),
            "from_label": from.format("%d/%m/%Y").to_string(), "to_label": to.format("%d/%m/%Y").to_string(),
            "year": from.year(),
            "rows": rep.rows.iter().map(row_json).collect::<Vec<_>>(), "total": row_json(&rep.total),
            "chart_minutes": bars_svg(&minutes), "chart_delivery": bars_svg(&delivery),
        }),
    )
}

fn headers(lang: super::Lang) -> Vec<String> {
    [
        "area.code",
        "area.name",
        "rep.devices",
        "rep.items",
        "rep.minutes",
        "rep.scheduled",
        "rep.delivered",
        "rep.delivery",
        "rep.availability",
        "rep.emergencies",
        "rep.ttfp",
    ]
    .iter()
    .map(|k| i18n::t(k, lang).to_string())
    .collect()
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(String::new, |v| format!("{:.4}", v))
}

async fn report_csv(c: Console, State(state): State<AppState>, Query(q): Query<PeriodQuery>) -> PageResult {
    let (from, to) = period(&q);
    let (a, b) = period_ms(from, to);
    let rep = compute(&state, &c.caller, a, b).await?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| PageError(Error::internal_from("csv", e), c.lang);
    w.write_record(headers(c.lang)).map_err(csv_err)?;
    for r in rep.rows.iter().chain(std::iter::once(&rep.total)) {
        w.write_record([
            r.code.clone(),
            if r.code.is_empty() {
                i18n::t("rep.total", c.lang).to_string()
            } else {
                r.name.clone()
            },
            r.devices.to_string(),
            r.items.to_string(),
            format!("{:.2}", r.minutes),
            r.scheduled.to_string(),
            r.delivered.to_string(),
            opt(r.delivery_rate),
            opt(r.availability),
            r.emergencies.to_string(),
            opt(r.ttfp_seconds),
        ])
        .map_err(csv_err)?;
    }
    let mut body = "\u{feff}".as_bytes().to_vec(); // BOM: Excel opens UTF-8 Vietnamese correctly
    body.extend(
        w.into_inner()
            .map_err(|e| PageError(Error::internal_from("csv", e), c.lang))?,
    );
    let name = format!("bao-cao-{}-{}.csv", from.format("%Y%m%d"), to.format("%Y%m%d"));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// The report as an XLSX workbook (one sheet, numbers as numbers).
pub fn to_xlsx(rep: &Report, lang: super::Lang, from: NaiveDate, to: NaiveDate) -> Result<Vec<u8>> {
    use rust_xlsxwriter::{Format, Workbook};
    let x = |e: rust_xlsxwriter::XlsxError| Error::internal_from("xlsx", e);
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let ws = wb.add_worksheet();
    ws.set_name("Bao cao").map_err(x)?;
    ws.write_string_with_format(
        0,
        0,
        format!(
            "{}: {} – {}",
            i18n::t("rep.title", lang),
            from.format("%d/%m/%Y"),
            to.format("%d/%m/%Y")
        ),
        &bold,
    )
    .map_err(x)?;
    for (c, h) in headers(lang).iter().enumerate() {
        ws.write_string_with_format(2, c as u16, h, &bold).map_err(x)?;
    }
    for (i, r) in rep.rows.iter().chain(std::iter::once(&rep.total)).enumerate() {
        let row = 3 + i as u32;
        ws.write_string(row, 0, &r.code).map_err(x)?;
        ws.write_string(
            row,
            1,
            if r.code.is_empty() {
                i18n::t("rep.total", lang)
            } else {
                &r.name
            },
        )
        .map_err(x)?;
        ws.write_number(row, 2, r.devices as f64).map_err(x)?;
        ws.write_number(row, 3, r.items as f64).map_err(x)?;
        ws.write_number(row, 4, (r.minutes * 100.0).round() / 100.0)
            .map_err(x)?;
        ws.write_number(row, 5, r.scheduled as f64).map_err(x)?;
        ws.write_number(row, 6, r.delivered as f64).map_err(x)?;
        for (col, v) in [(7u16, r.delivery_rate), (8, r.availability), (10, r.ttfp_seconds)] {
            if let Some(v) = v {
                ws.write_number(row, col, v).map_err(x)?;
            }
        }
        ws.write_number(row, 9, r.emergencies as f64).map_err(x)?;
    }
    ws.set_column_width(1, 28).map_err(x)?;
    wb.save_to_buffer().map_err(x)
}

async fn report_xlsx(c: Console, State(state): State<AppState>, Query(q): Query<PeriodQuery>) -> PageResult {
    let (from, to) = period(&q);
    let (a, b) = period_ms(from, to);
    let rep = compute(&state, &c.caller, a, b).await?;
    let body = to_xlsx(&rep, c.lang, from, to)?;
    let name = format!("bao-cao-{}-{}.xlsx", from.format("%Y%m%d"), to.format("%Y%m%d"));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}
