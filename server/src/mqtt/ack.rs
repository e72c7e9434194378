//! Which of the link's QoS 1 publishes the broker has acknowledged: a pure tracker, driven by the
//! link task with rumqttc's events.
//!
//! rumqttc does not say which request became which packet id: it takes requests from its channel
//! in order and reports `Outgoing::Publish(pkid)` as it writes each one, then
//! `Incoming::PubAck(pkid)` when the broker takes it. So every publish handed to the client is
//! [`AckTracker::queue`]d in the same order (the link enqueues under the tracker's lock), the
//! oldest queued one becomes `pkid` at [`AckTracker::sent`], and [`AckTracker::acked`] settles
//! it. A lost connection fails every outstanding publish ([`AckTracker::disconnected`]): the
//! link's session is clean, so rumqttc drops them too. [`AckTracker::expire`] fails the ones past
//! their deadline; an expired publish keeps its place in the queue (as a tombstone), so the
//! publishes behind it still get their own packet ids.
//!
//! `W` is whatever the caller waits on (a oneshot sender in the link, a label in the tests).

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// One outstanding publish: who waits for it (nobody for a fire-and-forget publish or after it
/// expired) and until when.
#[derive(Debug)]
struct Entry<W> {
    waiter: Option<W>,
    deadline: Instant,
}

/// Outstanding publishes: handed to the client but not yet written, and written (by packet id)
/// but not yet acknowledged.
#[derive(Debug)]
pub struct AckTracker<W> {
    queued: VecDeque<Entry<W>>,
    inflight: HashMap<u16, Entry<W>>,
}

impl<W> Default for AckTracker<W> {
    fn default() -> Self {
        AckTracker {
            queued: VecDeque::new(),
            inflight: HashMap::new(),
        }
    }
}

impl<W> AckTracker<W> {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// A publish was handed to the client (in the client's request order). `waiter` is `None`
    /// for a publish nobody waits on; it still takes its packet id in turn.
    pub fn queue(&mut self, waiter: Option<W>, deadline: Instant) {
        self.queued.push_back(Entry { waiter, deadline });
    }

    /// The client refused the publish just queued (its channel was full or closed): forget it.
    /// Call it under the same lock as the [`AckTracker::queue`] it undoes.
    pub fn unqueue_last(&mut self) -> Option<W> {
        self.queued.pop_back().and_then(|e| e.waiter)
    }

    /// The client wrote the oldest queued publish as `pkid`. Returns the waiter of a publish that
    /// still held `pkid` (the client reuses an id only after its ack, so this is a lost ack: fail
    /// it).
    pub fn sent(&mut self, pkid: u16) -> Option<W> {
        let entry = self.queued.pop_front()?;
        self.inflight.insert(pkid, entry).and_then(|e| e.waiter)
    }

    /// The broker acknowledged `pkid`: the waiter to tell, if any.
    pub fn acked(&mut self, pkid: u16) -> Option<W> {
        self.inflight.remove(&pkid).and_then(|e| e.waiter)
    }

    /// The connection was lost: every outstanding publish fails. Returns their waiters.
    pub fn disconnected(&mut self) -> Vec<W> {
        let mut out: Vec<W> = self.queued.drain(..).filter_map(|e| e.waiter).collect();
        let mut inflight: Vec<(u16, Entry<W>)> = self.inflight.drain().collect();
        inflight.sort_by_key(|(pkid, _)| *pkid);
        out.extend(inflight.into_iter().filter_map(|(_, e)| e.waiter));
        out
    }

    /// Publishes whose deadline is at or before `now` fail. Returns their waiters; queued ones
    /// stay in line without a waiter so the ones behind them keep their packet ids.
    pub fn expire(&mut self, now: Instant) -> Vec<W> {
        let mut out = Vec::new();
        for e in self.queued.iter_mut().filter(|e| e.deadline <= now) {
            out.extend(e.waiter.take());
        }
        let late: Vec<u16> = self
            .inflight
            .iter()
            .filter(|(_, e)| e.deadline <= now)
            .map(|(pkid, _)| *pkid)
            .collect();
        for pkid in late {
            if let Some(e) = self.inflight.remove(&pkid) {
                out.extend(e.waiter);
            }
        }
        out
    }

