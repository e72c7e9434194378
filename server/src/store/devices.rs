//! Table `devices`: the look-ups the foundation needs (the broker's credential cache, the scope
//! check of a device). The device CRUD, import and status are still in the root `fleet` module
//! (step A moves them here).

use sqlx::Row;

use crate::error::Result;
use crate::store::Store;

/// A device's MQTT login as the broker checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The `$7$` hash of the device password (`None`: the device cannot log in).
    pub hash: Option<String>,
    /// Whether the device is enabled.
    pub enabled: bool,
}

/// Every device's credential, by id.
pub async fn credentials(store: &Store) -> Result<Vec<(String, Credential)>> {
    let rows = sqlx::query("SELECT id, credential_hash, enabled FROM devices")
        .fetch_all(&store.pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("id")?,
                Credential {
                    hash: r.try_get("credential_hash")?,
                    enabled: r.try_get::<i64, _>("enabled")? != 0,
                },
            ))
        })
        .collect()
}

/// One device's credential (`None`: no such device).
pub async fn credential(store: &Store, id: &str) -> Result<Option<Credential>> {
    let row = sqlx::query("SELECT credential_hash, enabled FROM devices WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&store.pool)
        .await?;
    row.map(|r| {
        Ok(Credential {
            hash: r.try_get("credential_hash")?,
            enabled: r.try_get::<i64, _>("enabled")? != 0,
        })
    })
    .transpose()
}

/// The area of a device (`None`: no such device).
pub async fn area_of(store: &Store, id: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT area FROM devices WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&store.pool)
        .await?;
    Ok(row.map(|r| r.try_get("area")).transpose()?)
}
