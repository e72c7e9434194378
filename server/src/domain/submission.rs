//! Contributors' submissions (issue 15): content an organisation (sở/ngành, UBND huyện/xã,
//! press, central agencies) sends to the Department, and the Department's editorial steps. Pure
//! rules: the fields ([`NewSubmission`]), the statuses and which step applies to which
//! ([`Step::from_statuses`]: receive, approve, reject with a reason, request changes with a
//! reason; a contributor resubmits after changes were requested), the notice the contributor
//! gets ([`notice_text`]) and the monthly tracking per organisation ([`monthly`]).
//!
//! A contributor never publishes: approving is an editorial step (approver role), and what an
//! approval makes is a *draft* bulletin that goes through the bulletins' own review.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::organisation::Organisation;
use crate::error::{Error, Result};

/// Longest title, characters.
pub const MAX_TITLE: usize = 300;
/// Longest body, characters.
pub const MAX_BODY: usize = 20_000;
/// Most files of one submission.
pub const MAX_FILES: usize = 10;

/// Where a submission is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Sent by the contributor (or resubmitted).
    Submitted,
    /// Taken into the editorial queue.
    Received,
    /// Sent back to the contributor with what to change.
    ChangesRequested,
    /// Approved by the Department (a draft bulletin was made of it).
    Approved,
    /// Rejected with a reason.
    Rejected,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 5] = [
        Status::Submitted,
        Status::Received,
        Status::ChangesRequested,
        Status::Approved,
        Status::Rejected,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Submitted => "submitted",
            Status::Received => "received",
            Status::ChangesRequested => "changes_requested",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
        }
    }

    /// Parse (422 naming `field`).
    pub fn parse(s: &str, field: &str) -> Result<Status> {
        Status::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            Error::unprocessable(
                "invalid_status",
                format!("`{field}`: `{s}` is not one of submitted, received, changes_requested, approved, rejected"),
            )
        })
    }

    /// Vietnamese label (notices, console).
    pub fn label_vi(self) -> &'static str {
        match self {
            Status::Submitted => "Đã gửi",
            Status::Received => "Đã tiếp nhận",
            Status::ChangesRequested => "Cần chỉnh sửa",
            Status::Approved => "Đã duyệt",
            Status::Rejected => "Bị từ chối",
        }
    }
}

/// An editorial step (or the contributor's resubmission).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// submitted → received (editor).
    Receive,
    /// submitted | received → approved (approver).
    Approve,
    /// submitted | received → rejected, with a reason (editor or approver).
    Reject,
    /// submitted | received → changes_requested, with a reason (editor or approver).
    RequestChanges,
    /// changes_requested → submitted (the contributor, after editing).
    Resubmit,
}

impl Step {
    /// The statuses a step starts from and the one it leads to.
    pub fn from_statuses(self) -> (&'static [Status], Status) {
        const OPEN: &[Status] = &[Status::Submitted, Status::Received];
        match self {
            Step::Receive => (&[Status::Submitted], Status::Received),
            Step::Approve => (OPEN, Status::Approved),
            Step::Reject => (OPEN, Status::Rejected),
            Step::RequestChanges => (OPEN, Status::ChangesRequested),
            Step::Resubmit => (&[Status::ChangesRequested], Status::Submitted),
        }
    }

    /// Whether the step needs a reason.
    pub fn needs_note(self) -> bool {
        matches!(self, Step::Reject | Step::RequestChanges)
    }

    /// The audit action.
    pub fn action(self) -> &'static str {
        match self {
            Step::Receive => "submission.receive",
            Step::Approve => "submission.approve",
            Step::Reject => "submission.reject",
            Step::RequestChanges => "submission.request_changes",
            Step::Resubmit => "submission.resubmit",
        }
    }
}

/// One submission.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Submission {
    /// Id (uuid v7).
    pub id: String,
    /// The submitting organisation.
    pub organisation_id: String,
    /// The contributor who sent it (username).
    pub author: String,
    /// Title.
    pub title: String,
    /// Text.
    pub body: String,
    /// Policy id (free until policies exist).
    pub policy_id: Option<String>,
    /// Target area codes.
    pub areas: Vec<String>,
    /// Status.
    pub status: Status,
    /// The editor's reason (rejection, requested changes).
    pub note: Option<String>,
    /// Who decided last.
    pub reviewer: Option<String>,
    /// The draft bulletin made at approval.
    pub bulletin_id: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
    /// Unix ms of the approval or rejection.
    pub decided_at: Option<i64>,
    /// Files.
    pub files: Vec<SubmissionFile>,
    /// What the contributor was told, oldest first.
    pub notices: Vec<Notice>,
}

