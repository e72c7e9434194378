//! Numbering and signing of every server → device message. [`Sequencer`] hands out the sequence
//! numbers (one counter per server process, strictly increasing across restarts: its floor is
//! raised at start to the largest number stored); [`Signer`] pairs it with the server's ed25519
//! key. Devices drop a message whose sequence is not above the last one they accepted on its
//! stream (see `docs/scheduling.md`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Utc;
use ed25519_dalek::VerifyingKey;
use nguon_protocol::{Audience, ServerBody, ServerKey, ServerMessage};

/// Sequence numbers for every (audience, stream): `max(now in µs, last + 1)`.
#[derive(Debug, Default)]
pub struct Sequencer {
    last: AtomicU64,
}

impl Sequencer {
    /// A sequencer starting from the clock.
    pub fn new() -> Sequencer {
        Sequencer::default()
    }

    /// The next number: the current time in microseconds, or one more than the last number
    /// handed out when the clock has not moved past it (or stepped back).
    pub fn next(&self) -> u64 {
        let now = Utc::now().timestamp_micros().max(0) as u64;
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(x) => last = x,
            }
        }
    }

    /// Never hand out `floor` or anything below it (at start: the largest number stored).
    pub fn raise_floor(&self, floor: u64) {
        self.last.fetch_max(floor, Ordering::SeqCst);
    }
}

/// The server's signing key with its sequencer (cloning shares both).
#[derive(Clone, Debug)]
pub struct Signer {
    key: Arc<ServerKey>,
    seq: Arc<Sequencer>,
}

impl Signer {
    /// A signer for `key` with a fresh sequencer.
    pub fn new(key: ServerKey) -> Signer {
        Signer {
            key: Arc::new(key),
            seq: Arc::new(Sequencer::new()),
        }
    }

    /// The sequencer (to raise its floor at start).
    pub fn sequencer(&self) -> &Sequencer {
        &self.seq
    }

    /// Base64 of the public key (`GET /api/v1/keys/server`).
    pub fn public_b64(&self) -> String {
        self.key.public_b64()
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// A new message for `audience` with the next sequence number, issued now, valid for `ttl`.
    pub fn numbered(&self, audience: Audience, ttl: chrono::Duration, body: ServerBody) -> ServerMessage {
        ServerMessage::new(audience, self.seq.next(), ttl, body)
    }

    /// The signature of an agent release (`docs/ota.md`): base64 ed25519 over
    /// `nguon-agent-release/v1\n{version}\n{arch}\n{sha256}`.
    pub fn sign_release(&self, version: &str, arch: nguon_protocol::Arch, sha256: &str) -> String {
        self.key.sign_release(version, arch, sha256)
    }

    /// The signed wire form of a message made by [`Signer::numbered`].
    pub fn sign_message(&self, msg: &ServerMessage) -> Vec<u8> {
        self.key.sign(msg).to_bytes()
    }

    /// Number, sign and serialise a message in one step.
    pub fn sign(&self, audience: Audience, ttl: chrono::Duration, body: ServerBody) -> Vec<u8> {
        self.sign_message(&self.numbered(audience, ttl, body))
    }
}

#[cfg(test)]
mod tests {
    use nguon_protocol::{Audience, DeviceId, Receipt, ServerBody, ServerKey, ServerMessage};

    use super::{Sequencer, Signer};

    #[test]
    fn sequence_numbers_increase_and_respect_the_floor() {
        let s = Sequencer::new();
        let a = s.next();
        let b = s.next();
        assert!(b > a);
        let far = b + 10_000_000_000;
        s.raise_floor(far);
        assert_eq!(s.next(), far + 1);
        s.raise_floor(1);
        assert_eq!(s.next(), far + 2);
    }

    #[test]
    fn a_signed_message_opens_with_the_public_key() {
        let signer = Signer::new(ServerKey::generate());
        let device = DeviceId::parse("dev-1").unwrap();
        let body = ServerBody::Receipt(Receipt { events: vec![] });
        let bytes = signer.sign(
            Audience::Device(device.clone()),
            chrono::Duration::minutes(1),
            body,
        );
        let msg = ServerMessage::open(
            &bytes,
            &signer.verifying_key(),
            &Audience::Device(device),
            chrono::Utc::now(),
            chrono::Duration::seconds(60),
        )
        .expect("opens");
        assert!(msg.seq > 0);
        let second = signer.numbered(
            Audience::Device(DeviceId::parse("dev-1").unwrap()),
            chrono::Duration::minutes(1),
            ServerBody::Receipt(Receipt { events: vec![] }),
        );
        assert!(second.seq > msg.seq);
    }
}
