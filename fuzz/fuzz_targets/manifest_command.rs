//! Fuzz manifest and command parsing: whatever parses must serialise and parse back to the same
//! value (a manifest the server signs is the manifest the agent plays).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nguon_protocol::message::{Command, Manifest};
use nguon_protocol::sign::ServerBody;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = serde_json::from_slice::<Manifest>(data) {
        let again: Manifest = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(m, again);
    }
    if let Ok(c) = serde_json::from_slice::<Command>(data) {
        let again: Command = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(c, again);
    }
    if let Ok(b) = serde_json::from_slice::<ServerBody>(data) {
        let again: ServerBody = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
        assert_eq!(b, again);
    }
});
