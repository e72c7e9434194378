//! When a manifest's media is fetched (issue 14). A province-wide change reaches every device
//! within seconds; if each fetched the new media at once, the whole fleet would open connections
//! to the server in the same second (at 100,000 simulated agents the server ran out of file
//! descriptors). So, per media file, the earliest pending item that needs it decides:
//!
//! - **at once** when an item that needs it is an emergency or a message with a validity window
//!   (`play_until`: emergency and priority messages caught up from the manifest), or when the item
//!   is prepared within [`SOON`] (30 s);
//! - otherwise at an instant drawn uniformly in `[now, now + w]`, where `w` is the smaller of
//!   `media.prefetch_spread_secs` and half the time left before the item is prepared
//!   (start − lead). So a file is fetched at the latest halfway to its preparation, and a failed
//!   attempt has the other half to succeed.
//!
//! A play-now command does not come through here: its media is fetched when it is prepared, at
//! once. A failed attempt is tried again with exponential backoff and jitter
//! ([`crate::cache::retry_wait`]) while the retry would start before the item's preparation; after
//! that the preparation fetches it itself (and retries while the item can still play).
//! [`plan`] is pure (the random draw is passed in); [`run`] carries a plan out in one task, one
//! file at a time, so a device holds at most one connection to the server for its media.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use nguon_protocol::{ManifestItem, MediaRef, Priority};

use crate::cache::{Cache, retry_wait};
use crate::clock::Clock;

/// An item prepared within this has its media fetched at once.
pub const SOON: Duration = Duration::from_secs(30);

/// One media file to fetch.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetch {
    /// The file.
    pub media: MediaRef,
    /// When to start (device time).
    pub at: DateTime<Utc>,
    /// How long after the plan was made that is.
    pub delay: Duration,
    /// When the first item that needs it is prepared: no retry starts after this.
    pub until: DateTime<Utc>,
    /// Fetched at once (an emergency, a message with a window, an item prepared within [`SOON`]).
    pub urgent: bool,
}

/// Whether an item's media is fetched at once whatever its start.
pub fn is_urgent(item: &ManifestItem) -> bool {
    item.priority == Priority::Emergency || item.play_until.is_some()
}

/// The fetch plan for the `pending` items of a manifest (by start), whose media the manifest lists
/// in `media`: one [`Fetch`] per file, by `at`. `draw(w)` picks the delay in `[0, w]` (uniform on a
/// device; fixed in tests). Files the manifest does not list are left out (the item fails when
/// prepared, naming the file).
pub fn plan(
    pending: &[ManifestItem],
    media: &HashMap<String, MediaRef>,
    now: DateTime<Utc>,
    lead: Duration,
    spread: Duration,
    mut draw: impl FnMut(Duration) -> Duration,
) -> Vec<Fetch> {
    let lead = chrono::Duration::from_std(lead).unwrap_or_default();
    // Per file: when it is first prepared, and whether any item that needs it is urgent.
    let mut need: HashMap<&str, (DateTime<Utc>, bool)> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    for item in pending {
        let prepared = item.starts_at - lead;
        for sha in &item.media {
            let e = need.entry(sha.as_str()).or_insert_with(|| {
                order.push(sha.as_str());
                (prepared, false)
            });
            e.0 = e.0.min(prepared);
            e.1 |= is_urgent(item);
        }
    }
    let mut out: Vec<Fetch> = order
        .into_iter()
        .filter_map(|sha| {
            let (until, urgent) = need[sha];
            let m = media.get(sha)?.clone();
            let left = (until - now).to_std().unwrap_or_default();
            let urgent = urgent || left < SOON;
            let window = spread.min(left / 2);
            let delay = if urgent || window.is_zero() {
                Duration::ZERO
            } else {
                draw(window).min(window)
            };
            Some(Fetch {
                media: m,
                at: now + chrono::Duration::from_std(delay).unwrap_or_default(),
                delay,
                until: until.max(now),
                urgent,
            })
        })
        .collect();
    out.sort_by_key(|f| f.at);
    out
}

/// A uniform draw in `[0, w]`.
pub fn uniform(w: Duration) -> Duration {
    use rand::Rng;
    rand::rng().random_range(Duration::ZERO..=w)
}

