//! One producer's byte stream fanned out to any number of HTTP listeners: a live session's MP3
//! (`services::live`) and a relay's upstream stream (`services::relay`). A
//! `tokio::sync::broadcast` channel carries each batch once to every listener; a listener starts
//! at the next batch, one that falls more than the channel's capacity behind skips ahead, and
//! every listener's stream ends when the producer [`FanOut::end`]s it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures::Stream;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// A fan-out of byte batches.
pub struct FanOut {
    tx: broadcast::Sender<Bytes>,
    ended: CancellationToken,
    listeners: Arc<AtomicUsize>,
}

impl FanOut {
    /// A fan-out keeping up to `capacity` batches for slow listeners.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity);
        Self {
            tx,
            ended: CancellationToken::new(),
            listeners: Arc::default(),
        }
    }

    /// The producer's side (batches sent with no listener are dropped).
    pub fn sender(&self) -> broadcast::Sender<Bytes> {
        self.tx.clone()
    }

    /// End every listener's stream (once; later calls do nothing).
    pub fn end(&self) {
        self.ended.cancel();
    }

    /// Whether [`FanOut::end`] was called.
    pub fn is_ended(&self) -> bool {
        self.ended.is_cancelled()
    }

    /// A token cancelled at the end.
    pub fn ended(&self) -> CancellationToken {
        self.ended.clone()
    }

    /// Resolves at the end.
    pub async fn closed(&self) {
        self.ended.cancelled().await
    }

    /// Listeners connected now.
    pub fn listeners(&self) -> usize {
        self.listeners.load(Ordering::SeqCst)
    }

    /// One listener's stream, from the next batch on; it ends with the fan-out.
    pub fn listen(&self) -> impl Stream<Item = std::result::Result<Bytes, std::io::Error>> + use<> {
        let rx = self.tx.subscribe();
        self.listeners.fetch_add(1, Ordering::SeqCst);
        let guard = Listener(self.listeners.clone());
        let ended = self.ended.clone();
        futures::stream::unfold((rx, guard, ended), |(mut rx, guard, ended)| async move {
            loop {
                let got = tokio::select! {
                    _ = ended.cancelled() => None,
                    r = rx.recv() => Some(r),
                };
                match got {
                    Some(Ok(b)) => return Some((Ok(b), (rx, guard, ended))),
                    // A slow listener skips what it missed rather than falling further behind.
                    Some(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                    Some(Err(broadcast::error::RecvError::Closed)) | None => return None,
                }
            }
        })
    }
}

struct Listener(Arc<AtomicUsize>);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
