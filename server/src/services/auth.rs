//! Authentication and scope checks behind the HTTP extractors (issue 7): who presented a bearer
//! token or a session cookie ([`bearer`], [`session`]), the caller of a user with their scope
//! expanded over the area tree ([`caller_of_user`]), and the checks that need the store
//! ([`check_device`], [`check_targets`]).

use crate::domain::scope::{Caller, Via};
use crate::domain::user::{User, constant_time_eq};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::store;

/// A fresh random token (32 random bytes, hex).
pub fn generate_token() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("operating system random generator");
    hex::encode(b)
}

/// The caller of a user record: scope roots expanded to every area below them (one walk of the
/// area tree), once per request.
pub async fn caller_of_user(state: &AppState, u: &User, via: Via, csrf: Option<String>) -> Result<Caller> {
    let scope_areas = if u.areas.is_empty() {
        None
    } else {
        Some(store::areas::tree(&state.store).await?.subtree(&u.areas))
    };
    Ok(Caller {
        user_id: u.id.clone(),
        username: u.username.clone(),
        role: u.role,
        scope_areas,
        scope_roots: (!u.areas.is_empty()).then(|| u.areas.clone()),
        via,
        csrf,
    })
}

/// The caller of a bearer token: the bootstrap admin token, or an enabled user's API token;
/// 401 otherwise.
pub async fn bearer(state: &AppState, token: &str) -> Result<Caller> {
    if constant_time_eq(token.as_bytes(), state.admin_token.expose().as_bytes()) {
        return Ok(Caller::admin_token());
    }
    let u = store::users::token_user(&state.store, token)
        .await?
        .ok_or(Error::Unauthorized)?;
    caller_of_user(state, &u, Via::ApiToken, None).await
}

/// The caller of a live session id (`None` for an unknown, expired or disabled one).
pub async fn session(state: &AppState, sid: &str) -> Result<Option<Caller>> {
    match store::users::session_user(&state.store, sid).await? {
        Some((u, csrf)) => Ok(Some(caller_of_user(state, &u, Via::Session, Some(csrf)).await?)),
        None => Ok(None),
    }
}

/// 403 unless the device's area is inside the caller's scope (404 if unknown).
pub async fn check_device(state: &AppState, caller: &Caller, id: &str) -> Result<()> {
    if caller.scope_areas.is_none() {
        return Ok(());
    }
    let area = store::devices::area_of(&state.store, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("device `{id}`")))?;
    caller.check_device_area(id, &area)
}

/// 403 unless every target area and device is inside the caller's scope.
pub async fn check_targets(
    state: &AppState,
    caller: &Caller,
    areas: &[String],
    devices: &[String],
) -> Result<()> {
    for a in areas {
        caller.check_area(a)?;
    }
    for d in devices {
        check_device(state, caller, d).await?;
    }
    Ok(())
}
