//! Bulletins (*bản tin*) as data and rules: one piece of content that reaches bulletin boards as
//! text and images and loudspeakers as speech. A bulletin has language variants (`vi`, `hmn`,
//! `dao`, `tay`, ... each with its own title, body and optionally a recorded, approved audio file
//! used instead of text-to-speech), files (images, a video, PDF attachments), a category, a
//! validity window, a Circular 39 priority and target areas. It follows the review workflow of
//! [`crate::domain::review`] (draft → pending → approved | rejected); editing sends it back to
//! draft and off the boards.
//!
//! This module holds the types of the API and the checks that need no database (priority,
//! language, window, dwell, variants, area languages, proof-of-display records); [`feed`] builds a
//! board's feed from loaded data and [`files`] reads a file's type and image size from its bytes.

pub mod feed;
pub mod files;

use std::collections::HashSet;

use nguon_protocol::Priority;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::markdown;
use crate::domain::review::ReviewStatus;
use crate::error::{Error, Result};

/// Category of a bulletin created without one.
pub const DEFAULT_CATEGORY: &str = "thông báo";

/// One language variant as stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Variant {
    /// Language code, e.g. `vi`, `hmn`, `dao`, `tay`.
    pub language: String,
    /// Title.
    pub title: String,
    /// Body (Markdown subset).
    pub body: String,
    /// The body rendered to HTML (escaped).
    pub html: String,
    /// Recorded audio (approved media sha256) used instead of text-to-speech.
    pub audio_sha256: Option<String>,
}

impl Variant {
    /// A variant as stored, with its body rendered to HTML.
    pub fn new(language: String, title: String, body: String, audio_sha256: Option<String>) -> Variant {
        Variant {
            language,
            title,
            html: markdown::to_html(&body),
            body,
            audio_sha256,
        }
    }
}

/// Variants in the order every answer lists them: `vi` first, then by language.
pub fn order_variants(vs: &mut [Variant]) {
    vs.sort_by(|a, b| a.language.cmp(&b.language));
    vs.sort_by_key(|v| v.language != "vi");
}

/// A file attached to a bulletin.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FileRef {
    /// Content hash.
    pub sha256: String,
    /// `image`, `video` or `attachment`.
    pub kind: String,
    /// Sniffed MIME type.
    pub mime: String,
    /// Name as uploaded (informational only).
    pub filename: String,
    /// Bytes.
    pub size: i64,
    /// Image width.
    pub width: Option<i64>,
    /// Image height.
    pub height: Option<i64>,
    /// `GET` URL.
    pub url: String,
}

/// A bulletin.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Bulletin {
    /// Id (uuid).
    pub id: String,
    /// Category, e.g. `thông báo`, `chính sách`, `cảnh báo`.
    pub category: String,
    /// `normal`, `priority` or `emergency`.
    pub priority: String,
    /// `draft`, `pending`, `approved` or `rejected`.
    #[schema(value_type = String)]
    pub status: ReviewStatus,
    /// Reason of a rejection.
    pub status_note: Option<String>,
    /// Shown from (unix ms).
    pub valid_from: Option<i64>,
    /// Shown until (unix ms).
    pub valid_until: Option<i64>,
    /// Target area codes (each with its descendants).
    pub areas: Vec<String>,
    /// Seconds a board shows it in its rotation (default by length).
    pub dwell_s: Option<i64>,
    /// Areas where it is published on boards.
    pub published_areas: Vec<String>,
    /// When it was last published (unix ms).
    pub published_at: Option<i64>,
    /// Language variants.
    pub variants: Vec<Variant>,
    /// Files.
    pub files: Vec<FileRef>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// A language variant on input.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantIn {
    /// Language code (2–8 lowercase letters, e.g. `vi`, `hmn`).
    pub language: String,
    /// Title.
    pub title: String,
    /// Body (Markdown subset: paragraphs, **bold**, *italic*, lists).
    #[serde(default)]
    pub body: String,
    /// Recorded audio (approved media sha256).
    #[serde(default)]
    pub audio_sha256: Option<String>,
}

/// Body of `POST /api/v1/bulletins`. Give `variants`, or `title`/`body` for a `vi`-only bulletin.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBulletin {
    /// Title of the `vi` variant (shorthand).
    #[serde(default)]
    pub title: Option<String>,
    /// Body of the `vi` variant (shorthand).
    #[serde(default)]
    pub body: Option<String>,
    /// Language variants.
    #[serde(default)]
    pub variants: Vec<VariantIn>,
    /// Category (default `thông báo`).
    #[serde(default)]
    pub category: Option<String>,
    /// `normal` (default), `priority`, `emergency`.
    #[serde(default)]
    pub priority: Option<String>,
    /// Unix ms.
    #[serde(default)]
    pub valid_from: Option<i64>,
    /// Unix ms.
    #[serde(default)]
    pub valid_until: Option<i64>,
    /// Target area codes.
    #[serde(default)]
    pub areas: Vec<String>,
    /// Seconds on screen per rotation (3–600).
    #[serde(default)]
    pub dwell_s: Option<i64>,
}

