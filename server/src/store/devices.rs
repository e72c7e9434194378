//! Table `devices` (with the live status joined from `device_status`, written by ingest): the
//! look-ups of the broker's credential cache and the scope check, the reads of the API and the
//! console (one device, the filtered and scoped lists), and the writes of the device use cases
//! (create, update, registry import, disable). Functions named `…_in` run on the caller's
//! connection (pass `&mut *tx` inside a use case's transaction).

use std::collections::HashMap;

use nguon_provision::registry::DeviceEntry;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::device::{Device, DeviceUpdate, Registered};
use crate::domain::scope::Caller;
use crate::error::Result;
use crate::store::{Conn, Store, now_ms, placeholders};

/// A device's MQTT login as the broker checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The `$7$` hash of the device password (`None`: the device cannot log in).
    pub hash: Option<String>,
    /// Whether the device is enabled.
    pub enabled: bool,
    /// The device's area (its broker ACL follows the area and its ancestors).
    pub area: String,
    /// The device's report-signing public key, if any (a change ends its broker session).
    pub public_key: Option<String>,
}

fn credential_row(r: &AnyRow) -> Result<Credential> {
    Ok(Credential {
        hash: r.try_get("credential_hash")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        area: r.try_get("area")?,
        public_key: r.try_get("public_key")?,
    })
}

/// Every device's credential, by id.
pub async fn credentials(store: &Store) -> Result<Vec<(String, Credential)>> {
    let rows = sqlx::query("SELECT id, credential_hash, enabled, area, public_key FROM devices")
        .fetch_all(&store.pool)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, credential_row(r)?)))
        .collect()
}

/// One device's credential (`None`: no such device).
pub async fn credential(store: &Store, id: &str) -> Result<Option<Credential>> {
    let row = sqlx::query("SELECT credential_hash, enabled, area, public_key FROM devices WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&store.pool)
        .await?;
    row.as_ref().map(credential_row).transpose()
}

/// The area of a device (`None`: no such device).
pub async fn area_of(store: &Store, id: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT area FROM devices WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&store.pool)
        .await?;
    Ok(row.map(|r| r.try_get("area")).transpose()?)
}

const SELECT: &str = "SELECT d.id, d.kind, d.area, d.name, d.lat, d.lon, d.enabled, d.credential_hash, d.public_key, \
    d.language, d.volume, d.created_at, d.updated_at, s.online, s.session, s.last_seen, s.last_heartbeat, \
    s.manifest_version, s.now_playing, s.disk_free_bytes, s.disk_total_bytes, s.broker FROM devices d LEFT JOIN device_status s ON s.device_id = d.id";

