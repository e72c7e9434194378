//! An area's CAP settings (`GET`/`PUT /api/v1/areas/{code}/cap`, the console's area form): the
//! geocodes that target it (`valueName=value`, e.g. `ISO3166-2=VN-02`), whether Exercise
//! alerts play there and the languages its loudspeakers read (`languages`: the area's list of
//! `/api/v1/areas/{code}/languages`, inherited down the tree, `vi` by default). Reading needs the operator role inside the caller's scope; writing is for
//! admins, audited as `area.cap`.

use crate::domain::bulletin::check_languages;
use crate::domain::scope::{Caller, Role};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::store::{self, audit, cap::AreaCap};

/// Most geocodes one area may carry.
pub const MAX_GEOCODES: usize = 50;

/// The CAP settings of area `code` (defaults when never set).
pub async fn get(state: &AppState, caller: &Caller, code: &str) -> Result<AreaCap> {
    caller.require(Role::Operator)?;
    caller.check_area(code)?;
    if !store::areas::exists(&state.store, code).await? {
        return Err(Error::NotFound(format!("area {code}")));
    }
    let mut c = store::cap::area_caps(&state.store)
        .await?
        .into_iter()
        .find(|(a, _)| a == code)
        .map(|(_, c)| c)
        .unwrap_or_default();
    c.languages = Some(
        crate::services::bulletins::languages_of(&state.store, code)
            .await?
            .languages,
    );
    Ok(c)
}

/// 422 `invalid_geocode` naming the bad entry; returns them trimmed, without repeats.
pub fn check(c: &AreaCap) -> Result<AreaCap> {
    let mut out: Vec<String> = Vec::new();
    if c.geocodes.len() > MAX_GEOCODES {
        return Err(Error::unprocessable(
            "invalid_geocode",
            format!("geocodes: at most {MAX_GEOCODES}"),
        ));
    }
    for (i, g) in c.geocodes.iter().enumerate() {
        let g = g.trim();
        let ok = g.split_once('=').is_some_and(|(n, v)| {
            !n.trim().is_empty() && !v.trim().is_empty() && n == n.trim() && v == v.trim()
        }) && g.len() <= 128
            && !g.chars().any(char::is_control);
        if !ok {
            return Err(Error::unprocessable(
                "invalid_geocode",
                format!("geocodes[{i}]: `{g}` is not `valueName=value` (e.g. ISO3166-2=VN-02)"),
            ));
        }
        if !out.iter().any(|o| o == g) {
            out.push(g.to_string());
        }
    }
    Ok(AreaCap {
        geocodes: out,
        exercise: c.exercise,
        languages: match &c.languages {
            Some(l) => {
                check_languages(l)?;
                Some(l.clone())
            }
            None => None,
        },
    })
}

/// Replace the CAP settings of area `code` (admins).
pub async fn put(state: &AppState, caller: &Caller, code: &str, c: &AreaCap) -> Result<AreaCap> {
    caller.require(Role::Admin)?;
    let c = check(c)?;
    let before = get(state, caller, code).await?;
    let mut tx = state.store.begin_write().await?;
    store::cap::put_area_cap(&mut tx, code, &c).await?;
    // The area's languages are the bulletins' list (`area_languages`): one list for both.
    if let Some(l) = &c.languages {
        store::bulletins::set_area_languages(&mut tx, code, l).await?;
    }
    audit::record(
        &mut tx,
        &caller.username,
        "area.cap",
        &format!("area:{code}"),
        serde_json::to_value(&before).ok(),
        serde_json::to_value(&c).ok(),
    )
    .await?;
    tx.commit().await?;
    if c.languages.is_some() {
        state.bulletins.bump();
    }
    get(state, caller, code).await
}
