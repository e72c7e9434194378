//! Tests of the feedback rules.

use std::collections::HashMap;

use super::*;
use crate::domain::area::AreaTree;

#[test]
fn a_feedback_is_trimmed_and_refused_with_vietnamese_reasons() {
    let ok = NewFeedback {
        area: " x1 ".into(),
        text: " <script>alert(1)</script> ".into(),
        name: Some("  ".into()),
        show_name: true,
        ..Default::default()
    }
    .check()
    .unwrap();
    assert_eq!(ok.area, "x1");
    assert_eq!(
        ok.text, "<script>alert(1)</script>",
        "kept as typed; pages escape it"
    );
    assert_eq!(ok.name, None);
    assert!(!ok.show_name, "no name, nothing to show");
    let long = NewFeedback {
        area: "x".into(),
        text: "ă".repeat(MAX_TEXT_CHARS + 1),
        ..Default::default()
    };
    let e = long.check().unwrap_err().to_string();
    assert!(e.contains("dài quá 2000 ký tự") && e.contains("2001"), "{e}");
    let empty = NewFeedback {
        area: "x".into(),
        ..Default::default()
    };
    assert!(empty.check().unwrap_err().to_string().contains("nội dung"));
}

#[test]
fn tracking_codes_read_back_however_typed() {
    let c = code_from([0, 1, 2, 3, 250, 251, 252, 253]);
    assert!(c.starts_with("PA-") && c.len() == 12, "{c}");
    assert_eq!(
        normalise_code(&c.to_lowercase().replace('-', " ")).as_deref(),
        Some(c.as_str())
    );
    assert_eq!(normalise_code("PA-0000-0000"), None, "0 is not in the alphabet");
    assert_eq!(normalise_code("abc"), None);
}

#[test]
fn the_deadline_is_the_nearest_area_with_its_own_hours() {
    let tree = AreaTree::new([
        ("p".to_string(), None),
        ("d".to_string(), Some("p".to_string())),
        ("c".to_string(), Some("d".to_string())),
    ]);
    let mut hours = HashMap::new();
    hours.insert("d".to_string(), 24u64);
    assert_eq!(due_at(&tree, "c", 0, 72, &hours), 24 * 3_600_000);
    assert_eq!(due_at(&tree, "p", 0, 72, &hours), 72 * 3_600_000);
    let w = Waiting {
        id: "f".into(),
        code: "PA-2222-2222".into(),
        area: "c".into(),
        received_at: 0,
        due_at: 10,
    };
    assert!(overdue_conditions(9, std::slice::from_ref(&w)).is_empty());
    let c = overdue_conditions(10, &[w]);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].kind, AlarmKind::FeedbackOverdue);
}

#[test]
fn photos_are_told_by_their_content() {
    assert_eq!(photo::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(photo::Format::Jpeg));
    assert_eq!(photo::sniff(b"\x89PNG\r\n\x1a\n...."), Some(photo::Format::Png));
    assert_eq!(photo::sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(photo::Format::Webp));
    assert_eq!(photo::sniff(b"%PDF-1.7"), None);
    assert_eq!(photo::sniff(b"GIF89a"), None);
}
