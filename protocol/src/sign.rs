//! The signed envelope. A signed message is `{"v":1,"payload":"<JSON text>","sig":"<base64>"}`:
//! the signature is ed25519 over the bytes `nguon/v1\n` followed by the UTF-8 bytes of `payload`,
//! exactly as sent. Signing the transmitted text (not a re-serialisation) is the canonical encoding:
//! no JSON canonicalisation is needed on either side.
//!
//! Server → device: `payload` is a [`ServerMessage`] (id, audience, per-stream sequence, issue and
//! expiry times, body). Device → server: `payload` is an [`crate::EventBatch`], signed with the
//! device key when the device has one.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::PROTOCOL_VERSION;
use crate::ids::{AreaCode, DeviceId};
use crate::message::{Command, EventBatch, Manifest, Receipt};

const DOMAIN: &[u8] = b"nguon/v1\n";

/// Why a signed message was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignError {
    /// Not valid JSON, or not the expected shape.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// Protocol version not understood.
    #[error("unsupported protocol version {0}")]
    Version(u32),
    /// No signature where one is required.
    #[error("message is not signed")]
    Unsigned,
    /// The signature does not verify against the key.
    #[error("signature does not verify")]
    BadSignature,
    /// `expires_at` is in the past.
    #[error("message expired at {0}")]
    Expired(DateTime<Utc>),
    /// `issued_at` is further in the future than the allowed clock skew.
    #[error("message issued in the future ({0})")]
    NotYetValid(DateTime<Utc>),
    /// The message is addressed to someone else (or came on the wrong topic).
    #[error("message is addressed to {0}, not to this recipient")]
    WrongAudience(String),
    /// A key could not be read.
    #[error("bad key: {0}")]
    BadKey(String),
}

/// An ed25519 key pair (the server's signing key, or a device's report key).
#[derive(Clone)]
pub struct KeyPair(SigningKey);

/// The server's signing key.
pub type ServerKey = KeyPair;
/// A device's report-signing key.
pub type DeviceKey = KeyPair;

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair(public={})", self.public_b64())
    }
}

impl KeyPair {
    /// A fresh random key from the operating system's generator.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("operating system random generator");
        Self(SigningKey::from_bytes(&seed))
    }
    /// From the 32-byte secret seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(SigningKey::from_bytes(&seed))
    }
    /// From the base64 of the 32-byte secret seed.
    pub fn from_b64(s: &str) -> Result<Self, SignError> {
        let bytes = B64
            .decode(s.trim())
            .map_err(|e| SignError::BadKey(e.to_string()))?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SignError::BadKey("a secret key is 32 bytes".into()))?;
        Ok(Self::from_seed(seed))
    }
    /// Base64 of the 32-byte secret seed (keep secret).
    pub fn secret_b64(&self) -> String {
        B64.encode(self.0.to_bytes())
    }
    /// Base64 of the 32-byte public key.
    pub fn public_b64(&self) -> String {
        B64.encode(self.0.verifying_key().to_bytes())
    }
    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.0.verifying_key()
    }
    /// Sign a payload text.
    pub fn sign_text(&self, payload: String) -> Signed {
        let sig = self.0.sign(&signing_input(&payload));
        Signed {
            v: PROTOCOL_VERSION,
            payload,
            sig: Some(B64.encode(sig.to_bytes())),
        }
    }
    /// Serialise a value to JSON and sign it.
    pub fn sign<T: Serialize>(&self, value: &T) -> Signed {
        self.sign_text(serde_json::to_string(value).expect("message serialises"))
    }
}

/// Read a base64 public key.
pub fn verifying_key_from_b64(s: &str) -> Result<VerifyingKey, SignError> {
    let bytes = B64
        .decode(s.trim())
        .map_err(|e| SignError::BadKey(e.to_string()))?;
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| SignError::BadKey("a public key is 32 bytes".into()))?;
    VerifyingKey::from_bytes(&arr).map_err(|e| SignError::BadKey(e.to_string()))
}

