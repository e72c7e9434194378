//! Media pages: the library, one file's detail with its review buttons, the review step, and the
//! approvals queue (media and bulletins waiting for an approver). Reads are `store::media`'s; the
//! review step is `services::media::review`, the same use case as the API's.

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::all_areas;
use super::{Console, PageError, PageForm, PageResult, bulletins, visible_areas};
use crate::domain::media::{MediaLoudness, clean_note};
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
    let list = store::media::list_visible(&state.store, caller, status).await?;
    let shas: Vec<String> = list.iter().map(|m| m.sha256.clone()).collect();
    let mut loudness = store::loudness::of(&state.store, &shas).await?;
    list.into_iter()
        .map(|m| {
            let l = loudness.remove(&m.sha256);
            let mut v = serde_json::to_value(m).map_err(Error::context("media json"))?;
            v["loud"] = loud_json(l.as_ref());
            Ok(v)
        })
        .collect()
}

/// A figure in dB with one decimal and a real minus sign.
fn db1(x: f64) -> String {
    format!("{x:+.1}").replace('-', "−")
}

/// The loudness figures as the pages show them: `original` (LUFS · dBTP), `rendition` (the same
/// and the gain, with its sha256) or `note`; null when not measured.
fn loud_json(l: Option<&MediaLoudness>) -> Value {
    let Some(l) = l else { return Value::Null };
    let pair = |lufs: Option<f64>, tp: Option<f64>| match (lufs, tp) {
        (Some(a), Some(b)) => format!("{} LUFS · {} dBTP", db1(a), db1(b)),
        (None, Some(b)) => format!("— LUFS · {} dBTP", db1(b)),
        _ => "— LUFS".to_string(),
    };
    json!({
        "original": pair(l.loudness_lufs, l.true_peak_dbtp),
        "short": l.loudness_lufs.map(|a| match &l.rendition {
            Some(r) => format!("{} → {} LUFS", db1(a), db1(r.loudness_lufs)),
            None => format!("{} LUFS", db1(a)),
        }),
        "rendition": l.rendition.as_ref().map(|r| json!({
            "figures": pair(Some(r.loudness_lufs), Some(r.true_peak_dbtp)),
            "gain": format!("{} dB", db1(r.gain_db)),
            "sha256": r.sha256,
            "downmixed_from": r.downmixed_from,
        })),
        "note": l.note,
    })
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
    let mut l = store::loudness::of(&state.store, std::slice::from_ref(&m.sha256))
        .await
        .map_err(|e| PageError(e, c.lang))?;
    let loud = loud_json(l.remove(&m.sha256).as_ref());
    c.page(
        "media_detail.html",
        json!({"m": m, "loud": loud, "can_submit": c.caller.grants(Role::Editor), "can_approve": c.caller.grants(Role::Approver)}),
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
