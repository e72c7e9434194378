//! The content addresses known to be public (issue 14, "the storm"): an emergency makes every
//! device fetch the same clip at once, and `GET /media/{sha256}` asked the database for its review
//! status on every request (one to three queries, beside the ingest of the devices' acks). Once a
//! file (or its normalised rendition) is seen `approved`, its address is remembered here and later
//! requests are answered without the database.
//!
//! Why this needs no invalidation, also across instances: `approved` is final. No review step
//! leaves it (`domain::review::ReviewAction::sources` never lists it; a unit test there holds
//! that), no media record is ever deleted, and the bytes at an address cannot change. Only the
//! positive answer is remembered: a draft, pending or rejected file is looked up every time, so
//! its approval on another instance is seen at once. Should a withdrawal ever be added, it must
//! clear this set (and tell the other instances), and that test fails first.

use std::collections::HashSet;
use std::sync::RwLock;

/// The set of public content addresses (originals and renditions), bounded by the library.
#[derive(Debug, Default)]
pub struct PublicMedia {
    known: RwLock<HashSet<String>>,
}

impl PublicMedia {
    /// Whether `sha` is known to be approved.
    pub fn contains(&self, sha: &str) -> bool {
        self.known.read().map(|k| k.contains(sha)).unwrap_or(false)
    }

    /// Remember that `sha` is approved.
    pub fn insert(&self, sha: &str) {
        if let Ok(mut k) = self.known.write() {
            k.insert(sha.to_string());
        }
    }
}
