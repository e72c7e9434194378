//! The normalisation corpora, tab-separated files beside this one (accent `n` or `s`, the text,
//! the expected reading; `#` starts a comment). `corpus.tsv` holds at least 200 announcement
//! sentences written for nguon while the rules were built; `heldout.tsv` at least 60 more, written
//! afterwards in the same announcement styles without looking at the rules (storm and flood
//! bulletins, health, policy, elections, hotlines) and kept once the misreadings it found were
//! fixed. The tests read every line and list every sentence read differently.

use super::{Dialect, Lexicon, normalize_in};

const CORPUS: &str = include_str!("corpus.tsv");
const HELD_OUT: &str = include_str!("heldout.tsv");

fn lines(file: &'static str) -> Vec<(Dialect, &'static str, &'static str)> {
    file.lines()
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

/// Every sentence of `file` read differently from its expected reading.
fn misread(file: &'static str) -> Vec<String> {
    let lexicon = Lexicon::builtin();
    lines(file)
        .iter()
        .filter_map(|(d, text, want)| {
            let got = normalize_in(text, &lexicon, *d);
            (got != *want).then(|| format!("{text}\n  want {want}\n  got  {got}"))
        })
        .collect()
}

/// Every sentence of `set` (at least `min` of them) is read as written down in it.
fn assert_read_as_written(set: &'static str, min: usize) {
    let n = lines(set).len();
    assert!(n >= min, "{n} sentences");
    let wrong = misread(set);
    assert!(
        wrong.is_empty(),
        "{} of {n} differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn every_sentence_of_the_corpus_is_read_as_written_down() {
    assert_read_as_written(CORPUS, 200);
}

#[test]
fn every_held_out_sentence_is_read_as_written_down() {
    assert_read_as_written(HELD_OUT, 60);
}

#[test]
fn the_held_out_set_is_not_in_the_corpus() {
    let corpus: std::collections::HashSet<&str> = lines(CORPUS).iter().map(|(_, t, _)| *t).collect();
    for (_, text, _) in lines(HELD_OUT) {
        assert!(!corpus.contains(text), "in both: {text}");
    }
}

#[test]
fn no_digit_is_left_in_any_reading() {
    for (_, text, want) in lines(CORPUS).into_iter().chain(lines(HELD_OUT)) {
        assert!(!want.chars().any(|c| c.is_ascii_digit()), "{text}: {want}");
    }
}