/// A file of a submission.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubmissionFile {
    /// sha256.
    pub sha256: String,
    /// `audio` (a draft in the media library), `image`, `video` or `attachment`.
    pub kind: String,
    /// Name given by the contributor.
    pub filename: String,
    /// Bytes.
    pub bytes: i64,
}

/// A notice to the contributor.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Notice {
    /// The status it announces.
    pub status: Status,
    /// The text.
    pub message: String,
    /// `pending`, `sent`, `failed` or `none` (no e-mail address or relay).
    pub state: String,
    /// Unix ms.
    pub created_at: i64,
}

/// The fields of `POST /api/v1/submissions` (JSON, or multipart with files).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubmission {
    /// Title (1–300 characters).
    pub title: String,
    /// Text (at most 20,000 characters).
    #[serde(default)]
    pub body: String,
    /// Policy id.
    #[serde(default)]
    pub policy_id: Option<String>,
    /// Target area codes (at least one).
    #[serde(default)]
    pub areas: Vec<String>,
}

/// Changes of `PATCH /api/v1/submissions/{id}` (the editor while open, the contributor after
/// changes were requested).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmissionPatch {
    /// New title.
    pub title: Option<String>,
    /// New text.
    pub body: Option<String>,
    /// New policy id.
    pub policy_id: Option<String>,
    /// New target areas.
    pub areas: Option<Vec<String>>,
}

/// Body of the editorial steps: the reason (required to reject or request changes).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Reason.
    #[serde(default)]
    pub note: Option<String>,
}

impl NewSubmission {
    /// Trimmed and checked; a 422 names the field.
    pub fn check(&self) -> Result<NewSubmission> {
        let title = self.title.trim().to_string();
        let n = title.chars().count();
        if n == 0 || n > MAX_TITLE {
            return Err(Error::unprocessable(
                "invalid_title",
                format!("`title` must be 1–{MAX_TITLE} characters (has {n})"),
            ));
        }
        let body = self.body.trim().to_string();
        let n = body.chars().count();
        if n > MAX_BODY {
            return Err(Error::unprocessable(
                "body_too_long",
                format!("`body` has {n} characters, more than {MAX_BODY}"),
            ));
        }
        let mut areas: Vec<String> = self
            .areas
            .iter()
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect();
        areas.dedup();
        if areas.is_empty() {
            return Err(Error::unprocessable(
                "areas_required",
                "`areas` must name at least one area",
            ));
        }
        let policy_id = self
            .policy_id
            .as_ref()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty());
        if policy_id.as_ref().is_some_and(|p| p.chars().count() > 100) {
            return Err(Error::unprocessable(
                "invalid_policy",
                "`policy_id` is longer than 100 characters",
            ));
        }
        Ok(NewSubmission {
            title,
            body,
            policy_id,
            areas,
        })
    }

    /// These fields with `p` applied.
    pub fn patched(&self, p: &SubmissionPatch) -> NewSubmission {
        NewSubmission {
            title: p.title.clone().unwrap_or_else(|| self.title.clone()),
            body: p.body.clone().unwrap_or_else(|| self.body.clone()),
            policy_id: p.policy_id.clone().or_else(|| self.policy_id.clone()),
            areas: p.areas.clone().unwrap_or_else(|| self.areas.clone()),
        }
    }
}

/// The notice of a step: Vietnamese first, English second.
pub fn notice_text(title: &str, status: Status, note: Option<&str>) -> String {
    let mut s = format!(
        "Bài gửi «{title}»: {} / Submission \"{title}\": {}.",
        status.label_vi(),
        status.as_str().replace('_', " ")
    );
    if let Some(n) = note {
        s.push_str(&format!("\nLý do / Reason: {n}"));
    }
    s
}

