//! Publishing from the console (`POST /console/bulletins/{id}/publish`): to the chosen areas
//! inside the caller's scope, with or without the loudspeakers, then the bulletin page again with
//! what was done.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;

use super::edit::render;
use super::{tr, visible};
use crate::console::{Console, PageError, PageForm, PageResult};
use crate::domain::bulletin::PublishRequest;
use crate::domain::scope::Role;
use crate::error::Error;
use crate::http::form::Fields;
use crate::services::{AppState, bulletins};

/// Publish a bulletin to the areas of the form.
pub(super) async fn publish(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(form): PageForm<Fields>,
) -> PageResult {
    let lang = c.lang;
    let pairs = form.into_pairs();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let step = async {
        c.caller.require(Role::Operator)?;
        visible(&state, &c, &id).await?;
        let mut areas: Vec<String> = Vec::new();
        for (k, v) in &pairs {
            if k == "areas" && !v.trim().is_empty() && !areas.contains(v) {
                areas.push(v.trim().to_string());
            }
        }
        if areas.is_empty() {
            return Err(Error::bad("areas_required", tr("bul.err.publish_areas", lang)));
        }
        for a in &areas {
            c.caller.check_area(a)?;
        }
        let speed = match get("speed") {
            Some(s) => Some(
                s.parse::<u32>()
                    .map_err(|_| Error::bad("invalid_speed", format!("speed `{s}` is not a number")))?,
            ),
            None => None,
        };
        let req = PublishRequest {
            areas: Some(areas),
            voice: get("voice"),
            speed,
            speakers: Some(get("speakers").is_some()),
            ..Default::default()
        };
        let published = bulletins::publish(&state, &c.caller.username, &id, req).await?;
        let summary = json!({"board_areas": published.board_areas, "speech": published.speech,
                             "schedules": published.schedules, "skipped": published.skipped});
        Ok::<_, Error>((published.bulletin, summary))
    };
    let (b, summary) = step.await.map_err(|e| PageError(e, lang))?;
    render(
        &state,
        &c,
        Some(&b),
        None,
        StatusCode::OK,
        json!({"published": summary, "flash": tr("bul.flash.published", lang)}),
    )
    .await
}
