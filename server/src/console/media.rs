//! Media pages: the library, one file's detail with its review buttons, the review step, and the
//! approvals queue (media and bulletins waiting for an approver). Reads are `store::media`'s; the
//! review step is `services::media::review`, the same use case as the API's.

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::all_areas;
use super::{Console, PageError, PageForm, PageResult, bulletins, visible_areas};
use crate::domain::media::clean_note;
use crate::domain::review::ReviewStatus;
use crate::domain::scope::{Caller, Role};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::store;

/// The media the caller may see (province-wide and their subtree's), filtered in SQL.
pub(super) async fn media_rows(
    state: &AppState,
    caller: &Caller,
    status: Option<ReviewStatus>,
) -> Result<Vec<Value>> {
    store::media::list_visible(&state.store, caller, status)
        .await?
        .into_iter()
        .map(|m| serde_json::to_value(m).map_err(Error::context("media json")))
        .collect()
}

pub(super) async fn media_page(c: Console, State(state): State<AppState>) -> PageResult {
    let list = media_rows(&state, &c.caller, None).await?;
    let areas = all_areas(&state).await?;
    c.page(
        "media.html",
        json!({"media": list, "can_upload": c.caller.grants(Role::Editor),
               "upload_areas": visible_areas(&c, &areas), "scoped": c.caller.scope_areas.is_some()}),
    )
}

pub(super) async fn media_detail(
    c: Console,
    State(state): State<AppState>,
    Path(sha): Path<String>,
) -> PageResult {
    let m = store::media::get_visible(&state.store, &c.caller, &sha)
        .await
        .map_err(|e| PageError(e, c.lang))?;
    c.page(
        "media_detail.html",
        json!({"m": m, "can_submit": c.caller.grants(Role::Editor), "can_approve": c.caller.grants(Role::Approver)}),
    )
}

#[derive(Deserialize)]
pub(super) struct ReviewForm {
    step: String,
    #[serde(default)]
    note: Option<String>,
}

pub(super) async fn media_review(
    c: Console,
    State(state): State<AppState>,
    Path(sha): Path<String>,
    PageForm(f): PageForm<ReviewForm>,
) -> PageResult {
    let lang = c.lang;
    crate::services::media::review(&state, &c.caller, &sha, &f.step, clean_note(f.note))
        .await
        .map_err(|e| PageError(e, lang))?;
    let ok = match f.step.as_str() {
        "submit" => "submitted",
        "approve" => "approved",
        _ => "rejected",
    };
    Ok(super::done(
        if f.step == "submit" {
            "/console/media"
        } else {
            "/console/approvals"
        },
        ok,
    ))
}

pub(super) async fn approvals(c: Console, State(state): State<AppState>) -> PageResult {
    let list = media_rows(&state, &c.caller, Some(ReviewStatus::Pending)).await?;
    // `review_buttons.html` reads `m`; the approvals page loops with `m` as the loop variable.
    c.page(
        "approvals.html",
        json!({"media": list, "can_approve": c.caller.grants(Role::Approver),
               "bulletins": bulletins::pending_for(&state, &c).await?,
               "cap_pending": crate::services::cap::recent(&state, &c.caller, Some("pending_approval"), 50)
                   .await
                   .unwrap_or_default()}),
    )
}
