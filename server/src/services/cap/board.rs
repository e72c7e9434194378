//! CAP alerts on bulletin boards: an issued alert whose play-now window has not ended is shown
//! as an emergency bulletin on the boards of the areas its loudspeakers are in (the board's own
//! area or one above it), one variant per `<info>` language (headline as title, description and
//! instruction as text). The issuing use case bumps the boards' generation so they refresh.

use std::collections::HashSet;

use crate::domain::bulletin::feed::{FeedItem, FeedVariant};
use crate::domain::cap;
use crate::domain::html::escape;
use crate::error::Result;
use crate::services::AppState;
use crate::store::{self, now_ms};

/// The emergency items of the CAP alerts current for a board in `board_area`.
pub async fn board_items(state: &AppState, board_area: &str) -> Result<Vec<FeedItem>> {
    let now = now_ms();
    let ancestors: HashSet<String> = store::areas::tree(&state.store)
        .await?
        .ancestors(board_area)
        .into_iter()
        .collect();
    let mut out = Vec::new();
    for m in store::cap::recent(&state.store, Some("issued"), 50).await? {
        if m.msg_type == "Cancel" || !m.target_areas.split(',').any(|a| ancestors.contains(a)) {
            continue;
        }
        let Some(cmd) = &m.command_id else { continue };
        let Some(report) = store::reports::command(&state.store, cmd).await? else {
            continue;
        };
        let until = report.expires_at.timestamp_millis();
        if until <= now {
            continue;
        }
        let Ok(alert) = cap::parse(m.xml.as_bytes()) else {
            continue;
        };
        let variants = alert
            .infos
            .iter()
            .map(|i| {
                let text = [&i.description, &i.instruction]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n\n");
                FeedVariant {
                    language: i.primary_language(),
                    title: i.headline.clone().unwrap_or_else(|| i.event.clone()),
                    html: text
                        .split("\n\n")
                        .map(|p| format!("<p>{}</p>", escape(p)))
                        .collect(),
                    text,
                }
            })
            .collect();
        out.push(FeedItem {
            id: format!("cap-{}", m.alert_id),
            priority: "emergency".into(),
            category: "cap".into(),
            dwell_s: 30,
            valid_from: Some(report.issued_at.timestamp_millis()),
            valid_until: Some(until),
            variants,
            images: Vec::new(),
            video: None,
            attachments: Vec::new(),
            short_url: None,
            qr_svg: None,
        });
    }
    Ok(out)
}
