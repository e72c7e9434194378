//! Media pages: the library, one file's detail with its review buttons, the review step, and the
//! approvals queue (media and bulletins waiting for an approver).

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::all_areas;
use super::{Console, PageError, PageForm, PageResult, bulletins, see_other, visible_areas};
use crate::domain::scope::{Caller, Role};
use crate::error::{Error, Result};
use crate::media;
use crate::services::AppState;

/// The media the caller may see (province-wide and their subtree's), filtered in SQL.
pub(super) async fn media_rows(
    state: &AppState,
    caller: &Caller,
    status: Option<&str>,
) -> Result<Vec<Value>> {
    media::list_visible(&state.store, caller, status)
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
        json!({"media": list, "can_upload": c.caller.role.grants(Role::Editor),
               "upload_areas": visible_areas(&c, &areas), "scoped": c.caller.scope_areas.is_some()}),
    )
}

pub(super) async fn media_detail(
    c: Console,
    State(state): State<AppState>,
    Path(sha): Path<String>,
) -> PageResult {
    let m = media::get_visible(&state.store, &c.caller, &sha)
        .await
        .map_err(|e| PageError(e, c.lang))?;
    c.page(
        "media_detail.html",
        json!({"m": m, "can_submit": c.caller.role.grants(Role::Editor), "can_approve": c.caller.role.grants(Role::Approver)}),
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
    let note = f
        .note
        .map(|n| n.trim().chars().take(2000).collect::<String>())
        .filter(|n| !n.is_empty());
    media::review(&state, &c.caller, &sha, &f.step, note)
        .await
        .map_err(|e| PageError(e, lang))?;
    Ok(see_other(if f.step == "submit" {
        "/console/media"
    } else {
        "/console/approvals"
    })
    .into_response())
}

pub(super) async fn approvals(c: Console, State(state): State<AppState>) -> PageResult {
    let list = media_rows(&state, &c.caller, Some("pending")).await?;
    // `review_buttons.html` reads `m`; the approvals page loops with `m` as the loop variable.
    c.page(
        "approvals.html",
        json!({"media": list, "can_approve": c.caller.role.grants(Role::Approver),
               "bulletins": bulletins::pending_for(&state, &c).await?}),
    )
}
