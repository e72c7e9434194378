//! The bulletin page: the editor form and/or the read-only view with its review and publish
//! sections (`GET /console/bulletins/new`, `GET /console/bulletins/{id}`), and saving the form
//! (`POST`): its re-render actions (add / remove a language, preview speech without
//! JavaScript), validation, recorded audio and images, then one create or update.

use std::collections::HashSet;

use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::form::{BulletinForm, VariantForm, read_form, validate};
use super::preview::{preview_error, synthesize};
use super::review::submit;
use super::{
    KNOWN_LANGUAGES, is_server_error, may_edit, may_review, parse_local, scope_areas, tr, visible, voices,
};
use crate::console::{Console, PageError, PageResult, see_other};
use crate::domain::bulletin::files::sniff;
use crate::domain::bulletin::{Bulletin, BulletinPatch, NewBulletin, VariantIn, speech_text};
use crate::domain::scope::Role;
use crate::error::Error;
use crate::services::AppState;
use crate::services::bulletins::{self, AudioRule, files};

/// Render the bulletin page (editor form and/or read-only view, review and publish sections).
pub(super) async fn render(
    state: &AppState,
    c: &Console,
    b: Option<&Bulletin>,
    form: Option<&BulletinForm>,
    status: StatusCode,
    extra: Value,
) -> PageResult {
    let can_edit = match b {
        Some(b) => may_edit(c, b),
        None => c.caller.grants(Role::Editor),
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
        "b": b.map(super::bulletin_json),
        "form": form,
        "areas": areas,
        "voices": voices(state, c.lang),
        "languages": KNOWN_LANGUAGES,
        "can_edit": can_edit,
        "can_approve": b.is_some_and(|b| may_review(c, b)),
        "can_publish": c.caller.grants(Role::Operator),
        "publish_areas": b.map(|b| b.areas.iter().filter(|a| c.caller.in_scope(a)).cloned().collect::<Vec<_>>()),
    });
    if let (Some(o), Value::Object(e)) = (ctx.as_object_mut(), extra) {
        o.extend(e);
    }
    let mut resp = c.page("bulletin_edit.html", ctx)?;
    *resp.status_mut() = status;
    Ok(resp)
}

pub(super) async fn new_page(c: Console, State(state): State<AppState>) -> PageResult {
    c.caller.require(Role::Editor).map_err(|e| PageError(e, c.lang))?;
    render(&state, &c, None, None, StatusCode::OK, json!({})).await
}

#[derive(Deserialize)]
pub(super) struct PageQuery {
    saved: Option<String>,
}

pub(super) async fn bulletin_page(
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
    // Right after a publication (`?ok=…`), what it did, as its audit entry recorded it.
    let published = if c.flash.is_some() && b.published_at.is_some() {
        crate::store::audit::latest(&state.store, &format!("bulletin:{id}"), "bulletin.publish")
            .await?
            .and_then(|e| e.after)
            .and_then(|a| serde_json::from_str::<Value>(&a).ok())
    } else {
        None
    };
    render(
        &state,
        &c,
        Some(&b),
        None,
        StatusCode::OK,
        json!({"flash": flash, "published": published}),
    )
    .await
}

pub(super) async fn create_post(c: Console, State(state): State<AppState>, mp: Multipart) -> PageResult {
    let lang = c.lang;
    c.caller.require(Role::Editor).map_err(|e| PageError(e, lang))?;
    let f = read_form(&state, &c, mp).await.map_err(|e| PageError(e, lang))?;
    save(&state, &c, None, f).await
}

pub(super) async fn update_post(
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
            let text = speech_text(&v.title, &v.body);
            let speed = f.speed.parse::<u32>().ok();
            match synthesize(state, c, &text, Some(&f.voice), speed, None, &v.title).await {
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
        if sniff(&head[..n]).is_none_or(|s| s.kind != "image") {
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
            match crate::services::media::ingest_file(state, &up.path, &up.filename, Some(&title)).await {
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
        match files::receive(&state.settings.data_dir, max_upload, files::Source::File(file)).await {
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
            bulletins::create(
                state,
                &c.caller.username,
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
                AudioRule::InReview,
                stored,
            )
            .await
        }
        Some(b) => {
            bulletins::update(
                state,
                &c.caller.username,
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
                AudioRule::InReview,
                stored,
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
