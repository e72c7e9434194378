//! nguon-provision: the device configuration schema shared with `nguon-agent`, and the
//! provisioning tool that turns a station list into device identities, credentials, keys,
//! config bundles and broker password/ACL files.
#![deny(missing_docs)]

pub mod config;

pub use config::{AudioOutput, ConfigError, DeviceConfig, DeviceKind};
