//! Bulletins (*bản tin*): one piece of content that reaches bulletin boards as text and images and
//! loudspeakers as speech. A bulletin has language variants (`vi`, `hmn`, `dao`, `tay`, ... each with
//! its own title, body and optionally a recorded, approved audio file used instead of
//! text-to-speech), files (images, a video, PDF attachments), a category, a validity window, a
//! Circular 39 priority and target areas. It follows the audio approval flow
//! (draft → pending → approved | rejected); editing sends it back to draft and off the boards.
//!
//! Publishing (`POST /api/v1/bulletins/{id}/publish`, alias `/schedule`) makes an approved bulletin
//! visible on the areas' boards and, per area language, obtains speech (recorded audio, or
//! text-to-speech stored as an approved media item) and creates a schedule on the area's
//! loudspeakers through [`crate::services::schedules::create_in`]. An emergency bulletin plays at once (a
//! schedule due now at emergency priority) and takes over the boards with a banner.

pub mod files;
pub mod markdown;

use std::collections::HashSet;

use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use nguon_protocol::Priority;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{Error, Result};
use crate::http::auth::Admin;
use crate::store::{Store, now_ms};

/// OpenAPI description of this module's endpoints (merged in `openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        create_bulletin,
        list_bulletins,
        get_bulletin,
        patch_bulletin,
        submit,
        approve,
        reject,
        upload_file,
        publish,
        unpublish,
        get_area_languages,
        put_area_languages,
        list_displays
    ),
    components(schemas(
        Bulletin,
        NewBulletin,
        BulletinPatch,
        VariantIn,
        Variant,
        FileRef,
        Decision,
        PublishRequest,
        Published,
        SpeechItem,
        AreaLanguages,
        DisplayRow
    ))
)]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/bulletins", post(create_bulletin).get(list_bulletins))
        .route("/api/v1/bulletins/{id}", get(get_bulletin).patch(patch_bulletin))
        .route("/api/v1/bulletins/{id}/submit", post(submit))
        .route("/api/v1/bulletins/{id}/approve", post(approve))
        .route("/api/v1/bulletins/{id}/reject", post(reject))
        .route(
            "/api/v1/bulletins/{id}/files",
            post(upload_file).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/bulletins/{id}/publish", post(publish))
        .route("/api/v1/bulletins/{id}/schedule", post(publish))
        .route("/api/v1/bulletins/{id}/unpublish", post(unpublish))
        .route("/api/v1/bulletins/{id}/displays", get(list_displays))
        .route(
            "/api/v1/areas/{code}/languages",
            get(get_area_languages).put(put_area_languages),
        )
        .route("/files/{sha256}", get(serve_file))
}

// ---------------------------------------------------------------------------------------------
// Model

/// One language variant as stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Variant {
    /// Language code, e.g. `vi`, `hmn`, `dao`, `tay`.
    pub language: String,
    /// Title.
    pub title: String,
    /// Body (Markdown subset).
    pub body: String,
    /// The body rendered to HTML (escaped).
    pub html: String,
    /// Recorded audio (approved media sha256) used instead of text-to-speech.
    pub audio_sha256: Option<String>,
}

/// A file attached to a bulletin.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FileRef {
    /// Content hash.
    pub sha256: String,
    /// `image`, `video` or `attachment`.
    pub kind: String,
    /// Sniffed MIME type.
    pub mime: String,
    /// Name as uploaded (informational only).
    pub filename: String,
    /// Bytes.
    pub size: i64,
    /// Image width.
    pub width: Option<i64>,
    /// Image height.
    pub height: Option<i64>,
    /// `GET` URL.
    pub url: String,
}

/// A bulletin.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Bulletin {
    /// Id (uuid).
    pub id: String,
    /// Category, e.g. `thông báo`, `chính sách`, `cảnh báo`.
    pub category: String,
    /// `normal`, `priority` or `emergency`.
    pub priority: String,
    /// `draft`, `pending`, `approved` or `rejected`.
    pub status: String,
    /// Reason of a rejection.
    pub status_note: Option<String>,
    /// Shown from (unix ms).
    pub valid_from: Option<i64>,
    /// Shown until (unix ms).
    pub valid_until: Option<i64>,
    /// Target area codes (each with its descendants).
    pub areas: Vec<String>,
    /// Seconds a board shows it in its rotation (default by length).
    pub dwell_s: Option<i64>,
    /// Areas where it is published on boards.
    pub published_areas: Vec<String>,
    /// When it was last published (unix ms).
    pub published_at: Option<i64>,
    /// Language variants.
    pub variants: Vec<Variant>,
    /// Files.
    pub files: Vec<FileRef>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// A language variant on input.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantIn {
    /// Language code (2–8 lowercase letters, e.g. `vi`, `hmn`).
    pub language: String,
    /// Title.
    pub title: String,
    /// Body (Markdown subset: paragraphs, **bold**, *italic*, lists).
    #[serde(default)]
    pub body: String,
    /// Recorded audio (approved media sha256).
    #[serde(default)]
    pub audio_sha256: Option<String>,
}