    /// Publishes handed to the client and not yet acknowledged (including tombstones).
    pub fn outstanding(&self) -> usize {
        self.queued.len() + self.inflight.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::AckTracker;

    fn tracker(labels: &[&'static str], deadline: Instant) -> AckTracker<&'static str> {
        let mut t = AckTracker::new();
        for l in labels {
            t.queue(Some(*l), deadline);
        }
        t
    }

    #[test]
    fn acks_in_order_settle_each_publish_once() {
        let far = Instant::now() + Duration::from_secs(60);
        let mut t = tracker(&["a", "b", "c"], far);
        assert_eq!(t.sent(1), None);
        assert_eq!(t.sent(2), None);
        assert_eq!(t.acked(1), Some("a"));
        assert_eq!(t.sent(3), None);
        assert_eq!(t.acked(2), Some("b"));
        assert_eq!(t.acked(3), Some("c"));
        assert_eq!(t.acked(3), None, "a second ack settles nothing");
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn acks_out_of_order_settle_the_publish_with_that_packet_id() {
        let far = Instant::now() + Duration::from_secs(60);
        let mut t = tracker(&["a", "b", "c"], far);
        t.sent(7);
        t.sent(8);
        t.sent(9);
        assert_eq!(t.acked(9), Some("c"));
        assert_eq!(t.acked(7), Some("a"));
        assert_eq!(t.outstanding(), 1);
        assert_eq!(t.acked(8), Some("b"));
        assert_eq!(t.acked(42), None, "an unknown ack settles nothing");
    }

    #[test]
    fn publishes_nobody_waits_on_keep_their_turn() {
        let far = Instant::now() + Duration::from_secs(60);
        let mut t = AckTracker::new();
        t.queue(None, far);
        t.queue(Some("b"), far);
        t.sent(1);
        t.sent(2);
        assert_eq!(t.acked(1), None);
        assert_eq!(t.acked(2), Some("b"));
    }

    #[test]
    fn a_refused_publish_is_unqueued_without_a_turn() {
        let far = Instant::now() + Duration::from_secs(60);
        let mut t = tracker(&["a", "b"], far);
        assert_eq!(t.unqueue_last(), Some("b"));
        t.queue(Some("c"), far);
        t.sent(1);
        t.sent(2);
        assert_eq!(t.acked(2), Some("c"));
        assert_eq!(t.acked(1), Some("a"));
    }

    #[test]
    fn a_disconnect_fails_every_outstanding_publish() {
        let far = Instant::now() + Duration::from_secs(60);
        let mut t = tracker(&["a", "b", "c", "d"], far);
        t.sent(1);
        t.sent(2);
        assert_eq!(t.acked(1), Some("a"));
        let mut failed = t.disconnected();
        failed.sort();
        assert_eq!(failed, ["b", "c", "d"], "written and still queued alike");
        assert_eq!(t.outstanding(), 0);
        assert_eq!(t.acked(2), None, "an ack from the lost session settles nothing");
        // The next session numbers from its own requests.
        t.queue(Some("e"), far);
        t.sent(1);
        assert_eq!(t.acked(1), Some("e"));
    }

    #[test]
    fn a_publish_past_its_deadline_fails_and_keeps_its_turn() {
        let start = Instant::now();
        let soon = start + Duration::from_secs(10);
        let later = start + Duration::from_secs(20);
        let mut t = AckTracker::new();
        t.queue(Some("a"), soon);
        t.queue(Some("b"), soon);
        t.queue(Some("c"), later);
        t.sent(1);
        assert!(
            t.expire(start + Duration::from_secs(9)).is_empty(),
            "nothing is late yet"
        );
        let mut failed = t.expire(soon);
        failed.sort();
        assert_eq!(failed, ["a", "b"]);
        // `b` expired while queued: its packet id still comes, and `c` gets the one after it.
        t.sent(2);
        t.sent(3);
        assert_eq!(t.acked(1), None);
        assert_eq!(t.acked(2), None);
        assert_eq!(t.acked(3), Some("c"));
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn a_packet_id_reused_before_its_ack_fails_the_older_publish() {
        let far = Instant::now() + Duration::from_secs(60);
        let mut t = tracker(&["a", "b"], far);
        t.sent(5);
        assert_eq!(t.sent(5), Some("a"));
        assert_eq!(t.acked(5), Some("b"));
    }
}
