//! Which `<info>` blocks of a CAP alert an area hears (issue 12 §4, "several `<info>` blocks map
//! to language variants for areas that have those languages"). An area has an ordered list of
//! languages (the bulletins' `area_languages`, inherited down the tree, [`DEFAULT`] when none is set); the
//! intake picks, per list, the infos in those languages, Vietnamese first ([`pick`]). An info in a
//! language no TTS voice speaks is left to the boards (they show every info) rather than read
//! with a voice of another language; if that leaves nothing to say, the Vietnamese info (else the
//! first) is read with the default voice, so no loudspeaker plays the chime alone ([`spoken`]).

use crate::domain::cap::Alert;

/// The languages of an area that sets none (and has no ancestor that does).
pub const DEFAULT: &[&str] = &["vi"];

/// The primary subtag of a language tag, lowercase (`vi` for `vi-VN`, `en` for `en_US`).
pub fn primary(tag: &str) -> String {
    tag.split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// The list in the order it is read: Vietnamese first when present, the others as listed.
pub fn ordered(langs: &[String]) -> Vec<String> {
    let (vi, rest): (Vec<&String>, Vec<&String>) = langs.iter().partition(|l| primary(l) == "vi");
    vi.into_iter().chain(rest).cloned().collect()
}

/// The infos (indices into `alert.infos`) an area with languages `langs` hears, in reading
/// order: for each language ([`ordered`]), the infos in exactly that tag, else those with its
/// primary subtag (`vi` matches `vi-VN`); each info once. Empty when none matches.
pub fn pick(alert: &Alert, langs: &[String]) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for l in ordered(langs) {
        let exact: Vec<usize> = (0..alert.infos.len())
            .filter(|&i| alert.infos[i].language.eq_ignore_ascii_case(&l))
            .collect();
        let found = if exact.is_empty() {
            (0..alert.infos.len())
                .filter(|&i| alert.infos[i].primary_language() == primary(&l))
                .collect()
        } else {
            exact
        };
        for i in found {
            if !out.contains(&i) {
                out.push(i);
            }
        }
    }
    out
}

/// What loudspeakers with languages `langs` read: the picked infos ([`pick`]) whose language a
/// voice speaks (`has_voice` of the info's language), in order. When that is nothing, the
/// Vietnamese info (else the first) alone, read with the default voice. Empty only for an alert
/// without infos.
pub fn spoken(alert: &Alert, langs: &[String], has_voice: impl Fn(&str) -> bool) -> Vec<usize> {
    let out: Vec<usize> = pick(alert, langs)
        .into_iter()
        .filter(|&i| has_voice(&alert.infos[i].language))
        .collect();
    if !out.is_empty() {
        return out;
    }
    fallback(alert).into_iter().collect()
}

/// The info read when an area's languages give none: the Vietnamese one, else the first.
pub fn fallback(alert: &Alert) -> Option<usize> {
    alert
        .infos
        .iter()
        .position(|i| i.primary_language() == "vi")
        .or_else(|| (!alert.infos.is_empty()).then_some(0))
}

/// The language list in force for an area: its own, else that of the nearest area above it
/// that sets one (`chain` is the area then its ancestors, nearest first), else [`DEFAULT`].
pub fn effective<'a>(chain: &[String], own: impl Fn(&str) -> Option<&'a [String]>) -> Vec<String> {
    chain
        .iter()
        .find_map(|a| own(a).filter(|l| !l.is_empty()))
        .map(<[String]>::to_vec)
        .unwrap_or_else(|| DEFAULT.iter().map(|s| s.to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(langs: &[&str]) -> Alert {
        let infos: String = langs
            .iter()
            .map(|l| {
                format!(
                    "<info><language>{l}</language><category>Met</category><event>E {l}</event>\
                     <urgency>Immediate</urgency><severity>Severe</severity><certainty>Observed</certainty>\
                     <headline>H {l}</headline></info>"
                )
            })
            .collect();
        let xml = format!(
            r#"<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>x</identifier><sender>s</sender><sent>2026-12-03T09:00:00+07:00</sent><status>Actual</status><msgType>Alert</msgType><scope>Public</scope>{infos}</alert>"#
        );
        crate::domain::cap::parse(xml.as_bytes()).unwrap()
    }

    fn l(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_area_hears_its_languages_in_order_vietnamese_first() {
        let a = alert(&["en-US", "vi-VN", "hmn"]);
        assert_eq!(pick(&a, &l(&["vi-VN"])), [1]);
        assert_eq!(pick(&a, &l(&["vi"])), [1], "a primary subtag matches");
        assert_eq!(pick(&a, &l(&["hmn", "vi-VN"])), [1, 2], "Vietnamese first");
        assert_eq!(pick(&a, &l(&["vi-VN", "en-GB", "hmn"])), [1, 0, 2]);
        assert!(pick(&a, &l(&["km"])).is_empty());
    }

    #[test]
    fn a_language_without_a_voice_is_left_to_the_boards_and_nothing_is_never_read() {
        let a = alert(&["vi-VN", "hmn"]);
        let vi_only = |lang: &str| primary(lang) == "vi";
        assert_eq!(spoken(&a, &l(&["vi-VN", "hmn"]), vi_only), [0]);
        assert_eq!(spoken(&a, &l(&["vi-VN", "hmn"]), |_| true), [0, 1]);
        // Only a language without a voice, or none the alert has: the Vietnamese info is read.
        assert_eq!(spoken(&a, &l(&["hmn"]), vi_only), [0]);
        assert_eq!(spoken(&a, &l(&["km"]), vi_only), [0]);
        let en = alert(&["en-US"]);
        assert_eq!(spoken(&en, &l(&["vi-VN"]), vi_only), [0], "else the first");
    }

    #[test]
    fn languages_are_inherited_down_the_tree() {
        let own = l(&["vi-VN", "hmn"]);
        let chain = l(&["village", "commune", "province"]);
        let set = |a: &str| (a == "commune").then_some(own.as_slice());
        assert_eq!(effective(&chain, set), own);
        assert_eq!(effective(&chain, |_| None), ["vi"]);
    }
}