fn row_to_device(r: &AnyRow) -> Result<Device> {
    let now_playing: Option<String> = r.try_get("now_playing")?;
    Ok(Device {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        area: r.try_get("area")?,
        name: r.try_get("name")?,
        lat: r.try_get("lat")?,
        lon: r.try_get("lon")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        has_credential: r.try_get::<Option<String>, _>("credential_hash")?.is_some(),
        public_key: r.try_get("public_key")?,
        language: r.try_get("language")?,
        volume: r.try_get("volume")?,
        online: r.try_get::<Option<i64>, _>("online")?.unwrap_or(0) != 0,
        session: r.try_get("session")?,
        last_seen: r.try_get("last_seen")?,
        last_heartbeat: r.try_get("last_heartbeat")?,
        manifest_version: r.try_get("manifest_version")?,
        now_playing: now_playing
            .and_then(|s| serde_json::from_str(&s).ok())
            .filter(|v: &serde_json::Value| !v.is_null()),
        disk_free_bytes: r.try_get("disk_free_bytes")?,
        disk_total_bytes: r.try_get("disk_total_bytes")?,
        broker: r.try_get("broker")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Load one device with its status.
pub async fn get(store: &Store, id: &str) -> Result<Option<Device>> {
    get_in(&mut *store.pool.acquire().await?, id).await
}

/// [`get`] on the caller's connection.
pub async fn get_in(conn: &mut Conn, id: &str) -> Result<Option<Device>> {
    let sql = format!("{SELECT} WHERE d.id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(row_to_device).transpose()
}

/// Whether a device is registered.
pub async fn exists_in(conn: &mut Conn, id: &str) -> Result<bool> {
    Ok(sqlx::query("SELECT id FROM devices WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

/// The device's area followed by all its ancestors (empty if the device is unknown).
pub async fn device_areas(store: &Store, device_id: &str) -> Result<Vec<String>> {
    match area_of(store, device_id).await? {
        Some(area) => crate::store::areas::ancestors(store, &area).await,
        None => Ok(Vec::new()),
    }
}

/// Filter of the device list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only devices in this area or its descendants.
    pub area: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only online (true) or offline (false) devices.
    pub online: Option<bool>,
}

/// Devices with live status matching `f` inside the caller's scope, ordered by id.
pub async fn list(store: &Store, caller: &Caller, f: &Filter) -> Result<Vec<Device>> {
    let mut sql = String::from(SELECT);
    let mut binds: Vec<String> = Vec::new();
    let mut clauses: Vec<String> = Vec::new();
    if let Some(a) = &f.area {
        let codes = crate::store::areas::subtree(store, std::slice::from_ref(a)).await?;
        clauses.push(format!(
            "d.area IN ({})",
            placeholders(binds.len() + 1, codes.len())
        ));
        binds.extend(codes);
    }
    if let Some(k) = &f.kind {
        clauses.push(format!("d.kind = ${}", binds.len() + 1));
        binds.push(k.clone());
    }
    match f.online {
        Some(true) => clauses.push("s.online = 1".into()),
        Some(false) => clauses.push("(s.online IS NULL OR s.online = 0)".into()),
        None => {}
    }
    let scope = crate::store::scope::scope_sql(caller, "d.area", binds.len() + 1);
    if !scope.binds.is_empty() || caller.scope_areas.is_some() {
        clauses.push(scope.sql);
        binds.extend(scope.binds);
    }
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    sql.push_str(" ORDER BY d.id");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(&store.pool).await?;
    rows.iter().map(row_to_device).collect()
}

/// A device with its live status, as the console lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceRow {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// `loudspeaker` or `board`.
    pub kind: String,
    /// Area.
    pub area: String,
    /// Online now.
    pub online: bool,
    /// Last message (unix ms).
    pub last_seen: Option<i64>,
    /// Now playing JSON (from the last heartbeat).
    pub now_playing: Option<String>,
}

/// Devices inside the caller's scope (the console's lists).
pub async fn scoped(store: &Store, caller: &Caller) -> Result<Vec<DeviceRow>> {
    let scope = crate::store::scope::scope_sql(caller, "d.area", 1);
    let sql = format!(
        "SELECT d.id, d.name, d.kind, d.area, s.online, s.last_seen, s.now_playing FROM devices d \
         LEFT JOIN device_status s ON s.device_id = d.id WHERE {} ORDER BY d.id",
        scope.sql
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in scope.binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(&store.pool).await?;
    let mut out = Vec::new();
    for r in rows {
        out.push(DeviceRow {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            kind: r.try_get("kind")?,
            area: r.try_get("area")?,
            online: r.try_get::<Option<i64>, _>("online")?.unwrap_or(0) != 0,
            last_seen: r.try_get("last_seen")?,
            now_playing: r.try_get("now_playing")?,
        });
    }
    Ok(out)
}

/// Every device's position (latitude, longitude), by id, for the console's map.
pub async fn positions(store: &Store) -> Result<HashMap<String, (Option<f64>, Option<f64>)>> {
    sqlx::query("SELECT id, lat, lon FROM devices")
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("id")?, (r.try_get("lat")?, r.try_get("lon")?))))
        .collect()
}

/// The number of devices per area code.
pub async fn count_by_area(store: &Store) -> Result<HashMap<String, i64>> {
    sqlx::query("SELECT area, COUNT(*) AS n FROM devices GROUP BY area")
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("area")?, r.try_get("n")?)))
        .collect()
}

/// The device gauges of `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Registered devices whose last state is online.
    pub online: i64,
    /// Registered devices.
    pub total: i64,
}

/// How many devices are registered, and how many of them are online.
pub async fn counts(store: &Store) -> Result<Counts> {
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM device_status s JOIN devices d ON d.id = s.device_id WHERE s.online = 1) AS online, \
         (SELECT COUNT(*) FROM devices) AS total",
    )
    .fetch_one(&store.pool)
    .await?;
    Ok(Counts {
        online: row.try_get("online")?,
        total: row.try_get("total")?,
    })
}

