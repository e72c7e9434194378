//! Administrative areas: a tree of units (province › commune › village, any depth) keyed by
//! official code ([`AreaCode`]). CRUD under `/api/v1/areas`, a CSV import that reports every bad
//! line and writes nothing unless all are valid, and the tree queries other modules use:
//! [`subtree`] (roots and all descendants) and [`ancestors`] (an area and all its parents).

use std::collections::{HashMap, HashSet};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{self, post};
use axum::{Json, Router};
use nguon_protocol::AreaCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::domain::change::Change;
use crate::error::{Error, Result};
use crate::http::auth::{Admin, Caller};
use crate::store::{Store, now_ms};

/// OpenAPI description of this module's endpoints (merged in `openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(create_area, list_areas, get_area, patch_area, delete_area, import_csv),
    components(schemas(Area, NewArea, AreaPatch, ImportSummary, LineError))
)]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/areas", post(create_area).get(list_areas))
        .route("/api/v1/areas/import", post(import_csv))
        .route(
            "/api/v1/areas/{code}",
            routing::get(get_area).patch(patch_area).delete(delete_area),
        )
}

/// An administrative unit.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Area {
    /// Official code, e.g. `08003`.
    pub code: String,
    /// Display name, e.g. `Xã Sa Pa`.
    pub name: String,
    /// Parent code; null for a root (province).
    pub parent: Option<String>,
    /// `province`, `commune`, `village`, ... (free text).
    pub level: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// Body of `POST /api/v1/areas`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewArea {
    /// Official code (`[A-Za-z0-9._-]`, at most 32 characters).
    pub code: String,
    /// Display name.
    pub name: String,
    /// Parent code (must exist); omit for a root.
    #[serde(default)]
    pub parent: Option<String>,
    /// Level name.
    pub level: String,
}

/// Body of `PATCH /api/v1/areas/{code}`; absent fields are unchanged. `parent: null` makes a root.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AreaPatch {
    /// New name.
    pub name: Option<String>,
    /// New level.
    pub level: Option<String>,
    /// New parent (must exist and not be the area or one of its descendants).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub parent: Option<Option<String>>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Filter of `GET /api/v1/areas`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AreaFilter {
    /// Only this area and its descendants.
    pub under: Option<String>,
}

/// Result of a CSV import.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportSummary {
    /// Areas inserted.
    pub created: u64,
    /// Existing areas whose name, parent or level changed.
    pub updated: u64,
    /// Lines identical to the stored area.
    pub unchanged: u64,
}

/// One refused CSV line.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineError {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    /// Why it was refused.
    pub reason: String,
}

