//! The media library's use cases. Uploads stream into a temp file while being hashed
//! ([`stage`]), are probed ([`probe`]: content sniffing, symphonia, exact duration, truncation
//! checks) and stored under their content address with a `draft` record ([`upload`], and
//! [`ingest_file`] / [`ingest_bytes`] for files the server stores itself: speech, a bulletin's
//! recording, the demo); the same content again is a duplicate. A refused upload leaves nothing
//! behind. An upload or a recording is also measured and normalised ([`loudness`], issue 18): a
//! rendition at −16 LUFS / −1 dBTP is stored beside the untouched original and devices fetch it.
//!
//! Scope: a record has an owning `area` (NULL = province-wide). An upload by a user scoped to
//! areas belongs to their first scope area (or to the `area` field, inside their scope); an
//! unscoped user's upload is province-wide unless it names an `area`. A scoped user lists, reads,
//! reviews and schedules province-wide media and media of their subtree only; anything else is
//! 404, exactly as if it did not exist (`store::media::get_visible`, `require_visible`). The
//! bytes at `/media/{sha256}` are public once approved (devices fetch them by hash) and otherwise
//! served only to a caller who sees the record ([`fetch_access`]).
//!
//! Review ([`review`], `domain::review`): `draft → pending → approved | rejected`; the admin may
//! approve or reject a draft directly; a rejected file may be submitted again. One transaction
//! moves the status with one conditional UPDATE (of two concurrent reviews exactly one wins; the
//! other is a 409 naming the status it found), writes the audit entry and, for an approval, the
//! outbox row (`Change::All`: which schedules may play changed), then wakes the dispatcher.

pub mod backfill;
pub mod files;
pub mod hot;
pub mod loudness;
pub mod probe;
pub mod public;
pub mod upload;

use std::path::Path;

pub use files::media_path;
pub use probe::{AudioInfo, ProbeError, probe_file};
pub use upload::{Staged, sha256_file, stage};

use crate::domain::change::Change;
use crate::domain::media::Media;
use crate::domain::review::{ReviewAction, ReviewStatus};
use crate::domain::scope::{Caller, Role};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::store::review::Reviewed;
use crate::store::{self, now_ms};
use upload::{Finish, finish};

/// Who may fetch a media file's bytes (`GET /media/{sha256}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    /// Approved: anyone with the hash (devices fetch what their manifest names without
    /// credentials); cacheable by anyone.
    Public,
    /// Not approved, and the caller may see it: theirs only, never cached.
    Private,
}

/// Whether the bytes of `sha` may be served to `caller` (`None`: no credentials). Approved
/// media is public by its hash (it is what loudspeakers broadcast, and devices fetch it without
/// credentials); a draft, pending or rejected file only to a caller whose scope sees it. Anything
/// else is 404, exactly as for a file that does not exist.
pub async fn fetch_access(state: &AppState, caller: Option<&Caller>, sha: &str) -> Result<Fetch> {
    // Approved is final: a known public address needs no database (`public`).
    if state.public_media.contains(sha) {
        return Ok(Fetch::Public);
    }
    let absent = || Error::NotFound(format!("media `{sha}`"));
    // A normalised rendition is fetched on its original's terms.
    let m = match store::media::get(&state.store, sha).await? {
        Some(m) => m,
        None => {
            let original = store::loudness::original_of(&state.store, sha)
                .await?
                .ok_or_else(absent)?;
            store::media::get(&state.store, &original)
                .await?
                .ok_or_else(absent)?
        }
    };
    if m.status == ReviewStatus::Approved {
        state.public_media.insert(sha);
        return Ok(Fetch::Public);
    }
    match caller {
        Some(c) if c.sees_media(m.area.as_deref()) => Ok(Fetch::Private),
        _ => Err(absent()),
    }
}

/// Store a file from disk through the same path as an upload (copy, hash, probe, loudness,
/// dedupe, rename, record). Returns the record and whether it was already stored.
pub async fn ingest_file(
    state: &AppState,
    src: &Path,
    filename: &str,
    title: Option<&str>,
) -> Result<(Media, bool)> {
    let f = tokio::fs::File::open(src).await?;
    let staged = stage(state, f).await?;
    // A recording (a bulletin's): normalised like an upload.
    let to = Finish {
        normalize: true,
        ..server_file(filename, title)
    };
    finish(state, staged, to).await
}

/// Store bytes through the same path as an upload.
pub async fn ingest_bytes(
    state: &AppState,
    bytes: &[u8],
    filename: &str,
    title: Option<&str>,
) -> Result<(Media, bool)> {
    let staged = stage(state, bytes).await?;
    finish(state, staged, server_file(filename, title)).await
}

fn server_file<'a>(filename: &'a str, title: Option<&'a str>) -> Finish<'a> {
    Finish {
        filename,
        title,
        area: None,
        actor: None,
        normalize: false,
    }
}

