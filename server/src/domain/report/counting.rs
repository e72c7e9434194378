//! Which occurrences of a schedule the report counts as scheduled (issue 13): only those that
//! fall after the schedule was created, while it was enabled (its recorded enable/disable
//! history, `schedule_enablement`), and before the earlier of now and the end of the period.
//! A schedule created today is therefore judged only on what it could have played.

use chrono::{DateTime, Utc};

use crate::domain::schedule::{MAX_OCCURRENCES, Schedule};

/// One recorded state of a schedule's enabled flag, from `at` (unix ms) on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Toggle {
    /// Unix ms the state was written.
    pub at: i64,
    /// Enabled from then on.
    pub enabled: bool,
}

/// The spans `[a, b)` (unix ms) in which a schedule's occurrences count within the period
/// `[from, to)` at `now`: from `created_at`, while enabled according to `history` (the recorded
/// states, any order; with none, `enabled_now` since creation), up to `min(to, now)`.
pub fn counted_spans(
    created_at: i64,
    history: &[Toggle],
    enabled_now: bool,
    (from, to): (i64, i64),
    now: i64,
) -> Vec<(i64, i64)> {
    let start = from.max(created_at);
    let end = to.min(now);
    if end <= start {
        return Vec::new();
    }
    let mut h: Vec<Toggle> = history.to_vec();
    h.sort_by_key(|t| t.at);
    if h.is_empty() {
        h.push(Toggle {
            at: created_at,
            enabled: enabled_now,
        });
    }
    // The state before the first record is the first record's: a schedule's first record is
    // written with its creation.
    let mut spans: Vec<(i64, i64)> = Vec::new();
    let mut state = h[0].enabled;
    let mut since = i64::MIN;
    for t in h.iter().chain(std::iter::once(&Toggle {
        at: i64::MAX,
        enabled: false,
    })) {
        if t.enabled != state || t.at == i64::MAX {
            if state {
                let (a, b) = (since.max(start), t.at.min(end));
                if b > a {
                    spans.push((a, b));
                }
            }
            state = t.enabled;
            since = t.at;
        }
    }
    spans
}

/// The occurrences (unix ms, ascending) of `s` inside `spans`, every one of them (the schedule's
/// own look-ahead cap does not apply: a half-year of a schedule every ten minutes is ~26,000).
pub fn occurrences_in(s: &Schedule, spans: &[(i64, i64)]) -> Vec<i64> {
    let ms = |t: i64| DateTime::<Utc>::from_timestamp_millis(t).unwrap_or_default();
    let mut out = Vec::new();
    for &(a, b) in spans {
        let mut from = a;
        loop {
            let batch = s.occurrences(ms(from), ms(b));
            let full = batch.len() >= MAX_OCCURRENCES;
            let last = batch.last().map(|t| t.timestamp_millis());
            out.extend(batch.iter().map(|t| t.timestamp_millis()));
            match last {
                Some(l) if full && l + 1 < b => from = l + 1,
                _ => break,
            }
        }
    }
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::{Toggle, counted_spans};

    fn t(at: i64, enabled: bool) -> Toggle {
        Toggle { at, enabled }
    }

    #[test]
    fn only_the_time_after_creation_and_before_now_counts() {
        // Created at 500 in a period [0, 1000) at now 800.
        assert_eq!(
            counted_spans(500, &[t(500, true)], true, (0, 1000), 800),
            vec![(500, 800)]
        );
        // Created before the period, the period over: the whole period.
        assert_eq!(
            counted_spans(-5, &[t(-5, true)], true, (0, 1000), 5000),
            vec![(0, 1000)]
        );
        // A period in the future counts nothing; nor one before the creation.
        assert!(counted_spans(0, &[], true, (1000, 2000), 900).is_empty());
        assert!(counted_spans(3000, &[], true, (1000, 2000), 9000).is_empty());
    }

    #[test]
    fn only_the_enabled_stretches_count() {
        let h = [
            t(100, true),
            t(300, false),
            t(600, true),
            t(700, true),
            t(900, false),
        ];
        assert_eq!(
            counted_spans(100, &h, false, (0, 1000), 2000),
            vec![(100, 300), (600, 900)]
        );
        // Any order; a period cutting through.
        let mut r = h;
        r.reverse();
        assert_eq!(
            counted_spans(100, &r, false, (200, 650), 2000),
            vec![(200, 300), (600, 650)]
        );
        // Created disabled, enabled later, still enabled.
        assert_eq!(
            counted_spans(0, &[t(0, false), t(400, true)], true, (0, 1000), 800),
            vec![(400, 800)]
        );
        // No history: the current flag since creation.
        assert!(counted_spans(0, &[], false, (0, 1000), 800).is_empty());
        assert_eq!(counted_spans(0, &[], true, (0, 1000), 800), vec![(0, 800)]);
    }
}