fn row_to_area(r: &AnyRow) -> Result<Area> {
    Ok(Area {
        code: r.try_get("code")?,
        name: r.try_get("name")?,
        parent: r.try_get("parent")?,
        level: r.try_get("level")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Validate an area code, as a 400 `invalid_code` naming it.
pub fn parse_code(code: &str) -> Result<AreaCode> {
    AreaCode::parse(code).map_err(|e| Error::bad("invalid_code", format!("area code `{code}`: {e}")))
}

fn non_empty(field: &'static str, v: &str) -> Result<String> {
    let v = v.trim();
    if v.is_empty() {
        return Err(Error::bad(
            "invalid_field",
            format!("`{field}` must not be empty"),
        ));
    }
    Ok(v.to_string())
}

/// The given roots plus all their descendants (each once). Roots need not exist. A wrapper over
/// the one walk of the area tree (`domain::area::AreaTree::subtree`).
pub async fn subtree(store: &Store, roots: &[String]) -> Result<Vec<String>> {
    if roots.is_empty() {
        return Ok(Vec::new());
    }
    Ok(crate::store::areas::tree(store).await?.subtree(roots))
}

/// The area itself followed by its parent, grandparent, ... up to the root (empty if unknown). A
/// wrapper over the one walk of the area tree (`domain::area::AreaTree::ancestors`).
pub async fn ancestors(store: &Store, code: &str) -> Result<Vec<String>> {
    Ok(crate::store::areas::tree(store).await?.ancestors(code))
}

/// Load one area.
pub async fn get(store: &Store, code: &str) -> Result<Option<Area>> {
    let row =
        sqlx::query("SELECT code, name, parent, level, created_at, updated_at FROM areas WHERE code = $1")
            .bind(code.to_string())
            .fetch_optional(&store.pool)
            .await?;
    row.as_ref().map(row_to_area).transpose()
}

/// Whether an area exists.
pub async fn exists(store: &Store, code: &str) -> Result<bool> {
    Ok(sqlx::query("SELECT code FROM areas WHERE code = $1")
        .bind(code.to_string())
        .fetch_optional(&store.pool)
        .await?
        .is_some())
}

/// Insert or update one area (no validation beyond the code); returns `Some(true)` if created,
/// `Some(false)` if changed, `None` if unchanged.
pub async fn upsert(
    conn: &mut sqlx::AnyConnection,
    code: &str,
    name: &str,
    parent: Option<&str>,
    level: &str,
) -> Result<Option<bool>> {
    let existing = sqlx::query("SELECT name, parent, level FROM areas WHERE code = $1")
        .bind(code.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    let now = now_ms();
    match existing {
        None => {
            sqlx::query("INSERT INTO areas (code, name, parent, level, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(code.to_string())
                .bind(name.to_string())
                .bind(parent.map(str::to_string))
                .bind(level.to_string())
                .bind(now)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            Ok(Some(true))
        }
        Some(r) => {
            let (n, p, l): (String, Option<String>, String) =
                (r.try_get("name")?, r.try_get("parent")?, r.try_get("level")?);
            if n == name && p.as_deref() == parent && l == level {
                return Ok(None);
            }
            sqlx::query(
                "UPDATE areas SET name = $1, parent = $2, level = $3, updated_at = $4 WHERE code = $5",
            )
            .bind(name.to_string())
            .bind(parent.map(str::to_string))
            .bind(level.to_string())
            .bind(now)
            .bind(code.to_string())
            .execute(&mut *conn)
            .await?;
            Ok(Some(false))
        }
    }
}

/// Create an area.
#[utoipa::path(post, path = "/api/v1/areas", tag = "areas", request_body = NewArea,
    responses((status = 201, body = Area), (status = 400, description = "invalid code or empty field"),
              (status = 409, description = "code exists"), (status = 422, description = "unknown parent")))]
async fn create_area(
    Admin(caller): Admin,
    State(state): State<AppState>,
    Json(body): Json<NewArea>,
) -> Result<(StatusCode, Json<Area>)> {
    let area = create(&state, body).await?;
    audit_change(&state, &caller, "area.create", &area.code, None, Some(&area)).await;
    Ok((StatusCode::CREATED, Json(area)))
}

/// Write an area change to the audit log.
pub(crate) async fn audit_change(
    state: &AppState,
    caller: &Caller,
    action: &str,
    code: &str,
    before: Option<&Area>,
    after: Option<&Area>,
) {
    crate::store::audit::record_outside(
        &state.store,
        &caller.username,
        action,
        &format!("area:{code}"),
        before.and_then(|a| serde_json::to_value(a).ok()),
        after.and_then(|a| serde_json::to_value(a).ok()),
    )
    .await;
}

/// Validate and create an area (the API's and the console's one path).
pub(crate) async fn create(state: &AppState, body: NewArea) -> Result<Area> {
    let code = parse_code(body.code.trim())?;
    let name = non_empty("name", &body.name)?;
    let level = non_empty("level", &body.level)?;
    let parent = body.parent.as_deref().map(str::trim).filter(|p| !p.is_empty());
    if let Some(p) = parent {
        parse_code(p)?;
        if p == code.as_str() {
            return Err(Error::unprocessable(
                "invalid_parent",
                "an area cannot be its own parent",
            ));
        }
        if !exists(&state.store, p).await? {
            return Err(Error::unprocessable(
                "unknown_parent",
                format!("parent area `{p}` does not exist"),
            ));
        }
    }
    if exists(&state.store, code.as_str()).await? {
        return Err(Error::Conflict(format!("area `{code}` already exists")));
    }
    upsert(
        &mut *state.store.pool.acquire().await?,
        code.as_str(),
        &name,
        parent,
        &level,
    )
    .await?;
    get(&state.store, code.as_str())
        .await?
        .ok_or_else(|| Error::NotFound(format!("area `{code}`")))
}

/// List areas (all, or one subtree with `?under=CODE`), ordered by code.
#[utoipa::path(get, path = "/api/v1/areas", tag = "areas", params(AreaFilter),
    responses((status = 200, body = [Area])))]
async fn list_areas(
    caller: Caller,
    State(state): State<AppState>,
    Query(f): Query<AreaFilter>,
) -> Result<Json<Vec<Area>>> {
    let scope = crate::store::scope::scope_sql(&caller, "code", 1);
    let sql = format!(
        "SELECT code, name, parent, level, created_at, updated_at FROM areas WHERE {} ORDER BY code",
        scope.sql
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in scope.binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(&state.store.pool).await?;
    let mut areas = rows.iter().map(row_to_area).collect::<Result<Vec<_>>>()?;
    if let Some(under) = f.under {
        let keep: HashSet<String> = subtree(&state.store, &[under]).await?.into_iter().collect();
        areas.retain(|a| keep.contains(&a.code));
    }
    Ok(Json(areas))
}

/// One area with its direct children codes.
#[utoipa::path(get, path = "/api/v1/areas/{code}", tag = "areas", params(("code" = String, Path)),
    responses((status = 200, body = Area), (status = 404)))]
