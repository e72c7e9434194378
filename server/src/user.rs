//! Users, roles and scopes (issue 7). A user has one [`Role`] and is scoped to a set of area
//! codes, each with its subtree (`[]` = unrestricted). Passwords are argon2id hashes; cookie
//! sessions and API tokens are random 32-byte secrets of which only the sha256 is stored. Login
//! attempts are kept in the database: after [`MAX_FAILURES`] failures for one username from one
//! IP within [`LOCK_MS`], that pair is locked until the window has passed.
//!
//! API: `GET/POST /api/v1/users`, `PATCH /api/v1/users/{id}` (admin), `GET/POST
//! /api/v1/users/{id}/tokens` and `DELETE /api/v1/users/{id}/tokens/{token_id}` (admin or the
//! user), `GET /api/v1/me`. A disabled user's sessions are deleted and their tokens refused at
//! once (every request re-reads the user); an admin cannot disable or demote themselves.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{self, patch, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;

use crate::domain::scope::Caller;
pub use crate::domain::scope::Role;
pub use crate::domain::user::{User, hash_secret};
use crate::services::auth::generate_token;
pub use crate::store::users::get;
use crate::store::users::{COLUMNS, row_to_user};
use crate::store::{Store, now_ms};
use crate::{AppState, Error, Result};

/// Failures allowed per username and IP inside the window before the pair is locked.
pub const MAX_FAILURES: i64 = 5;
/// The failure window and the lock duration (15 minutes).
pub const LOCK_MS: i64 = 15 * 60 * 1000;
/// Session lifetime (12 hours).
pub const SESSION_MS: i64 = 12 * 60 * 60 * 1000;

/// An argon2id hash (PHC string) of `password`.
pub fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| Error::internal(format!("random salt: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::internal(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("argon2: {e}")))
}

/// Whether `password` matches the stored PHC hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// All users by username.
pub async fn list(store: &Store) -> Result<Vec<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users ORDER BY username");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&store.pool)
        .await?;
    rows.iter().map(row_to_user).collect()
}

/// Body of `POST /api/v1/users` (also the console's form).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Login name: 3–64 of `[a-z0-9._-]`.
    pub username: String,
    /// Shown name (default: the username).
    #[serde(default)]
    pub display_name: Option<String>,
    /// Role.
    pub role: Role,
    /// Scope roots (default `[]` = unrestricted).
    #[serde(default)]
    pub areas: Vec<String>,
    /// At least 8 characters.
    pub password: String,
}

fn check_username(u: &str) -> Result<()> {
    let ok = (3..=64).contains(&u.len())
        && u.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::bad(
            "invalid_username",
            "`username` must be 3–64 characters of a-z, 0-9, `.`, `_`, `-`",
        ))
    }
}

fn check_password(p: &str) -> Result<()> {
    if p.chars().count() < 8 {
        return Err(Error::bad(
            "weak_password",
            "`password` must have at least 8 characters",
        ));
    }
    Ok(())
}

async fn check_areas(store: &Store, areas: &[String]) -> Result<()> {
    for a in areas {
        if !crate::area::exists(store, a).await? {
            return Err(Error::unprocessable(
                "unknown_area",
                format!("area `{a}` does not exist"),
            ));
        }
    }
    Ok(())
}

/// Create a user (validated); 409 if the username is taken.
pub async fn create(store: &Store, req: NewUser) -> Result<User> {
    let username = req.username.trim().to_string();
    check_username(&username)?;
    check_password(&req.password)?;
    check_areas(store, &req.areas).await?;
    let hash = hash_password(&req.password)?;
    let now = now_ms();
    let id = uuid::Uuid::new_v4().to_string();
    let display = req
        .display_name
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| username.clone());
    let taken = sqlx::query("SELECT id FROM users WHERE username = $1")
        .bind(username.clone())
        .fetch_optional(&store.pool)
        .await?;
    if taken.is_some() {
        return Err(Error::Conflict(format!("username `{username}` is taken")));
    }
    sqlx::query(
        "INSERT INTO users (id, username, display_name, role, areas, password_hash, enabled, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8)",
    )
    .bind(id.clone())
    .bind(username)
    .bind(display.chars().take(200).collect::<String>())
    .bind(req.role.as_str())
    .bind(serde_json::to_string(&req.areas).unwrap_or_else(|_| "[]".into()))
    .bind(hash)
    .bind(now)
    .bind(now)
    .execute(&store.pool)
    .await?;
    get(store, &id)
        .await?
        .ok_or_else(|| Error::internal("user vanished"))
}

