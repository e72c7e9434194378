//! The media library's pure rules: what a media record is ([`Media`], its review status is
//! [`ReviewStatus`]), what the schedules and the dispatcher need of it ([`MediaInfo`]), what a
//! content address looks like ([`is_sha`]), how names, titles and review notes are cleaned, and the
//! upload limits. Uploads, probing and storage are `services::media`; the SQL is `store::media`.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::review::ReviewStatus;
use crate::error::Error;

/// Longest `title` form field accepted, bytes (the title keeps its first [`TITLE_MAX_CHARS`]).
pub const TITLE_FIELD_MAX_BYTES: usize = 4096;
/// Longest title kept, characters.
pub const TITLE_MAX_CHARS: usize = 300;
/// Longest `area` form field accepted, bytes.
pub const AREA_FIELD_MAX_BYTES: usize = 256;
/// Longest file name kept, characters.
pub const FILENAME_MAX_CHARS: usize = 200;
/// Longest review note kept, characters.
pub const NOTE_MAX_CHARS: usize = 2000;

/// A stored media file.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
#[schema(as = MediaRow)]
pub struct Media {
    /// Lowercase hex sha256 of the content (its address).
    pub sha256: String,
    /// Original file name.
    pub filename: String,
    /// Title (defaults to the file name).
    pub title: String,
    /// Bytes.
    pub size: i64,
    /// Container: `mp3`, `wav`, `ogg`, `flac`, `isomp4`...
    pub container: String,
    /// Codec: `mp3`, `pcm_s16le`, `vorbis`, `flac`, `aac`...
    pub codec: String,
    /// Hz.
    pub sample_rate: i64,
    /// Channels.
    pub channels: i64,
    /// Exact playable duration in ms.
    pub duration_ms: i64,
    /// `draft`, `pending`, `approved`, `rejected`.
    #[schema(value_type = String)]
    pub status: ReviewStatus,
    /// Note of the last review.
    pub status_note: Option<String>,
    /// Owning area; null = province-wide.
    pub area: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

impl Media {
    /// The audit log's name of this file (`media:<sha256>`).
    pub fn subject(&self) -> String {
        subject(&self.sha256)
    }
}

/// What schedules, play-now commands and manifests need of a media file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaInfo {
    /// Bytes.
    pub size: i64,
    /// Exact playable duration in ms.
    pub duration_ms: i64,
    /// Whether it is approved for broadcast.
    pub approved: bool,
    /// The loudness-normalised rendition of an upload, which devices fetch and play instead of
    /// the original (`None`: the original is played).
    pub rendition: Option<Delivered>,
}

/// A file devices fetch: its content address, bytes and duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Lowercase hex sha256 of the bytes devices get.
    pub sha256: String,
    /// Bytes.
    pub size: i64,
    /// Duration in ms.
    pub duration_ms: i64,
}

impl MediaInfo {
    /// What devices fetch for the media item `sha`: its normalised rendition when it has one,
    /// else the item itself.
    pub fn delivered(&self, sha: &str) -> Delivered {
        self.rendition.clone().unwrap_or_else(|| Delivered {
            sha256: sha.to_string(),
            size: self.size,
            duration_ms: self.duration_ms,
        })
    }
}

/// The loudness of an uploaded file as measured (EBU R128) and of the normalised rendition stored
/// beside it, which loudspeakers play; the original is never altered.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct MediaLoudness {
    /// Integrated loudness of the original, LUFS; null when it is silent (under the gate).
    pub loudness_lufs: Option<f64>,
    /// True peak of the original, dBTP.
    pub true_peak_dbtp: Option<f64>,
    /// The loudness every upload is brought to, LUFS.
    pub target_lufs: f64,
    /// The rendition devices fetch; null when the original is played as it is (see `note`).
    pub rendition: Option<LoudnessRendition>,
    /// Why there is no rendition (silence, already at the target, too long).
    pub note: Option<String>,
}

/// The normalised rendition of an upload: a 16-bit PCM WAV at the original's sample rate and
/// channels, or the stereo mix (ITU-R BS.775) of an original of more than two channels.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct LoudnessRendition {
    /// Its content address (`/media/<sha256>`, public once the original is approved).
    pub sha256: String,
    /// Bytes.
    pub size: i64,
    /// Duration in ms.
    pub duration_ms: i64,
    /// Integrated loudness, LUFS.
    pub loudness_lufs: f64,
    /// True peak, dBTP.
    pub true_peak_dbtp: f64,
    /// Gain applied, dB.
    pub gain_db: f64,
    /// The original's channel count when the rendition is its stereo downmix (more than two
    /// channels: 5.1 is 6); null when it has the original's channels.
    pub downmixed_from: Option<i64>,
}

