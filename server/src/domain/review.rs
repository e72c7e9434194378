//! The review workflow shared by media and bulletins: one status enum and one transition
//! function. Today's rules:
//! - `submit`: `draft` or `rejected` → `pending` (media: editor; bulletins: admin on the API);
//! - `approve`: `pending` → `approved`; `reject`: `pending` → `rejected`;
//! - the admin may approve or reject a media *draft* directly ([`ReviewAction::ApproveDirect`],
//!   [`ReviewAction::RejectDirect`]); bulletins have no such shortcut.
//!
//! Stores apply a transition with one conditional UPDATE (`... AND status IN (sources)`) and
//! check the rows affected, so a lost race is a 409 naming the current status.

use crate::error::{Error, Result};

/// Where a media file or bulletin stands in review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    /// Being prepared; not broadcast.
    Draft,
    /// Submitted, waiting for an approver.
    Pending,
    /// Approved for broadcast.
    Approved,
    /// Refused (with a note); may be edited and submitted again.
    Rejected,
}

impl ReviewStatus {
    /// Every status, in workflow order.
    pub const ALL: [ReviewStatus; 4] = [
        ReviewStatus::Draft,
        ReviewStatus::Pending,
        ReviewStatus::Approved,
        ReviewStatus::Rejected,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::Draft => "draft",
            ReviewStatus::Pending => "pending",
            ReviewStatus::Approved => "approved",
            ReviewStatus::Rejected => "rejected",
        }
    }

    /// Parse a stored or requested name (400 `invalid_status` naming it otherwise).
    pub fn parse(s: &str) -> Result<ReviewStatus> {
        ReviewStatus::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                Error::bad(
                    "invalid_status",
                    format!("status `{s}` is not one of draft, pending, approved, rejected"),
                )
            })
    }
}

impl std::fmt::Display for ReviewStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One review step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewAction {
    /// `draft` or `rejected` → `pending`.
    Submit,
    /// `pending` → `approved`.
    Approve,
    /// `pending` → `rejected`.
    Reject,
    /// `pending` or `draft` → `approved` (the admin, media only).
    ApproveDirect,
    /// `pending` or `draft` → `rejected` (the admin, media only).
    RejectDirect,
}

impl ReviewAction {
    /// The action of a step name (`submit`, `approve`, `reject`); `direct` selects the admin's
    /// shortcut from `draft`. 400 `invalid_step` naming an unknown step.
    pub fn parse(step: &str, direct: bool) -> Result<ReviewAction> {
        Ok(match (step, direct) {
            ("submit", _) => ReviewAction::Submit,
            ("approve", false) => ReviewAction::Approve,
            ("approve", true) => ReviewAction::ApproveDirect,
            ("reject", false) => ReviewAction::Reject,
            ("reject", true) => ReviewAction::RejectDirect,
            _ => {
                return Err(Error::bad(
                    "invalid_step",
                    format!("unknown review step `{step}`"),
                ));
            }
        })
    }

    /// The step name (`media.approve` in the audit log).
    pub fn step(self) -> &'static str {
        match self {
            ReviewAction::Submit => "submit",
            ReviewAction::Approve | ReviewAction::ApproveDirect => "approve",
            ReviewAction::Reject | ReviewAction::RejectDirect => "reject",
        }
    }

    /// The statuses this action may start from, in the order messages list them.
    pub fn sources(self) -> &'static [ReviewStatus] {
        use ReviewStatus::*;
        match self {
            ReviewAction::Submit => &[Draft, Rejected],
            ReviewAction::Approve | ReviewAction::Reject => &[Pending],
            ReviewAction::ApproveDirect | ReviewAction::RejectDirect => &[Pending, Draft],
        }
    }

    /// The status this action leads to.
    pub fn target(self) -> ReviewStatus {
        match self {
            ReviewAction::Submit => ReviewStatus::Pending,
            ReviewAction::Approve | ReviewAction::ApproveDirect => ReviewStatus::Approved,
            ReviewAction::Reject | ReviewAction::RejectDirect => ReviewStatus::Rejected,
        }
    }

    /// The 409 for `subject` (e.g. ``media `ab12…` ``) found in `current`.
    pub fn refused(self, subject: &str, current: ReviewStatus) -> Error {
        let need = self
            .sources()
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(" or ");
        Error::Conflict(format!(
            "{subject} is `{current}`; `{}` needs it to be {need}",
            self.target()
        ))
    }
}