/// Create the `admin` user on first start if there is no user at all. The password is
/// `NGUON_ADMIN_PASSWORD` when set, else the admin bearer token.
pub async fn bootstrap(store: &Store, admin_token: &str) -> Result<()> {
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM users")
        .fetch_one(&store.pool)
        .await?
        .try_get("n")?;
    if n > 0 {
        return Ok(());
    }
    let password = std::env::var("NGUON_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| admin_token.to_string());
    let req = NewUser {
        username: "admin".into(),
        display_name: Some("Quản trị".into()),
        role: Role::Admin,
        areas: vec![],
        password,
    };
    // The token may be shorter than the password rule; the bootstrap account is exempt from it.
    let hash = hash_password(&req.password)?;
    let now = now_ms();
    sqlx::query(
        "INSERT INTO users (id, username, display_name, role, areas, password_hash, enabled, created_at, updated_at) \
         VALUES ($1, 'admin', $2, 'admin', '[]', $3, 1, $4, $5)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(req.display_name.unwrap_or_default())
    .bind(hash)
    .bind(now)
    .bind(now)
    .execute(&store.pool)
    .await?;
    tracing::info!("created the `admin` user (password: NGUON_ADMIN_PASSWORD or the admin token)");
    Ok(())
}

/// Why a login failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginError {
    /// Wrong username or password (or a disabled user).
    BadCredentials,
    /// Too many failures for this username from this address.
    Locked,
}

async fn is_locked(store: &Store, username: &str, ip: &str, now: i64) -> Result<bool> {
    let last_ok: Option<i64> =
        sqlx::query("SELECT MAX(at) AS t FROM login_attempts WHERE username = $1 AND ip = $2 AND ok = 1")
            .bind(username.to_string())
            .bind(ip.to_string())
            .fetch_one(&store.pool)
            .await?
            .try_get("t")?;
    let since = (now - LOCK_MS).max(last_ok.unwrap_or(0));
    let n: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM login_attempts WHERE username = $1 AND ip = $2 AND ok = 0 AND at > $3",
    )
    .bind(username.to_string())
    .bind(ip.to_string())
    .bind(since)
    .fetch_one(&store.pool)
    .await?
    .try_get("n")?;
    Ok(n >= MAX_FAILURES)
}

async fn note_attempt(store: &Store, username: &str, ip: &str, ok: bool, now: i64) -> Result<()> {
    sqlx::query("INSERT INTO login_attempts (id, username, ip, ok, at) VALUES ($1, $2, $3, $4, $5)")
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(username.to_string())
        .bind(ip.to_string())
        .bind(i64::from(ok))
        .bind(now)
        .execute(&store.pool)
        .await?;
    Ok(())
}

/// Check a password, rate limited per username and IP. While locked the password is not even
/// checked.
pub async fn authenticate(
    store: &Store,
    username: &str,
    password: &str,
    ip: &str,
) -> Result<std::result::Result<User, LoginError>> {
    let username = username.trim().to_lowercase();
    let now = now_ms();
    if is_locked(store, &username, ip, now).await? {
        note_attempt(store, &username, ip, false, now).await?;
        return Ok(Err(LoginError::Locked));
    }
    let row = sqlx::query("SELECT id, password_hash, enabled FROM users WHERE username = $1")
        .bind(username.clone())
        .fetch_optional(&store.pool)
        .await?;
    let found = match row {
        Some(r) => {
            let hash: String = r.try_get("password_hash")?;
            let enabled: i64 = r.try_get("enabled")?;
            let id: String = r.try_get("id")?;
            (verify_password(password, &hash) && enabled != 0).then_some(id)
        }
        None => {
            // Spend the same time as a real check.
            let _ = verify_password(
                password,
                "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY",
            );
            None
        }
    };
    note_attempt(store, &username, ip, found.is_some(), now).await?;
    match found {
        Some(id) => Ok(get(store, &id).await?.ok_or(LoginError::BadCredentials)),
        None => Ok(Err(LoginError::BadCredentials)),
    }
}

/// A new session: returns (session id for the cookie, csrf token).
pub async fn create_session(store: &Store, user_id: &str) -> Result<(String, String)> {
    let sid = generate_token();
    let csrf = generate_token();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash_secret(&sid))
    .bind(user_id.to_string())
    .bind(csrf.clone())
    .bind(now)
    .bind(now + SESSION_MS)
    .execute(&store.pool)
    .await?;
    // Housekeeping: drop expired sessions and old attempts.
    sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
        .bind(now)
        .execute(&store.pool)
        .await?;
    sqlx::query("DELETE FROM login_attempts WHERE at < $1")
        .bind(now - 24 * 3600 * 1000)
        .execute(&store.pool)
        .await?;
    Ok((sid, csrf))
}

