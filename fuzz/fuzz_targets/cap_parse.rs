//! Fuzz the CAP 1.2 parser (`domain::cap::parse`: XML with DTDs refused, the standard's element
//! order, enumerations, dateTimes, polygons and circles). A document it accepts must also be
//! written back and read again to the same alert, and targeting must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nguon_server::domain::cap::{Point, parse, write};

fuzz_target!(|data: &[u8]| {
    if let Ok(alert) = parse(data) {
        let xml = write::to_xml(&alert);
        let again = parse(xml.as_bytes()).expect("a written alert reads back");
        assert_eq!(again, alert);
        let _ = alert.covers(Point { lat: 21.0, lon: 105.8 });
        let _ = alert.geocode_keys();
        let _ = alert.expires();
    }
});
