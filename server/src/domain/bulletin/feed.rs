//! A board's feed built from loaded data: which of the bulletins targeted at the board's area (or
//! an area above it) it shows, in which order (emergency, then priority, then normal; newest
//! first within), in which languages (the board's own first, then its area's; else the first
//! variant, `vi` first) and for how long each (its `dwell_s`, else about 15 characters a second
//! of reading, 8–30 s).

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::bulletin::{FileRef, Variant, is_current};
use crate::domain::markdown;
use crate::domain::review::ReviewStatus;

/// A file in the feed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeedFile {
    /// Content hash.
    pub sha256: String,
    /// MIME type.
    pub mime: String,
    /// URL (absolute, on the server's public URL).
    pub url: String,
    /// Image width.
    pub width: Option<i64>,
    /// Image height.
    pub height: Option<i64>,
}

/// A language variant in the feed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeedVariant {
    /// Language.
    pub language: String,
    /// Title.
    pub title: String,
    /// Body as escaped HTML (safe to insert).
    pub html: String,
    /// Body as plain text.
    pub text: String,
}

/// One bulletin on a board.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeedItem {
    /// Bulletin id (report it in proof of display).
    pub id: String,
    /// `emergency`, `priority` or `normal`.
    pub priority: String,
    /// Category.
    pub category: String,
    /// Seconds on screen.
    pub dwell_s: i64,
    /// Unix ms.
    pub valid_from: Option<i64>,
    /// Unix ms.
    pub valid_until: Option<i64>,
    /// Variants for the board's area languages, preferred first.
    pub variants: Vec<FeedVariant>,
    /// Images.
    pub images: Vec<FeedFile>,
    /// Video.
    pub video: Option<FeedFile>,
    /// PDF attachments.
    pub attachments: Vec<FeedFile>,
    /// The bulletin's short link on the public site (`{public_url}/b/{code}`, issue 15); none
    /// for a CAP alert.
    pub short_url: Option<String>,
    /// Its QR code (SVG) for the board to show.
    pub qr_svg: Option<String>,
}

/// A board's feed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Feed {
    /// Board id.
    pub device_id: String,
    /// Board's area.
    pub area: String,
    /// The area's name (the kiosk's header shows it), empty when unknown.
    #[serde(default)]
    pub area_name: String,
    /// Languages in effect.
    pub languages: Vec<String>,
    /// Whether an emergency bulletin is current (show it full-screen).
    pub emergency: bool,
    /// Current bulletins: emergency first, then priority, then normal; newest first within.
    pub bulletins: Vec<FeedItem>,
}

/// A bulletin published to the board's area or above it, as loaded.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Bulletin id.
    pub id: String,
    /// Review status (only `approved` ones are shown).
    pub status: ReviewStatus,
    /// `emergency`, `priority` or `normal`.
    pub priority: String,
    /// Category.
    pub category: String,
    /// Seconds on screen, if set.
    pub dwell_s: Option<i64>,
    /// Unix ms.
    pub valid_from: Option<i64>,
    /// Unix ms.
    pub valid_until: Option<i64>,
    /// Unix ms of the last publication.
    pub published_at: i64,
    /// Its variants (`vi` first).
    pub variants: Vec<Variant>,
    /// Its files in upload order.
    pub files: Vec<FileRef>,
}

/// Order of priorities on a board.
pub fn rank(p: &str) -> u8 {
    match p {
        "emergency" => 0,
        "priority" => 1,
        _ => 2,
    }
}

/// Seconds on screen of a bulletin without its own `dwell_s`: about 15 characters a second of
/// reading, 8–30 s.
pub fn default_dwell(v: &FeedVariant) -> i64 {
    ((v.title.chars().count() + v.text.chars().count()) as i64 / 15).clamp(8, 30)
}

/// The languages a board shows: its area's, with the board's own language moved first.
pub fn board_languages(mut area_languages: Vec<String>, board_language: Option<&str>) -> Vec<String> {
    if let Some(l) = board_language {
        area_languages.retain(|x| x != l);
        area_languages.insert(0, l.to_string());
    }
    area_languages
}

fn feed_variant(v: &Variant) -> FeedVariant {
    FeedVariant {
        language: v.language.clone(),
        title: v.title.clone(),
        html: v.html.clone(),
        text: markdown::to_plain(&v.body),
    }
}

