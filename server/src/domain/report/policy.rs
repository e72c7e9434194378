//! The report's policy sections (issue 15), as pure functions over loaded data:
//!
//! - **policy coverage**: over the policies with a direct impact on people and businesses whose
//!   areas reach the report's scope, for each stage: how many had reached it by the end of the
//!   period and were still in it at the start of the period (a stage that ended before the
//!   period belongs to an earlier report), how many of those were communicated (any proof of
//!   play or of display of content linked to that stage up to the end of the period, or a linked
//!   bulletin on the public site), and the rate; the policies communicated at every stage they
//!   reached; and the list of gaps (policy, stage);
//! - **public channel reach**: page views, feed reads and QR code loads of the public site in
//!   the period (counted per path and day, without cookies), and the most read paths.

use chrono::NaiveDate;
use serde::Serialize;

use crate::domain::policy::{Policy, Stage, StageCoverage};

/// One stage's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageFigure {
    /// The stage.
    pub stage: Stage,
    /// Its Vietnamese name.
    pub label: String,
    /// Direct-impact policies in that stage during the period.
    pub reached: i64,
    /// Of which communicated.
    pub communicated: i64,
    /// communicated ÷ reached (None when none reached it).
    pub rate: Option<f64>,
}

/// A stage reached that nothing communicated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// Policy id.
    pub policy_id: String,
    /// Policy title.
    pub title: String,
    /// Issuing body.
    pub issuer: String,
    /// The stage.
    pub stage: Stage,
    /// Its Vietnamese name.
    pub label: String,
}

/// The policy coverage section.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PolicyCoverage {
    /// Direct-impact policies counted (at least one stage in the period).
    pub policies: i64,
    /// Of which communicated at every stage they were in during the period.
    pub fully_communicated: i64,
    /// fully_communicated ÷ policies (None when there is none): the plan's 100 % target.
    pub rate: Option<f64>,
    /// Each stage.
    pub stages: Vec<StageFigure>,
    /// The gaps, by policy title then stage.
    pub gaps: Vec<Gap>,
}

fn ratio(a: i64, b: i64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Whether stage coverage `s` belongs to a period starting on `from`: reached, and not ended
/// before the period.
fn in_period(s: &StageCoverage, from: NaiveDate) -> bool {
    s.reached
        && s.ends_on
            .as_deref()
            .and_then(|e| NaiveDate::parse_from_str(e, "%Y-%m-%d").ok())
            .is_none_or(|e| e >= from)
}

/// The section over `items` (each policy with its stages' coverage counted up to the end of
/// the period, `reached` as of the period's last day), for a period starting on `from`.
pub fn policy_coverage(items: &[(Policy, Vec<StageCoverage>)], from: NaiveDate) -> PolicyCoverage {
    let mut out = PolicyCoverage::default();
    let mut per: Vec<(i64, i64)> = vec![(0, 0); Stage::ALL.len()];
    for (p, stages) in items.iter().filter(|(p, _)| p.direct_impact) {
        let mine: Vec<&StageCoverage> = stages.iter().filter(|s| in_period(s, from)).collect();
        if mine.is_empty() {
            continue;
        }
        out.policies += 1;
        let mut all = true;
        for s in mine {
            let i = Stage::ALL.iter().position(|x| *x == s.stage).unwrap_or(0);
            per[i].0 += 1;
            if s.communicated {
                per[i].1 += 1;
            } else {
                all = false;
                out.gaps.push(Gap {
                    policy_id: p.id.clone(),
                    title: p.title.clone(),
                    issuer: p.issuer.clone(),
                    stage: s.stage,
                    label: s.stage.label_vi().to_string(),
                });
            }
        }
        out.fully_communicated += i64::from(all);
    }
    out.gaps
        .sort_by(|a, b| (&a.title, a.stage, &a.policy_id).cmp(&(&b.title, b.stage, &b.policy_id)));
    out.rate = ratio(out.fully_communicated, out.policies);
    out.stages = Stage::ALL
        .iter()
        .zip(per)
        .map(|(s, (reached, communicated))| StageFigure {
            stage: *s,
            label: s.label_vi().to_string(),
            reached,
            communicated,
            rate: ratio(communicated, reached),
        })
        .collect();
    out
}

/// Hits of one public path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathHits {
    /// `page:/…`, `feed:/feeds/…`, `qr:/b/…`.
    pub path: String,
    /// Hits in the period.
    pub hits: i64,
}

/// The public channel reach section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PublicReach {
    /// Page views.
    pub pages: i64,
    /// Feed reads (RSS, Atom, JSON Feed; a 304 counts as a read).
    pub feeds: i64,
    /// QR code image loads.
    pub qr: i64,
    /// The most read paths (at most 20).
    pub top: Vec<PathHits>,
}

/// The section from the hits per path of the period (most first).
pub fn public_reach(hits: &[(String, i64)]) -> PublicReach {
    let mut r = PublicReach::default();
    for (path, n) in hits {
        match path.split_once(':').map(|(k, _)| k) {
            Some("feed") => r.feeds += n,
            Some("qr") => r.qr += n,
            _ => r.pages += n,
        }
    }
    r.top = hits
        .iter()
        .take(20)
        .map(|(path, hits)| PathHits {
            path: path.clone(),
            hits: *hits,
        })
        .collect();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cov(stage: Stage, reached: bool, communicated: bool, ends_on: Option<&str>) -> StageCoverage {
        StageCoverage {
            stage,
            starts_on: None,
            ends_on: ends_on.map(str::to_string),
            reached,
            items: 0,
            plays: 0,
            devices: 0,
            displays: 0,
            boards: 0,
            public_items: 0,
            communicated,
            gap: reached && !communicated,
        }
    }

    #[test]
    fn a_stage_ended_before_the_period_is_not_counted_and_a_silent_one_is_a_gap() {
        let p = |id: &str, direct| Policy {
            id: id.into(),
            title: id.into(),
            issuer: "i".into(),
            doc_number: None,
            doc_url: None,
            field: "f".into(),
            groups: vec![],
            areas: vec![],
            summary: String::new(),
            direct_impact: direct,
            stage: Stage::Issued,
            stages: vec![],
            published: false,
            created_by: "a".into(),
            created_at: 0,
            updated_at: 0,
        };
        let from = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let items = vec![
            (
                p("a", true),
                vec![
                    cov(Stage::Consultation, true, false, Some("2025-12-01")),
                    cov(Stage::Issued, true, true, None),
                ],
            ),
            (p("b", true), vec![cov(Stage::Consultation, true, false, None)]),
            (p("c", false), vec![cov(Stage::Consultation, true, false, None)]),
        ];
        let r = policy_coverage(&items, from);
        assert_eq!((r.policies, r.fully_communicated), (2, 1));
        assert_eq!(r.stages[0].reached, 1, "a's consultation ended before 2026");
        assert_eq!(r.stages[1].communicated, 1);
        assert_eq!(r.gaps.len(), 1);
        assert_eq!(r.gaps[0].policy_id, "b");
        let h = public_reach(&[
            ("feed:/feeds/rss.xml".into(), 5),
            ("page:/".into(), 3),
            ("qr:/b/x/qr.svg".into(), 1),
        ]);
        assert_eq!((h.pages, h.feeds, h.qr), (3, 5, 1));
    }
}
