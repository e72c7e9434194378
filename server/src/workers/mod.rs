//! Layer `workers`: the background tasks: the alarm evaluation ([`alarms`]) and its
//! [`notifier`] (webhooks, e-mail), the dispatcher (outbox → signed manifests), the command
//! sender ([`commands`]: the command outbox → signed commands), the ingest loop of device traffic
//! ([`ingest`], with its receipts and the [`resync`] of devices holding an older manifest), the [`leader`] lease that runs the singletons on one instance,
//! and the [`supervisor`] that says how each one ended. It may
//! import `mqtt`, `store`, `domain` and the foundation, never `services` or `http`; only `lib.rs`
//! starts it. The dispatcher gets a [`Context`]: what it needs of the process, not `AppState`.

pub mod alarms;
pub mod autonomy;
pub mod commands;
pub mod dispatcher;
pub mod feedback;
pub mod ingest;
pub mod leader;
pub mod notifier;
pub mod resync;
pub mod supervisor;

use std::sync::Arc;

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::mqtt::{Link, Signer};
use crate::store::Store;
use crate::store::outbox::Wake;

pub use supervisor::Supervisor;

/// What the background tasks share (cloning shares everything).
#[derive(Clone)]
pub struct Context {
    /// The database.
    pub store: Store,
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The server's MQTT connection.
    pub link: Link,
    /// The signing key and sequencer: every server → device message is numbered and signed here.
    pub signer: Signer,
    /// Wakes the tasks after a commit.
    pub wake: Wake,
    /// Base URL devices fetch media from, without trailing slash.
    pub public_url: Arc<str>,
    /// The leader lease: the dispatcher fences its writes with it.
    pub lease: leader::Lease,
}