/// Body of `POST /api/v1/bulletins`. Give `variants`, or `title`/`body` for a `vi`-only bulletin.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBulletin {
    /// Title of the `vi` variant (shorthand).
    #[serde(default)]
    pub title: Option<String>,
    /// Body of the `vi` variant (shorthand).
    #[serde(default)]
    pub body: Option<String>,
    /// Language variants.
    #[serde(default)]
    pub variants: Vec<VariantIn>,
    /// Category (default `thông báo`).
    #[serde(default)]
    pub category: Option<String>,
    /// `normal` (default), `priority`, `emergency`.
    #[serde(default)]
    pub priority: Option<String>,
    /// Unix ms.
    #[serde(default)]
    pub valid_from: Option<i64>,
    /// Unix ms.
    #[serde(default)]
    pub valid_until: Option<i64>,
    /// Target area codes.
    #[serde(default)]
    pub areas: Vec<String>,
    /// Seconds on screen per rotation (3–600).
    #[serde(default)]
    pub dwell_s: Option<i64>,
}

/// Body of `PATCH /api/v1/bulletins/{id}`: absent fields are unchanged; any change sends the
/// bulletin back to `draft` and takes it off the boards.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulletinPatch {
    /// Replace all variants.
    #[serde(default)]
    pub variants: Option<Vec<VariantIn>>,
    /// Category.
    #[serde(default)]
    pub category: Option<String>,
    /// Priority.
    #[serde(default)]
    pub priority: Option<String>,
    /// Unix ms (null clears).
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub valid_from: Option<Option<i64>>,
    /// Unix ms (null clears).
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub valid_until: Option<Option<i64>>,
    /// Target areas.
    #[serde(default)]
    pub areas: Option<Vec<String>>,
    /// Dwell seconds.
    #[serde(default)]
    pub dwell_s: Option<i64>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
        Ok(Some(Option::<i64>::deserialize(d)?))
    }
}

pub(crate) fn parse_priority(p: Option<&str>) -> Result<String> {
    let p = p.unwrap_or("normal").trim();
    p.parse::<Priority>()
        .map(|p| p.as_str().to_string())
        .map_err(|_| {
            Error::bad(
                "invalid_priority",
                format!("priority `{p}` must be normal, priority or emergency"),
            )
        })
}

pub(crate) fn valid_language(l: &str) -> bool {
    (2..=8).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
}

/// Validate language variants. `approved_audio`: recorded audio must already be approved (the
/// API); the console accepts a recording still in review, because it is submitted and approved
/// together with its bulletin (publishing refuses unapproved audio either way).
pub(crate) async fn check_variants(store: &Store, vs: &[VariantIn], approved_audio: bool) -> Result<()> {
    if vs.is_empty() {
        return Err(Error::bad(
            "variants_required",
            "a bulletin needs at least one language variant (e.g. `vi`)",
        ));
    }
    let mut seen = HashSet::new();
    for v in vs {
        if !valid_language(&v.language) {
            return Err(Error::bad(
                "invalid_language",
                format!("language `{}` must be 2–8 lowercase letters", v.language),
            ));
        }
        if !seen.insert(v.language.clone()) {
            return Err(Error::bad(
                "duplicate_language",
                format!("language `{}` appears twice", v.language),
            ));
        }
        if v.title.trim().is_empty() || v.title.chars().count() > 300 {
            return Err(Error::bad(
                "invalid_title",
                format!("title of `{}` must be 1–300 characters", v.language),
            ));
        }
        if v.body.chars().count() > 20_000 {
            return Err(Error::TooLarge(format!(
                "body of `{}` is longer than 20000 characters",
                v.language
            )));
        }
        if let Some(sha) = &v.audio_sha256 {
            let row = sqlx::query("SELECT status FROM media WHERE sha256 = $1")
                .bind(sha.clone())
                .fetch_optional(&store.pool)
                .await?;
            match row {
                Some(r) if !approved_audio || r.try_get::<String, _>("status")? == "approved" => {}
                Some(_) => {
                    return Err(Error::unprocessable(
                        "media_not_approved",
                        format!("audio {sha} is not approved"),
                    ));
                }
                None => {
                    return Err(Error::unprocessable(
                        "media_not_found",
                        format!("audio {sha} does not exist"),
                    ));
                }
            }
        }
    }
    Ok(())
}

pub(crate) async fn validate_areas(store: &Store, areas: &[String]) -> Result<()> {
    for a in areas {
        crate::domain::area::parse_code(a)?;
        if !crate::store::areas::exists(store, a).await? {
            return Err(Error::unprocessable(
                "unknown_area",
                format!("area `{a}` does not exist"),
            ));
        }
    }
    Ok(())
}

pub(crate) fn validate_window(from: Option<i64>, until: Option<i64>) -> Result<()> {
    if let (Some(f), Some(u)) = (from, until)
        && u <= f
    {
        return Err(Error::bad(
            "invalid_window",
            "`valid_until` must be after `valid_from`",
        ));
    }
    Ok(())
}

