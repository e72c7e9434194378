//! The signed envelope. A signed message is `{"v":1,"payload":"<JSON text>","sig":"<base64>"}`:
//! the signature is ed25519 over the bytes `nguon/v1\n` followed by the UTF-8 bytes of `payload`,
//! exactly as sent. Signing the transmitted text (not a re-serialisation) is the canonical encoding:
//! no JSON canonicalisation is needed on either side.
//!
//! Server → device: `payload` is a [`ServerMessage`] (id, audience, per-stream sequence, issue and
//! expiry times, body). Device → server: `payload` is a [`crate::DeviceState`] (on `state`, the
//! last will included), a [`crate::Telemetry`] (on `telemetry`) or an [`crate::EventBatch`] (on
//! `events`), signed with the device key when the device has one ([`seal_report`]); the server
//! refuses a report from a keyed device that is unsigned or signed with another key, and one from
//! a device without a key unless it is configured to allow them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::PROTOCOL_VERSION;
use crate::ids::{AreaCode, DeviceId};
use crate::message::{Command, DeviceState, EventBatch, Manifest, Receipt, Telemetry};

const DOMAIN: &[u8] = b"nguon/v1\n";

/// Why a signed message was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
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
    /// The secret key, for the signatures of other domains in this crate (releases).
    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.0
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

/// A device report as it travels on `d/{device}/state`, `telemetry` or `events`: a [`Signed`]
/// whose payload is a [`DeviceState`], a [`Telemetry`] or an [`EventBatch`].
pub type DeviceReport = Signed;

/// Serialise a device report and sign it with the device key, or leave it unsigned when the
/// device has none (a server accepts those only when configured to).
pub fn seal_report<T: Serialize>(value: &T, key: Option<&DeviceKey>) -> DeviceReport {
    let text = serde_json::to_string(value).expect("report serialises");
    match key {
        Some(k) => k.sign_text(text),
        None => Signed {
            v: PROTOCOL_VERSION,
            payload: text,
            sig: None,
        },
    }
}

impl EventBatch {
    /// Sign with the device key, or send unsigned when the device has none.
    pub fn seal(&self, key: Option<&DeviceKey>) -> DeviceReport {
        seal_report(self, key)
    }
}

impl DeviceState {
    /// Sign with the device key, or send unsigned when the device has none. The last will is
    /// sealed like this when the connection is made: it carries the session it belongs to, so it
    /// can only ever mark that session offline.
    pub fn seal(&self, key: Option<&DeviceKey>) -> DeviceReport {
        seal_report(self, key)
    }
}

impl Telemetry {
    /// Sign with the device key, or send unsigned when the device has none.
    pub fn seal(&self, key: Option<&DeviceKey>) -> DeviceReport {
        seal_report(self, key)
    }
}

/// How a device's reports are checked against what the server knows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportKey {
    /// No key is registered.
    None,
    /// Reports must verify against this key.
    Key(VerifyingKey),
    /// A key is registered but unreadable: every report is refused.
    Broken,
}

/// Why a device report was refused by [`open_report`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// Not an envelope (nor, for state and telemetry, the bare JSON of old agents), or the
    /// payload is not the expected message.
    #[error("malformed: {0}")]
    Malformed(String),
    /// The device has a key and the report is unsigned, or signed with another key.
    #[error("{0} (the device has a key)")]
    BadSignature(SignError),
    /// The device's registered key cannot be read.
    #[error("the device's registered key is unreadable")]
    BrokenKey,
    /// The device has no key and unsigned devices are not allowed.
    #[error("the device has no key and unsigned devices are not allowed")]
    Unkeyed,
}

/// Open a device report: an envelope (or, from agents older than signed state and telemetry, the
/// bare JSON message, which counts as unsigned), checked against the device's key. A keyed device
/// must sign with its key; a device without a key is accepted (signed or not: there is nothing to
/// check against) only when `allow_unsigned`.
pub fn open_report<T: DeserializeOwned>(
    bytes: &[u8],
    key: &ReportKey,
    allow_unsigned: bool,
) -> Result<T, ReportError> {
    open_report_text(bytes, key, allow_unsigned).map(|(v, _)| v)
}

/// [`open_report`], also giving the report's JSON text as the device wrote it.
pub fn open_report_text<T: DeserializeOwned>(
    bytes: &[u8],
    key: &ReportKey,
    allow_unsigned: bool,
) -> Result<(T, String), ReportError> {
    let env = match Signed::from_bytes(bytes) {
        Ok(env) => env,
        Err(e) => match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(v) if v.get("payload").is_none() => Signed {
                v: PROTOCOL_VERSION,
                payload: String::from_utf8_lossy(bytes).into_owned(),
                sig: None,
            },
            _ => return Err(ReportError::Malformed(e.to_string())),
        },
    };
    match key {
        ReportKey::Key(k) => env.verify(k).map_err(ReportError::BadSignature)?,
        ReportKey::Broken => return Err(ReportError::BrokenKey),
        ReportKey::None if !allow_unsigned => return Err(ReportError::Unkeyed),
        ReportKey::None => {}
    }
    let value = env
        .parse_payload()
        .map_err(|e| ReportError::Malformed(e.to_string()))?;
    Ok((value, env.payload))
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
    fn a_report_opens_only_with_its_devices_key_and_an_unkeyed_device_only_when_allowed() {
        let k = DeviceKey::generate();
        let other = DeviceKey::generate();
        let state = DeviceState {
            v: 1,
            device: DeviceId::parse("lc-1").unwrap(),
            online: false,
            session: u64::MAX >> 1,
            at: Utc::now(),
            install: None,
        };
        let keyed = ReportKey::Key(k.verifying_key());
        let signed = state.seal(Some(&k)).to_bytes();
        let forged = state.seal(Some(&other)).to_bytes();
        let unsigned = state.seal(None).to_bytes();
        let bare = serde_json::to_vec(&state).unwrap();
        assert_eq!(
            open_report::<DeviceState>(&signed, &keyed, false),
            Ok(state.clone())
        );
        for (bytes, what) in [
            (&forged, "another key"),
            (&unsigned, "unsigned"),
            (&bare, "bare JSON"),
        ] {
            assert!(
                matches!(
                    open_report::<DeviceState>(bytes, &keyed, true),
                    Err(ReportError::BadSignature(_))
                ),
                "{what}"
            );
        }
        assert_eq!(
            open_report::<DeviceState>(&unsigned, &ReportKey::None, false),
            Err(ReportError::Unkeyed)
        );
        assert_eq!(
            open_report::<DeviceState>(&bare, &ReportKey::None, true),
            Ok(state.clone())
        );
        assert_eq!(
            open_report::<DeviceState>(&signed, &ReportKey::Broken, true),
            Err(ReportError::BrokenKey)
        );
        assert!(matches!(
            open_report::<DeviceState>(b"\x00garbage", &ReportKey::None, true),
            Err(ReportError::Malformed(_))
        ));
        assert!(matches!(
            open_report::<Telemetry>(&signed, &keyed, false),
            Err(ReportError::Malformed(_))
        ));
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
