//! The device registry: loudspeaker clusters and bulletin boards, each in one area, with an MQTT
//! credential hash (`$7$`), an optional report-signing public key, and live status joined from
//! `device_status` (written by ingest). Endpoints under `/api/v1/devices`, the idempotent
//! registration import `POST /api/v1/fleet/import` (the `nguon-provision` registry file), and the
//! demo seed ([`seed_demo`]).

use std::collections::HashSet;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{self, post};
use axum::{Json, Router};
use nguon_protocol::DeviceId;
use nguon_provision::registry::Registry;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::{IntoParams, ToSchema};

use crate::domain::change::Change;
use crate::error::{Error, Result};
use crate::http::auth::{Admin, Caller};
use crate::services::changes::changed;
use crate::store::{Store, now_ms};
use crate::{AppState, area};

mod demo;
pub mod history;
pub use demo::seed_demo;

/// OpenAPI description of this module's endpoints (merged in `openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(create_device, list_devices, get_device, patch_device, import_fleet),
    components(schemas(Device, NewDevice, DevicePatch, FleetImportSummary))
)]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/devices", post(create_device).get(list_devices))
        .route(
            "/api/v1/devices/{id}",
            routing::get(get_device).patch(patch_device),
        )
        .route("/api/v1/fleet/import", post(import_fleet))
}

/// A device with its live status.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Device {
    /// Device id, e.g. `lc-08003-01`.
    pub id: String,
    /// `loudspeaker` or `board`.
    pub kind: String,
    /// Area code.
    pub area: String,
    /// Display name.
    pub name: String,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// Whether the device receives schedules.
    pub enabled: bool,
    /// Whether an MQTT credential hash is stored.
    pub has_credential: bool,
    /// Base64 ed25519 key that signs the device's reports.
    pub public_key: Option<String>,
    /// Preferred language variant (e.g. `vi`, `hmn`).
    pub language: Option<String>,
    /// Default volume 0–100 pushed to the device; null keeps the device's own.
    pub volume: Option<i64>,
    /// Last known presence (false when never seen).
    pub online: bool,
    /// Connection session counter of the last state message.
    pub session: Option<i64>,
    /// Unix ms of the last message of any kind.
    pub last_seen: Option<i64>,
    /// Unix ms of the last heartbeat.
    pub last_heartbeat: Option<i64>,
    /// Version of the last manifest the device reported applied.
    pub manifest_version: Option<i64>,
    /// What is playing now (from the last heartbeat).
    #[schema(value_type = Option<Object>)]
    pub now_playing: Option<serde_json::Value>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// Body of `POST /api/v1/devices`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    /// Device id (`[A-Za-z0-9._-]`, at most 64).
    pub id: String,
    /// `loudspeaker` or `board`.
    pub kind: String,
    /// Existing area code.
    pub area: String,
    /// Display name (defaults to the id).
    #[serde(default)]
    pub name: Option<String>,
    /// Latitude (−90..90).
    #[serde(default)]
    pub lat: Option<f64>,
    /// Longitude (−180..180).
    #[serde(default)]
    pub lon: Option<f64>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// MQTT password in clear; stored only as a `$7$` hash.
    #[serde(default)]
    pub password: Option<String>,
    /// Or an already computed `$7$` hash.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Base64 ed25519 public key that signs reports.
    #[serde(default)]
    pub public_key: Option<String>,
    /// Language variant.
    #[serde(default)]
    pub language: Option<String>,
    /// Default volume 0–100.
    #[serde(default)]
    pub volume: Option<i64>,
}

/// Body of `PATCH /api/v1/devices/{id}`; absent fields are unchanged.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevicePatch {
    /// New display name.
    pub name: Option<String>,
    /// Move to another (existing) area.
    pub area: Option<String>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// Default volume 0–100.
    pub volume: Option<i64>,
    /// Language variant.
    pub language: Option<String>,
    /// New MQTT password (stored hashed).
    pub password: Option<String>,
    /// New report-signing public key (base64).
    pub public_key: Option<String>,
}

/// Filter of `GET /api/v1/devices`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct DeviceFilter {
    /// Only devices in this area or its descendants.
    pub area: Option<String>,
    /// `loudspeaker` or `board`.
    pub kind: Option<String>,
    /// Only online (true) or offline (false) devices.
    pub online: Option<bool>,
}

