//! What the bulletin boards share inside one server: the [`Generation`] counter that board event
//! streams and the feed cache watch, and the [`FeedCache`] of rendered feeds (both were
//! process-wide statics).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::watch;

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