/// Carry out a plan: each file at its instant, one at a time (the earliest next attempt first);
/// a transient failure is tried again after [`retry_wait`] if that is before its `until`,
/// otherwise reported. The cache is trimmed (keeping `protect`) first and after each file.
pub async fn run(plan: Vec<Fetch>, cache: Arc<Cache>, clock: Clock, protect: HashSet<String>) {
    cache.evict(&protect);
    // (next attempt, attempts so far, fetch)
    let mut todo: Vec<(DateTime<Utc>, u32, Fetch)> = plan.into_iter().map(|f| (f.at, 0, f)).collect();
    while !todo.is_empty() {
        let next = (0..todo.len()).min_by_key(|&i| todo[i].0).unwrap_or(0);
        let (at, attempt, f) = todo.swap_remove(next);
        tokio::time::sleep_until(tokio::time::Instant::from_std(clock.instant_at(at))).await;
        match cache.fetch(&f.media).await {
            Ok(_) => {
                cache.evict(&protect);
            }
            Err(e) => {
                let wait = retry_wait(attempt);
                let retry = clock.now() + chrono::Duration::from_std(wait).unwrap_or_default();
                if e.is_transient() && retry < f.until {
                    tracing::warn!(sha256 = %f.media.sha256, error = %e, wait_ms = wait.as_millis() as u64, "media prefetch failed; trying again");
                    todo.push((retry, attempt + 1, f));
                } else {
                    tracing::warn!(sha256 = %f.media.sha256, error = %e, "prefetch failed");
                    cache.failed(&f.media.sha256, &e).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nguon_protocol::OnPreempt;

    fn media(n: u8) -> MediaRef {
        MediaRef {
            sha256: format!("{n:02x}").repeat(32),
            size: 1,
            url: format!("/m/{n}"),
            duration_ms: 1000,
        }
    }

    fn item(id: &str, at: DateTime<Utc>, priority: Priority, m: &MediaRef) -> ManifestItem {
        ManifestItem {
            id: id.into(),
            schedule_id: format!("s-{id}"),
            title: id.into(),
            starts_at: at,
            priority,
            volume: 100,
            media: vec![m.sha256.clone()],
            repeat: 1,
            on_preempt: OnPreempt::Interrupt,
            play_until: None,
            repetition: None,
            relay: None,
        }
    }

    const LEAD: Duration = Duration::from_millis(1500);

    /// Three files and the manifest's list of them.
    fn three() -> (MediaRef, MediaRef, MediaRef, HashMap<String, MediaRef>) {
        let (a, b, c) = (media(1), media(2), media(3));
        let lib = [&a, &b, &c]
            .iter()
            .map(|m| (m.sha256.clone(), (*m).clone()))
            .collect();
        (a, b, c, lib)
    }

    #[test]
    fn the_window_is_the_spread_or_half_the_time_to_preparation_and_an_item_prepared_within_30_s_is_fetched_at_once()
     {
        let now = Utc::now();
        let (a, b, c, lib) = three();
        let secs = |s: i64| now + chrono::Duration::seconds(s) + chrono::Duration::milliseconds(1500);
        let items = vec![
            item("in-80-s", secs(80), Priority::Normal, &a),
            item("in-2-h", now + chrono::Duration::hours(2), Priority::Normal, &b),
            item("in-29-s", secs(29), Priority::Normal, &c),
        ];
        let mut windows = Vec::new();
        let p = plan(&items, &lib, now, LEAD, Duration::from_secs(300), |w| {
            windows.push(w);
            w
        });
        // Prepared in 80 s: a 40 s window; in 2 h: the spread; in 29 s: soon, at once.
        assert_eq!(windows, [Duration::from_secs(40), Duration::from_secs(300)]);
        let at = |m: &MediaRef| p.iter().find(|f| f.media == *m).unwrap().clone();
        assert_eq!(at(&a).at - now, chrono::Duration::seconds(40));
        assert_eq!(at(&b).at - now, chrono::Duration::seconds(300));
        assert_eq!((at(&c).at, at(&c).urgent), (now, true));
        assert_eq!(at(&a).until, now + chrono::Duration::seconds(80));
        // A draw is capped at its window.
        let q = plan(&items, &lib, now, LEAD, Duration::from_secs(300), |w| w * 2);
        assert_eq!(q.iter().map(|f| f.delay).max(), Some(Duration::from_secs(300)));
        // By instant.
        assert_eq!(p.iter().map(|f| f.media.clone()).collect::<Vec<_>>(), [c, a, b]);
    }

    #[test]
    fn emergencies_and_messages_with_a_window_are_fetched_at_once_and_a_shared_file_goes_by_its_first_item() {
        let now = Utc::now();
        let (a, b, c, lib) = three();
        let mut msg = item("msg", now + chrono::Duration::hours(1), Priority::Priority, &b);
        msg.play_until = Some(now + chrono::Duration::hours(3));
        let items = vec![
            item("e", now + chrono::Duration::hours(1), Priority::Emergency, &a),
            msg,
            item(
                "n1",
                now + chrono::Duration::seconds(61) + chrono::Duration::milliseconds(500),
                Priority::Normal,
                &c,
            ),
            item("n2", now + chrono::Duration::hours(5), Priority::Normal, &c),
        ];
        let p = plan(&items, &lib, now, LEAD, Duration::from_secs(300), |w| w);
        assert_eq!(p.len(), 3, "{p:?}");
        for f in &p[..2] {
            assert!(f.urgent && f.at == now, "{f:?}");
        }
        assert_eq!(
            (p[2].media.clone(), p[2].at - now),
            (c, chrono::Duration::seconds(30))
        );
        // A spread of 0: everything at once.
        let p = plan(&items, &lib, now, LEAD, Duration::ZERO, |w| w);
        assert!(p.iter().all(|f| f.at == now), "{p:?}");
    }

    #[test]
    fn uniform_draws_stay_within_the_window_and_spread_over_it() {
        let w = Duration::from_secs(10);
        let d: Vec<Duration> = (0..200).map(|_| uniform(w)).collect();
        assert!(d.iter().all(|x| *x <= w));
        assert!(
            d.iter().any(|x| *x < w / 4) && d.iter().any(|x| *x > w * 3 / 4),
            "{d:?}"
        );
    }
}
