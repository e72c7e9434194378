//! The text-to-speech preview of the editor (`POST /console/tts/preview`, and the form's preview
//! button without JavaScript): speech of the text being written, as a playable media item, with
//! the text as it was read piece by piece; and `POST /console/tts/lexicon`: the editor corrects
//! how a word is read and the correction goes into the operators' lexicon.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde_json::json;

use super::{is_server_error, tr, visible};
use crate::console::{Console, Lang, PageError, see_other};
use crate::domain::bulletin::speech_text;
use crate::domain::scope::Role;
use crate::error::{Error, Result};
use crate::services::{AppState, bulletins};

/// A preview of `text` for the caller (an editor, approver or operator).
pub(super) async fn synthesize(
    state: &AppState,
    c: &Console,
    text: &str,
    voice: Option<&str>,
    speed: Option<u32>,
    pitch: Option<u32>,
    title: &str,
) -> Result<crate::services::speech::SpeechMedia> {
    c.caller
        .require_any(&[Role::Editor, Role::Approver, Role::Operator])?;
    bulletins::preview_speech(state, &c.caller.username, text, voice, speed, pitch, title).await
}

pub(super) fn preview_error(e: &Error, lang: Lang) -> String {
    match e {
        Error::BadRequest {
            code: "empty_text", ..
        } => tr("bul.err.tts_empty", lang),
        e if is_server_error(e) => tr("bul.err.tts_failed", lang),
        e => e.to_string(),
    }
}

/// `POST /console/tts/preview`: synthesise `title`+`body` (or `text`, or a stored bulletin's
/// `language` variant) with `voice` and `speed`. With `Accept: application/json` (the page's
/// script) the answer is `{sha256, url, duration_ms, normalized}`; a plain form is redirected to
/// the audio at `/media/{sha256}`. The CSRF token comes in `X-CSRF-Token` or the `csrf` field.
pub(super) async fn tts_preview(
    c: Console,
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let lang = c.lang;
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.replace("\r\n", "\n"))
            .filter(|v| !v.trim().is_empty())
    };
    let step = async {
        let sent = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| get("csrf"))
            .unwrap_or_default();
        c.check_csrf(sent.trim())?;
        let (text, title) = if let Some(id) = get("bulletin") {
            let b = visible(&state, &c, id.trim()).await?;
            let want = get("language").unwrap_or_else(|| "vi".into());
            let v = b
                .variants
                .iter()
                .find(|v| v.language == want.trim())
                .ok_or_else(|| Error::NotFound(format!("language `{want}` of bulletin {id}")))?;
            (speech_text(&v.title, &v.body), v.title.clone())
        } else if get("title").is_some() || get("body").is_some() {
            let (t, b) = (get("title").unwrap_or_default(), get("body").unwrap_or_default());
            (speech_text(&t, &b), t)
        } else {
            let t = get("text").unwrap_or_default();
            (t.clone(), t)
        };
        let speed = match get("speed") {
            Some(s) => Some(
                s.trim()
                    .parse::<u32>()
                    .map_err(|_| Error::bad("invalid_speed", format!("speed `{s}` is not a number")))?,
            ),
            None => None,
        };
        let pitch = match get("pitch") {
            Some(s) => Some(
                s.trim()
                    .parse::<u32>()
                    .map_err(|_| Error::bad("invalid_pitch", format!("pitch `{s}` is not a number")))?,
            ),
            None => None,
        };
        let voice = get("voice");
        let m = synthesize(
            &state,
            &c,
            &text,
            voice.as_deref().map(str::trim),
            speed,
            pitch,
            &title,
        )
        .await?;
        let pieces = crate::services::speech::normalize_text(&state, &text, &m.voice).await?;
        Ok::<_, Error>((pieces, m))
    };
    match step.await {
        Ok((pieces, m)) if wants_json => Json(json!({
            "sha256": m.sha256, "url": format!("/media/{}", m.sha256), "duration_ms": m.duration_ms,
            "normalized": crate::services::speech::joined(&pieces), "pieces": pieces,
            "engine": m.engine, "fallback_from": m.fallback_from, "cached": m.cached,
        }))
        .into_response(),
        Ok((_, m)) => see_other(&format!("/media/{}", m.sha256)),
        Err(e) if wants_json => {
            let message = preview_error(&e, lang);
            let status = e.into_response().status(); // also logs a 500
            (
                status,
                Json(json!({"error": {"code": "tts_preview", "message": message}})),
            )
                .into_response()
        }
        Err(e) => PageError(e, lang).into_response(),
    }
}

/// `POST /console/tts/lexicon` (`term`, `expansion`; CSRF token in `X-CSRF-Token` or `csrf`): add
/// or correct one entry of the operators' lexicon (editors; audited as `tts.lexicon`). Answers
/// `{term, expansion}` as JSON, or redirects a plain form back to the page it came from.
pub(super) async fn tts_lexicon(
    c: Console,
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let lang = c.lang;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
    };
    let step = async {
        let sent = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| get("csrf"))
            .unwrap_or_default();
        c.check_csrf(sent.trim())?;
        let entry = crate::services::speech::LexiconEntry {
            term: get("term").unwrap_or_default(),
            expansion: get("expansion").unwrap_or_default(),
            source: None,
        };
        crate::services::speech::add_lexicon_entry(&state, &c.caller, &entry).await?;
        Ok::<_, Error>(entry)
    };
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    match step.await {
        Ok(e) if wants_json => Json(json!({"term": e.term, "expansion": e.expansion})).into_response(),
        Ok(_) => see_other("/console/voices"),
        Err(e) if wants_json => {
            let message = e.to_string();
            let status = e.into_response().status();
            (
                status,
                Json(json!({"error": {"code": "tts_lexicon", "message": message}})),
            )
                .into_response()
        }
        Err(e) => PageError(e, lang).into_response(),
    }
}
