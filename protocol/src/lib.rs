//! nguon wire contract: the MQTT topics, the JSON messages that travel on them, and the ed25519
//! envelope that signs every server → device message and every device report (state, telemetry,
//! events) of a device that has a key.
//!
//! This crate holds no I/O and no server or agent logic, so both sides (and tests) can depend on it.
//! The human-readable version of this contract is `docs/protocol.md`; keep the two in step.
#![deny(missing_docs)]

pub mod acl;
pub mod downmix;
pub mod icy;
pub mod ids;
pub mod message;
pub mod ota;
pub mod sign;
pub mod topic;

pub use ids::{AreaCode, DeviceId, IdError};
pub use message::*;
pub use ota::{AgentBuild, AgentTarget, Arch, UpdateState};
pub use sign::{
    Audience, DeviceKey, DeviceReport, KeyPair, ReportError, ReportKey, ServerBody, ServerKey, ServerMessage,
    SignError, Signed, open_report, open_report_text, seal_report, verifying_key_from_b64,
};

/// Version of the wire contract carried as `v` in every message. Bumped on incompatible change;
/// topics carry it too (`nguon/v1/...`).
pub const PROTOCOL_VERSION: u32 = 1;