/// Body of `PATCH /api/v1/bulletins/{id}`: absent fields are unchanged; any change sends the
/// bulletin back to `draft` and takes it off the boards.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulletinPatch {
    /// Replace all variants.
    #[serde(default)]
    pub variants: Option<Vec<VariantIn>>,
    /// Category.
    #[serde(default)]
    pub category: Option<String>,
    /// Priority.
    #[serde(default)]
    pub priority: Option<String>,
    /// Unix ms (null clears).
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub valid_from: Option<Option<i64>>,
    /// Unix ms (null clears).
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub valid_until: Option<Option<i64>>,
    /// Target areas.
    #[serde(default)]
    pub areas: Option<Vec<String>>,
    /// Dwell seconds.
    #[serde(default)]
    pub dwell_s: Option<i64>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
        Ok(Some(Option::<i64>::deserialize(d)?))
    }
}

/// An approval decision.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Reason (required to reject).
    #[serde(default)]
    pub note: Option<String>,
}

/// Languages an area receives.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AreaLanguages {
    /// In order of preference, e.g. `["hmn", "vi"]`. Empty: inherit from the parent (default `vi`).
    pub languages: Vec<String>,
    /// Where the effective list comes from (answers only).
    #[serde(default)]
    pub inherited_from: Option<String>,
}

/// Body of `POST /api/v1/bulletins/{id}/publish`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// Areas (default: the bulletin's own).
    #[serde(default)]
    pub areas: Option<Vec<String>>,
    /// When the speakers play it: a schedule rule (`{"kind":"once","at":"2026-06-15T07:30:00"}` or
    /// `{"kind":"cron","cron":"30 6 * * *"}`); default once, now. Emergencies always play now.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub rule: Option<crate::domain::schedule::RuleSpec>,
    /// Text-to-speech voice (default `vi`).
    #[serde(default)]
    pub voice: Option<String>,
    /// Words per minute.
    #[serde(default)]
    pub speed: Option<u32>,
    /// Pitch.
    #[serde(default)]
    pub pitch: Option<u32>,
    /// Also schedule the loudspeakers (default true); false publishes to boards only.
    #[serde(default)]
    pub speakers: Option<bool>,
    /// Volume 0–100 for the schedule.
    #[serde(default)]
    pub volume: Option<u8>,
}

/// Speech produced for one area and language.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SpeechItem {
    /// Area.
    pub area: String,
    /// Language.
    pub language: String,
    /// Media sha256.
    pub sha256: String,
    /// `recorded` or `tts`.
    pub source: String,
    /// Normalised text read (TTS only).
    pub normalized: Option<String>,
    /// Duration in ms.
    pub duration_ms: i64,
}

/// Answer of a publish.
#[derive(Debug, Serialize, ToSchema)]
pub struct Published {
    /// The bulletin.
    pub bulletin: Bulletin,
    /// Areas whose boards now show it.
    pub board_areas: Vec<String>,
    /// Speech items.
    pub speech: Vec<SpeechItem>,
    /// Schedules created on loudspeakers (ids).
    pub schedules: Vec<String>,
    /// Schedules of an earlier publication in the same areas that these replace (ids): publishing
    /// again leaves one schedule per area, never a duplicate.
    pub replaced: Vec<String>,
    /// Languages skipped, with the reason (e.g. no recorded audio and no voice for `hmn`).
    pub skipped: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Proof of display

/// One proof-of-display record.
#[derive(Debug, Serialize, ToSchema)]
pub struct DisplayRow {
    /// Client uuid.
    pub id: String,
    /// Board.
    pub device_id: String,
    /// Unix ms.
    pub shown_from: i64,
    /// Unix ms.
    pub shown_to: i64,
}

/// One proof-of-display record from a board.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisplayIn {
    /// Client-generated uuid (idempotency key).
    pub id: String,
    /// Bulletin shown.
    pub bulletin_id: String,
    /// Unix ms.
    pub shown_from: i64,
    /// Unix ms.
    pub shown_to: i64,
}

/// A batch of proof-of-display records.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisplayBatch {
    /// Records.
    pub displays: Vec<DisplayIn>,
}

