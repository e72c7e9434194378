//! Tables `users`, `sessions`, `api_tokens` and `login_attempts`: users and their secrets (only
//! hashes are stored), the look-ups behind authentication, and the login attempts the lock
//! counts. Writes take the use case's connection (`&mut *tx`).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::scope::Role;
use crate::domain::user::{TokenInfo, User, hash_secret};
use crate::error::Result;
use crate::store::{Conn, Store, now_ms};

/// The columns [`row_to_user`] reads.
pub const COLUMNS: &str =
    "id, username, display_name, role, extra_roles, areas, enabled, created_at, updated_at";

/// A `users` row selected with [`COLUMNS`].
pub fn row_to_user(r: &AnyRow) -> Result<User> {
    let areas: String = r.try_get("areas")?;
    let role: String = r.try_get("role")?;
    let extra: String = r.try_get("extra_roles")?;
    let extra: Vec<String> = serde_json::from_str(&extra).unwrap_or_default();
    Ok(User {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        display_name: r.try_get("display_name")?,
        role: Role::parse(&role)?,
        extra_roles: extra.iter().filter_map(|r| Role::parse(r).ok()).collect(),
        areas: serde_json::from_str(&areas).unwrap_or_default(),
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Load a user by id.
pub async fn get(store: &Store, id: &str) -> Result<Option<User>> {
    let mut conn = store.pool.acquire().await?;
    get_in(&mut conn, id).await
}

/// [`get`] on the use case's connection.
pub async fn get_in(conn: &mut Conn, id: &str) -> Result<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(row_to_user).transpose()
}

/// All users by username.
pub async fn list(store: &Store) -> Result<Vec<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users ORDER BY username");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&store.pool)
        .await?;
    rows.iter().map(row_to_user).collect()
}

/// How many users there are.
pub async fn count(store: &Store) -> Result<i64> {
    Ok(sqlx::query("SELECT COUNT(*) AS n FROM users")
        .fetch_one(&store.pool)
        .await?
        .try_get("n")?)
}

/// Whether a user has this username.
pub async fn username_taken(conn: &mut Conn, username: &str) -> Result<bool> {
    Ok(sqlx::query("SELECT id FROM users WHERE username = $1")
        .bind(username.to_string())
        .fetch_optional(conn)
        .await?
        .is_some())
}

/// The stored form of a user's other roles.
fn extra_json(u: &User) -> String {
    let names: Vec<&str> = u.extra_roles.iter().map(|r| r.as_str()).collect();
    serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())
}

/// Insert a user with its argon2id password hash.
pub async fn insert(conn: &mut Conn, u: &User, password_hash: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO users (id, username, display_name, role, areas, password_hash, enabled, created_at, updated_at, \
         extra_roles) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(u.id.clone())
    .bind(u.username.clone())
    .bind(u.display_name.clone())
    .bind(u.role.as_str())
    .bind(serde_json::to_string(&u.areas).unwrap_or_else(|_| "[]".into()))
    .bind(password_hash.to_string())
    .bind(i64::from(u.enabled))
    .bind(u.created_at)
    .bind(u.updated_at)
    .bind(extra_json(u))
    .execute(conn)
    .await?;
    Ok(())
}

/// Store user `u.id`'s shown name, role, scope and enabled flag, and its new password hash if
/// one is given; stamps `updated_at` now.
pub async fn update(conn: &mut Conn, u: &User, password_hash: Option<&str>) -> Result<()> {
    sqlx::query(
        "UPDATE users SET display_name = $1, role = $2, areas = $3, enabled = $4, \
         password_hash = COALESCE($5, password_hash), updated_at = $6, extra_roles = $8 WHERE id = $7",
    )
    .bind(u.display_name.clone())
    .bind(u.role.as_str())
    .bind(serde_json::to_string(&u.areas).unwrap_or_else(|_| "[]".into()))
    .bind(i64::from(u.enabled))
    .bind(password_hash.map(str::to_string))
    .bind(now_ms())
    .bind(u.id.clone())
    .bind(extra_json(u))
    .execute(conn)
    .await?;
    Ok(())
}

/// What a login checks of a user.
#[derive(Debug, Clone)]
pub struct LoginRow {
    /// User id.
    pub id: String,
    /// argon2id hash (PHC string).
    pub password_hash: String,
    /// Whether the user may log in.
    pub enabled: bool,
}

/// The login record of a username.
pub async fn login_row(store: &Store, username: &str) -> Result<Option<LoginRow>> {
    let row = sqlx::query("SELECT id, password_hash, enabled FROM users WHERE username = $1")
        .bind(username.to_string())
        .fetch_optional(&store.pool)
        .await?;
    row.map(|r| {
        Ok(LoginRow {
            id: r.try_get("id")?,
            password_hash: r.try_get("password_hash")?,
            enabled: r.try_get::<i64, _>("enabled")? != 0,
        })
    })
    .transpose()
}

