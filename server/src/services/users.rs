//! User use cases (issue 7): create, update (shown name, role, scope, password, enabled), API
//! tokens (issue, list, revoke) and the first start's `admin` account. Each write checks the
//! caller (admin; for tokens the user themselves too) and runs ONE transaction with its audit
//! entry. Disabling a user or setting their password ends their sessions in the same
//! transaction; a disabled user's tokens are refused at once because every request re-reads the
//! user. Login and sessions are in `services::auth`.

use serde_json::json;

use crate::domain::scope::{Caller, Role};
use crate::domain::user::{
    self, IssuedToken, NewUser, TokenInfo, User, UserPatch, check_display_name, check_password,
    check_username,
};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::services::auth::{generate_token, hash_password};
use crate::store::{self, Store, audit, now_ms};

/// 422 `unknown_area` naming the first scope root that does not exist.
async fn check_areas(store: &Store, areas: &[String]) -> Result<()> {
    if areas.is_empty() {
        return Ok(());
    }
    let tree = store::areas::tree(store).await?;
    match areas.iter().find(|a| !tree.contains(a)) {
        Some(a) => Err(Error::unprocessable(
            "unknown_area",
            format!("area `{a}` does not exist"),
        )),
        None => Ok(()),
    }
}

fn subject(u: &User) -> String {
    format!("user:{}", u.username)
}

