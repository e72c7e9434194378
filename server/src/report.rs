//! The signed receipts that tell a device which of its events the server holds
//! ([`send_receipts`]). Step D1 moves them into workers; the report API that shared this file is
//! `http::reports`.

use std::collections::HashMap;

use nguon_protocol::{Audience, DeviceId, Receipt, ServerBody};

use crate::AppState;

/// How long a receipt may be acted on.
const RECEIPT_TTL: chrono::Duration = chrono::Duration::minutes(10);

/// After ingest committed a burst: tell each device which of its events are stored, with one
/// signed receipt on `d/{id}/receipt` (QoS 1). The device keeps every event until a receipt names
/// it, so nothing a broker drops on the way (queue limits, the server restarting) is lost; a lost
/// receipt only makes the device send the events again, and ingest stores each id once. Published
/// from a task of its own so that ingest does not wait for the broker.
pub fn send_receipts(state: &AppState, receipts: HashMap<DeviceId, Vec<uuid::Uuid>>) {
    if receipts.is_empty() {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        for (device, events) in receipts {
            let topic = nguon_protocol::topic::receipt(&device);
            let bytes = state.signer.sign(
                Audience::Device(device),
                RECEIPT_TTL,
                ServerBody::Receipt(Receipt { events }),
            );
            if let Err(e) = state.link.publish(&topic, bytes, false).await {
                tracing::warn!(error = %e, "cannot publish a receipt; the device will send its events again");
            }
        }
    });
}
