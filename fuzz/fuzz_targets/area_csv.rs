//! Fuzz the server's area CSV import parser (`code,name,parent,level`).
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use nguon_server::domain::area::parse_csv;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let known: HashSet<String> = ["08".to_owned(), "08003".to_owned()].into_iter().collect();
        let _ = parse_csv(text, &known);
    }
});