async fn get_area(
    caller: Caller,
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<serde_json::Value>> {
    caller.check_area(&code)?;
    let area = get(&state.store, &code)
        .await?
        .ok_or_else(|| Error::NotFound(format!("area `{code}`")))?;
    let children: Vec<String> = sqlx::query("SELECT code FROM areas WHERE parent = $1 ORDER BY code")
        .bind(code.clone())
        .fetch_all(&state.store.pool)
        .await?
        .iter()
        .map(|r| r.try_get("code"))
        .collect::<std::result::Result<_, _>>()?;
    let mut v = serde_json::to_value(&area).map_err(|e| Error::internal_from("area json", e))?;
    v["children"] = json!(children);
    Ok(Json(v))
}

/// Change an area's name, level or parent.
#[utoipa::path(patch, path = "/api/v1/areas/{code}", tag = "areas", params(("code" = String, Path)), request_body = AreaPatch,
    responses((status = 200, body = Area), (status = 404), (status = 422, description = "unknown parent or cycle")))]
async fn patch_area(
    Admin(caller): Admin,
    State(state): State<AppState>,
    Path(code): Path<String>,
    Json(body): Json<AreaPatch>,
) -> Result<Json<Area>> {
    let (before, after) = update(&state, &code, body).await?;
    audit_change(&state, &caller, "area.update", &code, Some(&before), Some(&after)).await;
    Ok(Json(after))
}

/// Validate and apply an area change (rename, level, move); returns (before, after).
pub(crate) async fn update(state: &AppState, code: &str, body: AreaPatch) -> Result<(Area, Area)> {
    let code = code.to_string();
    let area = get(&state.store, &code)
        .await?
        .ok_or_else(|| Error::NotFound(format!("area `{code}`")))?;
    let name = match &body.name {
        Some(n) => non_empty("name", n)?,
        None => area.name.clone(),
    };
    let level = match &body.level {
        Some(l) => non_empty("level", l)?,
        None => area.level.clone(),
    };
    let parent = match body.parent {
        None => area.parent.clone(),
        Some(None) => None,
        Some(Some(p)) => {
            let p = p.trim().to_string();
            parse_code(&p)?;
            if !exists(&state.store, &p).await? {
                return Err(Error::unprocessable(
                    "unknown_parent",
                    format!("parent area `{p}` does not exist"),
                ));
            }
            let below = subtree(&state.store, std::slice::from_ref(&code)).await?;
            if below.contains(&p) {
                return Err(Error::unprocessable(
                    "invalid_parent",
                    format!("`{p}` is `{code}` or one of its descendants"),
                ));
            }
            Some(p)
        }
    };
    let parent_changed = parent != area.parent;
    upsert(
        &mut *state.store.pool.acquire().await?,
        &code,
        &name,
        parent.as_deref(),
        &level,
    )
    .await?;
    if parent_changed {
        // Targets resolved through the tree may now reach other devices.
        crate::services::changes::changed(state, Change::All).await;
    }
    let after = get(&state.store, &code)
        .await?
        .ok_or_else(|| Error::NotFound(format!("area `{code}`")))?;
    Ok((area, after))
}

