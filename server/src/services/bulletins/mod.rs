//! The bulletin use cases of the API and the console: create, edit, review (submit, approve,
//! reject), attach files, publish and unpublish ([`publish`]), set an area's languages, and the
//! reads behind them. Each write validates (the rules of [`crate::domain::bulletin`], then the
//! database checks: areas, recorded audio), runs ONE transaction with the change and its audit
//! entry, commits, then bumps the bulletin generation (`AppState::bulletins`) when boards may
//! show something else. Publishing creates loudspeaker schedules, each with its outbox row.
//!
//! Review is one conditional UPDATE (`... WHERE id = $1 AND status IN (sources)`): of two
//! concurrent approvals one wins, the other is a 409 naming the status it found.

pub mod files;
pub mod publish;
pub mod sight;

pub use publish::{publish, unpublish};
pub use sight::{Sight, file_access};

use serde_json::Value;

use crate::domain::bulletin::{
    AreaLanguages, Bulletin, BulletinPatch, DEFAULT_CATEGORY, DisplayRow, FileRef, NewBulletin, VariantIn,
    check_languages, check_variants, parse_priority, validate_dwell, validate_window, variants_of,
};
use crate::domain::review::{ReviewAction, ReviewStatus};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::store::bulletins::{self as db, Fields, NewFile};
use crate::store::review::Reviewed;
use crate::store::{Conn, Store, audit, now_ms};

/// Whether recorded audio of a variant must already be approved: yes on the API; the console
/// accepts a recording still in review, because it is submitted and approved together with its
/// bulletin (publishing refuses unapproved audio either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioRule {
    /// Recorded audio must be approved.
    Approved,
    /// Recorded audio may be in review (draft, pending).
    InReview,
}

/// One bulletin (404 when there is none).
pub async fn get(store: &Store, id: &str) -> Result<Bulletin> {
    db::get(store, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("bulletin {id}")))
}

async fn load_in(conn: &mut Conn, id: &str) -> Result<Bulletin> {
    db::load(conn, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("bulletin {id}")))
}

/// Read the bulletin back inside the change's transaction and audit `action` with its record
/// `before` and after; returns the record after.
async fn audited(conn: &mut Conn, actor: &str, action: &str, before: &Bulletin) -> Result<Bulletin> {
    let after = load_in(conn, &before.id).await?;
    audit::record(
        conn,
        actor,
        action,
        &subject(&before.id),
        json(before),
        json(&after),
    )
    .await?;
    Ok(after)
}

/// The latest 500 bulletins (of one status), newest first.
pub async fn list(store: &Store, status: Option<ReviewStatus>) -> Result<Vec<Bulletin>> {
    let mut out = Vec::new();
    for id in db::latest_ids(store, status).await? {
        out.push(get(store, &id).await?);
    }
    Ok(out)
}

/// The pending bulletins, longest waiting first (the approval queue).
pub async fn pending(store: &Store) -> Result<Vec<Bulletin>> {
    let mut out = Vec::new();
    for id in db::pending_ids(store).await? {
        out.push(get(store, &id).await?);
    }
    Ok(out)
}

/// Where and when a bulletin was shown.
pub async fn displays(store: &Store, id: &str) -> Result<Vec<DisplayRow>> {
    db::displays(store, id).await
}

fn json<T: serde::Serialize>(v: &T) -> Option<Value> {
    serde_json::to_value(v).ok()
}

fn subject(id: &str) -> String {
    format!("bulletin:{id}")
}

