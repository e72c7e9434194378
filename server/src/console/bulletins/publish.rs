//! Publishing from the console (`POST /console/bulletins/{id}/publish`): to the chosen areas
//! inside the caller's scope, with or without the loudspeakers, then the bulletin page again with
//! what was done.

use axum::extract::{Path, State};
use serde_json::json;

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
    let step = async {
        c.caller.require(Role::Operator)?;
        visible(&state, &c, &id).await?;
        let areas = form.all("areas");
        if areas.is_empty() {
            return Err(Error::bad("areas_required", tr("bul.err.publish_areas", lang)));
        }
        for a in &areas {
            c.caller.check_area(a)?;
        }
        let speed = match form.opt("speed") {
            Some(s) => Some(
                s.parse::<u32>()
                    .map_err(|_| Error::bad("invalid_speed", format!("speed `{s}` is not a number")))?,
            ),
            None => None,
        };
        let req = PublishRequest {
            areas: Some(areas),
            voice: form.opt("voice"),
            speed,
            speakers: Some(form.opt("speakers").is_some()),
            ..Default::default()
        };
        let published = bulletins::publish(&state, &c.caller.username, &id, req).await?;
        let summary = json!({"replaced": published.replaced});
        Ok::<_, Error>((published.bulletin, summary))
    };
    let (b, summary) = step.await.map_err(|e| PageError(e, lang))?;
    // POST-redirect-GET: a reload shows the result again instead of publishing again.
    let ok = if summary["replaced"].as_array().is_some_and(|r| !r.is_empty()) {
        "republished"
    } else {
        "published"
    };
    Ok(crate::console::done(&format!("/console/bulletins/{}", b.id), ok))
}