/// Result of `POST /api/v1/fleet/import`.
#[derive(Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct FleetImportSummary {
    /// Areas inserted.
    pub areas_created: u64,
    /// Areas changed.
    pub areas_updated: u64,
    /// Devices inserted.
    pub created: u64,
    /// Devices changed.
    pub updated: u64,
    /// Devices identical to the stored ones.
    pub unchanged: u64,
    /// Devices switched from enabled to disabled.
    pub disabled: u64,
}

const SELECT: &str = "SELECT d.id, d.kind, d.area, d.name, d.lat, d.lon, d.enabled, d.credential_hash, d.public_key, \
    d.language, d.volume, d.created_at, d.updated_at, s.online, s.session, s.last_seen, s.last_heartbeat, \
    s.manifest_version, s.now_playing FROM devices d LEFT JOIN device_status s ON s.device_id = d.id";

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
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Load one device with its status.
pub async fn get(store: &Store, id: &str) -> Result<Option<Device>> {
    let sql = format!("{SELECT} WHERE d.id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.to_string())
        .fetch_optional(&store.pool)
        .await?;
    row.as_ref().map(row_to_device).transpose()
}

/// The device's area followed by all its ancestors (empty if the device is unknown).
pub async fn device_areas(store: &Store, device_id: &str) -> Result<Vec<String>> {
    let row = sqlx::query("SELECT area FROM devices WHERE id = $1")
        .bind(device_id.to_string())
        .fetch_optional(&store.pool)
        .await?;
    match row {
        Some(r) => area::ancestors(store, &r.try_get::<String, _>("area")?).await,
        None => Ok(Vec::new()),
    }
}

fn parse_id(id: &str) -> Result<DeviceId> {
    DeviceId::parse(id).map_err(|e| Error::bad("invalid_id", format!("device id `{id}`: {e}")))
}

fn check_kind(kind: &str) -> Result<()> {
    match kind {
        "loudspeaker" | "board" => Ok(()),
        k => Err(Error::bad(
            "invalid_kind",
            format!("kind `{k}` must be `loudspeaker` or `board`"),
        )),
    }
}

fn check_position(lat: Option<f64>, lon: Option<f64>) -> Result<()> {
    if let Some(l) = lat
        && !(-90.0..=90.0).contains(&l)
    {
        return Err(Error::bad(
            "invalid_position",
            format!("lat {l} is outside −90..90"),
        ));
    }
    if let Some(l) = lon
        && !(-180.0..=180.0).contains(&l)
    {
        return Err(Error::bad(
            "invalid_position",
            format!("lon {l} is outside −180..180"),
        ));
    }
    Ok(())
}

fn check_volume(v: Option<i64>) -> Result<()> {
    match v {
        Some(v) if !(0..=100).contains(&v) => Err(Error::bad(
            "invalid_volume",
            format!("volume {v} is outside 0..100"),
        )),
        _ => Ok(()),
    }
}

fn check_public_key(k: &str) -> Result<()> {
    nguon_protocol::verifying_key_from_b64(k)
        .map(|_| ())
        .map_err(|e| Error::bad("invalid_public_key", format!("public_key: {e}")))
}

fn check_hash(h: &str) -> Result<()> {
    if h.starts_with("$7$") && h.split('$').count() == 5 {
        Ok(())
    } else {
        Err(Error::bad(
            "invalid_password_hash",
            "password_hash must be a `$7$` PBKDF2-SHA512 hash",
        ))
    }
}

async fn require_area(store: &Store, code: &str) -> Result<()> {
    if area::exists(store, code).await? {
        Ok(())
    } else {
        Err(Error::unprocessable(
            "unknown_area",
            format!("area `{code}` does not exist"),
        ))
    }
}

/// Register a device.
#[utoipa::path(post, path = "/api/v1/devices", tag = "devices", request_body = NewDevice,
    responses((status = 201, body = Device), (status = 400, description = "invalid field"),
              (status = 409, description = "id exists"), (status = 422, description = "unknown area")))]