/// Answer of a proof-of-display batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct DisplayStored {
    /// New records stored.
    pub stored: usize,
    /// Records already stored (same uuid).
    pub duplicates: usize,
}

/// The stored name of a priority (`normal` when absent); 400 `invalid_priority` otherwise.
pub fn parse_priority(p: Option<&str>) -> Result<String> {
    let p = p.unwrap_or("normal").trim();
    p.parse::<Priority>()
        .map(|p| p.as_str().to_string())
        .map_err(|_| {
            Error::bad(
                "invalid_priority",
                format!("priority `{p}` must be normal, priority or emergency"),
            )
        })
}

/// A language code: 2–8 lowercase ASCII letters or `-`.
pub fn valid_language(l: &str) -> bool {
    (2..=8).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
}

/// Check language variants without the database: at least one, valid and distinct languages,
/// 1–300 character titles, bodies up to 20,000 characters. (Whether recorded audio exists and is
/// approved is the service's check.)
pub fn check_variants(vs: &[VariantIn]) -> Result<()> {
    if vs.is_empty() {
        return Err(Error::bad(
            "variants_required",
            "a bulletin needs at least one language variant (e.g. `vi`)",
        ));
    }
    let mut seen = HashSet::new();
    for v in vs {
        if !valid_language(&v.language) {
            return Err(Error::bad(
                "invalid_language",
                format!("language `{}` must be 2–8 lowercase letters", v.language),
            ));
        }
        if !seen.insert(v.language.clone()) {
            return Err(Error::bad(
                "duplicate_language",
                format!("language `{}` appears twice", v.language),
            ));
        }
        if v.title.trim().is_empty() || v.title.chars().count() > 300 {
            return Err(Error::bad(
                "invalid_title",
                format!("title of `{}` must be 1–300 characters", v.language),
            ));
        }
        if v.body.chars().count() > 20_000 {
            return Err(Error::TooLarge(format!(
                "body of `{}` is longer than 20000 characters",
                v.language
            )));
        }
    }
    Ok(())
}

/// The variants of a new bulletin: `variants`, with `title`/`body` as a `vi` variant first.
pub fn variants_of(req: &mut NewBulletin) -> Result<Vec<VariantIn>> {
    let mut variants = std::mem::take(&mut req.variants);
    if let Some(title) = req.title.take() {
        if variants.iter().any(|v| v.language == "vi") {
            return Err(Error::bad(
                "duplicate_language",
                "give `title`/`body` or a `vi` variant, not both",
            ));
        }
        variants.insert(
            0,
            VariantIn {
                language: "vi".into(),
                title,
                body: req.body.take().unwrap_or_default(),
                audio_sha256: None,
            },
        );
    }
    Ok(variants)
}

/// `valid_until` must follow `valid_from` when both are given.
pub fn validate_window(from: Option<i64>, until: Option<i64>) -> Result<()> {
    if let (Some(f), Some(u)) = (from, until)
        && u <= f
    {
        return Err(Error::bad(
            "invalid_window",
            "`valid_until` must be after `valid_from`",
        ));
    }
    Ok(())
}

/// Whether a bulletin valid from `from` until `until` is current at `now` (unix ms).
pub fn is_current(from: Option<i64>, until: Option<i64>, now: i64) -> bool {
    from.is_none_or(|f| f <= now) && until.is_none_or(|u| u > now)
}

/// Seconds on screen: 3–600 when given.
pub fn validate_dwell(d: Option<i64>) -> Result<()> {
    if let Some(d) = d
        && !(3..=600).contains(&d)
    {
        return Err(Error::bad("invalid_dwell", "`dwell_s` must be 3–600 seconds"));
    }
    Ok(())
}

/// The languages an area is given: valid and distinct.
pub fn check_languages(languages: &[String]) -> Result<()> {
    let mut seen = HashSet::new();
    for l in languages {
        if !valid_language(l) || !seen.insert(l.clone()) {
            return Err(Error::bad(
                "invalid_language",
                format!("language `{l}` is invalid or repeated"),
            ));
        }
    }
    Ok(())
}

/// What text-to-speech reads for a variant: "title. body" with the body's Markdown removed.
pub fn speech_text(title: &str, body: &str) -> String {
    format!("{}. {}", title.trim_end_matches('.'), markdown::to_plain(body))
}

