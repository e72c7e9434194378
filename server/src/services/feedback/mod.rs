//! Citizens' feedback use cases (issue 15). Public ones, with no login: a proof-of-work
//! challenge ([`challenge`]), a submission ([`submit`]: per-address budget, then the challenge,
//! the fields, the photos; one transaction with its audit entry, which never holds personal
//! data), and the status by tracking code ([`track`]). The moderation (staff in whose scope the
//! area is): the queue ([`list`]), an item ([`get`]), assignment to an organisation, an answer
//! (optionally published) and closing ([`moderate`]), each one conditional update with its audit
//! entry. The SLA alarm is raised by `workers::alarms`; personal data is purged by
//! `workers::feedback` after `feedback.retention_days`.

pub mod photos;

use std::net::IpAddr;

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::feedback::{self, Feedback, NewFeedback, Status, Tracked, pow};
use crate::domain::scope::{Caller, Role};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::store::{self, now_ms};

/// A challenge for the public form.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Challenge {
    /// The signed challenge.
    pub challenge: String,
    /// Leading zero bits SHA-256(`challenge:nonce`) must have.
    pub bits: u8,
}

const KEY_NAME: &str = "feedback_pow_key";

async fn pow_key(state: &AppState) -> Result<Vec<u8>> {
    if let Some(k) = store::secrets::get(&state.store, KEY_NAME).await? {
        return Ok(k.into_bytes());
    }
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| Error::internal(format!("random: {e}")))?;
    store::secrets::insert_once(&state.store, KEY_NAME, &hex::encode(raw)).await?;
    store::secrets::get(&state.store, KEY_NAME)
        .await?
        .map(String::into_bytes)
        .ok_or_else(|| Error::internal("feedback challenge key"))
}

/// A fresh challenge.
pub async fn challenge(state: &AppState) -> Result<Challenge> {
    let key = pow_key(state).await?;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| Error::internal(format!("random: {e}")))?;
    let bits = state.settings.feedback.pow_bits;
    Ok(Challenge {
        challenge: pow::issue(&key, now_ms(), bits, &hex::encode(salt)),
        bits,
    })
}

/// A photo as received.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The file name the browser gave (for messages only).
    pub name: String,
    /// Its bytes (already under `feedback.photo_max_kb`).
    pub bytes: Vec<u8>,
}

/// A submission as received from the form or the API.
#[derive(Debug, Clone, Default)]
pub struct Submission {
    /// The fields.
    pub fields: NewFeedback,
    /// The challenge.
    pub challenge: String,
    /// Its solution.
    pub nonce: String,
    /// Photos (at most 3).
    pub photos: Vec<Upload>,
}

/// What the citizen gets back.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Received {
    /// The tracking code.
    pub code: String,
    /// Status (`received`).
    pub status: Status,
    /// SLA deadline, unix ms.
    pub due_at: i64,
}

/// 413 for a photo over the limit (the HTTP layer stops reading it there).
pub fn photo_too_large(name: &str, max_kb: u64) -> Error {
    Error::TooLarge(format!(
        "Ảnh «{name}» lớn quá {} MB. Vui lòng chọn ảnh nhỏ hơn hoặc giảm kích thước ảnh rồi gửi lại.",
        max_kb.div_ceil(1024)
    ))
}

/// 422 past three photos.
pub fn too_many_photos() -> Error {
    Error::unprocessable(
        "too_many_photos",
        format!(
            "Chỉ gửi được tối đa {} ảnh cho một phản ánh.",
            feedback::MAX_PHOTOS
        ),
    )
}

/// A citizen's feedback may name only a policy on the public site (422 naming `policy_id`
/// otherwise, in Vietnamese, as for one that does not exist: an unpublished one is not public).
async fn known_policy(state: &AppState, id: &str) -> Result<()> {
    match store::policies::get(&state.store, id).await? {
        Some(p) if p.published => Ok(()),
        _ => Err(Error::unprocessable(
            "unknown_policy",
            format!(
                "`policy_id`: chính sách «{id}» không có trong danh sách chính sách đã công bố. Vui lòng chọn lại chính sách."
            ),
        )),
    }
}

