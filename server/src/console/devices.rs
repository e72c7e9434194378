//! Device pages: the list with live status, one device with its recent plays and status history
//! (recent online intervals with the gaps between them, availability over 7 and 30 days), and the
//! quick commands (stop, sync, volume; `services::commands`, audited with the command).

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::json;

use super::i18n::{self, Lang};
use super::{Console, PageError, PageForm, PageResult, now_playing_label};
use crate::domain::command::CommandRequest;
use crate::domain::presence::{Availability, DAY_MS};
use crate::domain::scope::Role;
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::services::commands::{self, Target};
use crate::store::reports::RecentPlays;
use crate::store::{self, Store, now_ms};

/// The device list with a search box, a status filter and a map of the devices with a position
/// (Leaflet, vendored): green online, red offline, squares for boards; each commune drawn as the
/// outline around its devices. Without `map_tiles_url` the map has no background tiles, so it
/// works offline; with one, the page's CSP admits that tile host's images.
pub(super) async fn devices_page(c: Console, State(state): State<AppState>) -> PageResult {
    let devices = store::devices::scoped(&state.store, &c.caller).await?;
    let areas = super::all_areas(&state).await?;
    let positions = store::devices::positions(&state.store).await?;
    let rows: Vec<serde_json::Value> = devices
        .iter()
        .map(|d| {
            let commune = super::commune_of(&areas, &d.area);
            let (lat, lon) = positions.get(&d.id).copied().unwrap_or((None, None));
            json!({"id": d.id, "name": d.name, "kind": d.kind, "area": d.area, "online": d.online,
                   "last_seen": d.last_seen, "area_name": areas.get(&d.area).map(|a| a.name.clone()).unwrap_or_default(),
                   "commune": commune, "commune_name": areas.get(&commune).map(|a| a.name.clone()).unwrap_or_default(),
                   "lat": lat, "lon": lon})
        })
        .collect();
    let map: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r["lat"].is_number() && r["lon"].is_number())
        .collect();
    let map_json = serde_json::to_string(&json!({"devices": map, "tiles": state.settings.map_tiles_url,
        "labels": {"online": i18n::t("dash.online", c.lang), "offline": i18n::t("dash.offline", c.lang)}}))
    .map_err(Error::context("map json"))?
    // Inside a <script type="application/json"> block nothing may close it.
    .replace("</", "<\\/");
    let mut resp = c.page(
        "devices.html",
        json!({"devices": rows, "can_edit": c.caller.grants(Role::Operator), "map_json": map_json,
               "mapped": map.len(), "unsigned_devices_allowed": state.settings.allow_unsigned_devices}),
    )?;
    if let Some(tiles) = &state.settings.map_tiles_url {
        let origin: String = tiles.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
        let csp = crate::http::headers::CONSOLE_CSP
            .replace("img-src 'self' data:", &format!("img-src 'self' data: {origin}"));
        if let Ok(v) = axum::http::HeaderValue::from_str(&csp) {
            resp.headers_mut()
                .insert(axum::http::header::CONTENT_SECURITY_POLICY, v);
        }
    }
    Ok(resp)
}

#[derive(Deserialize)]
pub(super) struct DeviceQuery {
    #[serde(default)]
    confirm: Option<String>,
}

/// The level of the newest volume command sent to `device` (its body's `level`), with when.
async fn volume_sent(state: &AppState, device: &str) -> Result<Option<serde_json::Value>> {
    fn level(v: &serde_json::Value) -> Option<i64> {
        match v {
            serde_json::Value::Object(o) => o
                .get("level")
                .and_then(serde_json::Value::as_i64)
                .or_else(|| o.values().find_map(level)),
            _ => None,
        }
    }
    Ok(store::commands::last_for_device(&state.store, device, "volume")
        .await?
        .and_then(|(id, body, at)| {
            let body: serde_json::Value = serde_json::from_str(&body).ok()?;
            Some(json!({"id": id, "level": level(&body)?, "at": at}))
        }))
}