/// Check a batch of proof-of-display records received at `now` (unix ms): at most 1000, uuids,
/// intervals that run forward and end no later than a day ahead.
pub fn check_displays(batch: &DisplayBatch, now: i64) -> Result<()> {
    if batch.displays.len() > 1000 {
        return Err(Error::TooLarge("at most 1000 records per batch".into()));
    }
    for d in &batch.displays {
        if uuid::Uuid::parse_str(&d.id).is_err() {
            return Err(Error::bad("invalid_id", format!("`{}` is not a uuid", d.id)));
        }
        if d.shown_to < d.shown_from || d.shown_from <= 0 || d.shown_to > now + 86_400_000 {
            return Err(Error::bad(
                "invalid_interval",
                format!("record {}: shown_to must follow shown_from", d.id),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The code of a 400.
    fn bad<T: std::fmt::Debug>(r: Result<T>) -> &'static str {
        match r.unwrap_err() {
            Error::BadRequest { code, .. } => code,
            e => panic!("not a 400: {e}"),
        }
    }

    fn v(language: &str, title: &str) -> VariantIn {
        VariantIn {
            language: language.into(),
            title: title.into(),
            body: String::new(),
            audio_sha256: None,
        }
    }

    #[test]
    fn variants_need_distinct_valid_languages_and_titles() {
        assert!(check_variants(&[v("vi", "Tin"), v("hmn", "Xov")]).is_ok());
        assert_eq!(bad(check_variants(&[])), "variants_required");
        assert_eq!(bad(check_variants(&[v("VI", "x")])), "invalid_language");
        assert_eq!(
            bad(check_variants(&[v("vi", "a"), v("vi", "b")])),
            "duplicate_language"
        );
        assert_eq!(bad(check_variants(&[v("vi", "  ")])), "invalid_title");
        let mut long = v("vi", "x");
        long.body = "a".repeat(20_001);
        assert!(matches!(check_variants(&[long]), Err(Error::TooLarge(_))));
    }

    #[test]
    fn a_shorthand_title_becomes_the_vi_variant_first() {
        let mut req: NewBulletin = serde_json::from_value(serde_json::json!({
            "title": "Tin", "body": "Nội dung", "variants": [{"language": "hmn", "title": "Xov"}]
        }))
        .unwrap();
        let vs = variants_of(&mut req).unwrap();
        assert_eq!(
            vs.iter().map(|v| v.language.as_str()).collect::<Vec<_>>(),
            ["vi", "hmn"]
        );
        let mut both: NewBulletin = serde_json::from_value(serde_json::json!({
            "title": "Tin", "variants": [{"language": "vi", "title": "Tin"}]
        }))
        .unwrap();
        assert_eq!(bad(variants_of(&mut both)), "duplicate_language");
    }

    #[test]
    fn priority_window_dwell_and_languages() {
        assert_eq!(parse_priority(None).unwrap(), "normal");
        assert_eq!(parse_priority(Some(" emergency ")).unwrap(), "emergency");
        assert!(parse_priority(Some("urgent")).is_err());
        assert!(validate_window(Some(2), Some(1)).is_err());
        assert!(validate_window(Some(1), Some(2)).is_ok() && validate_window(None, Some(1)).is_ok());
        assert!(is_current(None, None, 5) && is_current(Some(5), Some(6), 5));
        assert!(!is_current(Some(6), None, 5) && !is_current(None, Some(5), 5));
        assert!(validate_dwell(Some(2)).is_err() && validate_dwell(Some(600)).is_ok());
        assert!(check_languages(&["hmn".into(), "vi".into()]).is_ok());
        assert!(check_languages(&["vi".into(), "vi".into()]).is_err());
        assert!(check_languages(&["Vi".into()]).is_err());
    }

    #[test]
    fn speech_reads_title_then_plain_body() {
        assert_eq!(speech_text("Tin.", "**Họp** lúc 7 giờ"), "Tin. Họp lúc 7 giờ.");
    }

    #[test]
    fn display_records_need_uuids_and_forward_intervals() {
        let rec = |id: &str, from: i64, to: i64| DisplayIn {
            id: id.into(),
            bulletin_id: "b".into(),
            shown_from: from,
            shown_to: to,
        };
        let id = "0190a0a0-0000-7000-8000-000000000000";
        let ok = DisplayBatch {
            displays: vec![rec(id, 1, 2)],
        };
        assert!(check_displays(&ok, 10).is_ok());
        let wrong = DisplayBatch {
            displays: vec![rec("x", 1, 2)],
        };
        assert_eq!(bad(check_displays(&wrong, 10)), "invalid_id");
        let back = DisplayBatch {
            displays: vec![rec(id, 2, 1)],
        };
        assert_eq!(bad(check_displays(&back, 10)), "invalid_interval");
    }
}
