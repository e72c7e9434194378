//! Fuzz the fleet registry import (the provisioning tool's registration file, JSON): parse, then
//! the server's validation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nguon_provision::registry::Registry;
use nguon_server::domain::area::AreaTree;
use nguon_server::domain::device::validate_registry;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = serde_json::from_slice::<Registry>(data) {
        let stored = AreaTree::new([("10".to_owned(), None), ("08003".to_owned(), Some("10".to_owned()))]);
        let _ = validate_registry(&r, &stored);
    }
});