/// Delete an area that has no children and no devices.
#[utoipa::path(delete, path = "/api/v1/areas/{code}", tag = "areas", params(("code" = String, Path)),
    responses((status = 204), (status = 404), (status = 409, description = "has children or devices")))]
async fn delete_area(
    Admin(caller): Admin,
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<StatusCode> {
    let before = delete(&state, &code).await?;
    audit_change(&state, &caller, "area.delete", &code, Some(&before), None).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete an area unless it still has children, devices, schedules targeting it or media
/// owned by it (409 naming what is left); returns the deleted area.
pub(crate) async fn delete(state: &AppState, code: &str) -> Result<Area> {
    let code = code.to_string();
    let Some(before) = get(&state.store, &code).await? else {
        return Err(Error::NotFound(format!("area `{code}`")));
    };
    let children = sqlx::query("SELECT COUNT(*) AS n FROM areas WHERE parent = $1")
        .bind(code.clone())
        .fetch_one(&state.store.pool)
        .await?;
    let children: i64 = children.try_get("n")?;
    if children > 0 {
        return Err(Error::Conflict(format!(
            "area `{code}` has {children} child area(s); delete or move them first"
        )));
    }
    let devices = sqlx::query("SELECT COUNT(*) AS n FROM devices WHERE area = $1")
        .bind(code.clone())
        .fetch_one(&state.store.pool)
        .await?;
    let devices: i64 = devices.try_get("n")?;
    if devices > 0 {
        return Err(Error::Conflict(format!(
            "area `{code}` has {devices} device(s); move them first"
        )));
    }
    let schedules: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM schedule_targets WHERE kind = 'area' AND target = $1")
            .bind(code.clone())
            .fetch_one(&state.store.pool)
            .await?
            .try_get("n")?;
    if schedules > 0 {
        return Err(Error::Conflict(format!(
            "area `{code}` is the target of {schedules} schedule(s); change or delete them first"
        )));
    }
    let media: i64 = sqlx::query("SELECT COUNT(*) AS n FROM media WHERE area = $1")
        .bind(code.clone())
        .fetch_one(&state.store.pool)
        .await?
        .try_get("n")?;
    if media > 0 {
        return Err(Error::Conflict(format!(
            "area `{code}` owns {media} media file(s); they would lose their owner"
        )));
    }
    sqlx::query("DELETE FROM areas WHERE code = $1")
        .bind(code)
        .execute(&state.store.pool)
        .await?;
    Ok(before)
}

struct CsvArea {
    code: String,
    name: String,
    parent: Option<String>,
    level: String,
}

/// Parse and validate a CSV (`code,name,parent,level`); every bad line is reported.
fn parse_csv(text: &str, known: &HashSet<String>) -> std::result::Result<Vec<CsvArea>, Vec<LineError>> {
    let mut errors = Vec::new();
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = match rdr.headers() {
        Ok(h) => h
            .iter()
            .map(|s| s.trim_start_matches('\u{feff}').to_ascii_lowercase())
            .collect::<Vec<_>>(),
        Err(e) => {
            return Err(vec![LineError {
                line: 1,
                reason: format!("unreadable header: {e}"),
            }]);
        }
    };
    let col = |n: &str| headers.iter().position(|h| h == n);
    let (Some(ci), Some(ni), Some(pi), Some(li)) = (col("code"), col("name"), col("parent"), col("level"))
    else {
        return Err(vec![LineError {
            line: 1,
            reason: format!(
                "header must be `code,name,parent,level`, got `{}`",
                headers.join(",")
            ),
        }]);
    };
    let mut out: Vec<CsvArea> = Vec::new();
    let mut lines_of: HashMap<String, u64> = HashMap::new();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                errors.push(LineError {
                    line,
                    reason: format!("unreadable: {e}"),
                });
                continue;
            }
        };
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.iter().all(|f| f.is_empty()) {
            continue;
        }
        let field = |i: usize| rec.get(i).unwrap_or("").to_string();
        let (code, name, parent, level) = (field(ci), field(ni), field(pi), field(li));
        let mut reasons = Vec::new();
        if let Err(e) = AreaCode::parse(code.clone()) {
            reasons.push(format!("code `{code}`: {e}"));
        }
        if name.is_empty() {
            reasons.push("name is empty".to_string());
        }
        if level.is_empty() {
            reasons.push("level is empty".to_string());
        }
        if !parent.is_empty() {
            if let Err(e) = AreaCode::parse(parent.clone()) {
                reasons.push(format!("parent `{parent}`: {e}"));
            } else if parent == code {
                reasons.push("an area cannot be its own parent".to_string());
            }
        }
        if let Some(first) = lines_of.get(&code) {
            reasons.push(format!("code `{code}` already on line {first}"));
        }
        if reasons.is_empty() {
            lines_of.insert(code.clone(), line);
            out.push(CsvArea {
                code,
                name,
                parent: (!parent.is_empty()).then_some(parent),
                level,
            });
        } else {
            errors.push(LineError {
                line,
                reason: reasons.join("; "),
            });
        }
    }
    // Parents must exist, in the store or in the file.
    for a in &out {
        if let Some(p) = &a.parent
            && !known.contains(p)
            && !lines_of.contains_key(p)
        {
            errors.push(LineError {
                line: lines_of[&a.code],
                reason: format!("parent `{p}` is neither stored nor in the file"),
            });
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        errors.sort_by_key(|e| e.line);
        Err(errors)
    }
}