fn validate_dwell(d: Option<i64>) -> Result<()> {
    if let Some(d) = d
        && !(3..=600).contains(&d)
    {
        return Err(Error::bad("invalid_dwell", "`dwell_s` must be 3–600 seconds"));
    }
    Ok(())
}

async fn write_variants(conn: &mut sqlx::AnyConnection, id: &str, vs: &[VariantIn]) -> Result<()> {
    sqlx::query("DELETE FROM bulletin_variants WHERE bulletin_id = $1")
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    for v in vs {
        sqlx::query(
            "INSERT INTO bulletin_variants (bulletin_id, language, title, body, audio_sha256) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id.to_string())
        .bind(v.language.clone())
        .bind(v.title.trim().to_string())
        .bind(v.body.clone())
        .bind(v.audio_sha256.clone())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Load one bulletin with variants, files and published areas.
pub async fn load(state: &AppState, id: &str) -> Result<Bulletin> {
    let row = sqlx::query("SELECT * FROM bulletins WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&state.store.pool)
        .await?
        .ok_or_else(|| Error::NotFound(format!("bulletin {id}")))?;
    let mut b = row_to_bulletin(&row)?;
    b.variants = load_variants(&state.store, id).await?;
    b.files = load_files(state, id).await?;
    b.published_areas = sqlx::query("SELECT area FROM bulletin_targets WHERE bulletin_id = $1 ORDER BY area")
        .bind(id.to_string())
        .fetch_all(&state.store.pool)
        .await?
        .iter()
        .map(|r| r.try_get("area"))
        .collect::<Result<_, _>>()?;
    Ok(b)
}

fn row_to_bulletin(r: &AnyRow) -> Result<Bulletin> {
    let areas: String = r.try_get("areas")?;
    Ok(Bulletin {
        id: r.try_get("id")?,
        category: r.try_get("category")?,
        priority: r.try_get("priority")?,
        status: r.try_get("status")?,
        status_note: r.try_get("status_note")?,
        valid_from: r.try_get("valid_from")?,
        valid_until: r.try_get("valid_until")?,
        areas: serde_json::from_str(&areas).unwrap_or_default(),
        dwell_s: r.try_get("dwell_s")?,
        published_areas: Vec::new(),
        published_at: r.try_get("published_at")?,
        variants: Vec::new(),
        files: Vec::new(),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Variants of a bulletin, `vi` first.
pub async fn load_variants(store: &Store, id: &str) -> Result<Vec<Variant>> {
    let rows = sqlx::query(
        "SELECT language, title, body, audio_sha256 FROM bulletin_variants WHERE bulletin_id = $1 ORDER BY language",
    )
    .bind(id.to_string())
    .fetch_all(&store.pool)
    .await?;
    let mut out: Vec<Variant> = rows
        .iter()
        .map(|r| {
            let body: String = r.try_get("body")?;
            Ok(Variant {
                language: r.try_get("language")?,
                title: r.try_get("title")?,
                html: markdown::to_html(&body),
                body,
                audio_sha256: r.try_get("audio_sha256")?,
            })
        })
        .collect::<Result<_>>()?;
    out.sort_by_key(|v| v.language != "vi");
    Ok(out)
}

/// Files of a bulletin in upload order.
pub async fn load_files(state: &AppState, id: &str) -> Result<Vec<FileRef>> {
    let rows = sqlx::query(
        "SELECT bf.sha256, bf.kind, bf.filename, f.mime, f.size, f.width, f.height FROM bulletin_files bf \
         JOIN files f ON f.sha256 = bf.sha256 WHERE bf.bulletin_id = $1 ORDER BY bf.position",
    )
    .bind(id.to_string())
    .fetch_all(&state.store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let sha: String = r.try_get("sha256")?;
            Ok(FileRef {
                url: format!("/files/{sha}"),
                sha256: sha,
                kind: r.try_get("kind")?,
                mime: r.try_get("mime")?,
                filename: r.try_get("filename")?,
                size: r.try_get("size")?,
                width: r.try_get("width")?,
                height: r.try_get("height")?,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// CRUD and approval

/// Create a draft bulletin.
#[utoipa::path(post, path = "/api/v1/bulletins", tag = "bulletins", request_body = NewBulletin,
    responses((status = 201, body = Bulletin), (status = 400, description = "Invalid field"),
              (status = 422, description = "Unknown area or unapproved audio")))]
async fn create_bulletin(
    _: Admin,
    State(state): State<AppState>,
    Json(req): Json<NewBulletin>,
) -> Result<Response> {
    let b = create(&state, req, true).await?;
    Ok((StatusCode::CREATED, Json(b)).into_response())
}

/// Create a draft bulletin (the API and the console). `approved_audio`: see [`check_variants`].
pub(crate) async fn create(state: &AppState, req: NewBulletin, approved_audio: bool) -> Result<Bulletin> {
    let mut variants = req.variants;
    if let Some(title) = req.title {
        if variants.iter().any(|v| v.language == "vi") {
            return Err(Error::bad(
                "duplicate_language",
                "give `title`/`body` or a `vi` variant, not both",
            ));
        }
        variants.insert(
            0,
            VariantIn {
                language: "vi".into(),
                title,
                body: req.body.unwrap_or_default(),
                audio_sha256: None,
            },
        );
    }
    check_variants(&state.store, &variants, approved_audio).await?;
    let priority = parse_priority(req.priority.as_deref())?;
    validate_areas(&state.store, &req.areas).await?;
    validate_window(req.valid_from, req.valid_until)?;
    validate_dwell(req.dwell_s)?;
    let category = req
        .category
        .unwrap_or_else(|| "thông báo".into())
        .trim()
        .to_string();
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    let mut tx = state.store.begin_write().await?;
    sqlx::query(
        "INSERT INTO bulletins (id, category, priority, status, status_note, valid_from, valid_until, areas, dwell_s, \
         published_at, created_at, updated_at) VALUES ($1, $2, $3, 'draft', NULL, $4, $5, $6, $7, NULL, $8, $9)",
    )
    .bind(id.clone())
    .bind(category)
    .bind(priority)
    .bind(req.valid_from)
    .bind(req.valid_until)
    .bind(serde_json::to_string(&req.areas).unwrap_or_else(|_| "[]".into()))
    .bind(req.dwell_s)
    .bind(now)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    write_variants(&mut tx, &id, &variants).await?;
    tx.commit().await?;
    load(state, &id).await
}

/// List bulletins, newest first.
#[utoipa::path(get, path = "/api/v1/bulletins", tag = "bulletins", responses((status = 200, body = [Bulletin])))]
async fn list_bulletins(_: Admin, State(state): State<AppState>) -> Result<Json<Vec<Bulletin>>> {
    let ids: Vec<String> =
        sqlx::query("SELECT id FROM bulletins ORDER BY created_at DESC, id DESC LIMIT 500")
            .fetch_all(&state.store.pool)
            .await?
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(load(&state, &id).await?);
    }
    Ok(Json(out))
}

/// One bulletin.
#[utoipa::path(get, path = "/api/v1/bulletins/{id}", tag = "bulletins",
    responses((status = 200, body = Bulletin), (status = 404, description = "No such bulletin")))]
async fn get_bulletin(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Bulletin>> {
    Ok(Json(load(&state, &id).await?))
}

/// Edit a bulletin; it goes back to `draft` and off the boards.
#[utoipa::path(patch, path = "/api/v1/bulletins/{id}", tag = "bulletins", request_body = BulletinPatch,
    responses((status = 200, body = Bulletin)))]
async fn patch_bulletin(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(p): Json<BulletinPatch>,
) -> Result<Json<Bulletin>> {
    Ok(Json(update(&state, &id, p, true).await?))
}

/// Edit a bulletin: back to `draft` and off the boards (the API and the console).
/// `approved_audio`: see [`check_variants`].
pub(crate) async fn update(
    state: &AppState,
    id: &str,
    p: BulletinPatch,
    approved_audio: bool,
) -> Result<Bulletin> {
    let cur = load(state, id).await?;
    if let Some(vs) = &p.variants {
        check_variants(&state.store, vs, approved_audio).await?;
    }
    let priority = match &p.priority {
        Some(pr) => parse_priority(Some(pr))?,
        None => cur.priority.clone(),
    };
    if let Some(a) = &p.areas {
        validate_areas(&state.store, a).await?;
    }
    let valid_from = p.valid_from.unwrap_or(cur.valid_from);
    let valid_until = p.valid_until.unwrap_or(cur.valid_until);
    validate_window(valid_from, valid_until)?;
    validate_dwell(p.dwell_s)?;
    let mut tx = state.store.begin_write().await?;
    sqlx::query(
        "UPDATE bulletins SET category = $1, priority = $2, valid_from = $3, valid_until = $4, areas = $5, dwell_s = $6, \
         status = 'draft', status_note = NULL, published_at = NULL, updated_at = $7 WHERE id = $8",
    )
    .bind(p.category.map(|c| c.trim().to_string()).unwrap_or(cur.category))
    .bind(priority)
    .bind(valid_from)
    .bind(valid_until)
    .bind(serde_json::to_string(&p.areas.unwrap_or(cur.areas)).unwrap_or_else(|_| "[]".into()))
    .bind(p.dwell_s.or(cur.dwell_s))
    .bind(now_ms())
    .bind(id.to_string())
    .execute(&mut *tx)
    .await?;
    if let Some(vs) = &p.variants {
        write_variants(&mut tx, id, vs).await?;
    }
    sqlx::query("DELETE FROM bulletin_targets WHERE bulletin_id = $1")
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    state.bulletins.bump();
    load(state, id).await
}

/// An approval decision.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Reason (required to reject).
    #[serde(default)]
    pub note: Option<String>,
}

/// Move a bulletin from one of `from` to `to` (409 otherwise), with an optional note.
pub(crate) async fn transition(
    state: &AppState,
    id: &str,
    from: &[&str],
    to: &str,
    note: Option<String>,
) -> Result<Bulletin> {
    let cur = load(state, id).await?;
    if !from.contains(&cur.status.as_str()) {
        return Err(Error::Conflict(format!(
            "bulletin {id} is {}; only a {} bulletin can become {to}",
            cur.status,
            from.join(" or ")
        )));
    }
    sqlx::query(
        "UPDATE bulletins SET status = $1, status_note = $2, updated_at = $3 WHERE id = $4 AND status = $5",
    )
    .bind(to.to_string())
    .bind(note)
    .bind(now_ms())
    .bind(id.to_string())
    .bind(cur.status.clone())
    .execute(&state.store.pool)
    .await?;
    if cur.status == "approved" || to == "approved" {
        state.bulletins.bump();
    }
    load(state, id).await
}

/// Submit a draft (or rejected) bulletin for approval.
#[utoipa::path(post, path = "/api/v1/bulletins/{id}/submit", tag = "bulletins",
    responses((status = 200, body = Bulletin), (status = 409, description = "Not a draft")))]
async fn submit(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Bulletin>> {
    Ok(Json(
        transition(&state, &id, &["draft", "rejected"], "pending", None).await?,
    ))
}

/// Approve a pending bulletin.
#[utoipa::path(post, path = "/api/v1/bulletins/{id}/approve", tag = "bulletins",
    responses((status = 200, body = Bulletin), (status = 409, description = "Not pending")))]
async fn approve(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Bulletin>> {
    Ok(Json(
        transition(&state, &id, &["pending"], "approved", None).await?,
    ))
}

/// Reject a pending bulletin with a reason.
#[utoipa::path(post, path = "/api/v1/bulletins/{id}/reject", tag = "bulletins", request_body = Decision,
    responses((status = 200, body = Bulletin), (status = 400, description = "No reason"), (status = 409, description = "Not pending")))]
