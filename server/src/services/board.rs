//! The bulletin boards' use cases: a board's feed ([`build_feed`], rendered and cached per board
//! for one second by [`feed_cached`]), the board's token check ([`authorized`]) and proof of
//! display ([`record_displays`]), presence from the kiosk's change stream ([`connected`],
//! [`seen`], [`disconnected`]). And what the boards share inside one server: the
//! [`Generation`] counter that board event streams and the feed cache watch, and the
//! [`FeedCache`] of rendered feeds (both were process-wide statics).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::domain::bulletin::feed::{self, Feed, board_languages};
use crate::domain::bulletin::{DisplayBatch, DisplayStored, check_displays};
use crate::domain::scope::constant_time_eq;
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::store::{boards, now_ms};

/// How long a rendered feed is served from the cache, ms.
const CACHE_MS: i64 = 1000;

/// Build the feed of board `device_id` in `board_area` (with its own language first).
pub async fn build_feed(
    state: &AppState,
    device_id: &str,
    board_area: &str,
    board_language: Option<&str>,
) -> Result<Feed> {
    let ancestors = crate::store::areas::tree(&state.store)
        .await?
        .ancestors(board_area);
    let area_languages = crate::services::bulletins::languages_of(&state.store, board_area).await?;
    let languages = board_languages(area_languages.languages, board_language);
    let now = now_ms();
    let candidates = boards::published_to(&state.store, &ancestors, now).await?;
    let mut feed = feed::build(
        device_id,
        board_area,
        languages,
        candidates,
        now,
        &state.public_url,
    );
    // CAP alerts current for this area show first, as emergency bulletins.
    let alerts = crate::services::cap::board::board_items(state, board_area).await?;
    if !alerts.is_empty() {
        feed.emergency = true;
        feed.bulletins.splice(0..0, alerts);
    }
    feed.area_name = crate::store::areas::get(&state.store, board_area)
        .await?
        .map(|a| a.name)
        .unwrap_or_default();
    Ok(feed)
}

/// The feed's JSON and ETag, from the cache when fresh (404 for an unknown board).
pub async fn feed_cached(state: &AppState, device_id: &str) -> Result<CachedFeed> {
    let generation = state.bulletins.current();
    let now = now_ms();
    if let Some(c) = state.board_feeds.get(device_id)
        && c.generation == generation
        && now - c.at < CACHE_MS
    {
        return Ok(c);
    }
    let board = boards::board(&state.store, device_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("board {device_id}")))?;
    let feed = build_feed(state, device_id, &board.area, board.language.as_deref()).await?;
    let body = serde_json::to_vec(&feed).map_err(|e| Error::internal_from("board feed", e))?;
    let etag = format!("\"f-{}\"", &hex::encode(Sha256::digest(&body))[..24]);
    let c = CachedFeed {
        generation,
        at: now,
        token_hash: board.token_hash,
        etag,
        body: Bytes::from(body),
    };
    state.board_feeds.put(device_id, c.clone());
    Ok(c)
}

/// Whether `token` is the board's own token (sha256 compared with `token_hash`). Board tokens
/// are separate and scoped to one board: the admin token is not one (it would sit in a kiosk's
/// URL), nor is another board's token.
pub fn authorized(token: Option<&str>, token_hash: Option<&str>) -> bool {
    let Some(token) = token else { return false };
    match token_hash {
        Some(h) => {
            let got = hex::encode(Sha256::digest(token.as_bytes()));
            constant_time_eq(got.as_bytes(), h.trim().to_ascii_lowercase().as_bytes())
        }
        None => false,
    }
}

/// Record a board's proof of display (idempotent by each record's uuid).
pub async fn record_displays(
    state: &AppState,
    device_id: &str,
    batch: &DisplayBatch,
) -> Result<DisplayStored> {
    let now = now_ms();
    check_displays(batch, now)?;
    let (mut stored, mut duplicates) = (0, 0);
    for d in &batch.displays {
        if boards::insert_display(&state.store, device_id, d, now).await? {
            stored += 1;
        } else {
            duplicates += 1;
        }
    }
    Ok(DisplayStored { stored, duplicates })
}

