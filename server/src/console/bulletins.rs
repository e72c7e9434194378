//! Console pages for bulletins (*bản tin*, issue 7): the list, the editor form (one multipart form:
//! Vietnamese title and body, category, priority, validity, target areas, images, and language
//! variants each with its own text and optionally a recorded audio file), the text-to-speech
//! preview, review in the approval queue and publishing to areas.
//!
//! Everything goes through [`crate::bulletin`] (create, update, transitions, files, publish) and
//! [`crate::speech`] (voices, synthesis); this module adds the scope rules, the form, and the
//! audit log. Scope: a user restricted to an area subtree sees the bulletins with a target inside
//! it or above it (a province-wide bulletin reaches a commune) and those they created
//! (`bulletin.create` in the audit log); editing and reviewing need every target inside the
//! scope; publishing targets only areas inside it.
//!
//! A recorded audio file uploaded with a variant is stored as an ordinary media item (`draft`),
//! submitted with its bulletin and approved or rejected together with it.

use std::collections::{BTreeMap, HashSet};

use axum::extract::multipart::Field;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row;
use tokio::io::AsyncWriteExt;

use super::{Console, Lang, PageError, PageForm, PageResult, all_areas, i18n, see_other};
use crate::bulletin::{self, Bulletin, BulletinPatch, NewBulletin, VariantIn, files};
use crate::domain::scope::Role;
use crate::http::form::Fields;
use crate::{AppState, Error, Result, media};

/// The bulletin pages still run SQL themselves and get their `?` through this (it was in the
/// console's shared `queries` module; step B removes it with the last of that SQL).
impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> Self {
        PageError(Error::Db(e), Lang::Vi)
    }
}

/// Statuses a bulletin can have (the list filter).
const STATUSES: [&str; 4] = ["draft", "pending", "approved", "rejected"];
/// Language codes offered in the variant form (others may be typed).
const KNOWN_LANGUAGES: [&str; 6] = ["vi", "hmn", "dao", "tay", "nung", "thai"];
/// Longest text field of the form, bytes.
const MAX_TEXT_FIELD: usize = 200_000;

/// Routes of the bulletin pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/bulletins", get(list_page))
        .route(
            "/console/bulletins/new",
            get(new_page).post(create_post).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/console/bulletins/{id}",
            get(bulletin_page)
                .post(update_post)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/console/bulletins/{id}/review", post(review))
        .route("/console/bulletins/{id}/publish", post(publish))
        .route("/console/tts/preview", post(tts_preview))
}

fn tz() -> chrono_tz::Tz {
    chrono_tz::Asia::Ho_Chi_Minh
}

/// `datetime-local` value in Asia/Ho_Chi_Minh → unix ms; `Some(None)` when empty, `None` when invalid.
fn parse_local(s: &str) -> Option<Option<i64>> {
    super::parse_datetime_local(s, tz()).map(|t| t.map(|t| t.timestamp_millis()))
}

/// Unix ms → `datetime-local` value in Asia/Ho_Chi_Minh.
fn local_input(ms: Option<i64>) -> String {
    super::datetime_local(ms.and_then(chrono::DateTime::from_timestamp_millis), tz())
}

fn tr(key: &str, lang: Lang) -> String {
    i18n::t(key, lang).to_string()
}

// ---------------------------------------------------------------- scope

/// Ids of the bulletins `username` created (the `bulletin.create` entries of the audit log).
async fn created_by(state: &AppState, username: &str) -> Result<HashSet<String>> {
    let rows = sqlx::query("SELECT entity FROM audit_log WHERE action = 'bulletin.create' AND actor = $1")
        .bind(username.to_string())
        .fetch_all(&state.store.pool)
        .await?;
    rows.iter()
        .map(|r| {
            let e: String = r.try_get("entity")?;
            Ok(e.trim_start_matches("bulletin:").to_string())
        })
        .collect()
}

/// What decides which bulletins a caller sees.
struct Sight {
    /// Areas whose bulletins reach the caller's subtree: the scope and the ancestors of its roots
    /// (a province-wide bulletin reaches a commune's staff); `None` = unrestricted.
    reach: Option<HashSet<String>>,
    /// Bulletins the caller created.
    mine: HashSet<String>,
}

impl Sight {
    async fn of(state: &AppState, c: &Console) -> Result<Sight> {
        let mine = created_by(state, &c.caller.username).await?;
        let Some(scope) = &c.caller.scope_areas else {
            return Ok(Sight { reach: None, mine });
        };
        let areas = all_areas(state).await?;
        let mut reach: HashSet<String> = scope.iter().cloned().collect();
        for code in scope {
            reach.extend(crate::domain::area::chain_with(code, |c| {
                areas.get(c).and_then(|a| a.parent.as_deref())
            }));
        }
        Ok(Sight {
            reach: Some(reach),
            mine,
        })
    }

