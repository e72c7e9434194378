//! Policies (*chính sách*, issue 15) as pure types and rules: the stages a policy goes through
//! (draft for consultation → issued → in force → guidance → difficulties and feedback), the
//! checked input of the API, the content links (a bulletin, a media file, a command or a CAP
//! message communicating the policy at a stage) and the coverage of each stage counted from
//! proof of play and proof of display ([`coverage`]), with the gaps: stages already reached that
//! nothing communicated.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, Result};

/// A stage of a policy, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Draft for consultation (dự thảo lấy ý kiến).
    Consultation,
    /// Issued (ban hành).
    Issued,
    /// In force (có hiệu lực).
    InForce,
    /// Implementation guidance (hướng dẫn thực hiện).
    Guidance,
    /// Difficulties and feedback (vướng mắc, phản ánh).
    Feedback,
}

impl Stage {
    /// Every stage, in order.
    pub const ALL: [Stage; 5] = [
        Stage::Consultation,
        Stage::Issued,
        Stage::InForce,
        Stage::Guidance,
        Stage::Feedback,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Consultation => "consultation",
            Stage::Issued => "issued",
            Stage::InForce => "in_force",
            Stage::Guidance => "guidance",
            Stage::Feedback => "feedback",
        }
    }

    /// The Vietnamese name (the public site and the report's form).
    pub fn label_vi(self) -> &'static str {
        match self {
            Stage::Consultation => "Dự thảo lấy ý kiến",
            Stage::Issued => "Ban hành",
            Stage::InForce => "Có hiệu lực",
            Stage::Guidance => "Hướng dẫn thực hiện",
            Stage::Feedback => "Vướng mắc, phản ánh",
        }
    }

    /// Parse a stored or sent name (422 naming the accepted ones otherwise).
    pub fn parse(s: &str) -> Result<Stage> {
        Stage::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| {
            Error::unprocessable(
                "invalid_stage",
                format!("stage `{s}` is not one of consultation, issued, in_force, guidance, feedback"),
            )
        })
    }
}

/// What content a link names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// A bulletin (its id).
    Bulletin,
    /// A media file (its sha256).
    Media,
    /// A play-now command (its id).
    Command,
    /// A CAP message (its id; every command it issued counts).
    Cap,
}

impl LinkKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Bulletin => "bulletin",
            LinkKind::Media => "media",
            LinkKind::Command => "command",
            LinkKind::Cap => "cap",
        }
    }

    /// Parse a stored or sent name.
    pub fn parse(s: &str) -> Result<LinkKind> {
        match s {
            "bulletin" => Ok(LinkKind::Bulletin),
            "media" => Ok(LinkKind::Media),
            "command" => Ok(LinkKind::Command),
            "cap" => Ok(LinkKind::Cap),
            _ => Err(Error::unprocessable(
                "invalid_kind",
                format!("kind `{s}` is not one of bulletin, media, command, cap"),
            )),
        }
    }
}

/// The dates of one stage (days in Vietnam time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StageDates {
    /// The stage.
    pub stage: Stage,
    /// First day (`YYYY-MM-DD`).
    pub starts_on: String,
    /// Last day, if known (`YYYY-MM-DD`).
    #[serde(default)]
    pub ends_on: Option<String>,
}

/// A policy as stored and returned.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Policy {
    /// Id (uuid).
    pub id: String,
    /// Title.
    pub title: String,
    /// Issuing body (cơ quan ban hành).
    pub issuer: String,
    /// Document number (số hiệu văn bản).
    pub doc_number: Option<String>,
    /// Link to the document.
    pub doc_url: Option<String>,
    /// Field (lĩnh vực).
    pub field: String,
    /// Affected groups (đối tượng chịu tác động).
    pub groups: Vec<String>,
    /// Areas (codes; each with its subtree).
    pub areas: Vec<String>,
    /// A short summary for the public site.
    pub summary: String,
    /// Affects people and businesses directly (counted by the 100 % target).
    pub direct_impact: bool,
    /// The current stage.
    pub stage: Stage,
    /// Each stage's dates, in stage order.
    pub stages: Vec<StageDates>,
    /// On the public site.
    pub published: bool,
    /// Who created it.
    pub created_by: String,
    /// Created (unix ms).
    pub created_at: i64,
    /// Last changed (unix ms).
    pub updated_at: i64,
}

