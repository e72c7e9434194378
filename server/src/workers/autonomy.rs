//! The dispatcher's part of commune autonomy (docs/autonomy.md): before each batch it keeps the
//! questions put to communes in step with the schedules and turns the answers into the plan the
//! batch applies to the communes' manifests ([`prepare`], `domain::autonomy`); on every tick it
//! closes the acceptance questions nobody answered in time ([`close_unanswered`]), applying each
//! commune's policy, recording the outcome (audit `autonomy.unanswered`, actor `system`) and
//! re-dispatching the commune.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::domain::autonomy::{self, CommunePlan, Request, State, Unanswered};
use crate::domain::change::Change;
use crate::domain::manifest::Fleet;
use crate::domain::media::MediaInfo;
use crate::domain::schedule::Schedule;
use crate::error::Result;
use crate::store::{self, audit, now_ms, outbox};
use crate::workers::Context;

/// The questions kept in step with `schedules` and the plan of every commune whose setting is on
/// (empty, and nothing read beyond the settings, while no commune has a setting).
pub async fn prepare(
    ctx: &Context,
    fleet: &Fleet,
    schedules: &[Schedule],
    media: &HashMap<String, MediaInfo>,
    now: DateTime<Utc>,
    lookahead: Duration,
) -> Result<Vec<CommunePlan>> {
    let settings = store::autonomy::settings(&ctx.store).await?;
    if settings.is_empty() {
        return Ok(Vec::new());
    }
    let dur = |s: &Schedule| -> i64 {
        if let Some(r) = &s.relay {
            return i64::from(r.duration_s) * 1000;
        }
        let one: i64 = s
            .media
            .iter()
            .filter_map(|sha| media.get(sha).map(|m| m.delivered(sha).duration_ms))
            .sum();
        one * i64::from(s.repeat.max(1))
    };
    let needed = autonomy::needed(fleet, &settings, schedules, &dur, now, lookahead);
    let mut tx = ctx.store.begin_write().await?;
    store::autonomy::ensure(&mut tx, &needed, now_ms()).await?;
    tx.commit().await?;
    let requests = store::autonomy::requests(&ctx.store).await?;
    Ok(autonomy::plan(&settings, &needed, &requests))
}

/// Close the pending acceptance questions whose first occurrence is less than
/// `[autonomy] answer_lead_s` away: `unanswered`, with the outcome of the commune's policy
/// (`played` or `skipped`), audited and re-dispatched. How many were closed.
pub async fn close_unanswered(ctx: &Context) -> Result<usize> {
    let cutoff = now_ms() + ctx.settings.autonomy.answer_lead_s as i64 * 1000;
    let due = {
        let mut conn = ctx.store.pool.acquire().await?;
        store::autonomy::due(&mut conn, cutoff).await?
    };
    if due.is_empty() {
        return Ok(0);
    }
    let mut tx = ctx.store.begin_write().await?;
    // Read again under the write lock: an answer may have landed in between.
    let due = store::autonomy::due(&mut tx, cutoff).await?;
    let n = due.len();
    for (r, policy) in due {
        let after = Request {
            state: State::Unanswered,
            outcome: Some(
                match policy {
                    Unanswered::Play => "played",
                    Unanswered::Skip => "skipped",
                }
                .to_string(),
            ),
            answered_at: Some(Utc::now()),
            answered_by: Some("system".into()),
            ..r.clone()
        };
        if !store::autonomy::save_answer(&mut tx, &after, true).await? {
            continue;
        }
        audit::record(
            &mut tx,
            "system",
            "autonomy.unanswered",
            &format!("autonomy:{}", r.id),
            Some(json!({"area": r.area, "schedule_id": r.schedule_id, "state": r.state})),
            serde_json::to_value(&after).ok(),
        )
        .await?;
        outbox::insert(&mut tx, &Change::Areas(vec![r.area.clone()])).await?;
        tracing::info!(area = %r.area, schedule = %r.schedule_id, policy = policy.as_str(), "province item unanswered by the commune: its policy applies");
    }
    tx.commit().await?;
    ctx.wake.dispatch();
    Ok(n)
}
