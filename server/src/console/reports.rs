//! The broadcast report pages (issues 7 and 13) for any period, with shortcuts for the reporting
//! periods of Decree 09/2019/NĐ-CP (half-year 15/12–14/6, annual 15/12–14/12):
//! `/console/reports` (the form's heading, the sections' tables, SVG bar charts with percentages
//! on a 0–100 % scale), `/console/reports/print` (the same as a printable A4 page without the
//! menu, with the signature block), `/console/reports.csv` and `/console/reports.xlsx`. The
//! figures are `services::reports::file`'s, the same as `GET /api/v1/reports`; what they mean
//! is `domain::report`.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use chrono::{NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Console, PageError, PageResult, i18n, render};
use crate::domain::html::escape;
use crate::domain::report::AreaReport;
use crate::domain::report::period::{PeriodRequest, report_year, resolve};
use crate::http::reports::download;
use crate::services::AppState;
use crate::services::reports::{Filed, export, file};

#[derive(Debug, Deserialize)]
struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
    preset: Option<String>,
    year: Option<i32>,
    area: Option<String>,
    #[serde(default)]
    section: Option<String>,
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

/// How a bar chart scales its bars.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// Percentages: a full bar is 100 %, whatever the largest value.
    Percent,
    /// Counts: the largest value is a full bar.
    OwnMax,
}

