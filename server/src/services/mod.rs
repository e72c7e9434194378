//! Layer `services`: the use cases, one module per group. A write use case validates, then runs
//! ONE transaction that writes the change, its outbox row (when it affects any device's desired
//! state, `store::outbox`) and its audit entry (`store::audit`), commits, and wakes the
//! dispatcher. It may import `store`, `domain` and the foundation; `http`, `console` and `board`
//! import it. It never names `sqlx` (transactions are `store::Tx`) nor `axum`.
//!
//! [`AppState`] is the state every request and task shares. Nothing of it is process-global: two
//! servers in one process (the tests) share nothing, and several server processes may later share
//! one database.

pub mod alarms;
pub mod areas;
pub mod auth;
pub mod autonomy;
pub mod backup;
pub mod board;
pub mod bulletins;
pub mod cap;
pub mod commands;
pub mod demo;
pub mod devices;
pub mod fanout;
pub mod feedback;
pub mod live;
pub mod media;
pub mod notifications;
pub mod ota;
pub mod policies;
pub mod public;
pub mod relay;
pub mod reports;
pub mod schedules;
pub mod speech;
pub mod submissions;
pub mod throttle;
pub mod users;

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::Settings;
use crate::domain::user::AdminToken;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::store::outbox::Wake;

/// Shared state handed to every handler and background task.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Bootstrap admin bearer token (only its sha256).
    pub admin_token: Arc<AdminToken>,
    /// Base64 of the server's public signing key (`GET /api/v1/keys/server`); services never sign.
    pub server_public_key: Arc<str>,
    /// Base URL devices use to fetch media, without trailing slash.
    pub public_url: Arc<str>,
    /// Wakes the dispatcher and the command sender after a commit.
    pub wake: Wake,
    /// `true` while the server's MQTT link holds a subscribed connection.
    pub link_up: watch::Receiver<bool>,
    /// The boards' feed cache.
    pub board_feeds: board::FeedCache,
    /// The generation counter bumped whenever anything a board shows may have changed.
    pub bulletins: board::Generation,
    /// The text-to-speech engine in use.
    pub tts: speech::TtsSlot,
    /// Per-address and global request budgets, the argon2 concurrency cap.
    pub limits: Arc<throttle::Limits>,
    /// The live broadcasts of this process (`services::live`).
    pub live: Arc<live::Registry>,
    /// The relays this process proxies (`services::relay`).
    pub relays: Arc<relay::Relays>,
    /// Media addresses known to be approved (`GET /media/{sha256}` without the database).
    pub public_media: Arc<media::public::PublicMedia>,
    /// Approved media files held in memory (`server.media_memory_mb`).
    pub hot_media: Arc<media::hot::HotFiles>,
}
