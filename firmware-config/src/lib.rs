//! nguon-provision: the provisioning tool that turns a station list into device identities, credentials, keys,
//! config bundles and broker password/ACL files.
#![deny(missing_docs)]

pub mod bundle;
pub mod cluster_certs;
pub use nguon_device_config as config;
pub mod credential;
pub mod error;
pub mod kiosk;
pub mod mosquitto;
pub mod provision;
pub mod registry;
pub mod sample;
pub mod spreadsheet;
pub mod state;
pub mod stations;

pub use config::{AudioOutput, ConfigError, DeviceConfig, DeviceKind};
pub use error::ProvisionError;
pub use provision::{BulkOptions, BulkReport, bulk};
pub use registry::{AreaEntry, DeviceEntry, Registry};
