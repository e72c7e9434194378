//! The console's voices page (`/console/voices`, *giọng đọc*): the voices in use (engine,
//! accent, speed, pitch) with a preview of any text in any of them, and the voice of each area
//! in the user's scope (its own, an ancestor's or the default), set or cleared with
//! `POST /console/voices/area`. The use cases are `services::speech`.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use super::{Console, PageError, PageForm, PageResult, all_areas, see_other};
use crate::domain::scope::Role;
use crate::error::Error;
use crate::services::{AppState, speech};

/// Routes of the voices page.
pub fn router() -> Router<AppState> {
    Router::new().route("/console/voices", get(voices_page).post(set_area_voice))
}

async fn voices_page(c: Console, State(state): State<AppState>) -> PageResult {
    let lang = c.lang;
    c.caller
        .require_any(&[Role::Editor, Role::Approver, Role::Operator])
        .map_err(|e| PageError(e, lang))?;
    let tts = state.tts.get();
    let mut areas = Vec::new();
    for a in all_areas(&state)
        .await?
        .values()
        .filter(|a| c.caller.in_scope(&a.code))
    {
        let v = speech::effective_area_voice(&state, &a.code).await?;
        areas.push(
            json!({"code": a.code, "name": a.name, "level": a.level, "voice": v.voice,
                           "speed": v.speed, "pitch": v.pitch, "from_area": v.from_area,
                           "own": v.from_area.as_deref() == Some(a.code.as_str())}),
        );
    }
    c.page(
        "voices.html",
        json!({"voices": tts.voices(), "default_voice": tts.default_voice().name, "areas": areas,
               "may_edit": c.caller.require(Role::Editor).is_ok()}),
    )
}

#[derive(Debug, Deserialize)]
struct AreaVoiceForm {
    area: String,
    voice: String,
    speed: String,
    pitch: String,
    action: String,
}

async fn set_area_voice(
    c: Console,
    State(state): State<AppState>,
    PageForm(f): PageForm<AreaVoiceForm>,
) -> PageResult {
    let lang = c.lang;
    let step = async {
        let num = |field: &'static str, s: &str| -> Result<Option<u32>, Error> {
            match s.trim() {
                "" => Ok(None),
                v => v
                    .parse()
                    .map(Some)
                    .map_err(|_| Error::bad(field, format!("`{v}` is not a number"))),
            }
        };
        let v = speech::AreaVoice {
            area: f.area.clone(),
            voice: f.voice.clone(),
            speed: num("invalid_speed", &f.speed)?,
            pitch: num("invalid_pitch", &f.pitch)?,
            from_area: None,
        };
        let set = (f.action != "clear").then_some(&v);
        speech::set_area_voice(&state, &c.caller, f.area.trim(), set).await?;
        Ok::<_, Error>(())
    };
    step.await.map_err(|e| PageError(e, lang))?;
    Ok(see_other("/console/voices"))
}