async fn reject(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(d): Json<Decision>,
) -> Result<Json<Bulletin>> {
    let note = d
        .note
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| Error::bad("note_required", "a rejection needs a `note`"))?;
    Ok(Json(
        transition(&state, &id, &["pending"], "rejected", Some(note)).await?,
    ))
}

// ---------------------------------------------------------------------------------------------
// Files

/// Upload an image, video or PDF (multipart field `file`); the type is read from the content.
#[utoipa::path(post, path = "/api/v1/bulletins/{id}/files", tag = "bulletins",
    request_body(content_type = "multipart/form-data", description = "field `file`"),
    responses((status = 201, body = FileRef), (status = 413, description = "Over the size limit"),
              (status = 415, description = "Not PNG, JPEG, WebP, GIF, MP4, WebM or PDF"),
              (status = 422, description = "Image dimensions over the limit")))]
async fn upload_file(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    mut mp: Multipart,
) -> Result<Response> {
    let cur = load(&state, &id).await?;
    let max_upload = state.settings.max_upload_mb * 1024 * 1024;
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|e| Error::bad("bad_multipart", e.body_text()))?
    {
        if field.name() != Some("file") {
            continue;
        }
        let filename = field
            .file_name()
            .unwrap_or("file")
            .chars()
            .take(200)
            .collect::<String>();
        let stored = match files::receive(&state.settings.data_dir, max_upload, field).await {
            Ok(s) => s,
            Err(e) => {
                crate::metrics::Metrics::inc(&state.metrics.uploads_rejected);
                return Err(e);
            }
        };
        let f = attach_file(&state, &cur, &stored, filename).await?;
        return Ok((StatusCode::CREATED, Json(f)).into_response());
    }
    Err(Error::bad("file_required", "multipart field `file` is missing"))
}

