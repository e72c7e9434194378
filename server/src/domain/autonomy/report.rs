//! The communes' answers in the report (issue 16): per commune, how many province items it was
//! asked to accept in the period and how many it accepted, declined, re-slotted or left
//! unanswered (still pending apart), and the median time a person took to answer.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::State;

/// One acceptance question as the report counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    /// The commune.
    pub area: String,
    /// Where it stands.
    pub state: State,
    /// Unix ms asked.
    pub asked_at: i64,
    /// Unix ms answered (or found unanswered).
    pub answered_at: Option<i64>,
}

/// One commune's answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct CommuneAnswers {
    /// The commune's code.
    pub area: String,
    /// Its name.
    pub name: String,
    /// Province items it was asked to accept.
    pub asked: i64,
    /// Accepted (tiếp nhận).
    pub accepted: i64,
    /// Declined (từ chối).
    pub declined: i64,
    /// Moved to another slot (đổi giờ).
    pub reslotted: i64,
    /// Not answered in time (the commune's policy applied).
    pub unanswered: i64,
    /// Still awaiting an answer.
    pub pending: i64,
    /// Median time to answer, seconds, over the items a person answered (null: none).
    pub median_answer_s: Option<i64>,
}

/// The answers per commune of `rows` (communes `in_scope`, named by `name`), by commune code.
pub fn count(
    rows: &[Asked],
    in_scope: impl Fn(&str) -> bool,
    name: impl Fn(&str) -> String,
) -> Vec<CommuneAnswers> {
    let mut by: BTreeMap<&str, (CommuneAnswers, Vec<i64>)> = BTreeMap::new();
    for r in rows.iter().filter(|r| in_scope(&r.area)) {
        let (c, times) = by.entry(r.area.as_str()).or_insert_with(|| {
            (
                CommuneAnswers {
                    area: r.area.clone(),
                    name: name(&r.area),
                    ..CommuneAnswers::default()
                },
                Vec::new(),
            )
        });
        c.asked += 1;
        match r.state {
            State::Accepted => c.accepted += 1,
            State::Declined => c.declined += 1,
            State::Reslotted => c.reslotted += 1,
            State::Unanswered => c.unanswered += 1,
            _ => c.pending += 1,
        }
        if matches!(r.state, State::Accepted | State::Declined | State::Reslotted)
            && let Some(at) = r.answered_at
        {
            times.push((at - r.asked_at).max(0));
        }
    }
    by.into_values()
        .map(|(mut c, mut t)| {
            t.sort_unstable();
            c.median_answer_s = median(&t).map(|ms| ms / 1000);
            c
        })
        .collect()
}

fn median(sorted: &[i64]) -> Option<i64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_counted_per_commune_with_the_median_of_peoples_answers() {
        let r = |area: &str, state, asked: i64, answered: Option<i64>| Asked {
            area: area.into(),
            state,
            asked_at: asked,
            answered_at: answered,
        };
        let rows = [
            r("c1", State::Accepted, 0, Some(60_000)),
            r("c1", State::Declined, 0, Some(180_000)),
            r("c1", State::Reslotted, 0, Some(120_000)),
            r("c1", State::Unanswered, 0, Some(1_000)),
            r("c1", State::Pending, 0, None),
            r("c2", State::Accepted, 0, Some(10_000)),
            r("c3", State::Accepted, 0, Some(10_000)),
        ];
        let out = count(&rows, |a| a != "c3", |a| format!("Xã {a}"));
        assert_eq!(out.len(), 2);
        let c1 = &out[0];
        assert_eq!(
            (
                c1.asked,
                c1.accepted,
                c1.declined,
                c1.reslotted,
                c1.unanswered,
                c1.pending
            ),
            (5, 1, 1, 1, 1, 1)
        );
        assert_eq!(c1.median_answer_s, Some(120), "unanswered ones do not count");
        assert_eq!(
            (out[1].name.as_str(), out[1].median_answer_s),
            ("Xã c2", Some(10))
        );
        assert_eq!(median(&[1, 3]), Some(2));
    }
}