/// One organisation's line of the monthly tracking.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MonthLine {
    /// Organisation id.
    pub organisation_id: String,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// Submissions made in the month.
    pub submitted: i64,
    /// Of them, approved (so far).
    pub approved: i64,
}

/// The monthly tracking.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Monthly {
    /// `YYYY-MM`.
    pub month: String,
    /// Every organisation, most submissions first.
    pub organisations: Vec<MonthLine>,
    /// The organisations without any submission in the month (by name).
    pub not_submitted: Vec<String>,
}

/// The tracking of `month` from every organisation and `(organisation_id, status)` of each
/// submission made in it.
pub fn monthly(month: &str, orgs: &[Organisation], made: &[(String, Status)]) -> Monthly {
    let mut lines: Vec<MonthLine> = orgs
        .iter()
        .map(|o| MonthLine {
            organisation_id: o.id.clone(),
            name: o.name.clone(),
            kind: o.kind.clone(),
            submitted: made.iter().filter(|(id, _)| *id == o.id).count() as i64,
            approved: made
                .iter()
                .filter(|(id, s)| *id == o.id && *s == Status::Approved)
                .count() as i64,
        })
        .collect();
    lines.sort_by(|a, b| b.submitted.cmp(&a.submitted).then(a.name.cmp(&b.name)));
    let mut not_submitted: Vec<String> = lines
        .iter()
        .filter(|l| l.submitted == 0)
        .map(|l| l.name.clone())
        .collect();
    not_submitted.sort();
    Monthly {
        month: month.to_string(),
        organisations: lines,
        not_submitted,
    }
}

/// `YYYY-MM` → `[first ms, next month's first ms)` in Asia/Ho_Chi_Minh (422 naming `month`).
pub fn month_range(month: &str) -> Result<(i64, i64)> {
    use chrono::{NaiveDate, TimeZone};
    let bad = || Error::unprocessable("invalid_month", format!("`month`: `{month}` is not YYYY-MM"));
    let (y, m) = month.split_once('-').ok_or_else(bad)?;
    let (y, m): (i32, u32) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    let first = NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(bad)?;
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    }
    .ok_or_else(bad)?;
    let tz = chrono_tz::Asia::Ho_Chi_Minh;
    let ms = |d: NaiveDate| {
        tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
            .single()
            .map(|t| t.timestamp_millis())
            .ok_or_else(bad)
    };
    Ok((ms(first)?, ms(next)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(id: &str, name: &str) -> Organisation {
        Organisation {
            id: id.into(),
            name: name.into(),
            kind: "department".into(),
            area: None,
            email: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn steps_start_from_their_statuses() {
        assert_eq!(Step::Approve.from_statuses().1, Status::Approved);
        assert!(
            !Step::Approve
                .from_statuses()
                .0
                .contains(&Status::ChangesRequested)
        );
        assert!(Step::Reject.needs_note() && !Step::Receive.needs_note());
        assert_eq!(Step::Resubmit.from_statuses().0, &[Status::ChangesRequested]);
    }

    #[test]
    fn the_month_names_who_has_not_submitted() {
        let orgs = [
            org("a", "Sở Y tế"),
            org("b", "UBND huyện X"),
            org("c", "Báo tỉnh"),
        ];
        let made = vec![
            ("a".to_string(), Status::Approved),
            ("a".to_string(), Status::Submitted),
        ];
        let m = monthly("2026-12", &orgs, &made);
        assert_eq!(m.organisations[0].submitted, 2);
        assert_eq!(m.organisations[0].approved, 1);
        assert_eq!(
            m.not_submitted,
            vec!["Báo tỉnh".to_string(), "UBND huyện X".to_string()]
        );
        let (a, b) = month_range("2026-12").unwrap();
        assert_eq!(b - a, 31 * 86_400_000);
        assert!(month_range("2026-13").is_err());
    }

    #[test]
    fn a_submission_needs_a_title_and_an_area() {
        let s = NewSubmission {
            title: " T ".into(),
            areas: vec![" a ".into(), "".into()],
            ..Default::default()
        };
        let c = s.check().unwrap();
        assert_eq!((c.title.as_str(), c.areas.clone()), ("T", vec!["a".to_string()]));
        assert!(NewSubmission::default().check().is_err());
    }
}