/// The body of `POST /api/v1/policies` and `PATCH /api/v1/policies/{id}` (a patch sends only
/// what changes).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyIn {
    /// Title (required on create).
    pub title: Option<String>,
    /// Issuing body (required on create).
    pub issuer: Option<String>,
    /// Document number.
    pub doc_number: Option<String>,
    /// Link to the document (`http://` or `https://`).
    pub doc_url: Option<String>,
    /// Field (required on create).
    pub field: Option<String>,
    /// Affected groups.
    pub groups: Option<Vec<String>>,
    /// Areas (required on create, at least one, all in the caller's scope).
    pub areas: Option<Vec<String>>,
    /// Summary.
    pub summary: Option<String>,
    /// Direct impact on people and businesses (default true).
    pub direct_impact: Option<bool>,
    /// Current stage (default `consultation`).
    pub stage: Option<Stage>,
    /// Stage dates (replace the stored ones when sent).
    pub stages: Option<Vec<StageDates>>,
}

/// Longest title, issuer, field, group and document number.
const MAX_SHORT: usize = 500;
/// Longest summary.
const MAX_SUMMARY: usize = 10_000;

fn text(name: &str, v: &str, max: usize) -> Result<String> {
    let v = v.trim();
    if v.is_empty() {
        return Err(Error::unprocessable(
            "invalid_policy",
            format!("`{name}` is empty"),
        ));
    }
    if v.chars().count() > max {
        return Err(Error::unprocessable(
            "invalid_policy",
            format!("`{name}` is longer than {max} characters"),
        ));
    }
    Ok(v.to_string())
}

/// Parse a `YYYY-MM-DD` day (422 naming the field).
pub fn day(name: &str, v: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").map_err(|_| {
        Error::unprocessable(
            "invalid_date",
            format!("`{name}` is `{v}`, not a day as YYYY-MM-DD"),
        )
    })
}

impl PolicyIn {
    /// Apply this input to `p` (a new policy's defaults, or the stored one), checking every field.
    pub fn apply(self, p: &mut Policy) -> Result<()> {
        if let Some(v) = self.title {
            p.title = text("title", &v, MAX_SHORT)?;
        }
        if let Some(v) = self.issuer {
            p.issuer = text("issuer", &v, MAX_SHORT)?;
        }
        if let Some(v) = self.field {
            p.field = text("field", &v, MAX_SHORT)?;
        }
        if let Some(v) = self.doc_number {
            p.doc_number = (!v.trim().is_empty())
                .then(|| text("doc_number", &v, MAX_SHORT))
                .transpose()?;
        }
        if let Some(v) = self.doc_url {
            let v = v.trim();
            if v.is_empty() {
                p.doc_url = None;
            } else if (v.starts_with("https://") || v.starts_with("http://"))
                && v.len() <= 2000
                && !v.contains(char::is_whitespace)
            {
                p.doc_url = Some(v.to_string());
            } else {
                return Err(Error::unprocessable(
                    "invalid_policy",
                    "`doc_url` must be an http:// or https:// address without spaces",
                ));
            }
        }
        if let Some(v) = self.groups {
            p.groups = v
                .iter()
                .map(|g| text("groups", g, MAX_SHORT))
                .collect::<Result<_>>()?;
        }
        if let Some(v) = self.areas {
            let mut seen = HashSet::new();
            p.areas = v
                .into_iter()
                .map(|a| a.trim().to_string())
                .filter(|a| seen.insert(a.clone()))
                .collect();
        }
        if let Some(v) = self.summary {
            p.summary = v.trim().to_string();
            if p.summary.chars().count() > MAX_SUMMARY {
                return Err(Error::unprocessable(
                    "invalid_policy",
                    format!("`summary` is longer than {MAX_SUMMARY} characters"),
                ));
            }
        }
        if let Some(v) = self.direct_impact {
            p.direct_impact = v;
        }
        if let Some(v) = self.stage {
            p.stage = v;
        }
        if let Some(mut v) = self.stages {
            v.sort_by_key(|s| s.stage);
            for (i, s) in v.iter().enumerate() {
                if v[..i].iter().any(|o| o.stage == s.stage) {
                    return Err(Error::unprocessable(
                        "invalid_policy",
                        format!("stage `{}` is listed twice", s.stage.as_str()),
                    ));
                }
                let a = day("stages[].starts_on", &s.starts_on)?;
                if let Some(e) = &s.ends_on {
                    let b = day("stages[].ends_on", e)?;
                    if b < a {
                        return Err(Error::unprocessable(
                            "invalid_policy",
                            format!("stage `{}` ends ({e}) before it starts", s.stage.as_str()),
                        ));
                    }
                }
            }
            p.stages = v;
        }
        if p.title.is_empty() || p.issuer.is_empty() || p.field.is_empty() {
            return Err(Error::unprocessable(
                "invalid_policy",
                "`title`, `issuer` and `field` are required",
            ));
        }
        if p.areas.is_empty() {
            return Err(Error::unprocessable(
                "invalid_policy",
                "`areas` needs at least one area code",
            ));
        }
        Ok(())
    }
}