    /// Whether the caller sees a bulletin: unrestricted, a target reaching the scope, or its creator.
    fn sees(&self, b: &Bulletin) -> bool {
        match &self.reach {
            None => true,
            Some(r) => self.mine.contains(&b.id) || b.areas.iter().any(|a| r.contains(a)),
        }
    }
}

/// Whether every target of the bulletin is inside the caller's scope (to edit or review it).
fn all_in_scope(c: &Console, b: &Bulletin) -> bool {
    b.areas.iter().all(|a| c.caller.in_scope(a))
}

/// A bulletin the caller may see (404 / 403 otherwise).
async fn visible(state: &AppState, c: &Console, id: &str) -> Result<Bulletin> {
    let b = bulletin::load(state, id).await?;
    if !Sight::of(state, c).await?.sees(&b) {
        return Err(Error::Forbidden(format!(
            "bulletin {id} targets no area inside your scope"
        )));
    }
    Ok(b)
}

fn may_edit(c: &Console, b: &Bulletin) -> bool {
    c.caller.role.grants(Role::Editor) && all_in_scope(c, b)
}

fn may_review(c: &Console, b: &Bulletin) -> bool {
    c.caller.role.grants(Role::Approver) && all_in_scope(c, b)
}

/// Areas inside the caller's scope, for the selects.
async fn scope_areas(state: &AppState, c: &Console) -> Result<Vec<Value>> {
    Ok(all_areas(state)
        .await?
        .values()
        .filter(|a| c.caller.in_scope(&a.code))
        .map(|a| json!({"code": a.code, "name": a.name, "level": a.level}))
        .collect())
}

fn voices(state: &AppState, lang: Lang) -> Vec<Value> {
    state
        .tts
        .engine()
        .voices()
        .into_iter()
        .map(|v| {
            let key = format!("bul.voice.{v}");
            let label = match i18n::t(&key, lang) {
                l if l == key => v.clone(),
                l => l.to_string(),
            };
            json!({"name": v, "label": label})
        })
        .collect()
}

fn bulletin_json(b: &Bulletin) -> Value {
    let mut v = serde_json::to_value(b).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        let title = b.variants.first().map(|v| v.title.clone()).unwrap_or_default();
        o.insert("title".into(), json!(title));
        let langs: Vec<&str> = b.variants.iter().map(|v| v.language.as_str()).collect();
        o.insert("languages".into(), json!(langs.join(", ")));
    }
    v
}

// ---------------------------------------------------------------- list

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
}

async fn list_page(c: Console, State(state): State<AppState>, Query(q): Query<ListQuery>) -> PageResult {
    let status = q.status.filter(|s| STATUSES.contains(&s.as_str()));
    let rows = match &status {
        Some(s) => {
            sqlx::query(
                "SELECT id FROM bulletins WHERE status = $1 ORDER BY created_at DESC, id DESC LIMIT 500",
            )
            .bind(s.clone())
            .fetch_all(&state.store.pool)
            .await?
        }
        None => {
            sqlx::query("SELECT id FROM bulletins ORDER BY created_at DESC, id DESC LIMIT 500")
                .fetch_all(&state.store.pool)
                .await?
        }
    };
    let sight = Sight::of(&state, &c).await?;
    let mut list = Vec::new();
    for r in rows {
        let id: String = r.try_get("id")?;
        let b = bulletin::load(&state, &id).await?;
        if sight.sees(&b) {
            list.push(bulletin_json(&b));
        }
    }
    c.page(
        "bulletins.html",
        json!({"bulletins": list, "status": status, "statuses": STATUSES,
               "can_create": c.caller.role.grants(Role::Editor)}),
    )
}