/// Import areas from CSV (`text/csv`, header `code,name,parent,level`): upsert by code. If any
/// line is bad, nothing is written and the 422 lists every bad line in `error.lines`.
#[utoipa::path(post, path = "/api/v1/areas/import", tag = "areas",
    request_body(content = String, content_type = "text/csv", description = "code,name,parent,level"),
    responses((status = 200, body = ImportSummary),
              (status = 422, description = "`error.code` = `invalid_csv`, `error.lines` = [{line, reason}]")))]
async fn import_csv(Admin(caller): Admin, State(state): State<AppState>, body: String) -> Result<Response> {
    match import(&state, &body).await? {
        Ok(s) => {
            crate::store::audit::record_outside(
                &state.store,
                &caller.username,
                "area.import",
                "areas",
                None,
                serde_json::to_value(&s).ok(),
            )
            .await;
            Ok(Json(s).into_response())
        }
        Err(lines) => {
            let msg = format!("{} bad line(s); nothing was imported", lines.len());
            let body = json!({ "error": { "code": "invalid_csv", "message": msg, "lines": lines } });
            Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response())
        }
    }
}

/// Import a CSV: every bad line (`Err`, nothing written) or the summary of the upsert.
pub(crate) async fn import(
    state: &AppState,
    body: &str,
) -> Result<std::result::Result<ImportSummary, Vec<LineError>>> {
    let known: HashSet<String> = sqlx::query("SELECT code FROM areas")
        .fetch_all(&state.store.pool)
        .await?
        .iter()
        .map(|r| r.try_get("code"))
        .collect::<std::result::Result<_, _>>()?;
    let areas = match parse_csv(body, &known) {
        Ok(a) => a,
        Err(lines) => return Ok(Err(lines)),
    };
    let mut tx = state.store.begin_write().await?;
    let mut s = ImportSummary {
        created: 0,
        updated: 0,
        unchanged: 0,
    };
    for a in &areas {
        match upsert(&mut tx, &a.code, &a.name, a.parent.as_deref(), &a.level).await? {
            Some(true) => s.created += 1,
            Some(false) => s.updated += 1,
            None => s.unchanged += 1,
        }
    }
    tx.commit().await?;
    if s.updated > 0 {
        crate::services::changes::changed(state, Change::All).await;
    }
    Ok(Ok(s))
}