/// Record a received file on a bulletin (at most one video); the API upload and the console form.
pub(crate) async fn attach_file(
    state: &AppState,
    cur: &Bulletin,
    stored: &files::Stored,
    filename: String,
) -> Result<Option<FileRef>> {
    let id = cur.id.clone();
    if stored.sniffed.kind == "video"
        && cur
            .files
            .iter()
            .any(|f| f.kind == "video" && f.sha256 != stored.sha256)
    {
        return Err(Error::Conflict("a bulletin has at most one video".into()));
    }
    let now = now_ms();
    let mut tx = state.store.begin_write().await?;
    sqlx::query(
        "INSERT INTO files (sha256, mime, size, width, height, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(stored.sha256.clone())
    .bind(stored.sniffed.mime)
    .bind(stored.size as i64)
    .bind(stored.dims.map(|d| d.0 as i64))
    .bind(stored.dims.map(|d| d.1 as i64))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO bulletin_files (bulletin_id, sha256, kind, filename, position, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (bulletin_id, sha256) DO NOTHING",
    )
    .bind(id.clone())
    .bind(stored.sha256.clone())
    .bind(stored.sniffed.kind)
    .bind(filename)
    .bind(cur.files.len() as i64)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE bulletins SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id.clone())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    state.bulletins.bump();
    Ok(load_files(state, &id)
        .await?
        .into_iter()
        .find(|f| f.sha256 == stored.sha256))
}