/// End a session.
pub async fn delete_session(store: &Store, sid: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(hash_secret(sid))
        .execute(&store.pool)
        .await?;
    Ok(())
}

/// Body of `POST /api/v1/users/{id}/tokens`.
#[derive(Debug, Default, Deserialize)]
pub struct NewToken {
    /// A label.
    #[serde(default)]
    pub name: Option<String>,
}

/// Answer of `POST /api/v1/users/{id}/tokens`: the token is shown once.
#[derive(Debug, Serialize)]
pub struct IssuedToken {
    /// Token id.
    pub id: String,
    /// The bearer token (store it now: only its hash is kept).
    pub token: String,
}

/// Issue an API token for a user.
pub async fn issue_token(store: &Store, user_id: &str, name: &str) -> Result<IssuedToken> {
    let token = generate_token();
    let id = uuid::Uuid::new_v4().to_string();
    sqlx::query("INSERT INTO api_tokens (id, user_id, name, token_hash, created_at, revoked) VALUES ($1, $2, $3, $4, $5, 0)")
        .bind(id.clone())
        .bind(user_id.to_string())
        .bind(name.chars().take(100).collect::<String>())
        .bind(hash_secret(&token))
        .bind(now_ms())
        .execute(&store.pool)
        .await?;
    Ok(IssuedToken { id, token })
}

/// An API token as listed (never the secret).
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    /// Token id.
    pub id: String,
    /// Label.
    pub name: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms of the last request made with it.
    pub last_used_at: Option<i64>,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// A user's API tokens, newest first.
pub async fn list_tokens(store: &Store, user_id: &str) -> Result<Vec<TokenInfo>> {
    let rows = sqlx::query(
        "SELECT id, name, created_at, last_used_at, revoked FROM api_tokens WHERE user_id = $1 \
         ORDER BY created_at DESC, id",
    )
    .bind(user_id.to_string())
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(TokenInfo {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                created_at: r.try_get("created_at")?,
                last_used_at: r.try_get("last_used_at")?,
                revoked: r.try_get::<i64, _>("revoked")? != 0,
            })
        })
        .collect()
}

/// Revoke one of a user's tokens (it stops working at once); 404 if it is not theirs.
pub async fn revoke_token(store: &Store, user_id: &str, token_id: &str) -> Result<TokenInfo> {
    let res = sqlx::query("UPDATE api_tokens SET revoked = 1 WHERE id = $1 AND user_id = $2")
        .bind(token_id.to_string())
        .bind(user_id.to_string())
        .execute(&store.pool)
        .await?;
    if res.rows_affected() == 0 {
        return Err(Error::NotFound(format!("token `{token_id}`")));
    }
    list_tokens(store, user_id)
        .await?
        .into_iter()
        .find(|t| t.id == token_id)
        .ok_or_else(|| Error::NotFound(format!("token `{token_id}`")))
}

/// 409 if `caller` would disable themselves or take away their own admin role (the console and
/// the API share this rule, so nobody locks themselves out).
pub fn guard_self(caller: &Caller, id: &str, p: &UserPatch) -> Result<()> {
    if caller.user_id != id {
        return Ok(());
    }
    if p.enabled == Some(false) {
        return Err(Error::Conflict("you cannot disable your own account".into()));
    }
    if caller.role == Role::Admin && p.role.is_some_and(|r| r != Role::Admin) {
        return Err(Error::Conflict(
            "you cannot remove your own admin role; ask another admin".into(),
        ));
    }
    Ok(())
}

/// Changes of `PATCH /api/v1/users/{id}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// New shown name.
    pub display_name: Option<String>,
    /// New role.
    pub role: Option<Role>,
    /// New scope roots.
    pub areas: Option<Vec<String>>,
    /// New password.
    pub password: Option<String>,
    /// Enable or disable (disabling ends the user's sessions).
    pub enabled: Option<bool>,
}