/// The feed of board `device_id` in `area` at `now` (unix ms) from the bulletins published to
/// its area or above; file URLs are made absolute on `public_url`.
pub fn build(
    device_id: &str,
    area: &str,
    languages: Vec<String>,
    mut candidates: Vec<Candidate>,
    now: i64,
    public_url: &str,
) -> Feed {
    candidates.retain(|c| c.status == ReviewStatus::Approved && is_current(c.valid_from, c.valid_until, now));
    candidates.sort_by(|a, b| {
        rank(&a.priority)
            .cmp(&rank(&b.priority))
            .then(b.published_at.cmp(&a.published_at))
            .then(a.id.cmp(&b.id))
    });
    candidates.dedup_by(|a, b| a.id == b.id);
    let mut items = Vec::new();
    for c in candidates {
        let mut variants: Vec<FeedVariant> = languages
            .iter()
            .filter_map(|l| c.variants.iter().find(|v| &v.language == l))
            .map(feed_variant)
            .collect();
        if variants.is_empty() {
            // No variant in the area's languages: fall back to the first one (vi first).
            variants.extend(c.variants.first().map(feed_variant));
        }
        let Some(first) = variants.first() else { continue };
        let dwell_s = c.dwell_s.unwrap_or_else(|| default_dwell(first));
        let f = |x: &FileRef| FeedFile {
            sha256: x.sha256.clone(),
            mime: x.mime.clone(),
            url: format!("{public_url}{}", x.url),
            width: x.width,
            height: x.height,
        };
        items.push(FeedItem {
            images: c.files.iter().filter(|x| x.kind == "image").map(f).collect(),
            video: c.files.iter().find(|x| x.kind == "video").map(f),
            attachments: c.files.iter().filter(|x| x.kind == "attachment").map(f).collect(),
            short_url: Some(format!("{public_url}{}", crate::domain::shortlink::path(&c.id))),
            qr_svg: Some(format!(
                "{public_url}{}/qr.svg",
                crate::domain::shortlink::path(&c.id)
            )),
            id: c.id,
            priority: c.priority,
            category: c.category,
            dwell_s,
            valid_from: c.valid_from,
            valid_until: c.valid_until,
            variants,
        });
    }
    Feed {
        device_id: device_id.to_string(),
        area: area.to_string(),
        area_name: String::new(),
        languages,
        emergency: items.iter().any(|i| i.priority == "emergency"),
        bulletins: items,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(id: &str, priority: &str, published_at: i64, langs: &[&str]) -> Candidate {
        Candidate {
            id: id.into(),
            status: ReviewStatus::Approved,
            priority: priority.into(),
            category: "thông báo".into(),
            dwell_s: None,
            valid_from: None,
            valid_until: None,
            published_at,
            variants: langs
                .iter()
                .map(|l| Variant::new(l.to_string(), format!("Tin {l}"), "**Nội dung**".into(), None))
                .collect(),
            files: Vec::new(),
        }
    }

    #[test]
    fn emergency_first_then_priority_then_newest_and_only_current_approved_ones() {
        let mut expired = cand("e", "emergency", 9, &["vi"]);
        expired.valid_until = Some(100);
        let mut later = cand("l", "emergency", 9, &["vi"]);
        later.valid_from = Some(1_000);
        let mut pending = cand("p", "emergency", 9, &["vi"]);
        pending.status = ReviewStatus::Pending;
        let feed = build(
            "bb-1",
            "08003",
            vec!["vi".into()],
            vec![
                cand("n-old", "normal", 1, &["vi"]),
                cand("n-new", "normal", 2, &["vi"]),
                cand("pr", "priority", 0, &["vi"]),
                cand("em", "emergency", 0, &["vi"]),
                cand("n-new", "normal", 2, &["vi"]),
                expired,
                later,
                pending,
            ],
            500,
            "http://srv",
        );
        let ids: Vec<&str> = feed.bulletins.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(ids, ["em", "pr", "n-new", "n-old"]);
        assert!(feed.emergency);
    }

    #[test]
    fn the_boards_language_first_and_a_fallback_to_the_first_variant() {
        let langs = board_languages(vec!["hmn".into(), "vi".into()], Some("vi"));
        assert_eq!(langs, ["vi", "hmn"]);
        let feed = build(
            "bb-1",
            "08003",
            langs,
            vec![
                cand("a", "normal", 1, &["vi", "hmn"]),
                cand("b", "normal", 0, &["dao"]),
            ],
            0,
            "",
        );
        let langs_of = |i: usize| -> Vec<&str> {
            feed.bulletins[i]
                .variants
                .iter()
                .map(|v| v.language.as_str())
                .collect()
        };
        assert_eq!(langs_of(0), ["vi", "hmn"]);
        assert_eq!(langs_of(1), ["dao"]);
        assert_eq!(
            feed.bulletins[0].variants[0].html,
            "<p><strong>Nội dung</strong></p>"
        );
        assert_eq!(feed.bulletins[0].variants[0].text, "Nội dung.");
        assert!(!feed.emergency);
    }

    #[test]
    fn dwell_defaults_by_length_and_files_sort_by_kind() {
        let mut c = cand("a", "normal", 1, &["vi"]);
        c.variants[0].title = "x".repeat(600);
        let file = |sha: &str, kind: &str| FileRef {
            sha256: sha.into(),
            kind: kind.into(),
            mime: "image/png".into(),
            filename: "f".into(),
            size: 1,
            width: None,
            height: None,
            url: format!("/files/{sha}"),
        };
        c.files = vec![
            file("i1", "image"),
            file("v1", "video"),
            file("p1", "attachment"),
            file("i2", "image"),
        ];
        let mut d = cand("b", "normal", 0, &["vi"]);
        d.dwell_s = Some(42);
        let feed = build(
            "bb",
            "a",
            vec!["vi".into()],
            vec![c, d, cand("c", "normal", -1, &["vi"])],
            0,
            "http://s",
        );
        assert_eq!(feed.bulletins[0].dwell_s, 30);
        assert_eq!(feed.bulletins[1].dwell_s, 42);
        assert_eq!(feed.bulletins[2].dwell_s, 8);
        let b = &feed.bulletins[0];
        assert_eq!(
            b.images.iter().map(|f| f.url.as_str()).collect::<Vec<_>>(),
            ["http://s/files/i1", "http://s/files/i2"]
        );
        assert_eq!(b.video.as_ref().unwrap().sha256, "v1");
        assert_eq!(b.attachments.len(), 1);
    }
}
