//! The broadcast report pages (issue 7) for any period, with shortcuts for the half-year report
//! (1 Jan–14 Jun, due before 15 June) and the annual report (1 Jan–14 Dec, due before 15
//! December): `/console/reports` (table, SVG bar charts, print CSS), `/console/reports.csv`,
//! `/console/reports.xlsx`. The figures and what they mean are `domain::report`; the report is
//! computed by `services::reports::compute` over the caller's scope.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::{Datelike, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::json;

use super::{Console, PageError, PageResult, i18n};
use crate::domain::html::escape;
use crate::domain::report::period::{PeriodRequest, period_ms, resolve};
use crate::domain::report::{AreaReport, Report};
use crate::domain::spreadsheet::cell;
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::services::reports::compute;

#[derive(Debug, Deserialize)]
struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
    preset: Option<String>,
    year: Option<i32>,
}

/// The period asked for, read with today's date in Vietnam.
fn period(q: &PeriodQuery) -> (NaiveDate, NaiveDate) {
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .date_naive();
    let req = PeriodRequest {
        from: q.from.as_deref(),
        to: q.to.as_deref(),
        preset: q.preset.as_deref(),
        year: q.year,
    };
    resolve(&req, today)
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "—".into(), |v| format!("{} %", i18n::decimal(v * 100.0)))
}

fn secs(x: Option<f64>) -> String {
    x.map_or_else(|| "—".into(), i18n::decimal)
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
            escape(&label.chars().take(28).collect::<String>()),
            185.0 + w,
            y + 12,
            escape(shown)
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
            cell(&r.code).into_owned(),
            if r.code.is_empty() {
                cell(i18n::t("rep.total", c.lang)).into_owned()
            } else {
                cell(&r.name).into_owned()
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