/// The audit actions whose actor is an author of a file (issue 13, four-eyes rule).
pub const MEDIA_AUTHORING: &[&str] = &["media.upload", "media.submit"];
/// The audit actions whose actor is an author of a bulletin.
pub const BULLETIN_AUTHORING: &[&str] = &[
    "bulletin.create",
    "bulletin.update",
    "bulletin.submit",
    "bulletin.attach",
];

/// The four-eyes rule (issue 13): 403 when `approver` is among the `authors` of `subject` (who
/// uploaded, wrote, edited or submitted it), admins included. `enabled` is the `four_eyes`
/// setting; the bootstrap admin token (`person` false) is no person and is not held to it.
pub fn four_eyes(
    enabled: bool,
    person: bool,
    approver: &str,
    authors: &[String],
    subject: &str,
) -> Result<()> {
    if enabled && person && authors.iter().any(|a| a == approver) {
        return Err(Error::Forbidden(format!(
            "four-eyes rule: `{approver}` wrote or edited {subject} and may not approve it; another approver must"
        )));
    }
    Ok(())
}

/// The status after `action` from `from`, or a 409 naming both.
pub fn transition(from: ReviewStatus, action: ReviewAction) -> Result<ReviewStatus> {
    if action.sources().contains(&from) {
        Ok(action.target())
    } else {
        Err(action.refused("it", from))
    }
}

#[cfg(test)]
mod tests {
    use super::ReviewStatus::*;
    use super::{ReviewAction, ReviewStatus, transition};

    #[test]
    fn every_transition_of_todays_rules() {
        use ReviewAction::*;
        let table = [
            (Submit, [Some(Pending), None, None, Some(Pending)]),
            (Approve, [None, Some(Approved), None, None]),
            (Reject, [None, Some(Rejected), None, None]),
            (ApproveDirect, [Some(Approved), Some(Approved), None, None]),
            (RejectDirect, [Some(Rejected), Some(Rejected), None, None]),
        ];
        for (action, expected) in table {
            for (from, want) in ReviewStatus::ALL.into_iter().zip(expected) {
                assert_eq!(transition(from, action).ok(), want, "{action:?} from {from}");
            }
        }
    }

    /// `services::media::public` remembers approved media without invalidation, on every
    /// instance: that is only right while no step leaves `approved`. A withdrawal must clear it.
    #[test]
    fn no_step_leaves_approved() {
        use ReviewAction::*;
        for action in [Submit, Approve, Reject, ApproveDirect, RejectDirect] {
            assert!(
                !action.sources().contains(&Approved),
                "{action:?} leaves `approved`"
            );
        }
    }

    #[test]
    fn a_refusal_names_the_current_and_the_needed_status() {
        let e = transition(Approved, ReviewAction::ApproveDirect).unwrap_err();
        assert_eq!(
            e.to_string(),
            "it is `approved`; `approved` needs it to be `pending` or `draft`"
        );
        let e = ReviewAction::Submit.refused("bulletin b1", Pending);
        assert_eq!(
            e.to_string(),
            "bulletin b1 is `pending`; `pending` needs it to be `draft` or `rejected`"
        );
    }

    #[test]
    fn names_parse_back() {
        for s in ReviewStatus::ALL {
            assert_eq!(ReviewStatus::parse(s.as_str()).unwrap(), s);
        }
        assert!(ReviewStatus::parse("published").is_err());
        assert_eq!(
            ReviewAction::parse("approve", true).unwrap(),
            ReviewAction::ApproveDirect
        );
        assert_eq!(ReviewAction::parse("submit", true).unwrap(), ReviewAction::Submit);
        assert!(ReviewAction::parse("publish", false).is_err());
    }
}
