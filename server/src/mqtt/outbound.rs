//! The server → device messages other than manifests, built and signed here (numbered by the
//! [`Signer`]'s sequencer) and published by the workers on the [`Link`](crate::mqtt::Link):
//! receipts of stored events ([`receipt`]) and immediate commands ([`command`]).

use nguon_protocol::{Audience, Command, DeviceId, Receipt, ServerBody, ServerMessage, topic};

use crate::domain::command::Addressed;
use crate::error::{Error, Result};
use crate::mqtt::Signer;
use crate::store::commands::Pending;
use crate::store::from_ms;

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

/// The signed command `c` as its devices get it (not retained): the envelope id is the command
/// id, it is valid from its issue to its expiry, and it carries the sequence number stored with
/// it (`c.seq`, given once by the sender), so every retry is the same message and a device
/// acts on it once.
pub fn command(signer: &Signer, c: &Pending) -> Result<Outgoing> {
    let audience = Addressed::audience(&c.target_kind, &c.target)?;
    command_to(signer, c, audience, c.topic.clone())
}

/// A CAP alert's command (target kind `alert`) as one device gets it: the same id, sequence
/// number and times on `d/{device}/cmd`, addressed to that device.
pub fn alert_command(signer: &Signer, c: &Pending, device: &str) -> Result<Outgoing> {
    let d = nguon_protocol::DeviceId::parse(device)
        .map_err(|e| Error::internal(format!("stored target device `{device}`: {e}")))?;
    let topic = nguon_protocol::topic::cmd(&d);
    command_to(signer, c, Audience::Device(d), topic)
}

fn command_to(signer: &Signer, c: &Pending, audience: Audience, topic: String) -> Result<Outgoing> {
    let body: Command = serde_json::from_str(&c.body).map_err(Error::context("stored command"))?;
    let id: uuid::Uuid = c.id.parse().map_err(Error::context("stored command id"))?;
    let mut msg = ServerMessage::new(
        audience,
        c.seq.max(0) as u64,
        chrono::Duration::zero(),
        ServerBody::Command(body),
    );
    msg.id = id;
    msg.issued_at = from_ms(c.issued_at);
    msg.expires_at = from_ms(c.expires_at);
    Ok(Outgoing {
        topic,
        bytes: signer.sign_message(&msg),
        retain: false,
    })
}
