//! Tests of the catalogue and the Vietnamese formats.

use super::*;

#[test]
fn numbers_and_dates_use_vietnamese_formats() {
    assert_eq!(number(1_234_567), "1.234.567");
    assert_eq!(number(999), "999");
    assert_eq!(number(-1000), "-1.000");
    assert_eq!(decimal(12.46), "12,5");
    // 2026-01-01T00:00Z is 07:00 in Hồ Chí Minh City.
    assert_eq!(datetime(1_767_225_600_000), "01/01/2026 07:00");
    assert_eq!(duration(61_000), "1:01");
}

#[test]
fn every_key_used_by_a_template_is_in_the_catalogue() {
    for (name, src) in super::super::TEMPLATES {
        let mut rest = *src;
        while let Some(i) = rest.find("t(\"") {
            rest = &rest[i + 3..];
            let key = &rest[..rest.find('"').unwrap()];
            if key.ends_with('.') {
                continue; // a prefix joined with a value, e.g. t("role." ~ user.role)
            }
            assert!(
                entries().any(|(k, _, _)| *k == key),
                "{name}: key `{key}` missing"
            );
        }
    }
    let mut keys: Vec<_> = entries().map(|(k, _, _)| *k).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), entries().count(), "duplicate keys");
}
