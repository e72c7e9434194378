//! The receive hook: the fleet simulator's way to stamp the instant a publish was read from the
//! broker, apart from the agent's own work (issue 14's delivery vs processing figures).

use std::sync::Arc;
use std::time::Instant;

/// Called by the poll task with the topic and the instant a publish was read from the broker,
/// before it is verified or handed on: the fleet simulator measures broker delivery apart from the
/// agent's own work. `None` on a device, where it costs one branch per message.
#[derive(Clone)]
pub struct ReceiveHook(pub(crate) Arc<ReceiveFn>);

/// What a [`ReceiveHook`] calls: `(topic, received_at)`.
type ReceiveFn = dyn Fn(&str, Instant) + Send + Sync;

impl ReceiveHook {
    /// A hook calling `f(topic, received_at)`; keep it short, it runs on the poll task.
    pub fn new(f: impl Fn(&str, Instant) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
}

impl std::fmt::Debug for ReceiveHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReceiveHook(..)")
    }
}