/// A user by id (404 if unknown).
pub async fn get(state: &AppState, id: &str) -> Result<User> {
    store::users::get(&state.store, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user `{id}`")))
}

/// Create a user (admin only; validated); 409 if the username is taken.
pub async fn create(state: &AppState, caller: &Caller, req: NewUser) -> Result<User> {
    caller.require(Role::Admin)?;
    let username = req.username.trim().to_string();
    check_username(&username)?;
    check_password(&req.password)?;
    check_areas(&state.store, &req.areas).await?;
    let hash = hash_password(&req.password)?;
    let mut all = vec![req.role];
    all.extend(req.roles.iter().copied());
    let (role, extra_roles) = user::split_roles(&all)?;
    let now = now_ms();
    let new = User {
        id: uuid::Uuid::new_v4().to_string(),
        display_name: user::display_name_of(&username, req.display_name.as_deref()),
        username,
        role,
        extra_roles,
        areas: req.areas,
        enabled: true,
        created_at: now,
        updated_at: now,
    };
    let mut tx = state.store.begin_write().await?;
    if store::users::username_taken(&mut tx, &new.username).await? {
        return Err(Error::Conflict(format!("username `{}` is taken", new.username)));
    }
    store::users::insert(&mut tx, &new, &hash).await?;
    let u = store::users::get_in(&mut tx, &new.id)
        .await?
        .ok_or_else(|| Error::internal("user vanished"))?;
    audit::record(
        &mut tx,
        &caller.username,
        "user.create",
        &subject(&u),
        None,
        Some(json!(u)),
    )
    .await?;
    tx.commit().await?;
    Ok(u)
}

/// Apply a patch (admin only, never disabling or demoting oneself); returns (before, after).
pub async fn update(state: &AppState, caller: &Caller, id: &str, p: UserPatch) -> Result<(User, User)> {
    caller.require(Role::Admin)?;
    user::guard_self(caller, id, &p)?;
    let before = get(state, id).await?;
    if let Some(a) = &p.areas {
        check_areas(&state.store, a).await?;
    }
    if let Some(d) = &p.display_name {
        check_display_name(d)?;
    }
    let hash = match &p.password {
        Some(pw) => {
            check_password(pw)?;
            Some(hash_password(pw)?)
        }
        None => None,
    };
    let (role, extra_roles) = match (&p.role, &p.roles) {
        (None, None) => (before.role, before.extra_roles.clone()),
        (first, rest) => {
            let mut all = vec![first.unwrap_or(before.role)];
            all.extend(rest.clone().unwrap_or_else(|| before.extra_roles.clone()));
            user::split_roles(&all)?
        }
    };
    let changed = User {
        display_name: p
            .display_name
            .as_deref()
            .map(|d| d.trim().to_string())
            .unwrap_or_else(|| before.display_name.clone()),
        role,
        extra_roles,
        areas: p.areas.clone().unwrap_or_else(|| before.areas.clone()),
        enabled: p.enabled.unwrap_or(before.enabled),
        ..before.clone()
    };
    let mut tx = state.store.begin_write().await?;
    store::users::update(&mut tx, &changed, hash.as_deref()).await?;
    if p.enabled == Some(false) || p.password.is_some() {
        store::users::delete_sessions_of(&mut tx, id).await?;
    }
    let after = store::users::get_in(&mut tx, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user `{id}`")))?;
    audit::record(
        &mut tx,
        &caller.username,
        "user.update",
        &subject(&after),
        Some(json!(before)),
        Some(json!(after)),
    )
    .await?;
    tx.commit().await?;
    Ok((before, after))
}

/// A user's API tokens, newest first (the user or an admin).
pub async fn tokens(state: &AppState, caller: &Caller, user_id: &str) -> Result<Vec<TokenInfo>> {
    user::require_self_or_admin(caller, user_id)?;
    get(state, user_id).await?;
    store::users::list_tokens(&state.store, user_id).await
}

/// Issue an API token for a user (the user or an admin); the token is in the answer only.
pub async fn issue_token(
    state: &AppState,
    caller: &Caller,
    user_id: &str,
    name: &str,
) -> Result<IssuedToken> {
    user::require_self_or_admin(caller, user_id)?;
    let u = get(state, user_id).await?;
    let token = generate_token();
    let id = uuid::Uuid::new_v4().to_string();
    let label: String = name.chars().take(100).collect();
    let mut tx = state.store.begin_write().await?;
    store::users::insert_token(&mut tx, &id, &u.id, &label, &token).await?;
    audit::record(
        &mut tx,
        &caller.username,
        "token.create",
        &subject(&u),
        None,
        Some(json!({"token_id": id, "name": name})),
    )
    .await?;
    tx.commit().await?;
    Ok(IssuedToken { id, token })
}

/// Revoke one of a user's tokens (the user or an admin); it stops working at once. 404 if it is
/// not theirs.
pub async fn revoke_token(
    state: &AppState,
    caller: &Caller,
    user_id: &str,
    token_id: &str,
) -> Result<TokenInfo> {
    user::require_self_or_admin(caller, user_id)?;
    let u = get(state, user_id).await?;
    let not_found = || Error::NotFound(format!("token `{token_id}`"));
    let mut tx = state.store.begin_write().await?;
    if !store::users::revoke_token(&mut tx, user_id, token_id).await? {
        return Err(not_found());
    }
    let t = store::users::list_tokens_in(&mut tx, user_id)
        .await?
        .into_iter()
        .find(|t| t.id == token_id)
        .ok_or_else(not_found)?;
    audit::record(
        &mut tx,
        &caller.username,
        "token.revoke",
        &subject(&u),
        Some(json!({"token_id": t.id, "name": t.name, "revoked": false})),
        Some(json!(t)),
    )
    .await?;
    tx.commit().await?;
    Ok(t)
}

/// Create the `admin` user on first start if there is no user at all. The password is
/// `NGUON_ADMIN_PASSWORD` when set (it must pass the password rule; a weak one stops the start
/// naming the variable), else the admin bearer token known at this start (`admin_token`: the
/// configured or just generated one). Without either nothing is created (a warning says why).
pub async fn bootstrap(store: &Store, admin_token: Option<&str>) -> Result<()> {
    if store::users::count(store).await? > 0 {
        return Ok(());
    }
    let from_env = std::env::var("NGUON_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    if let Some(p) = &from_env
        && let Some(why) = crate::domain::user::weakness(p)
    {
        return Err(Error::Config(crate::config::ConfigError {
            key: "NGUON_ADMIN_PASSWORD".into(),
            source_name: "environment".into(),
            message: why,
        }));
    }
    let Some(password) = from_env.or_else(|| admin_token.map(str::to_string)) else {
        tracing::warn!(
            "there are no users and no admin password to create `admin` with: set NGUON_ADMIN_PASSWORD or NGUON_ADMIN_TOKEN"
        );
        return Ok(());
    };
    let hash = hash_password(&password)?;
    let now = now_ms();
    let admin = User {
        id: uuid::Uuid::new_v4().to_string(),
        username: "admin".into(),
        display_name: "Quản trị".into(),
        role: Role::Admin,
        extra_roles: Vec::new(),
        areas: vec![],
        enabled: true,
        created_at: now,
        updated_at: now,
    };
    let mut tx = store.begin_write().await?;
    store::users::insert(&mut tx, &admin, &hash).await?;
    tx.commit().await?;
    tracing::info!("created the `admin` user (password: NGUON_ADMIN_PASSWORD or the admin token)");
    Ok(())
}
