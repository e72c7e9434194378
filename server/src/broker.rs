//! TODO(broker): stub awaiting implementation.

use std::net::SocketAddr;

use crate::{Result, Settings, Store};

/// The broker in use.
pub struct Broker {
    addr: Option<SocketAddr>,
}

impl Broker {
    /// Address of the embedded broker, if one runs.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.addr
    }
}

/// Start the embedded broker unless an external one is configured.
pub async fn start(_settings: &Settings, _store: &Store) -> Result<Broker> {
    Ok(Broker { addr: None })
}