/// A new device record.
#[derive(Debug, Clone)]
pub struct NewRow {
    /// Id.
    pub id: String,
    /// Kind.
    pub kind: String,
    /// Area.
    pub area: String,
    /// Name.
    pub name: String,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// Enabled.
    pub enabled: bool,
    /// `$7$` hash of the MQTT password.
    pub credential_hash: Option<String>,
    /// Report-signing public key.
    pub public_key: Option<String>,
    /// Language variant.
    pub language: Option<String>,
    /// Default volume.
    pub volume: Option<i64>,
}

/// Insert a device.
pub async fn insert_in(conn: &mut Conn, d: &NewRow) -> Result<()> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO devices (id, kind, area, name, lat, lon, enabled, credential_hash, public_key, language, volume, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(d.id.clone())
    .bind(d.kind.clone())
    .bind(d.area.clone())
    .bind(d.name.clone())
    .bind(d.lat)
    .bind(d.lon)
    .bind(i64::from(d.enabled))
    .bind(d.credential_hash.clone())
    .bind(d.public_key.clone())
    .bind(d.language.clone())
    .bind(d.volume)
    .bind(now)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Store an update of device `id` (the credential hash only when one is given).
pub async fn update_in(conn: &mut Conn, id: &str, u: &DeviceUpdate) -> Result<()> {
    sqlx::query(
        "UPDATE devices SET name = $1, area = $2, enabled = $3, lat = $4, lon = $5, volume = $6, language = $7, \
         credential_hash = COALESCE($8, credential_hash), public_key = $9, updated_at = $10 WHERE id = $11",
    )
    .bind(u.name.clone())
    .bind(u.area.clone())
    .bind(i64::from(u.enabled))
    .bind(u.lat)
    .bind(u.lon)
    .bind(u.volume)
    .bind(u.language.clone())
    .bind(u.credential_hash.clone())
    .bind(u.public_key.clone())
    .bind(now_ms())
    .bind(id.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The registration fields of a device (`None`: not registered).
pub async fn registered_in(conn: &mut Conn, id: &str) -> Result<Option<Registered>> {
    let row = sqlx::query(
        "SELECT kind, area, name, lat, lon, credential_hash, public_key, language, board_token_hash FROM devices WHERE id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        Ok(Registered {
            kind: r.try_get("kind")?,
            area: r.try_get("area")?,
            name: r.try_get("name")?,
            lat: r.try_get("lat")?,
            lon: r.try_get("lon")?,
            credential_hash: r.try_get("credential_hash")?,
            public_key: r.try_get("public_key")?,
            language: r.try_get("language")?,
            board_token_hash: r.try_get("board_token_hash")?,
        })
    })
    .transpose()
}

/// Insert a device from a registry entry (enabled).
pub async fn insert_registered_in(conn: &mut Conn, d: &DeviceEntry, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO devices (id, kind, area, name, lat, lon, enabled, credential_hash, public_key, language, board_token_hash, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $9, $10, $11, $12)",
    )
    .bind(d.id.clone())
    .bind(d.kind.clone())
    .bind(d.area.clone())
    .bind(d.name.clone())
    .bind(d.lat)
    .bind(d.lon)
    .bind(d.password_hash.clone())
    .bind(d.public_key.clone())
    .bind(d.language.clone())
    .bind(d.board_token_hash.clone())
    .bind(now)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Overwrite a device's registration fields from a registry entry.
pub async fn update_registered_in(conn: &mut Conn, d: &DeviceEntry, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE devices SET kind = $1, area = $2, name = $3, lat = $4, lon = $5, credential_hash = $6, public_key = $7, \
         language = $8, board_token_hash = $9, updated_at = $10 WHERE id = $11",
    )
    .bind(d.kind.clone())
    .bind(d.area.clone())
    .bind(d.name.clone())
    .bind(d.lat)
    .bind(d.lon)
    .bind(d.password_hash.clone())
    .bind(d.public_key.clone())
    .bind(d.language.clone())
    .bind(d.board_token_hash.clone())
    .bind(now)
    .bind(d.id.clone())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Disable an enabled device; whether it was enabled.
pub async fn disable_in(conn: &mut Conn, id: &str, now: i64) -> Result<bool> {
    let res = sqlx::query("UPDATE devices SET enabled = 0, updated_at = $1 WHERE id = $2 AND enabled <> 0")
        .bind(now)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(res.rows_affected() > 0)
}