async fn create_device(
    Admin(caller): Admin,
    State(state): State<AppState>,
    Json(b): Json<NewDevice>,
) -> Result<(StatusCode, Json<Device>)> {
    let id = parse_id(b.id.trim())?;
    check_kind(&b.kind)?;
    check_position(b.lat, b.lon)?;
    check_volume(b.volume)?;
    if let Some(k) = &b.public_key {
        check_public_key(k)?;
    }
    let hash = match (&b.password, &b.password_hash) {
        (Some(_), Some(_)) => {
            return Err(Error::bad(
                "invalid_field",
                "give `password` or `password_hash`, not both",
            ));
        }
        (Some(p), None) if p.len() < 8 => {
            return Err(Error::bad(
                "weak_password",
                "password must have at least 8 characters",
            ));
        }
        (Some(p), None) => Some(nguon_provision::credential::hash_password(p)),
        (None, Some(h)) => {
            check_hash(h)?;
            Some(h.clone())
        }
        (None, None) => None,
    };
    require_area(&state.store, &b.area).await?;
    if get(&state.store, id.as_str()).await?.is_some() {
        return Err(Error::Conflict(format!("device `{id}` already exists")));
    }
    let now = now_ms();
    sqlx::query(
        "INSERT INTO devices (id, kind, area, name, lat, lon, enabled, credential_hash, public_key, language, volume, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(id.to_string())
    .bind(b.kind.clone())
    .bind(b.area.clone())
    .bind(b.name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| id.to_string()))
    .bind(b.lat)
    .bind(b.lon)
    .bind(i64::from(b.enabled.unwrap_or(true)))
    .bind(hash)
    .bind(b.public_key.clone())
    .bind(b.language.clone())
    .bind(b.volume)
    .bind(now)
    .bind(now)
    .execute(&state.store.pool)
    .await?;
    changed(&state, Change::Devices(vec![id.to_string()])).await;
    let d = get(&state.store, id.as_str())
        .await?
        .ok_or_else(|| Error::NotFound(format!("device `{id}`")))?;
    crate::store::audit::record_outside(
        &state.store,
        &caller.username,
        "device.create",
        &format!("device:{id}"),
        None,
        serde_json::to_value(&d).ok(),
    )
    .await;
    Ok((StatusCode::CREATED, Json(d)))
}

/// List devices with live status; `?area=` includes descendant areas.
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices", params(DeviceFilter),
    responses((status = 200, body = [Device])))]
async fn list_devices(
    caller: Caller,
    State(state): State<AppState>,
    Query(f): Query<DeviceFilter>,
) -> Result<Json<Vec<Device>>> {
    let mut sql = String::from(SELECT);
    let mut binds: Vec<String> = Vec::new();
    let mut clauses: Vec<String> = Vec::new();
    if let Some(a) = &f.area {
        let codes = area::subtree(&state.store, std::slice::from_ref(a)).await?;
        clauses.push(format!(
            "d.area IN ({})",
            crate::store::placeholders(binds.len() + 1, codes.len())
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
    let scope = crate::store::scope::scope_sql(&caller, "d.area", binds.len() + 1);
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
    let rows = q.fetch_all(&state.store.pool).await?;
    let out = rows.iter().map(row_to_device).collect::<Result<Vec<_>>>()?;
    Ok(Json(out))
}

/// One device with live status.
#[utoipa::path(get, path = "/api/v1/devices/{id}", tag = "devices", params(("id" = String, Path)),
    responses((status = 200, body = Device), (status = 404)))]
async fn get_device(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Device>> {
    crate::services::auth::check_device(&state, &caller, &id).await?;
    Ok(Json(
        get(&state.store, &id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("device `{id}`")))?,
    ))
}

/// Change a device: enable/disable, move, rename, volume, credential, key. An admin may change
/// everything; an operator may change the name, area, position and enabled flag of a device in
/// their scope, moving it only inside their scope.
#[utoipa::path(patch, path = "/api/v1/devices/{id}", tag = "devices", params(("id" = String, Path)), request_body = DevicePatch,
    responses((status = 200, body = Device), (status = 403, description = "outside your scope or an admin-only field"),
              (status = 404), (status = 422, description = "unknown area")))]
async fn patch_device(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(p): Json<DevicePatch>,
) -> Result<Json<Device>> {
    check_edit(&state, &caller, &id, &p).await?;
    let (before, after) = update(&state, &id, p).await?;
    audit_change(&state, &caller, Some(&before), Some(&after)).await;
    Ok(Json(after))
}

/// Who may apply `p` to device `id`: an admin anything; an operator the name, area, position
/// and enabled flag of a device in scope, to an area in scope. 403 naming the reason.
pub(crate) async fn check_edit(state: &AppState, caller: &Caller, id: &str, p: &DevicePatch) -> Result<()> {
    if caller.role == crate::domain::scope::Role::Admin {
        return crate::services::auth::check_device(state, caller, id).await;
    }
    caller.require(crate::domain::scope::Role::Operator)?;
    crate::services::auth::check_device(state, caller, id).await?;
    if p.volume.is_some() || p.language.is_some() || p.password.is_some() || p.public_key.is_some() {
        return Err(Error::Forbidden(
            "only an admin may change a device's volume, language, password or key".into(),
        ));
    }
    if let Some(a) = &p.area {
        caller.check_area(a)?;
    }
    Ok(())
}

