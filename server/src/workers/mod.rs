//! Layer `workers`: the background tasks: the dispatcher (outbox → signed manifests), the command
//! sender, the ingest loop of device traffic, and the supervisor that says how each one ended.
//! It may import `mqtt`, `store`, `domain` and the foundation, never `services` or `http`; only
//! `lib.rs` starts it. (The tasks themselves are still in the root `dispatch` and `ingest`
//! modules; step D moves them here.)
