//! The abbreviation table used by [`super::normalize`]: the built-in entries
//! ([`super::abbreviations::BUILTIN_LEXICON`]) plus the operators' `tts_lexicon` rows, which win.
//! Exact (case-sensitive) terms first, then a case-insensitive match for all-caps-looking words
//! of two or more letters, so ordinary lower-case words ("tp" inside a sentence) stay as written.

use std::collections::HashMap;

use super::abbreviations::BUILTIN_LEXICON;

/// Abbreviation table.
#[derive(Debug, Clone, Default)]
pub struct Lexicon {
    exact: HashMap<String, String>,
    folded: HashMap<String, String>,
}

impl Lexicon {
    /// The built-in table.
    pub fn builtin() -> Lexicon {
        let mut l = Lexicon::default();
        for (t, e) in BUILTIN_LEXICON {
            l.insert(t, e);
        }
        l
    }

    /// Add or override one term.
    pub fn insert(&mut self, term: &str, expansion: &str) {
        let term = term.trim();
        if term.is_empty() {
            return;
        }
        self.exact.insert(term.to_string(), expansion.trim().to_string());
        if term.chars().count() >= 2 {
            self.folded
                .insert(term.to_lowercase(), expansion.trim().to_string());
        }
    }

    /// The reading of `word`, if it is a term.
    pub fn get(&self, word: &str) -> Option<&str> {
        self.exact
            .get(word)
            .or_else(|| {
                if word
                    .chars()
                    .filter(|c| c.is_alphabetic())
                    .all(|c| c.is_uppercase())
                {
                    self.folded.get(&word.to_lowercase())
                } else {
                    None
                }
            })
            .map(String::as_str)
    }
}