/// Validate variants: the rules without the database, then their recorded audio.
pub async fn check_variants_audio(store: &Store, vs: &[VariantIn], rule: AudioRule) -> Result<()> {
    check_variants(vs)?;
    for sha in vs.iter().filter_map(|v| v.audio_sha256.as_ref()) {
        match crate::store::media::get(store, sha).await? {
            Some(m) if rule == AudioRule::InReview || m.status == ReviewStatus::Approved => {}
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
    Ok(())
}

/// Every area is a valid code of a stored area (422 `unknown_area` naming the first that is not).
pub async fn check_areas(store: &Store, areas: &[String]) -> Result<()> {
    if areas.is_empty() {
        return Ok(());
    }
    let tree = crate::store::areas::tree(store).await?;
    for a in areas {
        crate::domain::area::parse_code(a)?;
        if !tree.contains(a) {
            return Err(Error::unprocessable(
                "unknown_area",
                format!("area `{a}` does not exist"),
            ));
        }
    }
    Ok(())
}

/// Files received (stored by [`files::receive`]) to attach in the same transaction as a create or
/// an edit, with the names they were uploaded under.
pub type Attach = Vec<(files::Stored, String)>;

/// Attach `stored` in the transaction (at most one video per bulletin).
async fn attach_in(
    conn: &mut Conn,
    id: &str,
    stored: &files::Stored,
    filename: String,
    now: i64,
) -> Result<()> {
    let current = db::files(conn, id).await?;
    if stored.sniffed.kind == "video"
        && current
            .iter()
            .any(|f| f.kind == "video" && f.sha256 != stored.sha256)
    {
        return Err(Error::Conflict("a bulletin has at most one video".into()));
    }
    let file = NewFile {
        sha256: stored.sha256.clone(),
        mime: stored.sniffed.mime.to_string(),
        kind: stored.sniffed.kind.to_string(),
        size: stored.size as i64,
        width: stored.dims.map(|d| d.0 as i64),
        height: stored.dims.map(|d| d.1 as i64),
        filename,
    };
    db::attach_file(conn, id, &file, current.len() as i64, now).await
}

/// Create a draft bulletin (with `attach`ed files), audited as `bulletin.create` by `actor`.
pub async fn create(
    state: &AppState,
    actor: &str,
    mut req: NewBulletin,
    audio: AudioRule,
    attach: Attach,
) -> Result<Bulletin> {
    let variants = variants_of(&mut req)?;
    check_variants_audio(&state.store, &variants, audio).await?;
    let priority = parse_priority(req.priority.as_deref())?;
    check_areas(&state.store, &req.areas).await?;
    validate_window(req.valid_from, req.valid_until)?;
    validate_dwell(req.dwell_s)?;
    let fields = Fields {
        category: req
            .category
            .unwrap_or_else(|| DEFAULT_CATEGORY.into())
            .trim()
            .to_string(),
        priority,
        valid_from: req.valid_from,
        valid_until: req.valid_until,
        areas: req.areas,
        dwell_s: req.dwell_s,
    };
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    let mut tx = state.store.begin_write().await?;
    db::insert(&mut tx, &id, &fields, now).await?;
    db::write_variants(&mut tx, &id, &variants).await?;
    let files = !attach.is_empty();
    for (stored, name) in attach {
        attach_in(&mut tx, &id, &stored, name, now).await?;
    }
    let after = load_in(&mut tx, &id).await?;
    audit::record(
        &mut tx,
        actor,
        "bulletin.create",
        &subject(&id),
        None,
        json(&after),
    )
    .await?;
    tx.commit().await?;
    if files {
        state.bulletins.bump();
    }
    Ok(after)
}

/// Edit a bulletin (and attach files): back to `draft` and off the boards, audited as
/// `bulletin.update` by `actor`.
pub async fn update(
    state: &AppState,
    actor: &str,
    id: &str,
    p: BulletinPatch,
    audio: AudioRule,
    attach: Attach,
) -> Result<Bulletin> {
    let cur = get(&state.store, id).await?;
    if let Some(vs) = &p.variants {
        check_variants_audio(&state.store, vs, audio).await?;
    }
    let priority = match &p.priority {
        Some(pr) => parse_priority(Some(pr))?,
        None => cur.priority.clone(),
    };
    if let Some(a) = &p.areas {
        check_areas(&state.store, a).await?;
    }
    let valid_from = p.valid_from.unwrap_or(cur.valid_from);
    let valid_until = p.valid_until.unwrap_or(cur.valid_until);
    validate_window(valid_from, valid_until)?;
    validate_dwell(p.dwell_s)?;
    let fields = Fields {
        category: p
            .category
            .map(|c| c.trim().to_string())
            .unwrap_or_else(|| cur.category.clone()),
        priority,
        valid_from,
        valid_until,
        areas: p.areas.unwrap_or_else(|| cur.areas.clone()),
        dwell_s: p.dwell_s.or(cur.dwell_s),
    };
    let now = now_ms();
    let mut tx = state.store.begin_write().await?;
    let before = load_in(&mut tx, id).await?;
    db::update_to_draft(&mut tx, id, &fields, now).await?;
    if let Some(vs) = &p.variants {
        db::write_variants(&mut tx, id, vs).await?;
    }
    db::clear_targets(&mut tx, id).await?;
    for (stored, name) in attach {
        attach_in(&mut tx, id, &stored, name, now).await?;
    }
    let after = audited(&mut tx, actor, "bulletin.update", &before).await?;
    tx.commit().await?;
    state.bulletins.bump();
    Ok(after)
}

/// Apply a review step (`Submit`, `Approve`, `Reject`; `note` is the reason of a rejection) in
/// one conditional UPDATE, audited as `bulletin.<step>` by `actor`. A bulletin not in a status
/// the step starts from — also when a concurrent review changed it first — is a 409 naming its
/// current status.
pub async fn review(
    state: &AppState,
    caller: &crate::domain::scope::Caller,
    id: &str,
    action: ReviewAction,
    note: Option<String>,
) -> Result<Bulletin> {
    let actor = caller.username.as_str();
    let to = action.target();
    let mut tx = state.store.begin_write().await?;
    let before = load_in(&mut tx, id).await?;
    let authors = audit::actors(&mut tx, &subject(id), crate::domain::review::BULLETIN_AUTHORING).await?;
    if to == ReviewStatus::Approved {
        crate::domain::review::four_eyes(
            state.settings.four_eyes,
            caller.via != crate::domain::scope::Via::AdminToken,
            actor,
            &authors,
            &format!("bulletin {id}"),
        )?;
    }
    if !crate::store::review::set_status(
        &mut tx,
        Reviewed::Bulletin,
        id,
        action.sources(),
        to,
        note.as_deref(),
        now_ms(),
    )
    .await?
    {
        let current = db::status(&mut tx, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("bulletin {id}")))?;
        return Err(action.refused(&format!("bulletin {id}"), current));
    }
    let after = load_in(&mut tx, id).await?;
    let mut after_json = json(&after);
    if action != ReviewAction::Submit
        && let Some(o) = after_json.as_mut().and_then(|v| v.as_object_mut())
    {
        o.insert("authors".into(), serde_json::json!(authors));
        o.insert("reviewed_by".into(), serde_json::json!(actor));
    }
    audit::record(
        &mut tx,
        actor,
        &format!("bulletin.{}", action.step()),
        &subject(id),
        json(&before),
        after_json,
    )
    .await?;
    tx.commit().await?;
    if before.status == ReviewStatus::Approved || to == ReviewStatus::Approved {
        state.bulletins.bump();
    }
    Ok(after)
}

/// Attach a received file to a bulletin (at most one video), audited as `bulletin.attach`.
pub async fn attach(
    state: &AppState,
    actor: &str,
    id: &str,
    stored: &files::Stored,
    filename: String,
) -> Result<Option<FileRef>> {
    let mut tx = state.store.begin_write().await?;
    let before = load_in(&mut tx, id).await?;
    attach_in(&mut tx, id, stored, filename, now_ms()).await?;
    let after = audited(&mut tx, actor, "bulletin.attach", &before).await?;
    tx.commit().await?;
    state.bulletins.bump();
    Ok(after.files.into_iter().find(|f| f.sha256 == stored.sha256))
}

/// The languages in effect for `area`: its own list, else the nearest ancestor's, else `vi`.
pub async fn languages_of(store: &Store, area: &str) -> Result<AreaLanguages> {
    for a in crate::store::areas::tree(store).await?.ancestors(area) {
        let languages = db::area_languages(store, &a).await?;
        if !languages.is_empty() {
            return Ok(AreaLanguages {
                languages,
                inherited_from: Some(a),
            });
        }
    }
    Ok(AreaLanguages {
        languages: vec!["vi".into()],
        inherited_from: None,
    })
}

async fn require_area(store: &Store, code: &str) -> Result<()> {
    if !crate::store::areas::tree(store).await?.contains(code) {
        return Err(Error::NotFound(format!("area {code}")));
    }
    Ok(())
}

/// The languages in effect for an existing area (404 otherwise).
pub async fn area_languages(store: &Store, code: &str) -> Result<AreaLanguages> {
    require_area(store, code).await?;
    languages_of(store, code).await
}

/// Set the languages an area receives (empty: inherit), audited as `area.languages`. No outbox
/// row: manifests do not depend on them (they choose the speech made at the next publish).
pub async fn set_area_languages(
    state: &AppState,
    actor: &str,
    code: &str,
    languages: &[String],
) -> Result<AreaLanguages> {
    require_area(&state.store, code).await?;
    check_languages(languages)?;
    let before = languages_of(&state.store, code).await?;
    let mut tx = state.store.begin_write().await?;
    db::set_area_languages(&mut tx, code, languages).await?;
    audit::record(
        &mut tx,
        actor,
        "area.languages",
        &format!("area:{code}"),
        json(&before),
        Some(serde_json::json!({ "languages": languages })),
    )
    .await?;
    tx.commit().await?;
    state.bulletins.bump();
    languages_of(&state.store, code).await
}

/// Synthesise a text-to-speech preview of `text` (a `draft` media item titled `TTS: <title>`),
/// audited as `tts.preview` by `actor` (`services::speech::preview`, the API's use case too).
pub async fn preview_speech(
    state: &AppState,
    actor: &str,
    text: &str,
    voice: Option<&str>,
    speed: Option<u32>,
    pitch: Option<u32>,
    title: &str,
) -> Result<crate::services::speech::SpeechMedia> {
    let voice = crate::services::speech::voice(state, voice, speed, pitch)?;
    let (_, m) = crate::services::speech::preview(state, actor, text, &voice, title).await?;
    Ok(m)
}