/// Write a device change to the audit log (without secrets: the credential is only a flag).
pub(crate) async fn audit_change(
    state: &AppState,
    caller: &Caller,
    before: Option<&Device>,
    after: Option<&Device>,
) {
    let id = before.or(after).map(|d| d.id.clone()).unwrap_or_default();
    let strip = |d: &Device| {
        let mut v = serde_json::to_value(d).ok()?;
        if let Some(o) = v.as_object_mut() {
            for k in [
                "online",
                "session",
                "last_seen",
                "last_heartbeat",
                "manifest_version",
                "now_playing",
            ] {
                o.remove(k);
            }
        }
        Some(v)
    };
    crate::store::audit::record_outside(
        &state.store,
        &caller.username,
        "device.update",
        &format!("device:{id}"),
        before.and_then(strip),
        after.and_then(strip),
    )
    .await;
}

/// Validate and apply a device change; returns (before, after). The device's manifest is
/// re-published.
pub(crate) async fn update(state: &AppState, id: &str, p: DevicePatch) -> Result<(Device, Device)> {
    let id = id.to_string();
    let d = get(&state.store, &id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("device `{id}`")))?;
    check_position(p.lat, p.lon)?;
    check_volume(p.volume)?;
    if let Some(k) = &p.public_key {
        check_public_key(k)?;
    }
    if let Some(a) = &p.area {
        require_area(&state.store, a).await?;
    }
    if let Some(n) = &p.name
        && n.chars().count() > 200
    {
        return Err(Error::bad(
            "invalid_field",
            "`name` must be at most 200 characters",
        ));
    }
    let hash = match &p.password {
        Some(pw) if pw.len() < 8 => {
            return Err(Error::bad(
                "weak_password",
                "password must have at least 8 characters",
            ));
        }
        Some(pw) => Some(nguon_provision::credential::hash_password(pw)),
        None => None,
    };
    let name = p
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or(d.name.clone());
    sqlx::query(
        "UPDATE devices SET name = $1, area = $2, enabled = $3, lat = $4, lon = $5, volume = $6, language = $7, \
         credential_hash = COALESCE($8, credential_hash), public_key = $9, updated_at = $10 WHERE id = $11",
    )
    .bind(name)
    .bind(p.area.clone().unwrap_or(d.area.clone()))
    .bind(i64::from(p.enabled.unwrap_or(d.enabled)))
    .bind(p.lat.or(d.lat))
    .bind(p.lon.or(d.lon))
    .bind(p.volume.or(d.volume))
    .bind(p.language.clone().or(d.language.clone()))
    .bind(hash)
    .bind(p.public_key.clone().or(d.public_key.clone()))
    .bind(now_ms())
    .bind(id.clone())
    .execute(&state.store.pool)
    .await?;
    changed(state, Change::Devices(vec![id.clone()])).await;
    let after = get(&state.store, &id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("device `{id}`")))?;
    Ok((d, after))
}

