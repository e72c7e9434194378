//! Fuzz the agent's door: `ServerMessage::open` on arbitrary bytes (as if they arrived on a topic),
//! and on arbitrary payload text signed with the right key (so the signature check passes and the
//! JSON, version, audience and time checks are exercised too). Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nguon_protocol::ids::DeviceId;
use nguon_protocol::sign::{Audience, KeyPair, ServerMessage, Signed};

fuzz_target!(|data: &[u8]| {
    let key = KeyPair::from_seed([7u8; 32]);
    let vk = key.verifying_key();
    let me = Audience::Device(DeviceId::parse("dev-fuzz-0001").expect("valid id"));
    let now = chrono::Utc::now();
    // 1. The raw bytes as an envelope.
    let _ = Signed::from_bytes(data);
    let _ = ServerMessage::open(data, &vk, &me, now, chrono::Duration::seconds(30));
    // 2. The bytes as a payload, correctly signed.
    if let Ok(text) = std::str::from_utf8(data) {
        let env = key.sign_text(text.to_owned());
        let _ = ServerMessage::open(&env.to_bytes(), &vk, &me, now, chrono::Duration::seconds(30));
    }
});
