//! Vietnamese text-to-speech, the pure part: voice settings and their limits ([`Voice`]), the
//! limits of a text to synthesise ([`check_text`]) and of the operators' lexicon
//! ([`check_lexicon`]), text normalisation ([`normalize`], [`normalize_in`]: numbers, dates,
//! times, ranges, money, units, hotlines, phone numbers, Roman numerals, ordinals, ratios,
//! abbreviations; Northern or Southern number words by [`Accent`]) and loudness normalisation
//! of PCM ([`loudness`], EBU R128 with the `ebur128` crate). The engines, synthesis and storage
//! are `services::speech`.

pub mod abbreviations;
mod forms;
pub mod lexicon;
pub mod loudness;
pub mod normalize;
pub mod numbers;
mod words;

#[cfg(test)]
mod corpus;

pub use abbreviations::BUILTIN_LEXICON;
pub use lexicon::Lexicon;
pub use normalize::{Piece, normalize, normalize_in, normalize_pieces};
pub use numbers::{Dialect, read_number, read_number_in};

/// A voice's regional accent. Number words follow it: Northern and Central voices say "linh",
/// "nghìn"; Southern voices say "lẻ", "ngàn".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accent {
    /// Northern (the default).
    #[default]
    North,
    /// Central.
    Central,
    /// Southern.
    South,
}

impl Accent {
    /// The number words of this accent.
    pub fn dialect(self) -> Dialect {
        match self {
            Accent::South => Dialect::South,
            Accent::North | Accent::Central => Dialect::North,
        }
    }

    /// Parse `north`, `central` or `south`.
    pub fn parse(s: &str) -> Option<Accent> {
        match s.trim() {
            "north" => Some(Accent::North),
            "central" => Some(Accent::Central),
            "south" => Some(Accent::South),
            _ => None,
        }
    }

    /// The name as written in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Accent::North => "north",
            Accent::Central => "central",
            Accent::South => "south",
        }
    }
}

use crate::error::{Error, Result};

/// Longest text accepted for one synthesis, in characters.
pub const MAX_TEXT_CHARS: usize = 20_000;

/// Voice settings for one synthesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voice {
    /// Engine voice name, e.g. `vi`, `vi-vn-x-central`, `vi-vn-x-south`.
    pub name: String,
    /// Words per minute (80–450).
    pub speed: u32,
    /// Pitch (0–99).
    pub pitch: u32,
}

impl Default for Voice {
    fn default() -> Self {
        Voice {
            name: "vi".into(),
            speed: 150,
            pitch: 50,
        }
    }
}

impl Voice {
    /// Validate optional request values against the engine's `voices`, filling defaults.
    pub fn from_request(
        voices: &[String],
        name: Option<&str>,
        speed: Option<u32>,
        pitch: Option<u32>,
    ) -> Result<Voice> {
        let d = Voice::default();
        let name = name
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or(&d.name)
            .to_string();
        if !voices.contains(&name) {
            return Err(Error::bad(
                "unknown_voice",
                format!("voice `{name}` is not one of {}", voices.join(", ")),
            ));
        }
        let speed = speed.unwrap_or(d.speed);
        if !(80..=450).contains(&speed) {
            return Err(Error::bad(
                "invalid_speed",
                format!("speed {speed} must be 80–450 words per minute"),
            ));
        }
        let pitch = pitch.unwrap_or(d.pitch);
        if pitch > 99 {
            return Err(Error::bad("invalid_pitch", format!("pitch {pitch} must be 0–99")));
        }
        Ok(Voice { name, speed, pitch })
    }
}

/// 400 `empty_text` for a blank text, 413 for one over [`MAX_TEXT_CHARS`].
pub fn check_text(text: &str) -> Result<()> {
    if text.trim().is_empty() {
        return Err(Error::bad("empty_text", "text must not be empty"));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(Error::TooLarge(format!(
            "text is longer than {MAX_TEXT_CHARS} characters"
        )));
    }
    Ok(())
}

/// Check the operators' lexicon `(term, expansion)` entries and return them trimmed: a term is
/// 1–64 characters and at most two words, an expansion 1–256 characters, no term twice (400
/// `invalid_term`, `invalid_expansion`, `duplicate_term`).
pub fn check_lexicon<'a>(
    entries: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Vec<(String, String)>> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (term, expansion) in entries {
        let t = term.trim();
        if t.is_empty()
            || t.chars().count() > 64
            || t.contains(char::is_whitespace) && t.split_whitespace().count() > 2
        {
            return Err(Error::bad(
                "invalid_term",
                format!("term `{term}` must be 1–64 characters, at most two words"),
            ));
        }
        if expansion.trim().is_empty() || expansion.chars().count() > 256 {
            return Err(Error::bad(
                "invalid_expansion",
                format!("expansion of `{t}` must be 1–256 characters"),
            ));
        }
        if !seen.insert(t.to_string()) {
            return Err(Error::bad("duplicate_term", format!("term `{t}` appears twice")));
        }
        out.push((t.to_string(), expansion.trim().to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(e: Error) -> &'static str {
        match e {
            Error::BadRequest { code, .. } => code,
            Error::TooLarge(_) => "too_large",
            _ => "other",
        }
    }

    #[test]
    fn voice_settings_default_and_are_checked() {
        let voices = vec!["vi".to_string(), "vi-vn-x-south".to_string()];
        assert_eq!(
            Voice::from_request(&voices, None, None, None).unwrap(),
            Voice::default()
        );
        let v = Voice::from_request(&voices, Some(" vi-vn-x-south "), Some(200), Some(0)).unwrap();
        assert_eq!((v.name.as_str(), v.speed, v.pitch), ("vi-vn-x-south", 200, 0));
        let e = |n, s, p| code(Voice::from_request(&voices, n, s, p).unwrap_err());
        assert_eq!(e(Some("en"), None, None), "unknown_voice");
        assert_eq!(e(None, Some(79), None), "invalid_speed");
        assert_eq!(e(None, Some(451), None), "invalid_speed");
        assert_eq!(e(None, None, Some(100)), "invalid_pitch");
    }

    #[test]
    fn texts_and_lexicon_entries_are_checked() {
        assert_eq!(code(check_text("  ").unwrap_err()), "empty_text");
        assert_eq!(
            code(check_text(&"a".repeat(MAX_TEXT_CHARS + 1)).unwrap_err()),
            "too_large"
        );
        assert!(check_text("Bản tin").is_ok());
        assert_eq!(
            check_lexicon([(" HTX ", " hợp tác xã ")]).unwrap(),
            vec![("HTX".to_string(), "hợp tác xã".to_string())]
        );
        assert_eq!(code(check_lexicon([("", "x")]).unwrap_err()), "invalid_term");
        assert_eq!(code(check_lexicon([("a b c", "x")]).unwrap_err()), "invalid_term");
        assert_eq!(
            code(check_lexicon([("HTX", " ")]).unwrap_err()),
            "invalid_expansion"
        );
        assert_eq!(
            code(check_lexicon([("HTX", "a"), ("HTX ", "b")]).unwrap_err()),
            "duplicate_term"
        );
    }
}
