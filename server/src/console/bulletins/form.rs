//! The bulletin editor form as typed: reading the multipart form (text fields, images and
//! recorded audio spooled to `data_dir/tmp`; the CSRF field comes first) and checking it, with
//! each message next to its field.

use std::collections::{BTreeMap, HashSet};

use axum::extract::Multipart;
use axum::extract::multipart::Field;
use axum::http::StatusCode;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use super::{local_input, parse_local, tr};
use crate::console::Console;
use crate::domain::bulletin::files::MAX_IMAGE_BYTES;
use crate::domain::bulletin::{self, Bulletin};
use crate::error::{Error, Result};
use crate::services::AppState;

/// Longest text field of the form, bytes.
const MAX_TEXT_FIELD: usize = 200_000;

/// A file of the form spooled to `data_dir/tmp` (removed on drop).
#[derive(Debug)]
pub(super) struct Upload {
    pub(super) path: tempfile::TempPath,
    pub(super) filename: String,
}

/// One language variant as typed.
#[derive(Debug, Default, Serialize)]
pub(super) struct VariantForm {
    pub(super) idx: usize,
    pub(super) lang: String,
    pub(super) title: String,
    pub(super) body: String,
    /// Recorded audio kept from the stored bulletin (sha256).
    pub(super) audio: Option<String>,
    #[serde(skip)]
    pub(super) audio_remove: bool,
    #[serde(skip)]
    pub(super) upload: Option<Upload>,
    /// Text-to-speech preview made without JavaScript (sha256).
    pub(super) preview: Option<String>,
    /// Field → message.
    pub(super) errors: BTreeMap<&'static str, String>,
}

/// The editor form as typed.
#[derive(Debug, Default, Serialize)]
pub(super) struct BulletinForm {
    pub(super) category: String,
    pub(super) priority: String,
    pub(super) valid_from: String,
    pub(super) valid_until: String,
    pub(super) areas: Vec<String>,
    pub(super) variants: Vec<VariantForm>,
    pub(super) voice: String,
    pub(super) speed: String,
    #[serde(skip)]
    pub(super) images: Vec<Upload>,
    #[serde(skip)]
    pub(super) action: String,
    /// Field → message.
    pub(super) errors: BTreeMap<&'static str, String>,
}

impl BulletinForm {
    pub(super) fn blank() -> Self {
        BulletinForm {
            category: bulletin::DEFAULT_CATEGORY.into(),
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

    pub(super) fn of(b: &Bulletin) -> Self {
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

    pub(super) fn has_errors(&self) -> bool {
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
pub(super) async fn read_form(state: &AppState, c: &Console, mut mp: Multipart) -> Result<BulletinForm> {
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
                _ => crate::http::multipart::skip_field(state.settings.max_upload_mb, field).await?,
            }
            continue;
        }
        match name.as_str() {
            "image" if is_file => {
                let limit = MAX_IMAGE_BYTES.min(max_upload);
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
            _ => crate::http::multipart::skip_field(state.settings.max_upload_mb, field).await?,
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
pub(super) async fn validate(
    state: &AppState,
    c: &Console,
    f: &mut BulletinForm,
    allowed_audio: &HashSet<String>,
) -> Result<Option<StatusCode>> {
    let lang = c.lang;
    let mut forbidden = false;
    if f.category.is_empty() {
        f.category = bulletin::DEFAULT_CATEGORY.into();
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
        if crate::services::bulletins::check_areas(&state.store, std::slice::from_ref(a))
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