fn signing_input(payload: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(DOMAIN.len() + payload.len());
    v.extend_from_slice(DOMAIN);
    v.extend_from_slice(payload.as_bytes());
    v
}

/// The envelope as it travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    /// Protocol version.
    pub v: u32,
    /// The signed JSON text.
    pub payload: String,
    /// Base64 ed25519 signature over `nguon/v1\n` + payload; absent for unsigned device reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

impl Signed {
    /// Parse an envelope from raw MQTT payload bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignError> {
        let s: Signed = serde_json::from_slice(bytes).map_err(|e| SignError::Malformed(e.to_string()))?;
        if s.v != PROTOCOL_VERSION {
            return Err(SignError::Version(s.v));
        }
        Ok(s)
    }
    /// The bytes to publish.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("envelope serialises")
    }
    /// Check the signature against `key`.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), SignError> {
        let sig = self.sig.as_deref().ok_or(SignError::Unsigned)?;
        let bytes = B64.decode(sig).map_err(|_| SignError::BadSignature)?;
        let arr: [u8; 64] = bytes.try_into().map_err(|_| SignError::BadSignature)?;
        key.verify(&signing_input(&self.payload), &Signature::from_bytes(&arr))
            .map_err(|_| SignError::BadSignature)
    }
    /// Parse the payload without checking the signature (use only after [`Signed::verify`], or for
    /// reports from devices that have no key).
    pub fn parse_payload<T: DeserializeOwned>(&self) -> Result<T, SignError> {
        serde_json::from_str(&self.payload).map_err(|e| SignError::Malformed(e.to_string()))
    }
    /// Verify, then parse.
    pub fn open<T: DeserializeOwned>(&self, key: &VerifyingKey) -> Result<T, SignError> {
        self.verify(key)?;
        self.parse_payload()
    }
}

/// Who a server message is for; must match the topic it arrives on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// One device (`d/{device}/desired`, `d/{device}/cmd`).
    Device(DeviceId),
    /// Every device in an area (`a/{area}/cmd`).
    Area(AreaCode),
}

impl std::fmt::Display for Audience {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Audience::Device(d) => write!(f, "device {d}"),
            Audience::Area(a) => write!(f, "area {a}"),
        }
    }
}

/// What a server message carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "body", rename_all = "snake_case")]
pub enum ServerBody {
    /// Desired state (on `desired`).
    Desired(Manifest),
    /// Immediate action (on `cmd`).
    Command(Command),
    /// Events the server has stored (on `receipt`).
    Receipt(Receipt),
}

impl ServerBody {
    /// The stream name, which is also the leaf of the topic it travels on: desired state,
    /// commands and receipts are sequenced separately.
    pub fn stream(&self) -> &'static str {
        match self {
            ServerBody::Desired(_) => "desired",
            ServerBody::Command(_) => "cmd",
            ServerBody::Receipt(_) => "receipt",
        }
    }
}

/// Every server → device message, signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerMessage {
    /// Protocol version.
    pub v: u32,
    /// Unique id; acks refer to it.
    pub id: Uuid,
    /// The recipient.
    pub audience: Audience,
    /// Strictly increasing per (audience, stream); a device refuses a sequence not newer than the
    /// last it accepted on that stream.
    pub seq: u64,
    /// When signed.
    pub issued_at: DateTime<Utc>,
    /// After this the message must not be acted on.
    pub expires_at: DateTime<Utc>,
    /// The content.
    #[serde(flatten)]
    pub body: ServerBody,
}

impl ServerMessage {
    /// A new message with a fresh id, issued now, valid for `ttl`.
    pub fn new(audience: Audience, seq: u64, ttl: Duration, body: ServerBody) -> Self {
        let now = Utc::now();
        Self {
            v: PROTOCOL_VERSION,
            id: Uuid::new_v4(),
            audience,
            seq,
            issued_at: now,
            expires_at: now + ttl,
            body,
        }
    }

