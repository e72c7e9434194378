//! Review from the console: submitting a bulletin for approval, approving or rejecting it
//! (`POST /console/bulletins/{id}/review`). The recorded audio of its variants is submitted,
//! approved or rejected together with it.

use axum::extract::{Path, State};

use super::{may_edit, may_review, tr, visible};
use crate::console::{Console, PageError, PageForm, PageResult, see_other};
use crate::domain::review::{ReviewAction, ReviewStatus};
use crate::domain::scope::Role;
use crate::error::{Error, Result};
use crate::http::form::Fields;
use crate::services::{AppState, bulletins};

/// Submit for approval (with the recorded audio of its variants).
pub(super) async fn submit(state: &AppState, c: &Console, id: &str) -> Result<()> {
    c.caller.require(Role::Editor)?;
    let after = bulletins::review(state, &c.caller, id, ReviewAction::Submit, None).await?;
    for sha in after.variants.iter().filter_map(|v| v.audio_sha256.as_ref()) {
        if let Some(m) = crate::store::media::get(&state.store, sha).await?
            && matches!(m.status, ReviewStatus::Draft | ReviewStatus::Rejected)
        {
            crate::services::media::review(state, &c.caller, sha, "submit", None).await?;
        }
    }
    Ok(())
}

/// `POST /console/bulletins/{id}/review` with `step` = `submit`, `approve` or `reject` (`note`).
pub(super) async fn review(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(form): PageForm<Fields>,
) -> PageResult {
    let lang = c.lang;
    let step = async {
        let b = visible(&state, &c, &id).await?;
        match form.one("step").as_str() {
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
                let note: String = form.one("note").chars().take(2000).collect();
                if s == "reject" && note.is_empty() {
                    return Err(Error::bad("note_required", tr("bul.err.reason", lang)));
                }
                let (action, note) = if s == "approve" {
                    (ReviewAction::Approve, None)
                } else {
                    (ReviewAction::Reject, Some(note))
                };
                bulletins::review(&state, &c.caller, &id, action, note.clone()).await?;
                // The recorded audio is reviewed with its bulletin.
                for sha in b.variants.iter().filter_map(|v| v.audio_sha256.as_ref()) {
                    let pending = crate::store::media::get(&state.store, sha)
                        .await?
                        .is_some_and(|m| {
                            m.status == ReviewStatus::Pending
                                || (m.status == ReviewStatus::Draft && c.caller.role == Role::Admin)
                        });
                    if pending {
                        let n = note.clone().or_else(|| Some(format!("bulletin {id}")));
                        crate::services::media::review(&state, &c.caller, sha, s, n).await?;
                    }
                }
                Ok("/console/approvals".to_string())
            }
            other => Err(Error::bad(
                "invalid_step",
                format!("unknown review step `{other}`"),
            )),
        }
    };
    let to = step.await.map_err(|e| PageError(e, lang))?;
    Ok(match form.one("step").as_str() {
        "approve" => crate::console::done(&to, "approved"),
        "reject" => crate::console::done(&to, "rejected"),
        _ => see_other(&to),
    })
}