/// Take a citizen's feedback from `ip`.
pub async fn submit(state: &AppState, ip: IpAddr, s: Submission) -> Result<Received> {
    if let Err(l) = state.limits.allow_feedback(ip) {
        return Err(Error::TooManyRequests(format!(
            "Bạn đã gửi nhiều phản ánh trong thời gian ngắn. Vui lòng thử lại sau {} giây.",
            l.retry_after_secs
        )));
    }
    let cfg = &state.settings.feedback;
    let now = now_ms();
    let salt = pow::verify(
        &pow_key(state).await?,
        &s.challenge,
        &s.nonce,
        now,
        (cfg.pow_ttl_s * 1000) as i64,
        cfg.pow_bits,
    )?;
    let f = s.fields.check()?;
    let tree = store::areas::tree(&state.store).await?;
    if !tree.contains(&f.area) {
        return Err(Error::unprocessable(
            "unknown_area",
            format!(
                "Địa bàn «{}» không có trong danh sách. Vui lòng chọn lại địa bàn.",
                f.area
            ),
        ));
    }
    if let Some(p) = &f.policy_id {
        known_policy(state, p).await?;
    }
    if s.photos.len() > feedback::MAX_PHOTOS {
        return Err(too_many_photos());
    }
    let mut stored = Vec::new();
    for (i, p) in s.photos.into_iter().enumerate() {
        if p.bytes.len() as u64 > cfg.photo_max_kb * 1024 {
            return Err(photo_too_large(&p.name, cfg.photo_max_kb));
        }
        let done = tokio::task::spawn_blocking(move || photos::process(&p.name, &p.bytes))
            .await
            .map_err(|e| Error::internal_from("photo task", e))??;
        photos::store(&state.settings.data_dir, &done).await?;
        stored.push(store::feedback::Photo {
            n: i as i64 + 1,
            sha256: done.sha256,
            bytes: done.jpeg.len() as i64,
            width: done.width.into(),
            height: done.height.into(),
        });
    }
    let due = feedback::due_at(&tree, &f.area, now, cfg.sla_hours, &cfg.area_sla_hours);
    let id = uuid::Uuid::now_v7().to_string();
    let mut tx = state.store.begin_write().await?;
    if store::feedback::challenge_used(&mut tx, &salt).await? {
        return Err(Error::Conflict(
            "Phép tính chống thư rác này đã được dùng cho một phản ánh khác. Vui lòng tải lại trang rồi gửi lại.".into(),
        ));
    }
    let mut code = String::new();
    for _ in 0..5 {
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).map_err(|e| Error::internal(format!("random: {e}")))?;
        code = feedback::code_from(r);
        if store::feedback::get_in(&mut tx, "code", &code, now)
            .await?
            .is_none()
        {
            break;
        }
    }
    let ins = store::feedback::Insert {
        id: &id,
        code: &code,
        f: &f,
        challenge: &salt,
        received_at: now,
        due_at: due,
    };
    store::feedback::insert(&mut tx, &ins, &stored).await?;
    // No personal data in the audit log: only what the public status page shows.
    store::audit::record(
        &mut tx,
        "public",
        "feedback.receive",
        &format!("feedback:{id}"),
        None,
        Some(
            serde_json::json!({"code": code, "area": f.area, "policy_id": f.policy_id,
            "photos": stored.len(), "ip": ip.to_string()}),
        ),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(feedback = %id, code = %code, area = %f.area, "feedback received");
    Ok(Received {
        code,
        status: Status::Received,
        due_at: due,
    })
}

/// The public status of the item with tracking code `code` (404 in Vietnamese otherwise).
pub async fn track(state: &AppState, code: &str) -> Result<Tracked> {
    let missing = || {
        Error::NotFound(format!(
            "Mã theo dõi «{}»",
            code.trim().chars().take(40).collect::<String>()
        ))
    };
    let code = feedback::normalise_code(code).ok_or_else(missing)?;
    store::feedback::get(&state.store, "code", &code, now_ms())
        .await?
        .map(|f| f.tracked())
        .ok_or_else(missing)
}

/// The published answers (newest first), as the public sees them.
pub async fn published(state: &AppState, limit: i64) -> Result<Vec<Tracked>> {
    Ok(
        store::feedback::published(&state.store, limit.clamp(1, 200), now_ms())
            .await?
            .iter()
            .map(Feedback::tracked)
            .collect(),
    )
}

/// Staff who read the queue: every role but contributors.
fn require_staff(caller: &Caller) -> Result<()> {
    caller.require(Role::Viewer)
}

/// Staff who handle items: editors, operators, approvers (and admins).
fn require_moderator(caller: &Caller) -> Result<()> {
    caller.require_any(&[Role::Editor, Role::Operator, Role::Approver])
}

/// The moderation queue of the caller's scope.
pub async fn list(state: &AppState, caller: &Caller, f: &store::feedback::Filter) -> Result<Vec<Feedback>> {
    require_staff(caller)?;
    store::feedback::list(&state.store, caller, f, now_ms()).await
}

/// One item of the caller's scope.
pub async fn get(state: &AppState, caller: &Caller, id: &str) -> Result<Feedback> {
    require_staff(caller)?;
    match store::feedback::get(&state.store, "id", id, now_ms()).await? {
        Some(f) if caller.in_scope(&f.area) => Ok(f),
        _ => Err(Error::NotFound(format!("feedback `{id}`"))),
    }
}

