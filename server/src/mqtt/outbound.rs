//! The server → device messages other than manifests, built and signed here (numbered by the
//! [`Signer`]'s sequencer) and published by the workers on the [`Link`](crate::mqtt::Link):
//! receipts of stored events ([`receipt`]).

use nguon_protocol::{Audience, DeviceId, Receipt, ServerBody, topic};

use crate::mqtt::Signer;

/// How long a receipt may be acted on.
pub const RECEIPT_TTL: chrono::Duration = chrono::Duration::minutes(10);

/// A signed message ready to publish at QoS 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Topic.
    pub topic: String,
    /// The signed envelope.
    pub bytes: Vec<u8>,
    /// Whether the broker keeps it as the topic's retained message.
    pub retain: bool,
}

/// The receipt that tells `device` its `events` are stored (on `d/{id}/receipt`, not retained).
pub fn receipt(signer: &Signer, device: &DeviceId, events: Vec<uuid::Uuid>) -> Outgoing {
    Outgoing {
        topic: topic::receipt(device),
        bytes: signer.sign(
            Audience::Device(device.clone()),
            RECEIPT_TTL,
            ServerBody::Receipt(Receipt { events }),
        ),
        retain: false,
    }
}