/// A horizontal bar chart as inline SVG (labels escaped); with [`Scale::Percent`] the values are
/// percentages drawn on a 0–100 % axis.
pub fn bars_svg(items: &[(String, f64, String)], scale: Scale) -> String {
    let max = match scale {
        Scale::Percent => 100.0,
        Scale::OwnMax => items.iter().map(|i| i.1).fold(0.0_f64, f64::max).max(1e-9),
    };
    let h = 22 * items.len().max(1) + 4;
    let mut s = format!(
        r#"<svg class="bars" role="img" viewBox="0 0 640 {h}" width="100%" height="{h}" xmlns="http://www.w3.org/2000/svg">"#
    );
    if scale == Scale::Percent {
        // The 100 % mark, so a short bar reads as short.
        s.push_str(&format!(
            r#"<line class="axis" x1="560" y1="0" x2="560" y2="{h}"></line>"#
        ));
    }
    for (i, (label, v, shown)) in items.iter().enumerate() {
        let y = 4 + i * 22;
        let w = (v.clamp(0.0, max) / max * 380.0).max(0.0);
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
        .route("/console/reports/print", get(print_page))
        .route("/console/reports.csv", get(report_csv))
        .route("/console/reports.xlsx", get(report_xlsx))
}

fn row_json(r: &AreaReport, district: &str) -> Value {
    json!({"code": r.code, "name": r.name, "district": district, "devices": r.devices, "items": r.items,
           "programmes": r.programmes, "minutes": r.minutes, "scheduled": r.scheduled, "delivered": r.delivered,
           "delivery_pct": pct(r.delivery_rate), "availability_pct": pct(r.availability),
           "emergencies": r.emergencies, "ttfp": secs(r.ttfp_seconds),
           "published": r.bulletins_published, "boards": r.boards, "boards_online": r.boards_online,
           "board_availability_pct": pct(r.board_availability), "displays": r.displays,
           "display_minutes": r.display_minutes, "shown": r.bulletins_shown})
}

/// The context of the report page and its printable twin.
fn context(f: &Filed, q: &PeriodQuery, lang: super::Lang) -> Value {
    let names: std::collections::HashMap<&str, &str> = f
        .districts
        .iter()
        .map(|d| (d.code.as_str(), d.name.as_str()))
        .collect();
    let rows: Vec<Value> = f
        .areas
        .iter()
        .map(|r| row_json(r, names.get(r.district.as_str()).copied().unwrap_or_default()))
        .collect();
    let districts: Vec<Value> = f
        .districts
        .iter()
        .map(|d| {
            let mut d = d.clone();
            if d.code.is_empty() {
                d.name = i18n::t("rep.no_district", lang).into();
            }
            row_json(&d, "")
        })
        .collect();
    let chart = |get: fn(&AreaReport) -> Option<f64>| {
        let items: Vec<(String, f64, String)> = f
            .areas
            .iter()
            .map(|r| (r.name.clone(), get(r).unwrap_or(0.0) * 100.0, pct(get(r))))
            .collect();
        bars_svg(&items, Scale::Percent)
    };
    let minutes: Vec<(String, f64, String)> = f
        .areas
        .iter()
        .map(|r| (r.name.clone(), r.minutes, i18n::decimal(r.minutes)))
        .collect();
    let unknown = i18n::t("rep.unknown", lang);
    let breakdown = |dim: &str| -> Vec<Value> {
        f.breakdown
            .iter()
            .filter(|b| b.dimension == dim)
            .map(|b| {
                json!({"key": if b.key.is_empty() { unknown } else { b.key.as_str() }, "plays": b.plays,
                       "minutes": b.minutes, "displays": b.displays, "display_minutes": b.display_minutes})
            })
            .collect()
    };
    let from = NaiveDate::parse_from_str(&f.period.from, "%Y-%m-%d").unwrap_or_default();
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("from", &f.period.from)
        .append_pair("to", &f.period.to);
    if let Some(a) = q.area.as_deref().filter(|a| !a.is_empty()) {
        query.append_pair("area", a);
    }
    let query = query.finish();
    json!({
        "from": f.period.from, "to": f.period.to, "query": query, "area": q.area,
        "from_label": from.format("%d/%m/%Y").to_string(),
        "to_label": NaiveDate::parse_from_str(&f.period.to, "%Y-%m-%d").unwrap_or_default().format("%d/%m/%Y").to_string(),
        "counted_until": f.period.counted_until_ms,
        "year": report_year(from + chrono::Duration::days(1)),
        "form": f.form,
        "rows": rows, "total": row_json(&f.total, ""),
        "districts": districts, "has_districts": f.districts.iter().any(|d| !d.code.is_empty()),
        "languages": breakdown("language"), "categories": breakdown("category"),
        "chart_minutes": bars_svg(&minutes, Scale::OwnMax),
        "chart_delivery": chart(|r| r.delivery_rate),
        "chart_availability": chart(|r| r.availability),
        "policy": f.policy, "policy_pct": pct(f.policy.rate),
        "policy_stages": f.policy.stages.iter().map(|s| json!({"stage": s.stage, "reached": s.reached,
            "communicated": s.communicated, "pct": pct(s.rate)})).collect::<Vec<_>>(),
        "reach": f.reach,
        "engagement": f.engagement,
        "engagement_median": f.engagement.feedback.median_response_ms
            .map(|m| super::i18n::decimal(m as f64 / 3_600_000.0)),
        "autonomy": f.autonomy.iter().map(|c| json!({"area": c.area, "name": c.name, "asked": c.asked,
            "accepted": c.accepted, "declined": c.declined, "reslotted": c.reslotted,
            "unanswered": c.unanswered, "pending": c.pending,
            "median_min": c.median_answer_s.map(|s| super::i18n::decimal(s as f64 / 60.0))})).collect::<Vec<_>>(),
    })
}

async fn filed(c: &Console, state: &AppState, q: &PeriodQuery) -> crate::error::Result<Filed> {
    let (from, to) = period(q);
    file(
        state,
        &c.caller,
        from,
        to,
        q.area.as_deref().filter(|a| !a.is_empty()),
    )
    .await
}

async fn report_page(c: Console, State(state): State<AppState>, Query(q): Query<PeriodQuery>) -> PageResult {
    let f = filed(&c, &state, &q).await?;
    c.page("reports.html", context(&f, &q, c.lang))
}

async fn print_page(c: Console, State(state): State<AppState>, Query(q): Query<PeriodQuery>) -> PageResult {
    let f = filed(&c, &state, &q).await?;
    Ok(Html(render("reports_print.html", c.ctx(context(&f, &q, c.lang)))?).into_response())
}

async fn report_csv(c: Console, State(state): State<AppState>, Query(q): Query<PeriodQuery>) -> PageResult {
    let f = filed(&c, &state, &q).await?;
    let section = crate::services::reports::policy_export::Section::parse(q.section.as_deref())
        .map_err(|e| PageError(e, c.lang))?;
    let body = crate::services::reports::policy_export::csv(&f, section)?;
    Ok(download(
        "text/csv; charset=utf-8",
        &export::file_name(&f, "csv"),
        body,
    ))
}

async fn report_xlsx(c: Console, State(state): State<AppState>, Query(q): Query<PeriodQuery>) -> PageResult {
    let f = filed(&c, &state, &q).await?;
    let body = export::xlsx(&f)?;
    Ok(download(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        &export::file_name(&f, "xlsx"),
        body,
    ))
}