/// Pending bulletins the caller sees, for the approval queue (`approvals.html`).
pub(super) async fn pending_for(state: &AppState, c: &Console) -> Result<Vec<Value>> {
    let rows = sqlx::query("SELECT id FROM bulletins WHERE status = 'pending' ORDER BY updated_at, id")
        .fetch_all(&state.store.pool)
        .await?;
    let sight = Sight::of(state, c).await?;
    let mut out = Vec::new();
    for r in rows {
        let id: String = r.try_get("id")?;
        let b = bulletin::load(state, &id).await?;
        if sight.sees(&b) {
            let mut v = bulletin_json(&b);
            v["can_review"] = json!(may_review(c, &b));
            out.push(v);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- the form

/// A file of the form spooled to `data_dir/tmp` (removed on drop).
#[derive(Debug)]
struct Upload {
    path: tempfile::TempPath,
    filename: String,
}

/// One language variant as typed.
#[derive(Debug, Default, Serialize)]
struct VariantForm {
    idx: usize,
    lang: String,
    title: String,
    body: String,
    /// Recorded audio kept from the stored bulletin (sha256).
    audio: Option<String>,
    #[serde(skip)]
    audio_remove: bool,
    #[serde(skip)]
    upload: Option<Upload>,
    /// Text-to-speech preview made without JavaScript (sha256).
    preview: Option<String>,
    /// Field → message.
    errors: BTreeMap<&'static str, String>,
}

/// The editor form as typed.
#[derive(Debug, Default, Serialize)]
struct BulletinForm {
    category: String,
    priority: String,
    valid_from: String,
    valid_until: String,
    areas: Vec<String>,
    variants: Vec<VariantForm>,
    voice: String,
    speed: String,
    #[serde(skip)]
    images: Vec<Upload>,
    #[serde(skip)]
    action: String,
    /// Field → message.
    errors: BTreeMap<&'static str, String>,
}

impl BulletinForm {
    fn blank() -> Self {
        BulletinForm {
            category: "thông báo".into(),
            priority: "normal".into(),
            variants: vec![VariantForm {
                lang: "vi".into(),
                ..Default::default()
            }],
            voice: "vi".into(),
            speed: "150".into(),
            ..Default::default()
        }
    }

    fn of(b: &Bulletin) -> Self {
        let mut variants: Vec<VariantForm> = b
            .variants
            .iter()
            .enumerate()
            .map(|(i, v)| VariantForm {
                idx: i,
                lang: v.language.clone(),
                title: v.title.clone(),
                body: v.body.clone(),
                audio: v.audio_sha256.clone(),
                ..Default::default()
            })
            .collect();
        if variants.first().is_none_or(|v| v.lang != "vi") {
            variants.insert(
                0,
                VariantForm {
                    lang: "vi".into(),
                    ..Default::default()
                },
            );
            for (i, v) in variants.iter_mut().enumerate() {
                v.idx = i;
            }
        }
        BulletinForm {
            category: b.category.clone(),
            priority: b.priority.clone(),
            valid_from: local_input(b.valid_from),
            valid_until: local_input(b.valid_until),
            areas: b.areas.clone(),
            variants,
            voice: "vi".into(),
            speed: "150".into(),
            ..Default::default()
        }
    }

    fn has_errors(&self) -> bool {
        !self.errors.is_empty() || self.variants.iter().any(|v| !v.errors.is_empty())
    }
}

fn bad_multipart(e: axum::extract::multipart::MultipartError) -> Error {
    Error::bad("bad_multipart", e.body_text())
}

async fn read_text(mut field: Field<'_>) -> Result<String> {
    let name = field.name().unwrap_or("").to_string();
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(bad_multipart)? {
        buf.extend_from_slice(&chunk);
        if buf.len() > MAX_TEXT_FIELD {
            return Err(Error::TooLarge(format!(
                "field `{name}` is longer than {MAX_TEXT_FIELD} bytes"
            )));
        }
    }
    let s =
        String::from_utf8(buf).map_err(|_| Error::bad("bad_form", format!("field `{name}` is not UTF-8")))?;
    Ok(s.replace("\r\n", "\n"))
}

/// Spool a file field to `data_dir/tmp`; `None` when no file was chosen.
async fn spool(state: &AppState, mut field: Field<'_>, limit: u64) -> Result<Option<Upload>> {
    let filename: String = field
        .file_name()
        .unwrap_or("")
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let dir = state.settings.data_dir.join("tmp");
    tokio::fs::create_dir_all(&dir).await?;
    let (file, path) = tempfile::Builder::new()
        .prefix("console-upload-")
        .tempfile_in(&dir)?
        .into_parts();
    let mut file = tokio::fs::File::from_std(file);
    let mut size = 0u64;
    while let Some(chunk) = field.chunk().await.map_err(bad_multipart)? {
        size += chunk.len() as u64;
        if size > limit {
            return Err(Error::TooLarge(format!(
                "the file is larger than the limit of {} MB",
                limit / (1024 * 1024)
            )));
        }
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    if size == 0 {
        return Ok(None);
    }
    Ok(Some(Upload {
        path,
        filename: if filename.is_empty() {
            "upload".into()
        } else {
            filename
        },
    }))
}

/// Read the multipart editor form. The CSRF field comes first; a file before it is refused.
async fn read_form(state: &AppState, c: &Console, mut mp: Multipart) -> Result<BulletinForm> {
    let mut f = BulletinForm::default();
    let mut csrf_ok = false;
    let mut variants: BTreeMap<usize, VariantForm> = BTreeMap::new();
    let max_upload = state.settings.max_upload_mb * 1024 * 1024;
    let lang = c.lang;
    while let Some(field) = mp.next_field().await.map_err(bad_multipart)? {
        let name = field.name().unwrap_or("").to_string();
        let is_file = field.file_name().is_some();
        if is_file && !csrf_ok {
            c.check_csrf("")?;
        }
        if let Some(rest) = name.strip_prefix('v')
            && let Some((n, part)) = rest.split_once('_')
            && let Ok(n) = n.parse::<usize>()
        {
            if n > 50 {
                return Err(Error::bad("too_many_variants", "at most 50 language variants"));
            }
            let v = variants.entry(n).or_default();
            match part {
                "audio" if is_file => match spool(state, field, max_upload).await {
                    Ok(u) => v.upload = u,
                    Err(Error::TooLarge(m)) => {
                        v.errors
                            .insert("audio", format!("{}: {m}", tr("bul.err.audio", lang)));
                    }
                    Err(e) => return Err(e),
                },
                "lang" => v.lang = read_text(field).await?.trim().to_lowercase(),
                "title" => v.title = read_text(field).await?,
                "body" => v.body = read_text(field).await?,
                "audio_keep" => {
                    v.audio = Some(read_text(field).await?.trim().to_string()).filter(|s| !s.is_empty())
                }
                "audio_remove" => v.audio_remove = !read_text(field).await?.is_empty(),
                _ => {}
            }
            continue;
        }
        match name.as_str() {
            "image" if is_file => {
                let limit = files::MAX_IMAGE_BYTES.min(max_upload);
                match spool(state, field, limit).await {
                    Ok(Some(u)) => f.images.push(u),
                    Ok(None) => {}
                    Err(Error::TooLarge(m)) => {
                        f.errors
                            .insert("image", format!("{}: {m}", tr("bul.err.image", lang)));
                    }
                    Err(e) => return Err(e),
                }
            }
            "csrf" => {
                c.check_csrf(read_text(field).await?.trim())?;
                csrf_ok = true;
            }
            "category" => f.category = read_text(field).await?.trim().to_string(),
            "priority" => f.priority = read_text(field).await?.trim().to_string(),
            "valid_from" => f.valid_from = read_text(field).await?.trim().to_string(),
            "valid_until" => f.valid_until = read_text(field).await?.trim().to_string(),
            "areas" => {
                let a = read_text(field).await?.trim().to_string();
                if !a.is_empty() && !f.areas.contains(&a) {
                    f.areas.push(a);
                }
            }
            "voice" => f.voice = read_text(field).await?.trim().to_string(),
            "speed" => f.speed = read_text(field).await?.trim().to_string(),
            "action" => f.action = read_text(field).await?.trim().to_string(),
            _ => {}
        }
    }
    if !csrf_ok {
        c.check_csrf("")?;
    }
    // The Vietnamese variant is always first; the others follow in form order.
    let mut vi = variants.remove(&0).unwrap_or_default();
    vi.lang = "vi".into();
    f.variants = std::iter::once(vi).chain(variants.into_values()).collect();
    for (i, v) in f.variants.iter_mut().enumerate() {
        v.idx = i;
    }
    if f.priority.is_empty() {
        f.priority = "normal".into();
    }
    if f.voice.is_empty() {
        f.voice = "vi".into();
    }
    if f.speed.is_empty() {
        f.speed = "150".into();
    }
    Ok(f)
}

/// Check the form; messages go next to their fields. Returns the status to re-render with
/// (403 when an area is outside the scope, else 422), or `None` when the form is valid.
async fn validate(
    state: &AppState,
    c: &Console,
    f: &mut BulletinForm,
    allowed_audio: &HashSet<String>,
) -> Result<Option<StatusCode>> {
    let lang = c.lang;
    let mut forbidden = false;
    if f.category.is_empty() {
        f.category = "thông báo".into();
    }
    if f.category.chars().count() > 100 {
        f.errors.insert("category", tr("bul.err.category", lang));
    }
    if bulletin::parse_priority(Some(&f.priority)).is_err() {
        f.errors.insert("priority", tr("bul.err.priority", lang));
    }
    let from = parse_local(&f.valid_from);
    let until = parse_local(&f.valid_until);
    if from.is_none() {
        f.errors.insert("valid_from", tr("bul.err.datetime", lang));
    }
    if until.is_none() {
        f.errors.insert("valid_until", tr("bul.err.datetime", lang));
    }
    if let (Some(a), Some(b)) = (from, until)
        && bulletin::validate_window(a, b).is_err()
    {
        f.errors.insert("valid_until", tr("bul.err.window", lang));
    }
    for a in &f.areas {
        if !c.caller.in_scope(a) {
            forbidden = true;
            f.errors
                .insert("areas", tr("bul.err.area_scope", lang).replace("{area}", a));
            break;
        }
        if bulletin::validate_areas(&state.store, std::slice::from_ref(a))
            .await
            .is_err()
        {
            f.errors
                .insert("areas", tr("bul.err.area_unknown", lang).replace("{area}", a));
            break;
        }
    }
    let mut seen = HashSet::new();
    for v in &mut f.variants {
        if !bulletin::valid_language(&v.lang) {
            v.errors.insert("lang", tr("bul.err.lang", lang));
        } else if !seen.insert(v.lang.clone()) {
            v.errors
                .insert("lang", tr("bul.err.lang_dup", lang).replace("{lang}", &v.lang));
        }
        let n = v.title.trim().chars().count();
        if n == 0 {
            v.errors.insert("title", tr("bul.err.title_required", lang));
        } else if n > 300 {
            v.errors.insert("title", tr("bul.err.title_long", lang));
        }
        if v.body.chars().count() > 20_000 {
            v.errors.insert("body", tr("bul.err.body_long", lang));
        }
        if v.audio.as_ref().is_some_and(|a| !allowed_audio.contains(a)) {
            v.audio = None; // only a recording the bulletin already had can be kept
        }
    }
    Ok(if !f.has_errors() {
        None
    } else if forbidden {
        Some(StatusCode::FORBIDDEN)
    } else {
        Some(StatusCode::UNPROCESSABLE_ENTITY)
    })
}

/// Render the bulletin page (editor form and/or read-only view, review and publish sections).
async fn render(
    state: &AppState,
    c: &Console,
    b: Option<&Bulletin>,
    form: Option<&BulletinForm>,
    status: StatusCode,
    extra: Value,
) -> PageResult {
    let can_edit = match b {
        Some(b) => may_edit(c, b),
        None => c.caller.role.grants(Role::Editor),
    };
    let blank;
    let form = match (form, b) {
        (Some(f), _) => f,
        (None, Some(b)) => {
            blank = BulletinForm::of(b);
            &blank
        }
        (None, None) => {
            blank = BulletinForm::blank();
            &blank
        }
    };
    let areas = scope_areas(state, c).await?;
    let mut ctx = json!({
        "b": b.map(bulletin_json),
        "form": form,
        "areas": areas,
        "voices": voices(state, c.lang),
        "languages": KNOWN_LANGUAGES,
        "can_edit": can_edit,
        "can_approve": b.is_some_and(|b| may_review(c, b)),
        "can_publish": c.caller.role.grants(Role::Operator),
        "publish_areas": b.map(|b| b.areas.iter().filter(|a| c.caller.in_scope(a)).cloned().collect::<Vec<_>>()),
    });
    if let (Some(o), Value::Object(e)) = (ctx.as_object_mut(), extra) {
        o.extend(e);
    }
    let mut resp = c.page("bulletin_edit.html", ctx)?;
    *resp.status_mut() = status;
    Ok(resp)
}

async fn new_page(c: Console, State(state): State<AppState>) -> PageResult {
    c.caller.require(Role::Editor).map_err(|e| PageError(e, c.lang))?;
    render(&state, &c, None, None, StatusCode::OK, json!({})).await
}

#[derive(Deserialize)]
struct PageQuery {
    saved: Option<String>,
}

async fn bulletin_page(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> PageResult {
    let b = visible(&state, &c, &id).await.map_err(|e| PageError(e, c.lang))?;
    let flash = match q.saved.as_deref() {
        Some("submitted") => Some(tr("bul.flash.submitted", c.lang)),
        Some(_) => Some(tr("bul.flash.saved", c.lang)),
        None => None,
    };
    render(
        &state,
        &c,
        Some(&b),
        None,
        StatusCode::OK,
        json!({"flash": flash}),
    )
    .await
}

async fn create_post(c: Console, State(state): State<AppState>, mp: Multipart) -> PageResult {
    let lang = c.lang;
    c.caller.require(Role::Editor).map_err(|e| PageError(e, lang))?;
    let f = read_form(&state, &c, mp).await.map_err(|e| PageError(e, lang))?;
    save(&state, &c, None, f).await
}

async fn update_post(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    mp: Multipart,
) -> PageResult {
    let lang = c.lang;
    let b = visible(&state, &c, &id).await.map_err(|e| PageError(e, lang))?;
    if !may_edit(&c, &b) {
        return Err(PageError(
            Error::Forbidden(format!(
                "editing bulletin {id} needs the `editor` role and every target area inside your scope"
            )),
            lang,
        ));
    }
    let f = read_form(&state, &c, mp).await.map_err(|e| PageError(e, lang))?;
    save(&state, &c, Some(b), f).await
}

/// The form's actions: re-render (add / remove a language, preview speech without JavaScript)
/// or validate and store (save, submit for approval).
async fn save(state: &AppState, c: &Console, cur: Option<Bulletin>, mut f: BulletinForm) -> PageResult {
    let lang = c.lang;
    let rerender = |f: BulletinForm, status: StatusCode| {
        let cur = cur.clone();
        async move { render(state, c, cur.as_ref(), Some(&f), status, json!({})).await }
    };
    let action = f.action.clone();
    if action == "add" {
        f.variants.push(VariantForm {
            idx: f.variants.len(),
            ..Default::default()
        });
        return rerender(f, StatusCode::OK).await;
    }
    if let Some(n) = action
        .strip_prefix("remove:")
        .and_then(|n| n.parse::<usize>().ok())
    {
        if n > 0 && n < f.variants.len() {
            f.variants.remove(n);
            for (i, v) in f.variants.iter_mut().enumerate() {
                v.idx = i;
            }
        }
        return rerender(f, StatusCode::OK).await;
    }
    if let Some(n) = action
        .strip_prefix("preview:")
        .and_then(|n| n.parse::<usize>().ok())
    {
        if let Some(v) = f.variants.get_mut(n) {
            let text = bulletin::speech_text(&v.title, &v.body);
            let speed = f.speed.parse::<u32>().ok();
            match synthesize(state, c, &text, Some(&f.voice), speed, &v.title).await {
                Ok(m) => v.preview = Some(m.sha256),
                Err(e) => {
                    v.errors.insert("preview", preview_error(&e, lang));
                }
            }
        }
        return rerender(f, StatusCode::OK).await;
    }

    let allowed_audio: HashSet<String> = cur
        .iter()
        .flat_map(|b| b.variants.iter().filter_map(|v| v.audio_sha256.clone()))
        .collect();
    if let Some(status) = validate(state, c, &mut f, &allowed_audio)
        .await
        .map_err(|e| PageError(e, lang))?
    {
        return rerender(f, status).await;
    }
    // Images: only pictures in this field (the type is read from the content).
    for up in &f.images {
        let mut head = vec![0u8; 64];
        let n = {
            use tokio::io::AsyncReadExt;
            let mut file = tokio::fs::File::open(&up.path).await.map_err(Error::from)?;
            file.read(&mut head).await.map_err(Error::from)?
        };
        if files::sniff(&head[..n]).is_none_or(|s| s.kind != "image") {
            f.errors.insert(
                "image",
                tr("bul.err.image_type", lang).replace("{file}", &up.filename),
            );
        }
    }
    if f.has_errors() {
        return rerender(f, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    }
    // Recorded audio: stored as media items through the library's ingest path.
    for v in &mut f.variants {
        if v.audio_remove {
            v.audio = None;
        }
        if let Some(up) = v.upload.take() {
            let title = format!("Ghi âm bản tin ({}): {}", v.lang, v.title.trim());
            match media::ingest_file(state, &up.path, &up.filename, Some(&title)).await {
                Ok((m, _)) => v.audio = Some(m.sha256),
                Err(e) if !is_server_error(&e) => {
                    v.errors
                        .insert("audio", format!("{}: {e}", tr("bul.err.audio", lang)));
                }
                Err(e) => return Err(PageError(e, lang)),
            }
        }
    }
    if f.has_errors() {
        return rerender(f, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    // Images: validated and stored like an API upload (content-addressed, no row yet).
    let max_upload = state.settings.max_upload_mb * 1024 * 1024;
    let mut stored = Vec::new();
    for up in std::mem::take(&mut f.images) {
        let file = tokio::fs::File::open(&up.path).await.map_err(Error::from)?;
        match files::receive_from(&state.settings.data_dir, max_upload, files::Source::File(file)).await {
            Ok(s) => stored.push((s, up.filename.clone())),
            Err(e) if !is_server_error(&e) => {
                f.errors
                    .insert("image", format!("{}: {e}", tr("bul.err.image", lang)));
            }
            Err(e) => return Err(PageError(e, lang)),
        }
    }
    if f.has_errors() {
        return rerender(f, StatusCode::UNPROCESSABLE_ENTITY).await;
    }

    let variants: Vec<VariantIn> = f
        .variants
        .iter()
        .map(|v| VariantIn {
            language: v.lang.clone(),
            title: v.title.trim().to_string(),
            body: v.body.clone(),
            audio_sha256: v.audio.clone(),
        })
        .collect();
    let valid_from = parse_local(&f.valid_from).flatten();
    let valid_until = parse_local(&f.valid_until).flatten();
    let result = match &cur {
        None => {
            bulletin::create(
                state,
                NewBulletin {
                    title: None,
                    body: None,
                    variants,
                    category: Some(f.category.clone()),
                    priority: Some(f.priority.clone()),
                    valid_from,
                    valid_until,
                    areas: f.areas.clone(),
                    dwell_s: None,
                },
                false,
            )
            .await
        }
        Some(b) => {
            bulletin::update(
                state,
                &b.id,
                BulletinPatch {
                    variants: Some(variants),
                    category: Some(f.category.clone()),
                    priority: Some(f.priority.clone()),
                    valid_from: Some(valid_from),
                    valid_until: Some(valid_until),
                    areas: Some(f.areas.clone()),
                    dwell_s: None,
                },
                false,
            )
            .await
        }
    };
    let saved = match result {
        Ok(b) => b,
        Err(e) if !is_server_error(&e) => {
            f.errors.insert("form", e.to_string());
            return rerender(f, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
        Err(e) => return Err(PageError(e, lang)),
    };
    for (s, name) in &stored {
        let now = bulletin::load(state, &saved.id).await?;
        bulletin::attach_file(state, &now, s, name.clone())
            .await
            .map_err(|e| PageError(e, lang))?;
    }
    let after = bulletin::load(state, &saved.id).await?;
    crate::store::audit::record_outside(
        &state.store,
        &c.caller.username,
        if cur.is_some() {
            "bulletin.update"
        } else {
            "bulletin.create"
        },
        &format!("bulletin:{}", saved.id),
        cur.as_ref().and_then(|b| serde_json::to_value(b).ok()),
        serde_json::to_value(&after).ok(),
    )
    .await;
    if action == "submit" {
        submit(state, c, &saved.id)
            .await
            .map_err(|e| PageError(e, lang))?;
        return Ok(see_other(&format!(
            "/console/bulletins/{}?saved=submitted",
            saved.id
        )));
    }
    Ok(see_other(&format!("/console/bulletins/{}?saved=1", saved.id)))
}

fn is_server_error(e: &Error) -> bool {
    matches!(
        e,
        Error::Db(_) | Error::Io(_) | Error::Internal { .. } | Error::Migrate(_) | Error::Config(_)
    )
}

// ---------------------------------------------------------------- review

/// Submit for approval (with the recorded audio of its variants).
async fn submit(state: &AppState, c: &Console, id: &str) -> Result<()> {
    c.caller.require(Role::Editor)?;
    let before = bulletin::load(state, id).await?;
    let after = bulletin::transition(state, id, &["draft", "rejected"], "pending", None).await?;
    for sha in before.variants.iter().filter_map(|v| v.audio_sha256.as_ref()) {
        if let Some(m) = media::get(&state.store, sha).await?
            && (m.status == "draft" || m.status == "rejected")
        {
            media::review(state, &c.caller, sha, "submit", None).await?;
        }
    }
    crate::store::audit::record_outside(
        &state.store,
        &c.caller.username,
        "bulletin.submit",
        &format!("bulletin:{id}"),
        serde_json::to_value(&before).ok(),
        serde_json::to_value(&after).ok(),
    )
    .await;
    Ok(())
}

async fn review(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(form): PageForm<Fields>,
) -> PageResult {
    let lang = c.lang;
    let pairs = form.into_pairs();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let step = async {
        let b = visible(&state, &c, &id).await?;
        match get("step").as_str() {
            "submit" => {
                if !may_edit(&c, &b) {
                    return Err(Error::Forbidden(format!(
                        "submitting bulletin {id} needs the `editor` role and every target area inside your scope"
                    )));
                }
                submit(&state, &c, &id).await?;
                Ok(format!("/console/bulletins/{id}?saved=submitted"))
            }
            s @ ("approve" | "reject") => {
                c.caller.require(Role::Approver)?;
                if !may_review(&c, &b) {
                    return Err(Error::Forbidden(format!(
                        "bulletin {id} targets areas outside your scope"
                    )));
                }
                let note: String = get("note").chars().take(2000).collect();
                if s == "reject" && note.is_empty() {
                    return Err(Error::bad("note_required", tr("bul.err.reason", lang)));
                }
                let (to, note) = if s == "approve" {
                    ("approved", None)
                } else {
                    ("rejected", Some(note))
                };
                let after = bulletin::transition(&state, &id, &["pending"], to, note.clone()).await?;
                // The recorded audio is reviewed with its bulletin.
                for sha in b.variants.iter().filter_map(|v| v.audio_sha256.as_ref()) {
                    let pending = media::get(&state.store, sha).await?.is_some_and(|m| {
                        m.status == "pending" || (m.status == "draft" && c.caller.role == Role::Admin)
                    });
                    if pending {
                        let n = note.clone().or_else(|| Some(format!("bulletin {id}")));
                        media::review(&state, &c.caller, sha, s, n).await?;
                    }
                }
                crate::store::audit::record_outside(
                    &state.store,
                    &c.caller.username,
                    &format!("bulletin.{s}"),
                    &format!("bulletin:{id}"),
                    serde_json::to_value(&b).ok(),
                    serde_json::to_value(&after).ok(),
                )
                .await;
                Ok("/console/approvals".to_string())
            }
            other => Err(Error::bad(
                "invalid_step",
                format!("unknown review step `{other}`"),
            )),
        }
    };
    let to = step.await.map_err(|e| PageError(e, lang))?;
    Ok(see_other(&to))
}

// ---------------------------------------------------------------- publish

async fn publish(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(form): PageForm<Fields>,
) -> PageResult {
    let lang = c.lang;
    let pairs = form.into_pairs();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let step = async {
        c.caller.require(Role::Operator)?;
        let b = visible(&state, &c, &id).await?;
        let mut areas: Vec<String> = Vec::new();
        for (k, v) in &pairs {
            if k == "areas" && !v.trim().is_empty() && !areas.contains(v) {
                areas.push(v.trim().to_string());
            }
        }
        if areas.is_empty() {
            return Err(Error::bad("areas_required", tr("bul.err.publish_areas", lang)));
        }
        for a in &areas {
            c.caller.check_area(a)?;
        }
        let speed = match get("speed") {
            Some(s) => Some(
                s.parse::<u32>()
                    .map_err(|_| Error::bad("invalid_speed", format!("speed `{s}` is not a number")))?,
            ),
            None => None,
        };
        let req = bulletin::PublishRequest {
            areas: Some(areas),
            voice: get("voice"),
            speed,
            speakers: Some(get("speakers").is_some()),
            ..Default::default()
        };
        let published = bulletin::publish_bulletin(&state, &id, req).await?;
        let summary = json!({"board_areas": published.board_areas, "speech": published.speech,
                             "schedules": published.schedules, "skipped": published.skipped});
        crate::store::audit::record_outside(
            &state.store,
            &c.caller.username,
            "bulletin.publish",
            &format!("bulletin:{id}"),
            serde_json::to_value(&b).ok(),
            Some(summary.clone()),
        )
        .await;
        Ok::<_, Error>((published.bulletin, summary))
    };
    let (b, summary) = step.await.map_err(|e| PageError(e, lang))?;
    render(
        &state,
        &c,
        Some(&b),
        None,
        StatusCode::OK,
        json!({"published": summary, "flash": tr("bul.flash.published", lang)}),
    )
    .await
}

// ---------------------------------------------------------------- text-to-speech preview

async fn synthesize(
    state: &AppState,
    c: &Console,
    text: &str,
    voice: Option<&str>,
    speed: Option<u32>,
    title: &str,
) -> Result<crate::speech::SpeechMedia> {
    c.caller
        .require_any(&[Role::Editor, Role::Approver, Role::Operator])?;
    let engine = state.tts.engine();
    let voice = crate::speech::Voice::from_request(engine.as_ref(), voice, speed, None)?;
    let label: String = title.trim().chars().take(80).collect();
    let (_, m) =
        crate::speech::synthesize_to_media(state, text, &voice, &format!("TTS: {label}"), false).await?;
    crate::store::audit::record_outside(
        &state.store,
        &c.caller.username,
        "tts.preview",
        &format!("media:{}", m.sha256),
        None,
        Some(json!({"voice": voice.name, "speed": voice.speed, "sha256": m.sha256, "duration_ms": m.duration_ms})),
    )
    .await;
    Ok(m)
}

fn preview_error(e: &Error, lang: Lang) -> String {
    match e {
        Error::BadRequest {
            code: "empty_text", ..
        } => tr("bul.err.tts_empty", lang),
        e if is_server_error(e) => tr("bul.err.tts_failed", lang),
        e => e.to_string(),
    }
}

/// `POST /console/tts/preview`: synthesise `title`+`body` (or `text`, or a stored bulletin's
/// `language` variant) with `voice` and `speed`. With `Accept: application/json` (the page's
/// script) the answer is `{sha256, url, duration_ms, normalized}`; a plain form is redirected to
/// the audio at `/media/{sha256}`. The CSRF token comes in `X-CSRF-Token` or the `csrf` field.
async fn tts_preview(
    c: Console,
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let lang = c.lang;
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.replace("\r\n", "\n"))
            .filter(|v| !v.trim().is_empty())
    };
    let step = async {
        let sent = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| get("csrf"))
            .unwrap_or_default();
        c.check_csrf(sent.trim())?;
        let (text, title) = if let Some(id) = get("bulletin") {
            let b = visible(&state, &c, id.trim()).await?;
            let want = get("language").unwrap_or_else(|| "vi".into());
            let v = b
                .variants
                .iter()
                .find(|v| v.language == want.trim())
                .ok_or_else(|| Error::NotFound(format!("language `{want}` of bulletin {id}")))?;
            (bulletin::speech_text(&v.title, &v.body), v.title.clone())
        } else if get("title").is_some() || get("body").is_some() {
            let (t, b) = (get("title").unwrap_or_default(), get("body").unwrap_or_default());
            (bulletin::speech_text(&t, &b), t)
        } else {
            let t = get("text").unwrap_or_default();
            (t.clone(), t)
        };
        let speed = match get("speed") {
            Some(s) => Some(
                s.trim()
                    .parse::<u32>()
                    .map_err(|_| Error::bad("invalid_speed", format!("speed `{s}` is not a number")))?,
            ),
            None => None,
        };
        let voice = get("voice");
        let m = synthesize(&state, &c, &text, voice.as_deref().map(str::trim), speed, &title).await?;
        Ok::<_, Error>((text, m))
    };
    match step.await {
        Ok((_, m)) if wants_json => Json(json!({
            "sha256": m.sha256, "url": format!("/media/{}", m.sha256), "duration_ms": m.duration_ms,
        }))
        .into_response(),
        Ok((_, m)) => see_other(&format!("/media/{}", m.sha256)),
        Err(e) if wants_json => {
            let message = preview_error(&e, lang);
            let status = e.into_response().status(); // also logs a 500
            (
                status,
                Json(json!({"error": {"code": "tts_preview", "message": message}})),
            )
                .into_response()
        }
        Err(e) => PageError(e, lang).into_response(),
    }
}
