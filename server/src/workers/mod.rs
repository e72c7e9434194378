//! Layer `workers`: the background tasks: the dispatcher (outbox → signed manifests), the command
//! sender, the ingest loop of device traffic ([`ingest`], with its receipts), and the supervisor
//! that says how each one ended. It may import `mqtt`, `store`, `domain` and the foundation,
//! never `services` or `http`; only `lib.rs` starts it. (The dispatcher, the command sender and
//! the supervisor are still in the root `dispatch` and `command` modules; step D moves them here.)

pub mod ingest;
