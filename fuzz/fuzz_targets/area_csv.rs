//! Fuzz the server's area CSV import parser (`code,name,parent,level`) against a small stored tree
//! (so parent checks and cycle detection run too).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nguon_server::domain::area::AreaTree;
use nguon_server::domain::area_csv::parse_csv;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let stored = AreaTree::new([
            ("10".to_owned(), None),
            ("08003".to_owned(), Some("10".to_owned())),
            ("08003-01".to_owned(), Some("08003".to_owned())),
        ]);
        let _ = parse_csv(text, &stored);
    }
});
