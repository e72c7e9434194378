//! Who heard it (issue 12 §2): the console's view of a command's delivery tracking, for operators
//! whose scope covers its target.
//!
//! - `/console/commands`: the latest commands in the caller's scope, each linking to its view;
//! - `/console/commands/{id}`: counts per state and one table per commune (the targets' areas)
//!   with each loudspeaker's state, since when, the delay of a late play and the reason of a
//!   failure; the tables are a fragment (`command_live.html`) that
//!   `/console/commands/{id}/live` sends again as a server-sent event every [`LIVE_EVERY`]
//!   (`static/console.js` swaps it in), so the page follows the delivery live;
//! - `/console/commands/{id}/csv`: the same per target, with the history of changes, as CSV.
//!
//! The live fragment also draws the targets that have coordinates as an inline SVG map, each
//! cluster a dot coloured by its state ([`map_ctx`]), so it follows the delivery live too.
//!
//! The states come from `services::commands::tracked` (`domain::tracking`).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures::Stream;
use serde_json::{Value, json};

use super::{Console, Lang, PageError, PageResult, i18n, render};
use crate::domain::report::records::CommandReport;
use crate::domain::spreadsheet::cell;
use crate::domain::tracking::{TargetState, Tracking};
use crate::error::Error;
use crate::services::{AppState, commands};

/// How often the live view is sent again.
pub const LIVE_EVERY: Duration = Duration::from_secs(2);

/// Routes of the tracking pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/commands", get(list_page))
        .route("/console/commands/{id}", get(command_page))
        .route("/console/commands/{id}/live", get(live))
        .route("/console/commands/{id}/csv", get(csv_export))
}

async fn list_page(c: Console, State(state): State<AppState>) -> PageResult {
    let rows = commands::recent(&state, &c.caller, 100)
        .await
        .map_err(|e| PageError(e, c.lang))?;
    c.page("commands.html", json!({"commands": rows}))
}

/// Positions of devices by id (`store::devices::positions`).
type Positions = std::collections::HashMap<String, (Option<f64>, Option<f64>)>;

/// The colour of a state's dot on the map.
fn state_colour(s: TargetState) -> &'static str {
    match s {
        TargetState::Pending => "#9aa5b1",
        TargetState::OfflinePending => "#5b6775",
        TargetState::Delivered => "#2563eb",
        TargetState::Playing => "#7c3aed",
        TargetState::Played => "#16a34a",
        TargetState::PlayedLate => "#65a30d",
        TargetState::Interrupted => "#d97706",
        TargetState::Failed => "#dc2626",
        TargetState::Cancelled => "#374151",
        TargetState::Expired => "#991b1b",
    }
}

