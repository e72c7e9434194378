//! Table `server_secrets`: values the server makes once and keeps across restarts (the sha256 of
//! the generated admin token). A value is written once ([`insert_once`]): of several instances
//! starting together on one database, the first wins and the others read its value.

use sqlx::Row;

use crate::error::Result;
use crate::store::{Store, now_ms};

/// The stored value of `name`.
pub async fn get(store: &Store, name: &str) -> Result<Option<String>> {
    Ok(sqlx::query("SELECT value FROM server_secrets WHERE name = $1")
        .bind(name.to_string())
        .fetch_optional(&store.pool)
        .await?
        .map(|r| r.try_get("value"))
        .transpose()?)
}

/// Store `value` under `name` unless a value is stored already; whether this call stored it.
pub async fn insert_once(store: &Store, name: &str, value: &str) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name.to_string())
    .bind(value.to_string())
    .bind(now_ms())
    .execute(&store.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
