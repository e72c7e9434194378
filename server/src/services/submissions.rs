//! Contributors' submissions (issue 15). A contributor (role `contributor`, member of an
//! organisation) sends text, audio, images and attachments with the target areas and a policy;
//! they see only their organisation's submissions. The Department's editorial queue (editors and
//! approvers) receives, edits, approves, rejects with a reason or requests changes; each step is
//! one conditional update with its audit entry and a notice to the contributor (shown with the
//! submission, e-mailed to the organisation by the notifier). Approving needs the approver role
//! and makes a *draft* bulletin of the text, areas and pictures, which then goes through the
//! bulletins' own review: nothing a contributor sends reaches a board or a speaker without the
//! Department's approval. Audio goes to the media library as a draft (never playable unapproved).

use crate::domain::bulletin::NewBulletin;
use crate::domain::scope::{Caller, Role};
use crate::domain::submission::{
    self, Monthly, NewSubmission, Status, Step, Submission, SubmissionFile, SubmissionPatch,
};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::services::bulletins::{self, AudioRule, files};
use crate::services::media;
use crate::store::{self, now_ms};

/// A file as received (already within the upload limit).
#[derive(Debug, Clone)]
pub struct FileIn {
    /// Name given.
    pub filename: String,
    /// Bytes.
    pub bytes: Vec<u8>,
}

async fn organisation_of(state: &AppState, caller: &Caller) -> Result<String> {
    let mut conn = state.store.pool.acquire().await?;
    store::submissions::member_org(&mut conn, &caller.user_id)
        .await?
        .ok_or_else(|| {
            Error::Forbidden("your account belongs to no organisation; an admin adds it with POST /api/v1/organisations/{id}/members".into())
        })
}

fn staff(caller: &Caller) -> bool {
    caller.grants(Role::Viewer)
}

/// A submission names an existing policy, if any (422 naming `policy_id` otherwise).
async fn check_policy(state: &AppState, policy: Option<&str>) -> Result<()> {
    if let Some(p) = policy
        && store::policies::get(&state.store, p).await?.is_none()
    {
        return Err(Error::unprocessable(
            "unknown_policy",
            format!("`policy_id`: policy `{p}` does not exist"),
        ));
    }
    Ok(())
}

async fn check_areas(state: &AppState, areas: &[String]) -> Result<()> {
    for a in areas {
        if !store::areas::exists(&state.store, a).await? {
            return Err(Error::unprocessable(
                "unknown_area",
                format!("`areas`: `{a}` does not exist"),
            ));
        }
    }
    Ok(())
}

/// Store one file: a picture, video or PDF as a bulletin file, anything else as audio (a draft
/// in the media library; not audio → 415).
async fn store_file(state: &AppState, caller: &Caller, f: FileIn) -> Result<SubmissionFile> {
    let size = f.bytes.len() as i64;
    if crate::domain::bulletin::files::sniff(&f.bytes).is_some() {
        let bytes = bytes::Bytes::from(f.bytes);
        let src = files::Source::Stream(Box::pin(futures::stream::once(
            async move { Ok::<_, Error>(bytes) },
        )));
        let max = state.settings.max_upload_mb * 1024 * 1024;
        let s = files::receive(&state.settings.data_dir, max, src).await?;
        return Ok(SubmissionFile {
            sha256: s.sha256,
            kind: s.sniffed.kind.to_string(),
            filename: f.filename,
            bytes: size,
        });
    }
    let staged = media::stage(state, std::io::Cursor::new(f.bytes)).await?;
    let to = media::upload::Finish {
        filename: &f.filename,
        title: None,
        area: None,
        actor: Some(&caller.username),
        normalize: true,
    };
    let (m, _) = media::upload::finish(state, staged, to).await?;
    Ok(SubmissionFile {
        sha256: m.sha256,
        kind: "audio".into(),
        filename: f.filename,
        bytes: size,
    })
}

