//! TODO(dispatch): stub awaiting implementation.

use tokio::sync::mpsc;

use crate::broker::Broker;
use crate::link::LinkEvents;
use crate::{AppState, Result};

/// What changed.
#[derive(Debug, Clone)]
pub enum Change {
    /// Recompute every device.
    All,
    /// Recompute these devices.
    Devices(Vec<String>),
}

/// Handle to notify the dispatcher.
#[derive(Clone)]
pub struct DispatchHandle {
    tx: mpsc::UnboundedSender<Change>,
}

impl DispatchHandle {
    /// A handle and the receiving end for the dispatcher task.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<Change>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, rx)
    }
    /// Desired state changed.
    pub fn changed(&self, c: Change) {
        let _ = self.tx.send(c);
    }
}

/// Background tasks.
pub struct Background {}

impl Background {
    /// Start them.
    pub async fn start(
        _state: AppState,
        _broker: Broker,
        _rx: mpsc::UnboundedReceiver<Change>,
        _events: LinkEvents,
    ) -> Result<Background> {
        Ok(Background {})
    }
    /// Wait until one ends.
    pub async fn wait(&mut self) -> Result<()> {
        std::future::pending().await
    }
    /// Stop all.
    pub async fn stop(&mut self) {}
}