/// The feedback about one policy in the caller's scope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct AboutPolicy {
    /// Every item.
    pub total: i64,
    /// Still received or assigned.
    pub waiting: i64,
    /// Answered or closed.
    pub done: i64,
}

/// Count the feedback about policy `id` in the caller's scope (the policy page).
pub async fn about_policy(state: &AppState, caller: &Caller, id: &str) -> Result<AboutPolicy> {
    require_staff(caller)?;
    let mut out = AboutPolicy::default();
    for (area, status) in store::feedback::about_policy(&state.store, id).await? {
        if caller.in_scope(&area) {
            out.total += 1;
            if status.waiting() {
                out.waiting += 1;
            } else {
                out.done += 1;
            }
        }
    }
    Ok(out)
}

/// A photo's file of an item of the caller's scope.
pub async fn photo(state: &AppState, caller: &Caller, id: &str, n: i64) -> Result<Vec<u8>> {
    get(state, caller, id).await?;
    let p = store::feedback::photo(&state.store, id, n)
        .await?
        .ok_or_else(|| Error::NotFound(format!("photo {n} of feedback `{id}`")))?;
    Ok(tokio::fs::read(photos::path_of(&state.settings.data_dir, &p.sha256)).await?)
}

/// A moderation step as requested.
#[derive(Debug, Clone)]
pub enum Step {
    /// Assign to an organisation.
    Assign(feedback::Assign),
    /// Answer.
    Answer(feedback::Answer),
    /// Close.
    Close,
}

/// Apply a moderation step to item `id` (its area in the caller's scope); 409 naming the status
/// found when the step does not apply to it.
pub async fn moderate(state: &AppState, caller: &Caller, id: &str, step: Step) -> Result<Feedback> {
    require_moderator(caller)?;
    let now = now_ms();
    let mut tx = state.store.begin_write().await?;
    let before = match store::feedback::get_in(&mut tx, "id", id, now).await? {
        Some(f) if caller.in_scope(&f.area) => f,
        _ => return Err(Error::NotFound(format!("feedback `{id}`"))),
    };
    let (action, m) = match step {
        Step::Assign(a) => {
            if store::organisations::get_in(&mut tx, &a.organisation_id)
                .await?
                .is_none()
            {
                return Err(Error::unprocessable(
                    "unknown_organisation",
                    format!("`organisation_id`: `{}` does not exist", a.organisation_id),
                ));
            }
            (
                "feedback.assign",
                store::feedback::Move::Assign {
                    organisation_id: a.organisation_id,
                },
            )
        }
        Step::Answer(a) => {
            let a = a.check()?;
            (
                "feedback.answer",
                store::feedback::Move::Answer {
                    answer: a.answer,
                    public: a.publish,
                    by: caller.username.clone(),
                },
            )
        }
        Step::Close => ("feedback.close", store::feedback::Move::Close),
    };
    if let Err(found) = store::feedback::apply(&mut tx, id, &m, now).await? {
        return Err(Error::Conflict(format!(
            "feedback `{id}` is {}; this step does not apply to it",
            found.as_str()
        )));
    }
    let after = store::feedback::get_in(&mut tx, "id", id, now)
        .await?
        .ok_or_else(|| Error::NotFound(format!("feedback `{id}`")))?;
    let json = |f: &Feedback| {
        serde_json::json!({"status": f.status, "organisation_id": f.organisation_id, "answer": f.answer,
            "answer_public": f.answer_public})
    };
    store::audit::record(
        &mut tx,
        &caller.username,
        action,
        &format!("feedback:{id}"),
        Some(json(&before)),
        Some(json(&after)),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Every organisation.
pub async fn organisations(
    state: &AppState,
    caller: &Caller,
) -> Result<Vec<crate::domain::organisation::Organisation>> {
    require_staff(caller)?;
    store::organisations::list(&state.store).await
}

/// Create an organisation (admin; audited).
pub async fn create_organisation(
    state: &AppState,
    caller: &Caller,
    o: &crate::domain::organisation::NewOrganisation,
) -> Result<crate::domain::organisation::Organisation> {
    caller.require(Role::Admin)?;
    let o = o.check()?;
    if let Some(a) = &o.area
        && !store::areas::exists(&state.store, a).await?
    {
        return Err(Error::unprocessable(
            "unknown_area",
            format!("`area`: `{a}` does not exist"),
        ));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let mut tx = state.store.begin_write().await?;
    let org = store::organisations::insert(&mut tx, &id, &o, now_ms()).await?;
    store::audit::record(
        &mut tx,
        &caller.username,
        "organisation.create",
        &format!("organisation:{id}"),
        None,
        Some(serde_json::to_value(&org).unwrap_or_default()),
    )
    .await?;
    tx.commit().await?;
    Ok(org)
}
