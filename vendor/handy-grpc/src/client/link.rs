//! nguon (VENDORED.md, change 5): the state of a duplex client's stream to its peer, so that a
//! request to a peer that cannot be reached fails once a fresh attempt to reach it failed,
//! instead of waiting in the queue for its whole timeout (rmqtt's cluster gives a connecting
//! client's "kick" to every peer 15 s: with every peer down, a node's first MQTT connections,
//! its own server's among them, waited that long).
//!
//! The stream's task marks each attempt (`Connecting`), its success (`Up`) and its failure or
//! a broken stream (`Down`), then waits 3 s before the next attempt, as before, unless a request
//! arrives: a request that finds the link `Down` wakes the task for an attempt at once and waits
//! for its outcome. So a request is queued as before and fails only when the attempt made for
//! it fails (at once when refused, after the connect timeout when the peer does not answer), and
//! a peer that came back is reached by the first request after, not up to 3 s later. The
//! attempts are counted, so a request sees that its attempt began even when it already failed
//! again by the time the request runs (its test hung on that before the crate's tests ran in
//! the workspace).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

/// How long the stream's task waits between attempts when no request asks for one.
const RETRY: Duration = Duration::from_secs(3);

/// The state of the stream to the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Connecting,
    Up,
    Down,
}

/// The state, and how many attempts have begun (so that a request waiting for "an attempt
/// began" sees one even when it already failed again before the request was polled: a
/// `watch` shows only the latest value).
type Shared = (State, u64);

/// The stream task's side.
pub(crate) struct LinkTx {
    state: watch::Sender<Shared>,
    wake: Arc<Notify>,
}

/// The requests' side.
#[derive(Clone)]
pub(crate) struct Link {
    state: watch::Receiver<Shared>,
    wake: Arc<Notify>,
}

/// A new link, `Connecting`.
pub(crate) fn link() -> (LinkTx, Link) {
    let (tx, rx) = watch::channel((State::Connecting, 0));
    let wake = Arc::new(Notify::new());
    (
        LinkTx {
            state: tx,
            wake: wake.clone(),
        },
        Link { state: rx, wake },
    )
}

impl LinkTx {
    /// An attempt begins.
    pub(crate) fn attempt(&self) {
        self.state.send_modify(|(s, n)| {
            *s = State::Connecting;
            *n += 1;
        });
    }

    /// The stream is up.
    pub(crate) fn up(&self) {
        self.state.send_modify(|(s, _)| *s = State::Up);
    }

    /// The attempt failed or the stream broke: wait for a request or the retry interval.
    pub(crate) async fn down(&self) {
        self.state.send_modify(|(s, _)| *s = State::Down);
        let _ = tokio::time::timeout(RETRY, self.wake.notified()).await;
    }
}

impl Link {
    /// Before queueing a request: if the link is down, ask for an attempt now and wait until it
    /// has begun (or the link is up again), even if that attempt has failed since.
    pub(crate) async fn ready(&self) {
        let (state, attempts) = *self.state.borrow();
        if state == State::Down {
            self.wake.notify_one();
            let mut state = self.state.clone();
            let _ = state
                .wait_for(|(s, n)| *s != State::Down || *n > attempts)
                .await;
        }
    }

    /// `fut`'s output, or `None` as soon as the link is (or goes) down.
    pub(crate) async fn unless_down<T>(&self, fut: impl Future<Output = T>) -> Option<T> {
        let mut state = self.state.clone();
        tokio::select! {
            out = fut => Some(out),
            _ = state.wait_for(|(s, _)| *s == State::Down) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_on_a_down_link_asks_for_an_attempt_and_fails_with_it() {
        let (tx, link) = link();
        let (reply_tx, reply_rx) = tokio::sync::oneshot::channel::<u8>();
        reply_tx.send(7).unwrap();
        assert_eq!(link.unless_down(reply_rx).await, Some(Ok(7)));
        // The task: fails, waits, is woken by a request at once (not after RETRY), fails again.
        let task = tokio::spawn(async move {
            tx.down().await;
            tx.attempt();
            tx.down().await;
            tx
        });
        while link.state.borrow().0 != State::Down {
            tokio::task::yield_now().await;
        }
        link.ready().await;
        let (_reply_tx, reply_rx) = tokio::sync::oneshot::channel::<u8>();
        assert_eq!(link.unless_down(reply_rx).await, None);
        task.abort();
    }
}
