//! Relays (tiếp sóng, issue 17): a schedule whose occurrences play an external stream (VOV1,
//! the provincial radio: HTTP/Icecast MP3 or AAC in ADTS) for a window instead of media; its
//! `media` is then the fallback recording, played by a device that gets no audio from the
//! stream. The request's [`RelayStream`], its validation ([`validate`]) and what a save-time
//! check of the URL concluded ([`Reach`]). The proxy and the check are `services::relay`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, Result};

/// Shortest and longest relay window, seconds.
pub const DURATION_S: (u32, u32) = (10, 86_400);
/// Bounds of `fallback_after_s`.
pub const FALLBACK_AFTER_S: (u32, u32) = (3, 600);

/// A relay schedule's stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelayStream {
    /// `http://` or `https://` URL of the stream.
    pub url: String,
    /// Length of each occurrence's window, seconds (10–86400): the relay plays from the
    /// occurrence until then.
    pub duration_s: u32,
    /// Seconds without audio from the stream after which a device plays the fallback (3–600,
    /// default 15).
    #[serde(default = "default_fallback_after")]
    pub fallback_after_s: u32,
}

fn default_fallback_after() -> u32 {
    15
}

/// Check a relay request (422 `invalid_relay` naming the field); returns it with its URL trimmed.
pub fn validate(r: &RelayStream) -> Result<RelayStream> {
    let url = r.url.trim().to_string();
    let bad =
        |field: &str, why: String| Error::unprocessable("invalid_relay", format!("`relay.{field}`: {why}"));
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    if !scheme_ok || url.len() > 2000 || url.chars().any(char::is_whitespace) {
        return Err(bad("url", format!("`{url}` is not an http:// or https:// URL")));
    }
    if !(DURATION_S.0..=DURATION_S.1).contains(&r.duration_s) {
        let (lo, hi) = DURATION_S;
        return Err(bad(
            "duration_s",
            format!("must be {lo}–{hi} s, not {}", r.duration_s),
        ));
    }
    if !(FALLBACK_AFTER_S.0..=FALLBACK_AFTER_S.1).contains(&r.fallback_after_s) {
        let (lo, hi) = FALLBACK_AFTER_S;
        return Err(bad(
            "fallback_after_s",
            format!("must be {lo}–{hi} s, not {}", r.fallback_after_s),
        ));
    }
    Ok(RelayStream { url, ..r.clone() })
}

/// What the save-time check of a relay URL found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// It answered with audio the devices decode (the codec's name).
    Audio(String),
    /// It answered, with something that is not audio (why).
    NotAudio(String),
    /// It could not be reached (why): accepted, the alarm is raised at play time.
    Unreachable(String),
}

/// A content type that is certainly not a stream of audio (`text/html` of an error page, JSON,
/// an image).
pub fn not_audio_type(content_type: &str) -> bool {
    let t = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    t.starts_with("text/")
        || t.starts_with("image/")
        || (t.starts_with("video/") && t != "video/mp2t")
        || matches!(
            t.as_str(),
            "application/json" | "application/xml" | "application/xhtml+xml" | "application/pdf"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(url: &str, d: u32, f: u32) -> RelayStream {
        RelayStream {
            url: url.into(),
            duration_s: d,
            fallback_after_s: f,
        }
    }

    #[test]
    fn each_bad_field_is_named() {
        assert_eq!(
            validate(&req(" http://vov.vn/vov1 ", 1800, 15)).unwrap().url,
            "http://vov.vn/vov1"
        );
        for (r, field) in [
            (req("ftp://x/y", 1800, 15), "relay.url"),
            (req("http://a b", 1800, 15), "relay.url"),
            (req("http://x", 5, 15), "relay.duration_s"),
            (req("http://x", 1800, 1), "relay.fallback_after_s"),
        ] {
            let e = validate(&r).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
        assert!(not_audio_type("text/html; charset=utf-8"));
        assert!(!not_audio_type("audio/mpeg"));
        assert!(!not_audio_type("application/octet-stream"));
    }
}