/// The audit log's name of a media file (`media:<sha256>`).
pub fn subject(sha: &str) -> String {
    format!("media:{sha}")
}

/// The path devices fetch a file from (`/media/<sha256>`).
pub fn url_path(sha: &str) -> String {
    format!("/media/{sha}")
}

/// Whether `s` is a content address: 64 lowercase hex digits.
pub fn is_sha(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The file name to keep: the last path component, trimmed, without control characters, at most
/// [`FILENAME_MAX_CHARS`]; `upload` when nothing is left.
pub fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name).trim();
    let s: String = base
        .chars()
        .filter(|c| !c.is_control())
        .take(FILENAME_MAX_CHARS)
        .collect();
    if s.is_empty() { "upload".into() } else { s }
}

/// The title to keep: the given one trimmed, or the (cleaned) file name when it is absent or blank.
pub fn clean_title(title: Option<&str>, filename: &str) -> String {
    title
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| filename.to_string())
}

/// The `title` form field's value: its first [`TITLE_MAX_CHARS`] characters.
pub fn title_field(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .chars()
        .take(TITLE_MAX_CHARS)
        .collect()
}

/// The `area` form field's value: trimmed, `None` when blank.
pub fn area_field(raw: &[u8]) -> Option<String> {
    Some(String::from_utf8_lossy(raw).trim().to_string()).filter(|a| !a.is_empty())
}

/// A review note as stored: trimmed, at most [`NOTE_MAX_CHARS`], `None` when blank.
pub fn clean_note(note: Option<String>) -> Option<String> {
    note.map(|n| n.trim().chars().take(NOTE_MAX_CHARS).collect::<String>())
        .filter(|n| !n.is_empty())
}

/// The upload limit in bytes for a limit of `max_upload_mb` MB.
pub fn limit_bytes(max_upload_mb: u64) -> u64 {
    max_upload_mb.saturating_mul(1024 * 1024)
}

/// The 413 of a file over the limit of `max_upload_mb` MB.
pub fn too_large(max_upload_mb: u64) -> Error {
    Error::TooLarge(format!("the file is larger than the limit of {max_upload_mb} MB"))
}

/// The 400 of a form field over its limit.
pub fn field_too_long(field: &str, max_bytes: usize) -> Error {
    Error::bad(
        "invalid_field",
        format!("`{field}` is longer than {max_bytes} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_addresses_are_64_lowercase_hex_digits() {
        assert!(is_sha(&"a1".repeat(32)));
        assert!(!is_sha(&"A1".repeat(32)));
        assert!(!is_sha(&"a1".repeat(31)));
        assert!(!is_sha(&format!("{}/x", "a".repeat(62))));
    }

    #[test]
    fn names_titles_and_notes_are_cleaned() {
        assert_eq!(clean_name("C:\\Users\\x\\bản tin.mp3"), "bản tin.mp3");
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name(" a\u{0}b\n "), "ab");
        assert_eq!(clean_name("dir/"), "upload");
        assert_eq!(clean_name(&"x".repeat(500)).chars().count(), FILENAME_MAX_CHARS);
        assert_eq!(clean_title(Some("  Bản tin sáng "), "a.mp3"), "Bản tin sáng");
        assert_eq!(clean_title(Some("   "), "a.mp3"), "a.mp3");
        assert_eq!(clean_title(None, "a.mp3"), "a.mp3");
        assert_eq!(
            title_field("é".repeat(400).as_bytes()).chars().count(),
            TITLE_MAX_CHARS
        );
        assert_eq!(area_field(b" 08003 "), Some("08003".into()));
        assert_eq!(area_field(b"  "), None);
        assert_eq!(clean_note(Some("  ok ".into())), Some("ok".into()));
        assert_eq!(clean_note(Some(" ".into())), None);
        assert_eq!(
            clean_note(Some("n".repeat(3000))).map(|n| n.len()),
            Some(NOTE_MAX_CHARS)
        );
    }

    #[test]
    fn the_limit_is_in_mebibytes_and_its_refusal_names_it() {
        assert_eq!(limit_bytes(2), 2 * 1024 * 1024);
        assert_eq!(
            too_large(1).to_string(),
            "the file is larger than the limit of 1 MB"
        );
        assert_eq!(
            field_too_long("title", 4096).to_string(),
            "`title` is longer than 4096 bytes"
        );
    }
}