    /// Verify and parse an envelope, then check time validity and that it is addressed to `expect`.
    /// `skew` is the clock difference tolerated for `issued_at` in the future.
    pub fn open(
        bytes: &[u8],
        key: &VerifyingKey,
        expect: &Audience,
        now: DateTime<Utc>,
        skew: Duration,
    ) -> Result<Self, SignError> {
        let env = Signed::from_bytes(bytes)?;
        let msg: ServerMessage = env.open(key)?;
        if msg.v != PROTOCOL_VERSION {
            return Err(SignError::Version(msg.v));
        }
        if &msg.audience != expect {
            return Err(SignError::WrongAudience(msg.audience.to_string()));
        }
        if now > msg.expires_at {
            return Err(SignError::Expired(msg.expires_at));
        }
        if msg.issued_at > now + skew {
            return Err(SignError::NotYetValid(msg.issued_at));
        }
        Ok(msg)
    }
}

/// A device report as it travels on `d/{device}/events`: a [`Signed`] whose payload is an
/// [`EventBatch`].
pub type DeviceReport = Signed;

impl EventBatch {
    /// Sign with the device key, or send unsigned when the device has none.
    pub fn seal(&self, key: Option<&DeviceKey>) -> DeviceReport {
        let text = serde_json::to_string(self).expect("batch serialises");
        match key {
            Some(k) => k.sign_text(text),
            None => Signed {
                v: PROTOCOL_VERSION,
                payload: text,
                sig: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Command;

    fn msg(dev: &str) -> ServerMessage {
        ServerMessage::new(
            Audience::Device(DeviceId::parse(dev).unwrap()),
            7,
            Duration::minutes(5),
            ServerBody::Command(Command::Volume { level: 40 }),
        )
    }

    #[test]
    fn a_signed_message_opens_with_the_right_key_only() {
        let k = ServerKey::generate();
        let other = ServerKey::generate();
        let m = msg("lc-1");
        let bytes = k.sign(&m).to_bytes();
        let aud = m.audience.clone();
        let now = Utc::now();
        let opened =
            ServerMessage::open(&bytes, &k.verifying_key(), &aud, now, Duration::seconds(30)).unwrap();
        assert_eq!(opened, m);
        assert_eq!(
            ServerMessage::open(&bytes, &other.verifying_key(), &aud, now, Duration::seconds(30)),
            Err(SignError::BadSignature)
        );
    }

    #[test]
    fn tampering_expiry_and_audience_are_detected() {
        let k = ServerKey::generate();
        let m = msg("lc-1");
        let mut env = k.sign(&m);
        env.payload = env.payload.replace("40", "100");
        let vk = k.verifying_key();
        let now = Utc::now();
        let sk = Duration::seconds(30);
        assert_eq!(
            ServerMessage::open(&env.to_bytes(), &vk, &m.audience, now, sk),
            Err(SignError::BadSignature)
        );

        let bytes = k.sign(&m).to_bytes();
        let later = now + Duration::minutes(6);
        assert!(matches!(
            ServerMessage::open(&bytes, &vk, &m.audience, later, sk),
            Err(SignError::Expired(_))
        ));
        let other = Audience::Device(DeviceId::parse("lc-2").unwrap());
        assert!(matches!(
            ServerMessage::open(&bytes, &vk, &other, now, sk),
            Err(SignError::WrongAudience(_))
        ));

        let mut unsigned = k.sign(&m);
        unsigned.sig = None;
        assert_eq!(
            ServerMessage::open(&unsigned.to_bytes(), &vk, &m.audience, now, sk),
            Err(SignError::Unsigned)
        );
    }

    #[test]
    fn keys_round_trip_through_base64() {
        let k = KeyPair::generate();
        let k2 = KeyPair::from_b64(&k.secret_b64()).unwrap();
        assert_eq!(k.public_b64(), k2.public_b64());
        assert_eq!(
            verifying_key_from_b64(&k.public_b64()).unwrap(),
            k.verifying_key()
        );
        assert!(KeyPair::from_b64("AAAA").is_err());
    }
}