/// Validate a registry file completely; every problem is listed.
async fn validate_registry(store: &Store, r: &Registry) -> Result<()> {
    let mut problems: Vec<String> = Vec::new();
    if r.version != nguon_provision::registry::REGISTRY_VERSION {
        problems.push(format!(
            "version {} is not supported (expected {})",
            r.version,
            nguon_provision::registry::REGISTRY_VERSION
        ));
    }
    let mut file_areas: HashSet<&str> = HashSet::new();
    for (i, a) in r.areas.iter().enumerate() {
        if let Err(e) = nguon_protocol::AreaCode::parse(a.code.clone()) {
            problems.push(format!("areas[{i}]: {e}"));
        }
        if a.name.trim().is_empty() || a.level.trim().is_empty() {
            problems.push(format!(
                "areas[{i}] `{}`: name and level must not be empty",
                a.code
            ));
        }
        if !file_areas.insert(&a.code) {
            problems.push(format!("areas[{i}]: `{}` listed twice", a.code));
        }
    }
    for (i, a) in r.areas.iter().enumerate() {
        if let Some(p) = &a.parent
            && !file_areas.contains(p.as_str())
            && !area::exists(store, p).await?
        {
            problems.push(format!(
                "areas[{i}] `{}`: parent `{p}` is neither stored nor in the file",
                a.code
            ));
        }
    }
    let mut ids: HashSet<&str> = HashSet::new();
    for (i, d) in r.devices.iter().enumerate() {
        let mut check = |res: Result<()>| {
            if let Err(e) = res {
                problems.push(format!("devices[{i}] `{}`: {e}", d.id));
            }
        };
        check(parse_id(&d.id).map(|_| ()));
        check(check_kind(&d.kind));
        check(check_position(d.lat, d.lon));
        check(check_hash(&d.password_hash));
        if let Some(k) = &d.public_key {
            check(check_public_key(k));
        }
        if !ids.insert(&d.id) {
            problems.push(format!("devices[{i}]: `{}` listed twice", d.id));
        }
        if !file_areas.contains(d.area.as_str()) && !area::exists(store, &d.area).await? {
            problems.push(format!(
                "devices[{i}] `{}`: area `{}` is neither stored nor in the file",
                d.id, d.area
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::unprocessable("invalid_registry", problems.join("; ")))
    }
}

/// Import a registration file (areas, then devices, then `disabled`) in one transaction.
pub async fn import_registry(state: &AppState, r: &Registry) -> Result<FleetImportSummary> {
    validate_registry(&state.store, r).await?;
    let mut s = FleetImportSummary {
        areas_created: 0,
        areas_updated: 0,
        created: 0,
        updated: 0,
        unchanged: 0,
        disabled: 0,
    };
    let mut changed_ids: Vec<String> = Vec::new();
    let mut area_moved = false;
    let mut tx = state.store.begin_write().await?;
    for a in &r.areas {
        match area::upsert(&mut tx, &a.code, &a.name, a.parent.as_deref(), &a.level).await? {
            Some(true) => s.areas_created += 1,
            Some(false) => {
                s.areas_updated += 1;
                area_moved = true;
            }
            None => {}
        }
    }
    let now = now_ms();
    for d in &r.devices {
        let existing = sqlx::query(
            "SELECT kind, area, name, lat, lon, credential_hash, public_key, language, board_token_hash FROM devices WHERE id = $1",
        )
        .bind(d.id.clone())
        .fetch_optional(&mut *tx)
        .await?;
        match existing {
            None => {
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
                .execute(&mut *tx)
                .await?;
                s.created += 1;
                changed_ids.push(d.id.clone());
            }
            Some(row) => {
                let same = row.try_get::<String, _>("kind")? == d.kind
                    && row.try_get::<String, _>("area")? == d.area
                    && row.try_get::<String, _>("name")? == d.name
                    && row.try_get::<Option<f64>, _>("lat")? == d.lat
                    && row.try_get::<Option<f64>, _>("lon")? == d.lon
                    && row.try_get::<Option<String>, _>("credential_hash")?.as_deref()
                        == Some(d.password_hash.as_str())
                    && row.try_get::<Option<String>, _>("public_key")? == d.public_key
                    && row.try_get::<Option<String>, _>("language")? == d.language
                    && row.try_get::<Option<String>, _>("board_token_hash")? == d.board_token_hash;
                if same {
                    s.unchanged += 1;
                    continue;
                }
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
                .execute(&mut *tx)
                .await?;
                s.updated += 1;
                changed_ids.push(d.id.clone());
            }
        }
    }
    for id in &r.disabled {
        let res =
            sqlx::query("UPDATE devices SET enabled = 0, updated_at = $1 WHERE id = $2 AND enabled <> 0")
                .bind(now)
                .bind(id.clone())
                .execute(&mut *tx)
                .await?;
        if res.rows_affected() > 0 {
            s.disabled += 1;
            changed_ids.push(id.clone());
        }
    }
    tx.commit().await?;
    if area_moved {
        changed(state, Change::All).await;
    } else if !changed_ids.is_empty() {
        changed(state, Change::Devices(changed_ids)).await;
    }
    Ok(s)
}

/// Import a `nguon-provision` registry file: upsert areas, then devices (by id), then disable the
/// ids in `disabled`. Idempotent: importing the same file again changes nothing.
#[utoipa::path(post, path = "/api/v1/fleet/import", tag = "devices",
    request_body(content = Object, description = "nguon-provision registry.json"),
    responses((status = 200, body = FleetImportSummary), (status = 422, description = "invalid_registry: every problem listed")))]
async fn import_fleet(
    _: Admin,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<FleetImportSummary>> {
    let r: Registry = serde_json::from_slice(&body)
        .map_err(|e| Error::unprocessable("invalid_registry", format!("not a registry file: {e}")))?;
    Ok(Json(import_registry(&state, &r).await?))
}