/// A link of content to a policy stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Link {
    /// The stage the content communicates.
    pub stage: Stage,
    /// What it is.
    pub kind: LinkKind,
    /// Its id (bulletin id, media sha256, command id, CAP message id).
    pub ref_id: String,
}

/// What communicated one link: proof of play and display found for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reached {
    /// Plays on air.
    pub plays: i64,
    /// Distinct loudspeakers (devices) that played it.
    pub devices: HashSet<String>,
    /// Proof-of-display records.
    pub displays: i64,
    /// Distinct boards that showed it.
    pub boards: HashSet<String>,
    /// On the public site and its feeds (a published bulletin).
    pub public: bool,
}

/// The coverage of one stage of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StageCoverage {
    /// The stage.
    pub stage: Stage,
    /// Its dates, if set.
    pub starts_on: Option<String>,
    /// Its end, if set.
    pub ends_on: Option<String>,
    /// Whether the stage is reached (its start is on or before today, or it is the current
    /// stage or an earlier one).
    pub reached: bool,
    /// Linked content items.
    pub items: i64,
    /// Plays on air of that content.
    pub plays: i64,
    /// Distinct devices that played it.
    pub devices: i64,
    /// Proof-of-display records.
    pub displays: i64,
    /// Distinct boards that showed it.
    pub boards: i64,
    /// Linked bulletins on the public site and its feeds.
    pub public_items: i64,
    /// Anything played, displayed or public.
    pub communicated: bool,
    /// Reached but not communicated: a gap.
    pub gap: bool,
}

fn starts(d: &StageDates) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(&d.starts_on, "%Y-%m-%d").ok()
}

/// The stage `p` was in on `day`. From `today` on it is the stage stored now; before today it
/// is told by the stage dates alone (the latest stage started by `day`), so a later change of
/// the current stage does not rewrite a period already over. `None`: no stage had started.
pub fn stage_on(p: &Policy, day: NaiveDate, today: NaiveDate) -> Option<Stage> {
    if day >= today {
        return Some(p.stage);
    }
    p.stages
        .iter()
        .filter(|d| starts(d).is_some_and(|s| s <= day))
        .map(|d| d.stage)
        .max()
}

impl Policy {
    /// Date the current stage from `today` when it has no dates yet (a stage set without its
    /// date is known from the day it was set: see [`stage_on`]).
    pub fn date_current_stage(&mut self, today: NaiveDate) {
        if !self.stages.iter().any(|d| d.stage == self.stage) {
            self.stages.push(StageDates {
                stage: self.stage,
                starts_on: today.format("%Y-%m-%d").to_string(),
                ends_on: None,
            });
            self.stages.sort_by_key(|d| d.stage);
        }
    }
}