async fn serve_file(
    State(state): State<AppState>,
    Path(sha): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    if sha.len() != 64
        || !sha
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err(Error::NotFound(format!("file {sha}")));
    }
    let mime: String = sqlx::query("SELECT mime FROM files WHERE sha256 = $1")
        .bind(sha.clone())
        .fetch_optional(&state.store.pool)
        .await?
        .ok_or_else(|| Error::NotFound(format!("file {sha}")))?
        .try_get("mime")?;
    files::serve(&state.settings.data_dir, &sha, &mime, &headers).await
}

// ---------------------------------------------------------------------------------------------
// Area languages

/// Languages an area receives.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AreaLanguages {
    /// In order of preference, e.g. `["hmn", "vi"]`. Empty: inherit from the parent (default `vi`).
    pub languages: Vec<String>,
    /// Where the effective list comes from (answers only).
    #[serde(default)]
    pub inherited_from: Option<String>,
}

/// The languages in effect for `area`: its own list, else the nearest ancestor's, else `vi`.
pub async fn languages_of(store: &Store, area: &str) -> Result<(Vec<String>, Option<String>)> {
    for a in crate::store::areas::ancestors(store, area).await? {
        let rows =
            sqlx::query("SELECT language FROM area_languages WHERE area = $1 ORDER BY position, language")
                .bind(a.clone())
                .fetch_all(&store.pool)
                .await?;
        if !rows.is_empty() {
            let langs = rows
                .iter()
                .map(|r| r.try_get("language"))
                .collect::<Result<Vec<String>, _>>()?;
            return Ok((langs, Some(a)));
        }
    }
    Ok((vec!["vi".into()], None))
}

/// The languages in effect for an area.
#[utoipa::path(get, path = "/api/v1/areas/{code}/languages", tag = "bulletins", responses((status = 200, body = AreaLanguages)))]
async fn get_area_languages(
    _: Admin,
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<AreaLanguages>> {
    if !crate::store::areas::exists(&state.store, &code).await? {
        return Err(Error::NotFound(format!("area {code}")));
    }
    let (languages, inherited_from) = languages_of(&state.store, &code).await?;
    Ok(Json(AreaLanguages {
        languages,
        inherited_from,
    }))
}

/// Set the languages an area receives (empty list: inherit).
#[utoipa::path(put, path = "/api/v1/areas/{code}/languages", tag = "bulletins", request_body = AreaLanguages,
    responses((status = 200, body = AreaLanguages)))]
async fn put_area_languages(
    _: Admin,
    State(state): State<AppState>,
    Path(code): Path<String>,
    Json(body): Json<AreaLanguages>,
) -> Result<Json<AreaLanguages>> {
    if !crate::store::areas::exists(&state.store, &code).await? {
        return Err(Error::NotFound(format!("area {code}")));
    }
    let mut seen = HashSet::new();
    for l in &body.languages {
        if !valid_language(l) || !seen.insert(l.clone()) {
            return Err(Error::bad(
                "invalid_language",
                format!("language `{l}` is invalid or repeated"),
            ));
        }
    }
    let mut tx = state.store.begin_write().await?;
    sqlx::query("DELETE FROM area_languages WHERE area = $1")
        .bind(code.clone())
        .execute(&mut *tx)
        .await?;
    for (i, l) in body.languages.iter().enumerate() {
        sqlx::query("INSERT INTO area_languages (area, language, position) VALUES ($1, $2, $3)")
            .bind(code.clone())
            .bind(l.clone())
            .bind(i as i64)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    state.bulletins.bump();
    let (languages, inherited_from) = languages_of(&state.store, &code).await?;
    Ok(Json(AreaLanguages {
        languages,
        inherited_from,
    }))
}

// ---------------------------------------------------------------------------------------------
// Publishing

/// Body of `POST /api/v1/bulletins/{id}/publish`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// Areas (default: the bulletin's own).
    #[serde(default)]
    pub areas: Option<Vec<String>>,
    /// When the speakers play it: a schedule rule (`{"kind":"once","at":"2026-06-15T07:30:00"}` or
    /// `{"kind":"cron","cron":"30 6 * * *"}`); default once, now. Emergencies always play now.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub rule: Option<crate::domain::schedule::RuleSpec>,
    /// Text-to-speech voice (default `vi`).
    #[serde(default)]
    pub voice: Option<String>,
    /// Words per minute.
    #[serde(default)]
    pub speed: Option<u32>,
    /// Pitch.
    #[serde(default)]
    pub pitch: Option<u32>,
    /// Also schedule the loudspeakers (default true); false publishes to boards only.
    #[serde(default)]
    pub speakers: Option<bool>,
    /// Volume 0–100 for the schedule.
    #[serde(default)]
    pub volume: Option<u8>,
}

