//! System tests of the edge agent against a private mosquitto, a media server with Range support
//! and a test signing key. Each test has its own temp dir, broker and ports. One test binary
//! (`cargo test -p nguon-agent --test agent`), one module per area; the helpers shared with other
//! test binaries live in `tests/common`.

#[path = "../common/mod.rs"]
mod common;
mod env;

mod amplifier;
mod failover;
mod fetch;
mod live;
mod messages;
mod mirrors;
mod outbox;
mod playback;
mod process;
mod resilience;
