//! The report's engagement sections (issue 15), apart from the broadcast figures: citizens'
//! feedback (received in the period, answered in the period, overdue: received in the period and
//! answered after its deadline or still waiting past it, and the median response time of the
//! answers given in the period) and the submissions per organisation (made in the period, of
//! them approved and rejected so far). Pure counting over rows the service loads.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::feedback::Status;
use crate::domain::organisation::Organisation;
use crate::domain::submission::Status as SubStatus;

/// One feedback as the report reads it.
#[derive(Debug, Clone)]
pub struct FeedbackRow {
    /// Area.
    pub area: String,
    /// Status now.
    pub status: Status,
    /// Unix ms.
    pub received_at: i64,
    /// Deadline, unix ms.
    pub due_at: i64,
    /// Unix ms.
    pub answered_at: Option<i64>,
}

/// The feedback figures of a period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct FeedbackFigures {
    /// Received in the period.
    pub received: i64,
    /// Answered in the period.
    pub answered: i64,
    /// Received in the period and answered late or still waiting past the deadline (at the
    /// earlier of now and the period's end).
    pub overdue: i64,
    /// Median of (answered − received) of the answers given in the period, ms; none without
    /// answers.
    pub median_response_ms: Option<i64>,
}

/// One organisation's submissions in the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OrgSubmissions {
    /// Organisation id.
    pub organisation_id: String,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// Made in the period.
    pub submitted: i64,
    /// Of them approved.
    pub approved: i64,
    /// Of them rejected.
    pub rejected: i64,
}

/// The engagement sections of a report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Engagement {
    /// Period start, unix ms.
    pub from_ms: i64,
    /// Period end, unix ms (exclusive).
    pub to_ms: i64,
    /// Citizens' feedback.
    pub feedback: FeedbackFigures,
    /// Submissions per organisation (every organisation, most first).
    pub submissions: Vec<OrgSubmissions>,
}

/// The median of `v` (the mean of the two middle values of an even count, rounded down).
pub fn median(mut v: Vec<i64>) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    })
}

/// Count the feedback rows of `[from, to)` whose area `keep` accepts, at `now`.
pub fn feedback(
    rows: &[FeedbackRow],
    from: i64,
    to: i64,
    now: i64,
    keep: impl Fn(&str) -> bool,
) -> FeedbackFigures {
    let mut f = FeedbackFigures::default();
    let mut times = Vec::new();
    let until = now.min(to);
    for r in rows.iter().filter(|r| keep(&r.area)) {
        if (from..to).contains(&r.received_at) {
            f.received += 1;
            let late = match r.answered_at {
                Some(a) => a > r.due_at,
                None => r.status.waiting() && until >= r.due_at,
            };
            f.overdue += i64::from(late);
        }
        if let Some(a) = r.answered_at
            && (from..to).contains(&a)
        {
            f.answered += 1;
            times.push(a - r.received_at);
        }
    }
    f.median_response_ms = median(times);
    f
}

/// Every organisation with its submissions among `made` (`(organisation_id, status)`).
pub fn submissions(orgs: &[Organisation], made: &[(String, SubStatus)]) -> Vec<OrgSubmissions> {
    let mut out: Vec<OrgSubmissions> = orgs
        .iter()
        .map(|o| {
            let mine = made.iter().filter(|(id, _)| *id == o.id);
            OrgSubmissions {
                organisation_id: o.id.clone(),
                name: o.name.clone(),
                kind: o.kind.clone(),
                submitted: mine.clone().count() as i64,
                approved: mine.clone().filter(|(_, s)| *s == SubStatus::Approved).count() as i64,
                rejected: mine.filter(|(_, s)| *s == SubStatus::Rejected).count() as i64,
            }
        })
        .collect();
    out.sort_by(|a, b| b.submitted.cmp(&a.submitted).then(a.name.cmp(&b.name)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn row(received: i64, answered: Option<i64>, status: Status) -> FeedbackRow {
        FeedbackRow {
            area: "a".into(),
            status,
            received_at: received,
            due_at: received + 72 * H,
            answered_at: answered,
        }
    }

    #[test]
    fn feedback_is_counted_by_when_it_was_received_and_answered() {
        let rows = vec![
            row(10 * H, Some(20 * H), Status::Answered), // 10 h
            row(11 * H, Some(100 * H), Status::Closed),  // 89 h: late
            row(12 * H, None, Status::Received),         // waiting past its deadline at 90 h
            row(-5 * H, Some(30 * H), Status::Answered), // received before, answered in: 35 h
            row(500 * H, None, Status::Received),        // after the period
        ];
        let f = feedback(&rows, 0, 200 * H, 80 * H, |_| true);
        assert_eq!((f.received, f.answered, f.overdue), (3, 3, 1));
        let f = feedback(&rows, 0, 200 * H, 120 * H, |_| true);
        assert_eq!(
            f.overdue, 2,
            "the waiting one is late once now passes its deadline"
        );
        assert_eq!(f.median_response_ms, Some(35 * H));
        assert_eq!(
            feedback(&rows, 0, 200 * H, 90 * H, |a| a == "b"),
            FeedbackFigures::default()
        );
        assert_eq!(median(vec![4, 1, 3, 2]), Some(2));
        assert_eq!(median(Vec::new()), None);
    }
}