/// Speech produced for one area and language.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SpeechItem {
    /// Area.
    pub area: String,
    /// Language.
    pub language: String,
    /// Media sha256.
    pub sha256: String,
    /// `recorded` or `tts`.
    pub source: String,
    /// Normalised text read (TTS only).
    pub normalized: Option<String>,
    /// Duration in ms.
    pub duration_ms: i64,
}

/// Answer of a publish.
#[derive(Debug, Serialize, ToSchema)]
pub struct Published {
    /// The bulletin.
    pub bulletin: Bulletin,
    /// Areas whose boards now show it.
    pub board_areas: Vec<String>,
    /// Speech items.
    pub speech: Vec<SpeechItem>,
    /// Schedules created on loudspeakers (ids).
    pub schedules: Vec<String>,
    /// Languages skipped, with the reason (e.g. no recorded audio and no voice for `hmn`).
    pub skipped: Vec<String>,
}

/// Publish an approved bulletin to boards and loudspeakers of its areas.
#[utoipa::path(post, path = "/api/v1/bulletins/{id}/publish", tag = "bulletins", request_body = PublishRequest,
    responses((status = 200, body = Published), (status = 422, description = "Not approved, expired, or no areas")))]
async fn publish(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Option<Json<PublishRequest>>,
) -> Result<Json<Published>> {
    let req = body.map(|b| b.0).unwrap_or_default();
    Ok(Json(publish_bulletin(&state, &id, req).await?))
}

/// What text-to-speech reads for a variant: "title. body" with the body's Markdown removed.
pub(crate) fn speech_text(title: &str, body: &str) -> String {
    format!("{}. {}", title.trim_end_matches('.'), markdown::to_plain(body))
}

