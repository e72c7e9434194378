//! Fuzz the provisioning tool's station list reader (CSV or spreadsheet export from the Department),
//! with and without a commune list.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nguon_provision::stations::{Communes, parse_stations};

fuzz_target!(|data: &[u8]| {
    let _ = parse_stations(data, None);
    let mut communes = Communes::new();
    communes.insert("08003".into(), "Xã Minh Hương".into());
    communes.insert("08020".into(), "Xã Yên Thuận".into());
    let _ = parse_stations(data, Some(&communes));
});