/// An upload by `caller` (editor) of a staged file: its owning area is `area` if given (it must
/// exist and be inside the caller's scope), else the caller's first scope area, else
/// province-wide. New content is stored as a `draft` with its audit entry; content already
/// stored is returned as a duplicate, or refused (409) when it belongs to an area outside the
/// caller's scope.
pub async fn upload(
    state: &AppState,
    caller: &Caller,
    staged: Staged,
    filename: &str,
    title: Option<&str>,
    area: Option<String>,
) -> Result<(Media, bool)> {
    caller.require(Role::Editor)?;
    let area = upload_area(state, caller, area).await?;
    let to = Finish {
        filename,
        title,
        area: area.as_deref(),
        actor: Some(&caller.username),
        normalize: true,
    };
    let (m, duplicate) = finish(state, staged, to).await?;
    if duplicate && !caller.sees_media(m.area.as_deref()) {
        return Err(Error::Conflict(
            "this audio is already stored in the library of an area outside your scope; ask a \
             province user to share it"
                .into(),
        ));
    }
    Ok((m, duplicate))
}

/// The owning area of an upload: the `area` field if given (it must be inside the caller's
/// scope and exist), else the caller's first scope area, else province-wide (`None`). The scope
/// is checked first, so a scoped caller gets the same 403 for an unknown area as for another
/// commune's (nothing tells them which codes exist outside their scope).
async fn upload_area(state: &AppState, caller: &Caller, asked: Option<String>) -> Result<Option<String>> {
    match asked {
        Some(a) => {
            caller.check_area(&a)?;
            if !crate::store::areas::exists(&state.store, &a).await? {
                return Err(Error::unprocessable(
                    "unknown_area",
                    format!("area `{a}` does not exist"),
                ));
            }
            Ok(Some(a))
        }
        None => Ok(caller.scope_roots.as_ref().and_then(|r| r.first().cloned())),
    }
}

/// One review step by a caller: `submit` (editor: draft|rejected → pending), `approve` (approver:
/// pending → approved; the admin also from draft), `reject` (approver: pending → rejected; the
/// admin also from draft). 404 for media the caller may not see; 409 naming the current status
/// when the file is not (or no longer: a concurrent review won) in a status the step starts from.
/// Audited; an approval writes the outbox row and wakes the dispatcher.
pub async fn review(
    state: &AppState,
    caller: &Caller,
    sha: &str,
    step: &str,
    note: Option<String>,
) -> Result<Media> {
    let action = ReviewAction::parse(step, caller.role == Role::Admin)?;
    caller.require(match action {
        ReviewAction::Submit => Role::Editor,
        _ => Role::Approver,
    })?;
    let before = store::media::get_visible(&state.store, caller, sha).await?;
    let to = action.target();
    let mut tx = state.store.begin_write().await?;
    let authors =
        store::audit::actors(&mut tx, &before.subject(), crate::domain::review::MEDIA_AUTHORING).await?;
    if to == ReviewStatus::Approved {
        crate::domain::review::four_eyes(
            state.settings.four_eyes,
            caller.via != crate::domain::scope::Via::AdminToken,
            &caller.username,
            &authors,
            &format!("media `{sha}`"),
        )?;
    }
    let moved = store::review::set_status(
        &mut tx,
        Reviewed::Media,
        sha,
        action.sources(),
        to,
        note.as_deref(),
        now_ms(),
    )
    .await?;
    let Some(after) = store::media::get_in(&mut tx, sha).await? else {
        return Err(Error::NotFound(format!("media `{sha}`")));
    };
    if !moved {
        return Err(action.refused(&format!("media `{sha}`"), after.status));
    }
    if to == ReviewStatus::Approved {
        store::outbox::insert(&mut tx, &Change::All).await?;
    }
    // A review names both sides: who wrote the file and who decided.
    let mut after_json = serde_json::to_value(&after).ok();
    if action != ReviewAction::Submit
        && let Some(o) = after_json.as_mut().and_then(|v| v.as_object_mut())
    {
        o.insert("authors".into(), serde_json::json!(authors));
        o.insert("reviewed_by".into(), serde_json::json!(caller.username));
    }
    store::audit::record(
        &mut tx,
        &caller.username,
        &format!("media.{}", action.step()),
        &after.subject(),
        serde_json::to_value(&before).ok(),
        after_json,
    )
    .await?;
    tx.commit().await?;
    if to == ReviewStatus::Approved {
        state.wake.dispatch();
    }
    Ok(after)
}

/// Approve a file the server produced or seeded itself, whatever its status (speech of an
/// approved bulletin, the demo's clip), with `note`; no user reviews it, so there is no audit
/// entry (the bulletin's approval is audited). No outbox row either: a file that was never
/// approved is in no schedule (schedules and commands accept approved media only), so no
/// device's desired state changes. Returns the record.
pub async fn approve_unreviewed(state: &AppState, sha: &str, note: &str) -> Result<Media> {
    use ReviewStatus::*;
    let mut tx = state.store.begin_write().await?;
    store::review::set_status(
        &mut tx,
        Reviewed::Media,
        sha,
        &[Draft, Pending, Rejected],
        Approved,
        Some(note),
        now_ms(),
    )
    .await?;
    let m = store::media::get_in(&mut tx, sha)
        .await?
        .ok_or_else(|| Error::NotFound(format!("media `{sha}`")))?;
    tx.commit().await?;
    Ok(m)
}
