//! nguon-tests: what drives nguon like the field does. Helpers for system tests (free ports,
//! child processes killed on drop, a private Mosquitto, a cuttable TCP proxy, a database per
//! test, test audio and a sample comparator, an API client), the fleet simulator (thousands of
//! real agents in one process) and the raw MQTT baseline of the benchmarks.
#![deny(missing_docs)]

pub mod api;
pub mod audio;
pub mod balancer;
pub mod baseline;
pub mod commands;
pub mod db;
pub mod fleet;
pub mod harness;
pub mod icecast;
pub mod instances;
pub mod live;
pub mod live_page;
pub mod mosquitto;
pub mod mosquitto_tree;
pub mod nats;
pub mod net;
pub mod ota;
pub mod process;
pub mod province;
pub mod proxy;
pub mod sinks;
pub mod stats;
pub mod tones;

/// Install the rustls crypto provider (ring) once; harmless if already installed.
pub fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
