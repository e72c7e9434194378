//! Pull mode (issue 12 §4): every `cap.poll_interval_s` each feed of `cap.feeds` (Atom or RSS,
//! read by `feed-rs`) is fetched, and each item's CAP document — the item's link typed
//! `application/cap+xml`, else its first link, else a `<content src>` — is fetched and taken by
//! [`super::receive`] exactly as a POST would be (same validation, trust and dedup by identifier
//! and sender), as the caller `cap-feed`. Items already received are recognised without a
//! second fetch by their URL for the life of the process; a repeat that is fetched anyway is the
//! 409 of a repeated POST and is skipped quietly. Failures are logged and retried next round.

use std::collections::HashSet;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::services::AppState;

/// The caller feed items are received as (audit actor, `received_by`).
pub const FEED_ACTOR: &str = "cap-feed";
/// Largest feed or CAP document fetched, in bytes.
const MAX_FETCH: usize = 4 << 20;

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Items whose CAP was received (issued, waiting or recorded).
    pub received: usize,
    /// Items skipped as already received.
    pub known: usize,
    /// Items or feeds that failed.
    pub failed: usize,
}

/// The CAP URL of each item of a feed document.
pub fn item_urls(feed: &[u8]) -> Result<Vec<String>> {
    let f = feed_rs::parser::parse(feed)
        .map_err(|e| Error::unprocessable("invalid_feed", format!("not an Atom or RSS feed: {e}")))?;
    Ok(f.entries
        .iter()
        .filter_map(|e| {
            e.links
                .iter()
                .find(|l| l.media_type.as_deref().is_some_and(|t| t.contains("cap+xml")))
                .or_else(|| e.links.first())
                .map(|l| l.href.clone())
                .or_else(|| {
                    e.content
                        .as_ref()
                        .and_then(|c| c.src.as_ref())
                        .map(|l| l.href.clone())
                })
        })
        .collect())
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<Vec<u8>> {
    let r = client
        .get(url)
        .send()
        .await
        .map_err(Error::context(format!("fetch {url}")))?;
    if !r.status().is_success() {
        return Err(Error::internal(format!("fetch {url}: HTTP {}", r.status())));
    }
    let b = r.bytes().await.map_err(Error::context(format!("read {url}")))?;
    if b.len() > MAX_FETCH {
        return Err(Error::TooLarge(format!("{url}: over {MAX_FETCH} bytes")));
    }
    Ok(b.to_vec())
}

/// Poll every feed once; `seen` holds the item URLs already received.
pub async fn round(state: &AppState, client: &reqwest::Client, seen: &mut HashSet<String>) -> Round {
    let mut out = Round::default();
    for feed in &state.settings.cap.feeds {
        let urls = match fetch(client, feed).await.and_then(|b| item_urls(&b)) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(feed = %feed, error = %e, "CAP feed not read");
                out.failed += 1;
                continue;
            }
        };
        for url in urls {
            if seen.contains(&url) {
                out.known += 1;
                continue;
            }
            let got = match fetch(client, &url).await {
                Ok(b) => super::receive(state, FEED_ACTOR, &b).await,
                Err(e) => Err(e),
            };
            match got {
                Ok(r) => {
                    tracing::info!(url = %url, alert = %r.id, state = %r.state, "CAP item received from a feed");
                    seen.insert(url);
                    out.received += 1;
                }
                Err(Error::Conflict(_)) => {
                    seen.insert(url);
                    out.known += 1;
                }
                Err(e) => {
                    tracing::warn!(url = %url, error = %e, "CAP item from a feed refused");
                    if !e.is_internal() {
                        // Refused for what it says (invalid, expired): not fetched again.
                        seen.insert(url);
                    }
                    out.failed += 1;
                }
            }
        }
    }
    out
}

/// Poll the configured feeds until cancelled (only waits for that when none is configured: the
/// supervisor takes a task that ends for a failure).
pub async fn run(state: AppState, cancel: CancellationToken) -> Result<()> {
    if state.settings.cap.feeds.is_empty() {
        cancel.cancelled().await;
        return Ok(());
    }
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
    {
        Ok(c) => c,
        Err(e) => return Err(Error::internal_from("CAP feed client", e)),
    };
    let mut seen = HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(state.settings.cap.poll_interval_s));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        let r = round(&state, &client, &mut seen).await;
        if r.received + r.failed > 0 {
            tracing::info!(
                received = r.received,
                known = r.known,
                failed = r.failed,
                "CAP feeds polled"
            );
        }
    }
}
