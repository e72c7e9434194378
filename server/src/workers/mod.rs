//! Layer `workers`: the background tasks: the dispatcher (outbox → signed manifests), the command
//! sender ([`commands`]: the command outbox → signed commands), the ingest loop of device traffic
//! ([`ingest`], with its receipts), and the supervisor that says how each one ended. It may
//! import `mqtt`, `store`, `domain` and the foundation, never `services` or `http`; only `lib.rs`
//! starts it. (The dispatcher and the supervisor are still in the root `dispatch` module; step D
//! moves them here.)

pub mod commands;
pub mod ingest;
