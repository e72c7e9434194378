//! Device pages: the list with live status, one device with its recent plays and status history
//! (recent online intervals with the gaps between them, availability over 7 and 30 days), and the
//! quick commands (stop, sync, volume; `services::commands`, audited with the command).

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::json;

use super::i18n::{self, Lang};
use super::{Console, PageError, PageForm, PageResult, now_playing_label, see_other};
use crate::domain::command::CommandRequest;
use crate::domain::presence::{Availability, DAY_MS};
use crate::domain::scope::Role;
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::services::commands::{self, Target};
use crate::store::reports::RecentPlays;
use crate::store::{self, Store, now_ms};

pub(super) async fn devices_page(c: Console, State(state): State<AppState>) -> PageResult {
    let devices = store::devices::scoped(&state.store, &c.caller).await?;
    c.page(
        "devices.html",
        json!({"devices": devices, "can_edit": c.caller.role.grants(Role::Operator),
               "unsigned_devices_allowed": state.settings.allow_unsigned_devices}),
    )
}

pub(super) async fn device_page(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
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
    c.page(
        "device.html",
        json!({"d": d, "plays": plays, "now_playing": now_playing, "can_control": c.caller.role.grants(Role::Operator),
               "history": history, "displays": displays}),
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
        commands::issue(&state, &c.caller, Target::Device(id.clone()), req).await?;
        Ok::<_, Error>(())
    };
    step.await.map_err(|e| PageError(e, lang))?;
    Ok(see_other(&format!("/console/devices/{id}")))
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
