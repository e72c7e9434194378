//! The feedback retention worker (issue 15, docs/feedback.md): every hour it clears the name and
//! contact of every citizen's feedback received more than `feedback.retention_days` ago and
//! deletes its photos (rows in one transaction, then the files no row uses any more). The text,
//! the area, the answer and the dates stay for the reports.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::domain::feedback::photo::path_of;
use crate::error::Result;
use crate::store::{self, Store, now_ms};
use crate::workers::Context;

/// How often the purge runs.
pub const EVERY: Duration = Duration::from_secs(3600);

/// Purge what is older than the retention at `now`; the number of items purged. (The tests
/// call it with a chosen time.)
pub async fn purge(store: &Store, settings: &Settings, now: i64) -> Result<usize> {
    let days = settings.feedback.retention_days as i64;
    let (n, files) = store::feedback::purge(store, now - days * 86_400_000, now).await?;
    for sha in files {
        let p = path_of(&settings.data_dir, &sha);
        if let Err(e) = tokio::fs::remove_file(&p).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, file = %p.display(), "feedback photo not deleted");
        }
    }
    if n > 0 {
        tracing::info!(items = n, days, "feedback personal data purged");
    }
    Ok(n)
}

/// Run until cancelled: purge every hour (the first time at start).
pub async fn run(ctx: Context, cancel: CancellationToken) -> Result<()> {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        if let Err(e) = purge(&ctx.store, &ctx.settings, now_ms()).await {
            tracing::warn!(error = %e, "feedback purge failed; retrying at the next tick");
        }
    }
}