/// The coverage of every stage of `p` as of `day` (stages reached by then: started by `day` or
/// not later than [`stage_on`] `day`), given what each of its links reached (by link); `today`
/// tells whether the current stage holds on `day`. The policy page passes today twice; the
/// report the last day of its period.
pub fn coverage(
    p: &Policy,
    links: &[(Link, Reached)],
    (day, today): (NaiveDate, NaiveDate),
) -> Vec<StageCoverage> {
    let dates: BTreeMap<Stage, &StageDates> = p.stages.iter().map(|s| (s.stage, s)).collect();
    let at = stage_on(p, day, today);
    Stage::ALL
        .into_iter()
        .map(|stage| {
            let d = dates.get(&stage);
            let started = d.and_then(|d| starts(d)).is_some_and(|s| s <= day);
            let reached = started || at.is_some_and(|a| stage <= a);
            let mine: Vec<&(Link, Reached)> = links.iter().filter(|(l, _)| l.stage == stage).collect();
            let mut devices = HashSet::new();
            let mut boards = HashSet::new();
            let (mut plays, mut displays, mut public_items) = (0, 0, 0);
            for (_, r) in &mine {
                plays += r.plays;
                displays += r.displays;
                public_items += i64::from(r.public);
                devices.extend(r.devices.iter().cloned());
                boards.extend(r.boards.iter().cloned());
            }
            let communicated = plays > 0 || displays > 0 || public_items > 0;
            StageCoverage {
                stage,
                starts_on: d.map(|d| d.starts_on.clone()),
                ends_on: d.and_then(|d| d.ends_on.clone()),
                reached,
                items: mine.len() as i64,
                plays,
                devices: devices.len() as i64,
                displays,
                boards: boards.len() as i64,
                public_items,
                communicated,
                gap: reached && !communicated,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(stage: Stage) -> Policy {
        Policy {
            id: "p".into(),
            title: "t".into(),
            issuer: "UBND tỉnh".into(),
            doc_number: None,
            doc_url: None,
            field: "đất đai".into(),
            groups: vec![],
            areas: vec!["08".into()],
            summary: String::new(),
            direct_impact: true,
            stage,
            stages: vec![StageDates {
                stage: Stage::Guidance,
                starts_on: "2026-03-01".into(),
                ends_on: None,
            }],
            published: false,
            created_by: "a".into(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn a_reached_stage_without_plays_or_displays_is_a_gap_and_a_played_one_is_not() {
        let p = policy(Stage::Issued);
        let played = Reached {
            plays: 3,
            devices: ["d1".to_string()].into(),
            ..Reached::default()
        };
        let links = vec![(
            Link {
                stage: Stage::Consultation,
                kind: LinkKind::Media,
                ref_id: "x".into(),
            },
            played,
        )];
        let today = NaiveDate::from_ymd_opt(2026, 4, 1).unwrap();
        let c = coverage(&p, &links, (today, today));
        assert!(c[0].communicated && !c[0].gap && c[0].plays == 3 && c[0].devices == 1);
        assert!(
            c[1].reached && c[1].gap,
            "issued is the current stage and has nothing"
        );
        assert!(
            !c[2].reached && !c[2].gap,
            "in force is neither current nor dated"
        );
        assert!(c[3].reached && c[3].gap, "guidance started on 1 March");
    }

    #[test]
    fn a_past_day_counts_the_stage_its_dates_give_not_the_current_one() {
        let mut p = policy(Stage::Feedback);
        p.stages = vec![
            StageDates {
                stage: Stage::Issued,
                starts_on: "2026-02-01".into(),
                ends_on: None,
            },
            StageDates {
                stage: Stage::InForce,
                starts_on: "2026-07-01".into(),
                ends_on: None,
            },
        ];
        let d = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        let today = d(12, 1);
        // 30 June: issued (in force starts the day after; feedback was set later, undated).
        assert_eq!(stage_on(&p, d(6, 30), today), Some(Stage::Issued));
        assert_eq!(stage_on(&p, d(1, 31), today), None);
        assert_eq!(stage_on(&p, today, today), Some(Stage::Feedback));
        let c = coverage(&p, &[], (d(6, 30), today));
        let reached: Vec<bool> = c.iter().map(|s| s.reached).collect();
        assert_eq!(reached, [true, true, false, false, false]);
        // A period not over yet counts the current stage.
        let c = coverage(&p, &[], (d(12, 31), today));
        assert!(c.iter().all(|s| s.reached));
        // Setting a stage without dates dates it from the day it was set.
        p.date_current_stage(today);
        assert_eq!(
            p.stages.last().map(|s| (s.stage, s.starts_on.as_str())),
            Some((Stage::Feedback, "2026-12-01"))
        );
    }

    #[test]
    fn input_without_areas_or_with_a_bad_date_is_refused_naming_the_field() {
        let mut p = policy(Stage::Issued);
        let e = PolicyIn {
            areas: Some(vec![]),
            ..PolicyIn::default()
        }
        .apply(&mut p)
        .unwrap_err();
        assert!(e.to_string().contains("areas"), "{e}");
        let e = PolicyIn {
            stages: Some(vec![StageDates {
                stage: Stage::Issued,
                starts_on: "1/2/2026".into(),
                ends_on: None,
            }]),
            ..PolicyIn::default()
        }
        .apply(&mut policy(Stage::Issued))
        .unwrap_err();
        assert!(e.to_string().contains("starts_on"), "{e}");
    }
}