/// The publish action (also for other modules and tests).
pub async fn publish_bulletin(state: &AppState, id: &str, req: PublishRequest) -> Result<Published> {
    let b = load(state, id).await?;
    if b.status != "approved" {
        return Err(Error::unprocessable(
            "not_approved",
            format!("bulletin {id} is {}; approve it first", b.status),
        ));
    }
    let now = now_ms();
    if b.valid_until.is_some_and(|u| u <= now) {
        return Err(Error::unprocessable(
            "expired",
            format!("bulletin {id} is no longer valid"),
        ));
    }
    let areas = req.areas.clone().unwrap_or_else(|| b.areas.clone());
    if areas.is_empty() {
        return Err(Error::unprocessable(
            "areas_required",
            "no target areas: give `areas` or set them on the bulletin",
        ));
    }
    validate_areas(&state.store, &areas).await?;
    let engine = state.tts.engine();
    let voice =
        crate::speech::Voice::from_request(engine.as_ref(), req.voice.as_deref(), req.speed, req.pitch)?;
    let priority: Priority = b.priority.parse().unwrap_or_default();
    let speakers = req.speakers.unwrap_or(true);

    // Speech first (it can fail); boards only after everything is ready.
    let mut speech = Vec::new();
    let mut skipped = Vec::new();
    let mut per_area: Vec<(String, Vec<String>)> = Vec::new();
    if speakers {
        for area in &areas {
            let (langs, _) = languages_of(&state.store, area).await?;
            let mut playlist = Vec::new();
            for lang in langs {
                let Some(v) = b.variants.iter().find(|v| v.language == lang) else {
                    skipped.push(format!("{area}/{lang}: the bulletin has no `{lang}` variant"));
                    continue;
                };
                let item = if let Some(sha) = &v.audio_sha256 {
                    let dur: i64 = sqlx::query(
                        "SELECT duration_ms FROM media WHERE sha256 = $1 AND status = 'approved'",
                    )
                    .bind(sha.clone())
                    .fetch_optional(&state.store.pool)
                    .await?
                    .ok_or_else(|| {
                        Error::unprocessable("media_not_approved", format!("audio {sha} is not approved"))
                    })?
                    .try_get("duration_ms")?;
                    SpeechItem {
                        area: area.clone(),
                        language: lang.clone(),
                        sha256: sha.clone(),
                        source: "recorded".into(),
                        normalized: None,
                        duration_ms: dur,
                    }
                } else if lang == "vi" {
                    let text = speech_text(&v.title, &v.body);
                    let (normalized, m) = crate::speech::synthesize_to_media(
                        state,
                        &text,
                        &voice,
                        &format!("Bản tin: {}", v.title),
                        true,
                    )
                    .await?;
                    SpeechItem {
                        area: area.clone(),
                        language: lang.clone(),
                        sha256: m.sha256,
                        source: "tts".into(),
                        normalized: Some(normalized),
                        duration_ms: m.duration_ms,
                    }
                } else {
                    skipped.push(format!(
                        "{area}/{lang}: no recorded audio and no text-to-speech voice for `{lang}`"
                    ));
                    continue;
                };
                playlist.push(item.sha256.clone());
                speech.push(item);
            }
            if !playlist.is_empty() {
                per_area.push((area.clone(), playlist));
            }
        }
    }

    let mut schedules = Vec::new();
    let tz: chrono_tz::Tz = state
        .settings
        .time_zone
        .parse()
        .unwrap_or(chrono_tz::Asia::Ho_Chi_Minh);
    for (area, playlist) in &per_area {
        let rule = match (&req.rule, priority) {
            (Some(r), p) if p != Priority::Emergency => r.clone(),
            _ => crate::domain::schedule::RuleSpec::Once {
                // A few seconds ahead so the occurrence is inside the dispatched window.
                at: (chrono::Utc::now() + chrono::Duration::seconds(2))
                    .with_timezone(&tz)
                    .format("%Y-%m-%dT%H:%M:%S")
                    .to_string(),
            },
        };
        let title = b.variants.first().map(|v| v.title.clone()).unwrap_or_default();
        let prepared = crate::services::schedules::prepare(
            state,
            &crate::domain::schedule::NewSchedule {
                title: format!("Bản tin: {}", title.chars().take(180).collect::<String>()),
                media: playlist.clone(),
                targets: crate::domain::schedule::Targets {
                    areas: vec![area.clone()],
                    devices: Vec::new(),
                },
                priority,
                rule,
                time_zone: Some(state.settings.time_zone.clone()),
                valid_from: None,
                valid_until: b.valid_until.map(crate::store::from_ms),
                volume: req.volume,
                repeat: None,
                on_preempt: Default::default(),
            },
        )
        .await?;
        // Step B2 moves this into the publish's one transaction, with its audit entry.
        let mut tx = state.store.begin_write().await?;
        crate::services::schedules::create_in(&mut tx, &prepared).await?;
        tx.commit().await?;
        state.wake.dispatch();
        schedules.push(prepared.schedule.id.clone());
        for s in speech.iter().filter(|s| &s.area == area) {
            sqlx::query("DELETE FROM bulletin_speech WHERE bulletin_id = $1 AND area = $2 AND language = $3")
                .bind(id.to_string())
                .bind(area.clone())
                .bind(s.language.clone())
                .execute(&state.store.pool)
                .await?;
            sqlx::query(
                "INSERT INTO bulletin_speech (bulletin_id, area, language, media_sha256, source, schedule_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id.to_string())
            .bind(area.clone())
            .bind(s.language.clone())
            .bind(s.sha256.clone())
            .bind(s.source.clone())
            .bind(prepared.schedule.id.clone())
            .bind(now)
            .execute(&state.store.pool)
            .await?;
        }
    }

    let mut tx = state.store.begin_write().await?;
    for area in &areas {
        sqlx::query("DELETE FROM bulletin_targets WHERE bulletin_id = $1 AND area = $2")
            .bind(id.to_string())
            .bind(area.clone())
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO bulletin_targets (bulletin_id, area, created_at) VALUES ($1, $2, $3)")
            .bind(id.to_string())
            .bind(area.clone())
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("UPDATE bulletins SET published_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    state.bulletins.bump();
    Ok(Published {
        bulletin: load(state, id).await?,
        board_areas: areas,
        speech,
        schedules,
        skipped,
    })
}

/// Take a bulletin off all boards (schedules already created stay; disable them in `schedules`).
#[utoipa::path(post, path = "/api/v1/bulletins/{id}/unpublish", tag = "bulletins", responses((status = 200, body = Bulletin)))]
async fn unpublish(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Bulletin>> {
    load(&state, &id).await?;
    sqlx::query("DELETE FROM bulletin_targets WHERE bulletin_id = $1")
        .bind(id.clone())
        .execute(&state.store.pool)
        .await?;
    state.bulletins.bump();
    Ok(Json(load(&state, &id).await?))
}

// ---------------------------------------------------------------------------------------------
// Proof of display (read side; boards write through `board`)

/// One proof-of-display record.
#[derive(Debug, Serialize, ToSchema)]
pub struct DisplayRow {
    /// Client uuid.
    pub id: String,
    /// Board.
    pub device_id: String,
    /// Unix ms.
    pub shown_from: i64,
    /// Unix ms.
    pub shown_to: i64,
}

/// Where and when a bulletin was shown.
#[utoipa::path(get, path = "/api/v1/bulletins/{id}/displays", tag = "bulletins", responses((status = 200, body = [DisplayRow])))]
async fn list_displays(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<DisplayRow>>> {
    let rows = sqlx::query(
        "SELECT id, device_id, shown_from, shown_to FROM displays WHERE bulletin_id = $1 ORDER BY shown_from LIMIT 10000",
    )
    .bind(id)
    .fetch_all(&state.store.pool)
    .await?;
    Ok(Json(
        rows.iter()
            .map(|r| {
                Ok(DisplayRow {
                    id: r.try_get("id")?,
                    device_id: r.try_get("device_id")?,
                    shown_from: r.try_get("shown_from")?,
                    shown_to: r.try_get("shown_to")?,
                })
            })
            .collect::<Result<_>>()?,
    ))
}