/// A contributor sends a submission (status `submitted`; audited; its files stored first).
pub async fn create(
    state: &AppState,
    caller: &Caller,
    s: &NewSubmission,
    files_in: Vec<FileIn>,
) -> Result<Submission> {
    caller.require(Role::Contributor)?;
    let org = organisation_of(state, caller).await?;
    let s = s.check()?;
    check_areas(state, &s.areas).await?;
    check_policy(state, s.policy_id.as_deref()).await?;
    if files_in.len() > submission::MAX_FILES {
        return Err(Error::unprocessable(
            "too_many_files",
            format!("at most {} files per submission", submission::MAX_FILES),
        ));
    }
    let mut stored = Vec::new();
    for f in files_in {
        stored.push(store_file(state, caller, f).await?);
    }
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    let mut tx = state.store.begin_write().await?;
    store::submissions::insert(&mut tx, &id, &org, &caller.username, &s, now).await?;
    for f in &stored {
        store::submissions::insert_file(&mut tx, &id, f, now).await?;
    }
    let after = store::submissions::get_in(&mut tx, &id)
        .await?
        .ok_or_else(|| Error::internal("submission just inserted"))?;
    store::audit::record(
        &mut tx,
        &caller.username,
        "submission.create",
        &format!("submission:{id}"),
        None,
        Some(serde_json::to_value(&after).unwrap_or_default()),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// The submissions a caller may see: a contributor its organisation's, staff every one (or one
/// organisation's).
pub async fn list(
    state: &AppState,
    caller: &Caller,
    org: Option<&str>,
    status: Option<Status>,
) -> Result<Vec<Submission>> {
    if staff(caller) {
        return store::submissions::list(&state.store, org, status).await;
    }
    caller.require(Role::Contributor)?;
    let mine = organisation_of(state, caller).await?;
    store::submissions::list(&state.store, Some(&mine), status).await
}

/// One submission the caller may see (another organisation's is not found).
pub async fn get(state: &AppState, caller: &Caller, id: &str) -> Result<Submission> {
    let s = store::submissions::get(&state.store, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("submission `{id}`")))?;
    if staff(caller) {
        return Ok(s);
    }
    caller.require(Role::Contributor)?;
    if organisation_of(state, caller).await? != s.organisation_id {
        return Err(Error::NotFound(format!("submission `{id}`")));
    }
    Ok(s)
}

fn fields(s: &Submission) -> NewSubmission {
    NewSubmission {
        title: s.title.clone(),
        body: s.body.clone(),
        policy_id: s.policy_id.clone(),
        areas: s.areas.clone(),
    }
}

/// Edit: an editor or approver while the submission is open (submitted, received), the
/// contributor while changes are requested (audited).
pub async fn edit(state: &AppState, caller: &Caller, id: &str, p: &SubmissionPatch) -> Result<Submission> {
    let before = get(state, caller, id).await?;
    let editor = caller.require_any(&[Role::Editor, Role::Approver]).is_ok();
    let allowed = if editor {
        matches!(before.status, Status::Submitted | Status::Received)
    } else {
        before.status == Status::ChangesRequested
    };
    if !allowed {
        return Err(Error::Conflict(format!(
            "submission `{id}` is {}; it cannot be edited now",
            before.status.as_str()
        )));
    }
    let new = fields(&before).patched(p).check()?;
    check_areas(state, &new.areas).await?;
    check_policy(state, new.policy_id.as_deref()).await?;
    let mut tx = state.store.begin_write().await?;
    store::submissions::update_fields(&mut tx, id, &new, now_ms()).await?;
    let after = store::submissions::get_in(&mut tx, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("submission `{id}`")))?;
    let j = |s: &Submission| serde_json::json!({"title": s.title, "body": s.body, "areas": s.areas, "policy_id": s.policy_id});
    store::audit::record(
        &mut tx,
        &caller.username,
        "submission.edit",
        &format!("submission:{id}"),
        Some(j(&before)),
        Some(j(&after)),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// One editorial step (or the contributor's resubmission): roles checked, one conditional update
/// with its audit entry and the contributor's notice; an approval then makes the draft bulletin.
pub async fn step(
    state: &AppState,
    caller: &Caller,
    id: &str,
    step: Step,
    note: Option<String>,
) -> Result<Submission> {
    let before = get(state, caller, id).await?;
    match step {
        Step::Approve => caller.require(Role::Approver)?,
        Step::Resubmit => {
            caller.require(Role::Contributor)?;
            if organisation_of(state, caller).await? != before.organisation_id {
                return Err(Error::NotFound(format!("submission `{id}`")));
            }
        }
        _ => caller.require_any(&[Role::Editor, Role::Approver])?,
    }
    let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if step.needs_note() && note.is_none() {
        return Err(Error::bad(
            "note_required",
            "a rejection or a request for changes needs a `note`",
        ));
    }
    let (from, to) = step.from_statuses();
    let now = now_ms();
    let reviewer = (step != Step::Resubmit).then_some(caller.username.as_str());
    let org = store::organisations::get(&state.store, &before.organisation_id).await?;
    let mut tx = state.store.begin_write().await?;
    if let Err(found) =
        store::submissions::apply(&mut tx, id, from, to, note.as_deref(), reviewer, now).await?
    {
        return Err(Error::Conflict(format!(
            "submission `{id}` is {}; `{}` does not apply to it",
            found.as_str(),
            step.action().trim_start_matches("submission.")
        )));
    }
    if step != Step::Resubmit {
        let message = submission::notice_text(&before.title, to, note.as_deref());
        let email = org.as_ref().and_then(|o| o.email.as_deref());
        store::submissions::insert_notice(&mut tx, id, &before.organisation_id, to, &message, email, now)
            .await?;
    }
    store::audit::record(
        &mut tx,
        &caller.username,
        step.action(),
        &format!("submission:{id}"),
        Some(serde_json::json!({"status": before.status})),
        Some(serde_json::json!({"status": to, "note": note})),
    )
    .await?;
    tx.commit().await?;
    if step == Step::Approve {
        match draft_bulletin(state, caller, &before).await {
            Ok(bid) => {
                let mut tx = state.store.begin_write().await?;
                store::submissions::set_bulletin(&mut tx, id, &bid).await?;
                link_policy(&mut tx, caller, &before, &bid).await?;
                tx.commit().await?;
            }
            Err(e) => {
                tracing::warn!(submission = %id, error = %e, "approved, but no draft bulletin was made")
            }
        }
    }
    get(state, caller, id).await
}

/// Link the draft bulletin of an approved submission to its policy's current stage (audited as
/// `policy.link`), so the policy's coverage counts where it plays and shows.
async fn link_policy(tx: &mut store::Tx, caller: &Caller, s: &Submission, bulletin: &str) -> Result<()> {
    let Some(pid) = &s.policy_id else {
        return Ok(());
    };
    let Some(p) = store::policies::load(tx, pid).await? else {
        return Ok(());
    };
    let l = crate::domain::policy::Link {
        stage: p.stage,
        kind: crate::domain::policy::LinkKind::Bulletin,
        ref_id: bulletin.to_string(),
    };
    if store::policies::add_link(tx, pid, &l, &caller.username, now_ms()).await? {
        store::audit::record(
            tx,
            &caller.username,
            "policy.link",
            &format!("policy:{pid}"),
            None,
            serde_json::to_value(&l).ok(),
        )
        .await?;
    }
    Ok(())
}

/// The draft bulletin of an approved submission: its title, text, areas and pictures.
async fn draft_bulletin(state: &AppState, caller: &Caller, s: &Submission) -> Result<String> {
    let mut attach = Vec::new();
    for f in s.files.iter().filter(|f| f.kind != "audio") {
        let file = tokio::fs::File::open(files::path_of(&state.settings.data_dir, &f.sha256)).await?;
        let max = state.settings.max_upload_mb * 1024 * 1024;
        attach.push((
            files::receive(&state.settings.data_dir, max, files::Source::File(file)).await?,
            f.filename.clone(),
        ));
    }
    let req = NewBulletin {
        title: Some(s.title.clone()),
        body: Some(s.body.clone()),
        variants: Vec::new(),
        category: None,
        priority: None,
        valid_from: None,
        valid_until: None,
        areas: s.areas.clone(),
        dwell_s: None,
    };
    let b = bulletins::create(state, &caller.username, req, AudioRule::Approved, attach).await?;
    Ok(b.id)
}

/// The monthly tracking (`YYYY-MM`), staff only.
pub async fn monthly(state: &AppState, caller: &Caller, month: &str) -> Result<Monthly> {
    caller.require(Role::Viewer)?;
    let (from, to) = submission::month_range(month)?;
    let orgs = store::organisations::list(&state.store).await?;
    let made = store::submissions::made_between(&state.store, from, to).await?;
    Ok(submission::monthly(month, &orgs, &made))
}

/// Make a user a contributor account of an organisation (admin; audited).
pub async fn add_member(state: &AppState, caller: &Caller, org: &str, user_id: &str) -> Result<()> {
    caller.require(Role::Admin)?;
    if store::organisations::get(&state.store, org).await?.is_none() {
        return Err(Error::NotFound(format!("organisation `{org}`")));
    }
    if store::users::get(&state.store, user_id).await?.is_none() {
        return Err(Error::unprocessable(
            "unknown_user",
            format!("`user_id`: `{user_id}` does not exist"),
        ));
    }
    let mut tx = state.store.begin_write().await?;
    store::submissions::set_member(&mut tx, user_id, org, now_ms()).await?;
    store::audit::record(
        &mut tx,
        &caller.username,
        "organisation.member",
        &format!("organisation:{org}"),
        None,
        Some(serde_json::json!({"user_id": user_id})),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