/// A board's kiosk opened its change stream: the board is online in a new session (numbered by
/// the server's clock in ms, so a later connection is a newer session), written like a
/// loudspeaker's presence (`device_status` and the status history, `store::ingest::write`).
/// Returns the session.
pub async fn connected(state: &AppState, device_id: &str) -> Result<i64> {
    let now = now_ms();
    presence(state, device_id, true, now, now).await?;
    Ok(now)
}

/// A board's change stream `session` ended: its interval closes (a newer session that already
/// opened is left alone).
pub async fn disconnected(state: &AppState, device_id: &str, session: i64) -> Result<()> {
    presence(state, device_id, false, session, now_ms()).await
}

/// The stream of `session` is still open: the board was seen now (dates the end of its interval
/// should the server stop without closing it).
pub async fn seen(state: &AppState, device_id: &str, session: i64) -> Result<()> {
    boards::seen(&state.store, device_id, session, now_ms()).await
}

async fn presence(state: &AppState, device_id: &str, online: bool, session: i64, now: i64) -> Result<()> {
    let burst = crate::store::ingest::Burst {
        states: vec![crate::domain::presence::Presence {
            device: device_id.to_string(),
            online,
            session,
            at: now,
            retained: false,
            install: None,
        }],
        ..Default::default()
    };
    crate::store::ingest::write(&state.store, &burst, now).await?;
    Ok(())
}

/// A counter bumped whenever anything a board shows may have changed.
#[derive(Clone, Debug)]
pub struct Generation(Arc<watch::Sender<u64>>);

impl Default for Generation {
    fn default() -> Self {
        Generation(Arc::new(watch::channel(0).0))
    }
}

impl Generation {
    /// The current generation.
    pub fn current(&self) -> u64 {
        *self.0.borrow()
    }

    /// Tell boards that bulletins changed.
    pub fn bump(&self) {
        self.0.send_modify(|g| *g += 1);
    }

    /// Watch the generation (an event stream waits on `changed()`).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

/// One rendered board feed.
#[derive(Clone, Debug)]
pub struct CachedFeed {
    /// The [`Generation`] it was rendered at.
    pub generation: u64,
    /// Unix ms it was rendered at.
    pub at: i64,
    /// The board's token hash at that time.
    pub token_hash: Option<String>,
    /// Its ETag.
    pub etag: String,
    /// Its JSON.
    pub body: Bytes,
}

/// Most feeds kept before the cache starts over.
const MAX_FEEDS: usize = 100_000;

/// Rendered feeds by board device id.
#[derive(Clone, Debug, Default)]
pub struct FeedCache(Arc<Mutex<HashMap<String, CachedFeed>>>);

impl FeedCache {
    /// The cached feed of a board, if any.
    pub fn get(&self, device_id: &str) -> Option<CachedFeed> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(device_id)
            .cloned()
    }

    /// Keep a board's feed.
    pub fn put(&self, device_id: &str, feed: CachedFeed) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > MAX_FEEDS {
            map.clear();
        }
        map.insert(device_id.to_string(), feed);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bump_is_seen_by_watchers_and_caches_are_per_server() {
        let g = super::Generation::default();
        let rx = g.subscribe();
        g.bump();
        assert_eq!(g.current(), 1);
        assert!(rx.has_changed().unwrap());
        assert_eq!(super::Generation::default().current(), 0);
        let a = super::FeedCache::default();
        let b = super::FeedCache::default();
        a.put(
            "board-1",
            super::CachedFeed {
                generation: 1,
                at: 0,
                token_hash: None,
                etag: "\"x\"".into(),
                body: bytes::Bytes::new(),
            },
        );
        assert!(a.get("board-1").is_some() && b.get("board-1").is_none());
    }
}