pub(super) async fn device_page(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<DeviceQuery>,
) -> PageResult {
    let lang = c.lang;
    crate::services::auth::check_device(&state, &c.caller, &id)
        .await
        .map_err(|e| PageError(e, lang))?;
    let d = store::devices::get(&state.store, &id)
        .await?
        .ok_or_else(|| PageError(Error::NotFound(format!("device `{id}`")), lang))?;
    let plays =
        crate::store::reports::recent_plays(&state.store, &c.caller, RecentPlays::All, 30, Some(&id)).await?;
    let now_playing = d.now_playing.as_ref().map(|v| now_playing_label(&v.to_string()));
    let history = history_section(&state.store, &d.id, d.created_at, lang).await?;
    // A board's proof of display (issue 13).
    let displays = if d.kind == crate::domain::report::BOARD {
        store::boards::recent_displays(&state.store, &d.id, 30).await?
    } else {
        Vec::new()
    };
    let volume_sent = volume_sent(&state, &d.id).await?;
    let is_board = d.kind == crate::domain::report::BOARD;
    c.page(
        "device.html",
        json!({"d": d, "plays": plays, "now_playing": now_playing, "can_control": c.caller.grants(Role::Operator),
               "is_board": is_board, "history": history, "volume_sent": volume_sent, "displays": displays,
               "confirm_stop": q.confirm.as_deref() == Some("stop")}),
    )
}

/// Intervals shown on the device page.
const PAGE_ROWS: usize = 20;

/// `1 ngày 02:03:04` / `1 d 02:03:04`, or `h:mm:ss` / `m:ss` under a day.
fn duration_label(ms: i64, lang: Lang) -> String {
    let ms = ms.max(0);
    if ms < DAY_MS {
        return i18n::duration(ms);
    }
    let s = (ms % DAY_MS) / 1000;
    format!(
        "{} {} {:02}:{:02}:{:02}",
        ms / DAY_MS,
        i18n::t("hist.days", lang),
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

fn pct(a: Option<&Availability>) -> String {
    a.map_or_else(|| "—".into(), |a| format!("{} %", i18n::decimal(a.ratio * 100.0)))
}

/// The device page's "status history" section: recent intervals with the offline gaps between
/// them, and availability over the last 7 and 30 days.
async fn history_section(
    store: &Store,
    device: &str,
    created_at: i64,
    lang: Lang,
) -> Result<serde_json::Value> {
    let now = now_ms();
    let dev = [(device.to_string(), created_at)];
    let a7 = store::history::availability(store, &dev, now - 7 * DAY_MS, now, now).await?;
    let a30 = store::history::availability(store, &dev, now - 30 * DAY_MS, now, now).await?;
    let list = store::history::intervals(store, device, i64::MIN, i64::MAX, PAGE_ROWS).await?;
    let mut rows = Vec::new();
    let mut newer_from: Option<i64> = None; // start of the next-newer interval
    for iv in &list {
        if let (Some(next), Some(end)) = (newer_from, iv.online_to)
            && next > end
        {
            rows.push(json!({"online": false, "from": end, "to": next,
                "duration": duration_label(next - end, lang), "ended_by": ""}));
        }
        let end = iv.online_to.unwrap_or(now);
        rows.push(json!({
            "online": true, "from": iv.online_from, "to": iv.online_to, "session": iv.session,
            "duration": duration_label(end - iv.online_from, lang),
            "ended_by": iv.ended_by.map_or(String::new(), |e| i18n::t(&format!("hist.ended.{}", e.as_str()), lang).to_string()),
        }));
        newer_from = Some(iv.online_from);
    }
    Ok(json!({
        "rows": rows,
        "avail7": pct(a7.get(device)),
        "avail30": pct(a30.get(device)),
    }))
}

#[derive(Deserialize)]
pub(super) struct CommandForm {
    action: String,
    #[serde(default)]
    level: Option<u8>,
}

pub(super) async fn device_command(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(f): PageForm<CommandForm>,
) -> PageResult {
    let lang = c.lang;
    let step = async {
        c.caller.require(Role::Operator)?;
        let req = match f.action.as_str() {
            "stop" => CommandRequest::Stop { item_id: None },
            "sync" => CommandRequest::Sync,
            "volume" => CommandRequest::Volume {
                level: f.level.unwrap_or(80).min(100),
            },
            other => return Err(Error::bad("invalid_action", format!("unknown action `{other}`"))),
        };
        let issued = commands::issue(&state, &c.caller, Target::Device(id.clone()), req).await?;
        Ok::<_, Error>(issued)
    };
    let issued = step.await.map_err(|e| PageError(e, lang))?;
    // The command's own page follows its delivery live: the result of the action is shown.
    Ok(super::done(
        &format!("/console/commands/{}", issued.command_id),
        "command_sent",
    ))
}

#[cfg(test)]
mod tests {
    use super::{Lang, duration_label};

    #[test]
    fn long_durations_show_days() {
        assert_eq!(duration_label(90_061_000, Lang::En), "1 d 01:01:01");
        assert_eq!(duration_label(61_000, Lang::Vi), "1:01");
    }
}
