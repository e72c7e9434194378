//! What a CAP alert targets and what it says. [`resolve`]: the enabled loudspeakers whose
//! position lies inside any polygon or circle of the alert's `<area>`s, plus the loudspeakers of
//! the areas (and the areas below them) whose configured geocodes match a `<geocode>` of an
//! `<area>` drawn without polygon or circle; for `status=Exercise`, only those in areas that
//! take exercises (the flag of the area or of an area above it). [`speech`]: the attention
//! chime and the normalised TTS of the infos a group of targets hears, stored as approved media.

use std::collections::HashSet;

use crate::domain::cap::{Alert, Point, Status};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::services::speech;
use crate::store::{self, commands::TargetDevice};

/// The loudspeakers `alert` targets now, by id.
pub async fn resolve(state: &AppState, alert: &Alert) -> Result<Vec<TargetDevice>> {
    let inside: Vec<String> = store::cap::placed_loudspeakers(&state.store)
        .await?
        .into_iter()
        .filter(|d| Point::new(d.lat, d.lon).is_ok_and(|p| alert.covers(p)))
        .map(|d| d.id)
        .collect();
    let keys: HashSet<String> = alert.geocode_keys().into_iter().collect();
    let caps = store::cap::area_caps(&state.store).await?;
    let matched: Vec<String> = caps
        .iter()
        .filter(|(_, c)| c.geocodes.iter().any(|g| keys.contains(g)))
        .map(|(a, _)| a.clone())
        .collect();
    let areas = store::areas::subtree(&state.store, &matched).await?;
    let mut found = store::commands::resolve_targets(&state.store, &areas, &inside).await?;
    if alert.status == Status::Exercise {
        let roots: Vec<String> = caps
            .iter()
            .filter(|(_, c)| c.exercise)
            .map(|(a, _)| a.clone())
            .collect();
        let allowed: HashSet<String> = store::areas::subtree(&state.store, &roots)
            .await?
            .into_iter()
            .collect();
        found.retain(|t| allowed.contains(&t.area));
    }
    Ok(found)
}

/// The playlist of `alert` for targets that hear its infos `infos` (indices, in reading order,
/// `languages::groups`): the attention chime, then each info's speech in the voice of its
/// language (`languages::voice_for`; the default voice when none speaks it), as approved media
/// sha256s.
pub async fn speech(state: &AppState, alert: &Alert, infos: &[usize]) -> Result<Vec<String>> {
    if infos.is_empty() {
        return Err(crate::domain::cap::parse::invalid(
            "/alert/info",
            "an alert to play needs an info",
        ));
    }
    let chime = speech::store_wav(state, &crate::services::demo::chime_wav(), "CAP: attention", true).await?;
    let mut out = vec![chime.sha256];
    for info in infos.iter().filter_map(|&i| alert.infos.get(i)) {
        let text: String = info
            .spoken_text()
            .chars()
            .take(crate::domain::speech::MAX_TEXT_CHARS)
            .collect();
        let name = super::languages::voice_for(state, &info.language).flatten();
        let voice = speech::voice(state, name.as_deref(), None, None)?;
        let title: String = format!("CAP: {}", info.headline.as_deref().unwrap_or(&info.event))
            .chars()
            .take(120)
            .collect();
        let (_, spoken) = speech::synthesize_to_media(state, &text, &voice, &title, true)
            .await
            .map_err(|e| match e {
                Error::BadRequest { message, .. } => {
                    crate::domain::cap::parse::invalid("/alert/info", message)
                }
                other => other,
            })?;
        out.push(spoken.sha256);
    }
    Ok(out)
}
