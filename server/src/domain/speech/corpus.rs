//! The normalisation corpus: `corpus.tsv` beside this file holds at least 200 announcement
//! sentences written for nguon (accent `n` or `s`, the text, the expected reading, tab-separated;
//! `#` starts a comment). The test reads every line and lists every sentence read differently.

use super::{Dialect, Lexicon, normalize_in};

const CORPUS: &str = include_str!("corpus.tsv");

fn lines() -> Vec<(Dialect, &'static str, &'static str)> {
    CORPUS
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut f = l.split('\t');
            let d = match f.next() {
                Some("s") => Dialect::South,
                Some("n") => Dialect::North,
                other => panic!("accent {other:?} in `{l}`"),
            };
            let text = f.next().unwrap_or_else(|| panic!("no text in `{l}`"));
            let want = f.next().unwrap_or_else(|| panic!("no reading in `{l}`"));
            (d, text, want)
        })
        .collect()
}

#[test]
fn every_sentence_of_the_corpus_is_read_as_written_down() {
    let lexicon = Lexicon::builtin();
    let lines = lines();
    assert!(lines.len() >= 200, "{} sentences", lines.len());
    let wrong: Vec<String> = lines
        .iter()
        .filter_map(|(d, text, want)| {
            let got = normalize_in(text, &lexicon, *d);
            (got != *want).then(|| format!("{text}\n  want {want}\n  got  {got}"))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} differ:\n{}",
        wrong.len(),
        lines.len(),
        wrong.join("\n")
    );
}

#[test]
fn no_digit_is_left_in_any_reading() {
    for (_, text, want) in lines() {
        assert!(!want.chars().any(|c| c.is_ascii_digit()), "{text}: {want}");
    }
}
