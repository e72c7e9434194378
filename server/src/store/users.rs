//! Table `users` and the look-ups behind authentication (`sessions`, `api_tokens`). The rest of
//! the users' SQL (create, update, login attempts, tokens) is still in the root `user` module
//! (step C moves it here).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::scope::Role;
use crate::domain::user::{User, hash_secret};
use crate::error::Result;
use crate::store::{Store, now_ms};

/// The columns [`row_to_user`] reads.
pub const COLUMNS: &str = "id, username, display_name, role, areas, enabled, created_at, updated_at";

/// A `users` row selected with [`COLUMNS`].
pub fn row_to_user(r: &AnyRow) -> Result<User> {
    let areas: String = r.try_get("areas")?;
    let role: String = r.try_get("role")?;
    Ok(User {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        display_name: r.try_get("display_name")?,
        role: Role::parse(&role)?,
        areas: serde_json::from_str(&areas).unwrap_or_default(),
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Load a user by id.
pub async fn get(store: &Store, id: &str) -> Result<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.to_string())
        .fetch_optional(&store.pool)
        .await?;
    row.as_ref().map(row_to_user).transpose()
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