/// Unix ms of the last successful login of `username` from `ip`.
pub async fn last_success(store: &Store, username: &str, ip: &str) -> Result<Option<i64>> {
    Ok(
        sqlx::query("SELECT MAX(at) AS t FROM login_attempts WHERE username = $1 AND ip = $2 AND ok = 1")
            .bind(username.to_string())
            .bind(ip.to_string())
            .fetch_one(&store.pool)
            .await?
            .try_get("t")?,
    )
}

/// Failed logins of `username` from `ip` after `since` (unix ms).
pub async fn failures_since(store: &Store, username: &str, ip: &str, since: i64) -> Result<i64> {
    Ok(sqlx::query(
        "SELECT COUNT(*) AS n FROM login_attempts WHERE username = $1 AND ip = $2 AND ok = 0 AND at > $3",
    )
    .bind(username.to_string())
    .bind(ip.to_string())
    .bind(since)
    .fetch_one(&store.pool)
    .await?
    .try_get("n")?)
}

/// Record a login attempt.
pub async fn note_attempt(store: &Store, username: &str, ip: &str, ok: bool, now: i64) -> Result<()> {
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

/// A new session: only the sha256 of `sid` is stored, with the session's CSRF token.
pub async fn insert_session(
    conn: &mut Conn,
    sid: &str,
    user_id: &str,
    csrf: &str,
    now: i64,
    expires_at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash_secret(sid))
    .bind(user_id.to_string())
    .bind(csrf.to_string())
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Housekeeping: drop sessions expired at `now` and login attempts older than a day.
pub async fn delete_expired(conn: &mut Conn, now: i64) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
        .bind(now)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM login_attempts WHERE at < $1")
        .bind(now - 24 * 3600 * 1000)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// End a session (`sid` as the cookie carries it).
pub async fn delete_session(store: &Store, sid: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(hash_secret(sid))
        .execute(&store.pool)
        .await?;
    Ok(())
}

/// End every session of a user.
pub async fn delete_sessions_of(conn: &mut Conn, user_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// Insert an API token (only the sha256 of `token` is stored).
pub async fn insert_token(conn: &mut Conn, id: &str, user_id: &str, name: &str, token: &str) -> Result<()> {
    sqlx::query("INSERT INTO api_tokens (id, user_id, name, token_hash, created_at, revoked) VALUES ($1, $2, $3, $4, $5, 0)")
        .bind(id.to_string())
        .bind(user_id.to_string())
        .bind(name.to_string())
        .bind(hash_secret(token))
        .bind(now_ms())
        .execute(conn)
        .await?;
    Ok(())
}

/// A user's API tokens, newest first.
pub async fn list_tokens(store: &Store, user_id: &str) -> Result<Vec<TokenInfo>> {
    let mut conn = store.pool.acquire().await?;
    list_tokens_in(&mut conn, user_id).await
}

/// [`list_tokens`] on the use case's connection.
pub async fn list_tokens_in(conn: &mut Conn, user_id: &str) -> Result<Vec<TokenInfo>> {
    let rows = sqlx::query(
        "SELECT id, name, created_at, last_used_at, revoked FROM api_tokens WHERE user_id = $1 \
         ORDER BY created_at DESC, id",
    )
    .bind(user_id.to_string())
    .fetch_all(conn)
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

/// Revoke one of a user's tokens; `false` if the user has no such token.
pub async fn revoke_token(conn: &mut Conn, user_id: &str, token_id: &str) -> Result<bool> {
    let res = sqlx::query("UPDATE api_tokens SET revoked = 1 WHERE id = $1 AND user_id = $2")
        .bind(token_id.to_string())
        .bind(user_id.to_string())
        .execute(conn)
        .await?;
    Ok(res.rows_affected() > 0)
}

/// The enabled user and the CSRF token of a live session (`sid` as the cookie carries it).
pub async fn session_user(store: &Store, sid: &str) -> Result<Option<(User, String)>> {
    let row = sqlx::query("SELECT user_id, csrf FROM sessions WHERE id_hash = $1 AND expires_at > $2")
        .bind(hash_secret(sid))
        .bind(now_ms())
        .fetch_optional(&store.pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let uid: String = row.try_get("user_id")?;
    let csrf: String = row.try_get("csrf")?;
    Ok(get(store, &uid).await?.filter(|u| u.enabled).map(|u| (u, csrf)))
}

/// The enabled user owning an unrevoked API token; stamps the token's `last_used_at`.
pub async fn token_user(store: &Store, token: &str) -> Result<Option<User>> {
    let row = sqlx::query("SELECT id, user_id FROM api_tokens WHERE token_hash = $1 AND revoked = 0")
        .bind(hash_secret(token))
        .fetch_optional(&store.pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let uid: String = row.try_get("user_id")?;
    let tid: String = row.try_get("id")?;
    sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(tid)
        .execute(&store.pool)
        .await?;
    Ok(get(store, &uid).await?.filter(|u| u.enabled))
}