/// Apply a patch; returns (before, after).
pub async fn update(store: &Store, id: &str, p: UserPatch) -> Result<(User, User)> {
    let before = get(store, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user `{id}`")))?;
    if let Some(a) = &p.areas {
        check_areas(store, a).await?;
    }
    if let Some(d) = &p.display_name
        && (d.trim().is_empty() || d.chars().count() > 200)
    {
        return Err(Error::bad(
            "invalid_field",
            "`display_name` must be 1–200 characters",
        ));
    }
    let hash = match &p.password {
        Some(pw) => {
            check_password(pw)?;
            Some(hash_password(pw)?)
        }
        None => None,
    };
    sqlx::query(
        "UPDATE users SET display_name = $1, role = $2, areas = $3, enabled = $4, \
         password_hash = COALESCE($5, password_hash), updated_at = $6 WHERE id = $7",
    )
    .bind(
        p.display_name
            .as_deref()
            .map(|d| d.trim().to_string())
            .unwrap_or_else(|| before.display_name.clone()),
    )
    .bind(p.role.unwrap_or(before.role).as_str())
    .bind(serde_json::to_string(p.areas.as_ref().unwrap_or(&before.areas)).unwrap_or_else(|_| "[]".into()))
    .bind(i64::from(p.enabled.unwrap_or(before.enabled)))
    .bind(hash)
    .bind(now_ms())
    .bind(id.to_string())
    .execute(&store.pool)
    .await?;
    if p.enabled == Some(false) || p.password.is_some() {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(id.to_string())
            .execute(&store.pool)
            .await?;
    }
    let after = get(store, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user `{id}`")))?;
    Ok((before, after))
}

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", routing::get(list_users).post(create_user))
        .route("/api/v1/users/{id}", patch(patch_user))
        .route("/api/v1/users/{id}/tokens", post(create_token).get(get_tokens))
        .route(
            "/api/v1/users/{id}/tokens/{token_id}",
            routing::delete(delete_token),
        )
        .route("/api/v1/me", routing::get(me))
}

async fn list_users(caller: Caller, State(state): State<AppState>) -> Result<Json<Vec<User>>> {
    caller.require(Role::Admin)?;
    Ok(Json(list(&state.store).await?))
}

async fn create_user(
    caller: Caller,
    State(state): State<AppState>,
    Json(req): Json<NewUser>,
) -> Result<(StatusCode, Json<User>)> {
    caller.require(Role::Admin)?;
    let u = create(&state.store, req).await?;
    crate::store::audit::record_outside(
        &state.store,
        &caller.username,
        "user.create",
        &format!("user:{}", u.username),
        None,
        Some(json!(u)),
    )
    .await;
    Ok((StatusCode::CREATED, Json(u)))
}

async fn patch_user(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(p): Json<UserPatch>,
) -> Result<Json<User>> {
    caller.require(Role::Admin)?;
    guard_self(&caller, &id, &p)?;
    let (before, after) = update(&state.store, &id, p).await?;
    crate::store::audit::record_outside(
        &state.store,
        &caller.username,
        "user.update",
        &format!("user:{}", after.username),
        Some(json!(before)),
        Some(json!(after)),
    )
    .await;
    Ok(Json(after))
}

async fn create_token(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Option<Json<NewToken>>,
) -> Result<(StatusCode, Json<IssuedToken>)> {
    if caller.user_id != id {
        caller.require(Role::Admin)?;
    }
    let u = get(&state.store, &id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user `{id}`")))?;
    let name = body.and_then(|Json(b)| b.name).unwrap_or_else(|| "api".into());
    let t = issue_token(&state.store, &u.id, &name).await?;
    crate::store::audit::record_outside(
        &state.store,
        &caller.username,
        "token.create",
        &format!("user:{}", u.username),
        None,
        Some(json!({"token_id": t.id, "name": name})),
    )
    .await;
    Ok((StatusCode::CREATED, Json(t)))
}

async fn get_tokens(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<TokenInfo>>> {
    if caller.user_id != id {
        caller.require(Role::Admin)?;
    }
    get(&state.store, &id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user `{id}`")))?;
    Ok(Json(list_tokens(&state.store, &id).await?))
}

async fn delete_token(
    caller: Caller,
    State(state): State<AppState>,
    Path((id, token_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    if caller.user_id != id {
        caller.require(Role::Admin)?;
    }
    let u = get(&state.store, &id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user `{id}`")))?;
    let t = revoke_token(&state.store, &id, &token_id).await?;
    crate::store::audit::record_outside(
        &state.store,
        &caller.username,
        "token.revoke",
        &format!("user:{}", u.username),
        Some(json!({"token_id": t.id, "name": t.name, "revoked": false})),
        Some(json!(t)),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(caller: Caller) -> Json<serde_json::Value> {
    Json(
        json!({"user_id": caller.user_id, "username": caller.username, "role": caller.role, "scope_areas": caller.scope_areas}),
    )
}
