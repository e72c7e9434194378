//! The parser against the corpus under `server/tests/fixtures/cap/`: every `good/` document
//! parses and survives a write → parse round trip; every `bad/` document is refused with the
//! element path its `<!-- expect: … -->` comment names.

use std::path::PathBuf;

use chrono::{TimeZone, Utc};

use super::geo::Point;
use super::{Category, MAX_BYTES, MsgType, Scope, Status, parse, write};
use crate::error::Error;

fn corpus(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cap")
        .join(kind);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(out.len() >= 5, "corpus {kind} is too small");
    out
}

fn good(name: &str) -> super::Alert {
    let bytes = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/cap/good")
            .join(name),
    )
    .unwrap();
    parse(&bytes).unwrap()
}

#[test]
fn every_good_document_parses_and_round_trips() {
    for (name, bytes) in corpus("good") {
        let a = parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let xml = write::to_xml(&a);
        let b = parse(xml.as_bytes()).unwrap_or_else(|e| panic!("{name} written back: {e}\n{xml}"));
        assert_eq!(a, b, "{name}: the written document reads back the same");
    }
}

#[test]
fn every_bad_document_is_refused_naming_its_element() {
    let mut wrong = Vec::new();
    for (name, bytes) in corpus("bad") {
        let text = String::from_utf8_lossy(&bytes);
        let expect = text
            .split("<!-- expect: ")
            .nth(1)
            .and_then(|r| r.split(" -->").next())
            .unwrap_or_else(|| panic!("{name} names no expected element"));
        match parse(&bytes) {
            Err(Error::Unprocessable {
                code: "invalid_cap",
                message,
            }) if message.starts_with(&format!("{expect}:")) => {}
            other => wrong.push(format!(
                "{name}: expected invalid_cap naming {expect}, got {other:?}"
            )),
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn dtds_are_refused_so_neither_xxe_nor_billion_laughs_is_expanded() {
    for (name, bytes) in corpus("bad")
        .into_iter()
        .filter(|(n, _)| n.starts_with("xxe") || n.starts_with("billion"))
    {
        let Err(Error::Unprocessable { message, .. }) = parse(&bytes) else {
            panic!("{name} was not refused")
        };
        assert!(message.contains("DTD"), "{name}: {message}");
        assert!(!message.contains("root:"), "{name}: nothing of /etc/passwd leaks");
    }
}

#[test]
fn documents_over_one_mib_are_refused_before_parsing() {
    let base = String::from_utf8(
        std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cap/good/oasis_thunderstorm.xml"),
        )
        .unwrap(),
    )
    .unwrap();
    let big = base.replace(
        "<contact>",
        &format!("<!-- {} --><contact>", "x".repeat(MAX_BYTES)),
    );
    assert!(matches!(parse(big.as_bytes()), Err(Error::TooLarge(_))));
}

#[test]
fn the_oasis_thunderstorm_reads_as_the_standard_says() {
    let a = good("oasis_thunderstorm.xml");
    assert_eq!(a.identifier, "KSTO1055887203");
    assert_eq!(
        (a.status, a.msg_type, a.scope),
        (Status::Actual, MsgType::Alert, Scope::Public)
    );
    let i = &a.infos[0];
    assert_eq!(i.language, "en-US", "the default language");
    assert_eq!(i.categories, vec![Category::Met]);
    assert_eq!(i.areas[0].polygons[0].0.len(), 5);
    assert_eq!(i.areas[0].geocodes.len(), 3);
    // Expires 2003-06-17T16:00-07:00.
    assert!(a.expired_at(Utc::now()));
    assert!(!a.expired_at(Utc.with_ymd_and_hms(2003, 6, 17, 22, 59, 0).unwrap()));
    assert!(a.expired_at(Utc.with_ymd_and_hms(2003, 6, 17, 23, 0, 0).unwrap()));
    // Inside the polygon (its centre) and outside (Sacramento).
    assert!(a.covers(Point::new(38.48, -119.93).unwrap()));
    assert!(!a.covers(Point::new(38.58, -121.49).unwrap()));
    assert!(
        a.geocode_keys().is_empty(),
        "a drawn area does not target by geocode"
    );
}

#[test]
fn the_bilingual_typhoon_targets_by_polygon_and_by_geocode() {
    let a = good("vn_typhoon_bilingual.xml");
    assert_eq!(a.infos.len(), 2);
    assert_eq!(a.geocode_keys(), vec!["ISO3166-2=VN-02".to_string()]);
    assert!(a.covers(Point::new(19.0, 105.8).unwrap()), "Nghệ An coast");
    assert!(
        !a.covers(Point::new(22.48, 103.97).unwrap()),
        "Lào Cai: by geocode only"
    );
    let vi = a.info_for(&["vi".into()]).unwrap();
    assert_eq!(vi.language, "vi-VN");
    assert_eq!(
        vi.spoken_text(),
        "Cảnh báo bão số 5 cấp 12, giật cấp 15. Hồi 04 giờ ngày 14/9, vị trí tâm bão ở khoảng 19,5 độ \
         Vĩ Bắc; 108,2 độ Kinh Đông. Sức gió mạnh nhất vùng gần tâm bão mạnh cấp 12 (118-133 km/h), \
         giật cấp 15. Người dân vùng trũng thấp di chuyển đến nơi an toàn trước 16 giờ. Không ra khơi."
    );
    assert_eq!(a.info_for(&["en".into()]).unwrap().language, "en-US");
    assert_eq!(
        a.info_for(&["km".into()]).unwrap().language,
        "vi-VN",
        "else the first"
    );
    assert_eq!(a.expires().unwrap().to_rfc3339(), "2026-09-15T18:00:00+07:00");
}

#[test]
fn a_cancel_names_its_reference_and_a_circle_targets_by_distance() {
    let a = good("vn_flood_circle_cancel.xml");
    assert_eq!(a.msg_type, MsgType::Cancel);
    assert_eq!(a.references[0].identifier, "HG-LU-2026-07-0007");
    assert_eq!(a.references[0].sender, "pctt@hagiang.gov.vn");
    assert_eq!(a.expires(), None, "no expires: it does not expire");
    assert!(a.covers(Point::new(22.84, 104.85).unwrap()), "about 2.6 km away");
    assert!(!a.covers(Point::new(22.9, 104.85).unwrap()), "about 9.3 km away");
}

#[test]
fn prefixed_elements_cdata_and_a_trailing_signature_are_read() {
    let a = good("restricted_signed_noinfo.xml");
    assert_eq!(a.status, Status::System);
    assert_eq!(a.note.as_deref(), Some("Heartbeat & link check"));
    assert!(a.infos.is_empty());
}
