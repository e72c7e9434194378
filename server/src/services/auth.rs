//! Authentication and scope checks behind the HTTP extractors (issue 7): who presented a bearer
//! token or a session cookie ([`bearer`], [`session`]), the caller of a user with their scope
//! expanded over the area tree ([`caller_of_user`]), and the checks that need the store
//! ([`check_device`], [`check_targets`]). Also the console's login ([`authenticate`], rate
//! limited per username and IP through the stored login attempts) and its sessions
//! ([`create_session`], [`end_session`]), and the secrets behind them ([`generate_token`],
//! [`hash_password`]).

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, SaltString};

use crate::config::{ConfigError, Secret};
use crate::domain::scope::{Caller, Via};
use crate::domain::user::{self, AdminToken, LoginError, User, verify_password};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::store::{self, Store, now_ms};

/// A fresh random token (32 random bytes, hex).
pub fn generate_token() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("operating system random generator");
    hex::encode(b)
}

/// Name of the stored sha256 of the generated admin token (`store::secrets`).
const ADMIN_TOKEN_DIGEST: &str = "admin_token_sha256";

/// The admin bearer token at start, and the token itself when it was generated now (to be shown
/// once). A configured `admin_token` must pass the strength rule (`domain::user::weakness`; a
/// weak one stops the start naming the key) and is used as it is; without one, the token
/// generated at the first start is kept as its sha256 and stays valid, and a new one is
/// generated only when none was ever stored.
pub async fn admin_token(store: &Store, configured: Option<&Secret>) -> Result<(AdminToken, Option<Secret>)> {
    if let Some(t) = configured {
        if let Some(why) = user::weakness(t.expose()) {
            return Err(Error::Config(ConfigError {
                key: "admin_token".into(),
                source_name: "settings".into(),
                message: why,
            }));
        }
        return Ok((AdminToken::from_digest(&user::hash_secret(t.expose())), None));
    }
    if let Some(d) = store::secrets::get(store, ADMIN_TOKEN_DIGEST).await? {
        return Ok((AdminToken::from_digest(&d), None));
    }
    let token = generate_token();
    let digest = user::hash_secret(&token);
    if store::secrets::insert_once(store, ADMIN_TOKEN_DIGEST, &digest).await? {
        return Ok((AdminToken::from_digest(&digest), Some(Secret::new(token))));
    }
    // Another instance on the same database stored its token first.
    let d = store::secrets::get(store, ADMIN_TOKEN_DIGEST)
        .await?
        .ok_or_else(|| Error::internal("the stored admin token digest vanished"))?;
    Ok((AdminToken::from_digest(&d), None))
}

/// An argon2id hash (PHC string) of `password`, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| Error::internal(format!("random salt: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::internal(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("argon2: {e}")))
}

/// Whether `username` is locked for `ip` at `now`: [`user::MAX_FAILURES`] failures inside the
/// window, counting only those after the last success.
async fn is_locked(state: &AppState, username: &str, ip: &str, now: i64) -> Result<bool> {
    let last_ok = store::users::last_success(&state.store, username, ip).await?;
    let since = (now - user::LOCK_MS).max(last_ok.unwrap_or(0));
    let failures = store::users::failures_since(&state.store, username, ip, since).await?;
    Ok(user::is_locked(failures))
}

/// Check a password. Throttled three ways before the password is looked at: the client
/// address's and the global login budgets (`services::throttle`, refused as
/// [`LoginError::Throttled`], not recorded, so spraying usernames from one address cannot lock
/// anyone), then the lock per username and address (every attempt is recorded; a lock set from
/// one address does not touch the same user at another). At most one argon2 check per core
/// runs at a time, off the async threads.
pub async fn authenticate(
    state: &AppState,
    username: &str,
    password: &str,
    ip: std::net::IpAddr,
) -> Result<std::result::Result<User, LoginError>> {
    if state.limits.allow_login(ip).is_err() {
        return Ok(Err(LoginError::Throttled));
    }
    let ip = &ip.to_string();
    let username = username.trim().to_lowercase();
    let now = now_ms();
    if is_locked(state, &username, ip, now).await? {
        store::users::note_attempt(&state.store, &username, ip, false, now).await?;
        return Ok(Err(LoginError::Locked));
    }
    let row = store::users::login_row(&state.store, &username).await?;
    let (hash, enabled) = match &row {
        Some(r) => (r.password_hash.clone(), r.enabled),
        // Unknown user: spend the same time as a real check.
        None => (user::DUMMY_HASH.to_string(), false),
    };
    let permit = state
        .limits
        .argon2
        .acquire()
        .await
        .map_err(|e| Error::internal_from("argon2 permits", e))?;
    let password = password.to_string();
    let matches = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(Error::context("argon2 task"))?;
    drop(permit);
    let found = row.filter(|_| matches && enabled).map(|r| r.id);
    store::users::note_attempt(&state.store, &username, ip, found.is_some(), now).await?;
    match found {
        Some(id) => Ok(store::users::get(&state.store, &id)
            .await?
            .ok_or(LoginError::BadCredentials)),
        None => Ok(Err(LoginError::BadCredentials)),
    }
}

/// A new console session.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The session id for the cookie (only its sha256 is stored).
    pub id: String,
    /// The session's CSRF token.
    pub csrf: String,
}

/// Start a session of [`user::SESSION_MS`] for a user; expired sessions and day-old login
/// attempts are dropped in the same transaction.
pub async fn create_session(state: &AppState, user_id: &str) -> Result<NewSession> {
    let s = NewSession {
        id: generate_token(),
        csrf: generate_token(),
    };
    let now = now_ms();
    let mut tx = state.store.begin_write().await?;
    store::users::insert_session(&mut tx, &s.id, user_id, &s.csrf, now, now + user::SESSION_MS).await?;
    store::users::delete_expired(&mut tx, now).await?;
    tx.commit().await?;
    Ok(s)
}

/// End a session (`sid` as the cookie carries it).
pub async fn end_session(state: &AppState, sid: &str) -> Result<()> {
    store::users::delete_session(&state.store, sid).await
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
        extra_roles: u.extra_roles.clone(),
        scope_areas,
        scope_roots: (!u.areas.is_empty()).then(|| u.areas.clone()),
        via,
        csrf,
    })
}

/// The caller of a bearer token: the bootstrap admin token, or an enabled user's API token;
/// 401 otherwise.
pub async fn bearer(state: &AppState, token: &str) -> Result<Caller> {
    if state.admin_token.matches(token) {
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
