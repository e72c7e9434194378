//! TODO(link): stub awaiting implementation.

use std::sync::Arc;

use crate::broker::Broker;
use crate::metrics::Metrics;
use crate::{Result, Settings};

/// The server's MQTT connection.
#[derive(Clone)]
pub struct Link {}

/// Incoming MQTT traffic for ingest.
pub struct LinkEvents {}

impl Link {
    /// Connect to the broker.
    pub async fn connect(_s: &Settings, _b: &Broker, _m: Arc<Metrics>) -> Result<(Link, LinkEvents)> {
        Ok((Link {}, LinkEvents {}))
    }
}