/// The map of the live fragment: every target with coordinates as a point of a 480 × 320 SVG
/// (an equirectangular projection of the targets' bounding box, longitudes scaled by the cosine
/// of the mean latitude), coloured by state, and the legend of the states present.
pub fn map_ctx(t: &Tracking, pos: &Positions) -> Value {
    let (w, h, pad) = (480.0_f64, 320.0_f64, 16.0_f64);
    let pts: Vec<(&crate::domain::tracking::TargetReport, f64, f64)> = t
        .targets
        .iter()
        .filter_map(|x| match pos.get(&x.device_id) {
            Some((Some(lat), Some(lon))) if lat.is_finite() && lon.is_finite() => Some((x, *lat, *lon)),
            _ => None,
        })
        .collect();
    if pts.is_empty() {
        return json!({"points": [], "w": w, "h": h});
    }
    let (mut lat0, mut lat1, mut lon0, mut lon1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (_, lat, lon) in &pts {
        (lat0, lat1, lon0, lon1) = (lat0.min(*lat), lat1.max(*lat), lon0.min(*lon), lon1.max(*lon));
    }
    let k = ((lat0 + lat1) / 2.0).to_radians().cos().max(0.1);
    let span = ((lon1 - lon0) * k).max(lat1 - lat0).max(1e-4);
    let scale = ((w - 2.0 * pad) / span).min((h - 2.0 * pad) / span);
    let points: Vec<Value> = pts
        .iter()
        .map(|(x, lat, lon)| {
            json!({"device_id": x.device_id, "state": x.state.as_str(), "colour": state_colour(x.state),
                   "x": format!("{:.1}", pad + (lon - lon0) * k * scale),
                   "y": format!("{:.1}", pad + (lat1 - lat) * scale)})
        })
        .collect();
    let legend: Vec<Value> = TargetState::ALL
        .iter()
        .filter(|s| pts.iter().any(|(x, _, _)| x.state == **s))
        .map(|s| json!({"state": s.as_str(), "colour": state_colour(*s)}))
        .collect();
    json!({"points": points, "legend": legend, "w": w, "h": h})
}

/// The context of the live fragment: counts in state order, one table per area (by code) with
/// its area's name and counts, and the map.
fn live_ctx(state_names: &BTreeMap<String, String>, t: &Tracking, pos: &Positions, lang: Lang) -> Value {
    let states: Vec<Value> = TargetState::ALL
        .iter()
        .map(|s| json!({"state": s.as_str(), "n": t.counts.get(s.as_str()).copied().unwrap_or(0)}))
        .collect();
    let mut by_area: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for x in &t.targets {
        by_area.entry(x.area.as_str()).or_default().push(json!({
            "device_id": x.device_id,
            "state": x.state.as_str(),
            "since": x.since.timestamp_millis(),
            "delay_s": x.delay_ms.map(|d| format!("{:.1}", d as f64 / 1000.0)),
            "reason": x.reason,
        }));
    }
    let areas: Vec<Value> = by_area
        .into_iter()
        .map(|(code, rows)| {
            let reached = t
                .targets
                .iter()
                .filter(|x| x.area == code && x.state.reached())
                .count();
            json!({"code": code, "name": state_names.get(code).cloned().unwrap_or_default(),
                   "targets": rows.len(), "reached": reached, "rows": rows})
        })
        .collect();
    json!({"lang": lang.code(), "states": states, "areas": areas, "reached": t.reached,
           "total": t.targets.len(), "map": map_ctx(t, pos)})
}

async fn area_names(state: &AppState) -> crate::error::Result<BTreeMap<String, String>> {
    Ok(super::all_areas(state)
        .await?
        .into_iter()
        .map(|(code, a)| (code, a.name))
        .collect())
}

async fn command_page(c: Console, State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    let report = commands::tracked(&state, &c.caller, &id)
        .await
        .map_err(|e| PageError(e, c.lang))?;
    let names = area_names(&state).await?;
    let pos = crate::store::devices::positions(&state.store).await?;
    let live = render(
        "command_live.html",
        live_ctx(&names, &report.tracking, &pos, c.lang),
    )?;
    c.page("command.html", json!({"command": summary(&report), "live": live}))
}

fn summary(r: &CommandReport) -> Value {
    json!({
        "id": r.id, "action": r.action, "target_kind": r.target_kind, "target": r.target,
        "issued_at": r.issued_at.timestamp_millis(), "expires_at": r.expires_at.timestamp_millis(),
        "title": r.command.pointer("/item/title"), "priority": r.command.pointer("/item/priority"),
        "issued_by": r.issued_by,
    })
}

/// The live fragment as server-sent events: once at once, then every [`LIVE_EVERY`], until the
/// client goes away. A command that can no longer be read (scope changed, error) ends the stream.
async fn live(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, PageError> {
    // Refused before the stream starts: the client gets the error page, not an empty stream.
    commands::tracked(&state, &c.caller, &id)
        .await
        .map_err(|e| PageError(e, c.lang))?;
    let stream = futures::stream::unfold((state, c, id, true), |(state, c, id, first)| async move {
        if !first {
            tokio::time::sleep(LIVE_EVERY).await;
        }
        let html = async {
            let r = commands::tracked(&state, &c.caller, &id).await?;
            let names = area_names(&state).await?;
            let pos = crate::store::devices::positions(&state.store).await?;
            render("command_live.html", live_ctx(&names, &r.tracking, &pos, c.lang))
        }
        .await;
        match html {
            Ok(h) => {
                let ev = Event::default().event("tracking").data(h);
                Some((Ok(ev), (state, c, id, false)))
            }
            Err(e) => {
                tracing::warn!(command = %id, error = %e, "live tracking view ended");
                None
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

async fn csv_export(c: Console, State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    let report = commands::tracked(&state, &c.caller, &id)
        .await
        .map_err(|e| PageError(e, c.lang))?;
    let names = area_names(&state).await?;
    let csv_err = |e: csv::Error| PageError(Error::internal_from("csv", e), c.lang);
    let mut w = csv::Writer::from_writer(Vec::new());
    let t = |k: &str| i18n::t(k, c.lang).to_string();
    w.write_record([
        t("trk.area"),
        t("trk.area_name"),
        t("device"),
        t("trk.state"),
        t("trk.since"),
        t("trk.delay_s"),
        t("trk.reason"),
        t("trk.history"),
    ])
    .map_err(csv_err)?;
    for x in &report.tracking.targets {
        let history = x
            .history
            .iter()
            .map(|h| format!("{} {}", h.state.as_str(), h.at.to_rfc3339()))
            .collect::<Vec<_>>()
            .join("; ");
        let delay = x
            .delay_ms
            .map(|d| format!("{:.1}", d as f64 / 1000.0))
            .unwrap_or_default();
        let row = [
            x.area.as_str(),
            names.get(&x.area).map_or("", String::as_str),
            x.device_id.as_str(),
            x.state.as_str(),
            &x.since.to_rfc3339(),
            &delay,
            x.reason.as_deref().unwrap_or_default(),
            &history,
        ];
        // Device-reported reasons and names are text from outside: no cell starts a formula.
        w.write_record(row.iter().map(|v| cell(v).into_owned()))
            .map_err(csv_err)?;
    }
    let mut body = "\u{feff}".as_bytes().to_vec(); // BOM: Excel opens UTF-8 Vietnamese correctly
    body.extend(
        w.into_inner()
            .map_err(|e| PageError(Error::internal_from("csv", e), c.lang))?,
    );
    let name = format!("lenh-{id}.csv");
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
