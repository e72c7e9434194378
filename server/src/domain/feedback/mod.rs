//! Citizens' feedback (phản ánh, kiến nghị; issue 15) as pure rules: what a citizen sends
//! ([`NewFeedback`], checked by [`NewFeedback::check`] with Vietnamese messages, since a citizen
//! reads them), the statuses and their moves ([`Status`]: received → assigned → answered →
//! closed), the tracking code ([`code_from`], [`normalise_code`]), the SLA deadline of an area
//! ([`due_at`]), the overdue items as alarm conditions ([`overdue_conditions`]), and what of an
//! item is public ([`Tracked`]: never the name or contact; the name only beside a published
//! answer when the citizen chose so). The proof-of-work challenge is [`pow`], the photo check
//! [`photo`].

pub mod photo;
pub mod pow;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::alarm::{AlarmKind, Condition};
use crate::domain::area::AreaTree;
use crate::error::{Error, Result};

/// Longest feedback text, characters.
pub const MAX_TEXT_CHARS: usize = 2000;
/// Longest name or contact, characters.
pub const MAX_FIELD_CHARS: usize = 120;
/// Most photos of one feedback.
pub const MAX_PHOTOS: usize = 3;
/// Longest answer, characters.
pub const MAX_ANSWER_CHARS: usize = 5000;

/// Where an item is in its handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Received, not yet given to an organisation.
    Received,
    /// Given to the responsible organisation.
    Assigned,
    /// Answered.
    Answered,
    /// Closed (answered or not to be answered).
    Closed,
}

impl Status {
    /// Every status, in order.
    pub const ALL: [Status; 4] = [
        Status::Received,
        Status::Assigned,
        Status::Answered,
        Status::Closed,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Received => "received",
            Status::Assigned => "assigned",
            Status::Answered => "answered",
            Status::Closed => "closed",
        }
    }

    /// Parse a stored or requested name (422 naming `field`).
    pub fn parse(s: &str, field: &str) -> Result<Status> {
        Status::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            Error::unprocessable(
                "invalid_status",
                format!("`{field}`: `{s}` is not one of received, assigned, answered, closed"),
            )
        })
    }

    /// Whether the SLA clock runs (not yet answered).
    pub fn waiting(self) -> bool {
        matches!(self, Status::Received | Status::Assigned)
    }

    /// The Vietnamese label shown to citizens.
    pub fn label_vi(self) -> &'static str {
        match self {
            Status::Received => "Đã tiếp nhận",
            Status::Assigned => "Đã chuyển cơ quan xử lý",
            Status::Answered => "Đã trả lời",
            Status::Closed => "Đã đóng",
        }
    }
}

/// What a citizen sends (the form's fields; photos come beside it).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct NewFeedback {
    /// Area code the feedback is about.
    pub area: String,
    /// Policy it is about (free id until policies exist), optional.
    #[serde(default)]
    pub policy_id: Option<String>,
    /// The text (at most [`MAX_TEXT_CHARS`]); shown as text, never as HTML.
    pub text: String,
    /// Name, optional.
    #[serde(default)]
    pub name: Option<String>,
    /// Phone or e-mail, optional (never public).
    #[serde(default)]
    pub contact: Option<String>,
    /// Show the name beside a published answer.
    #[serde(default)]
    pub show_name: bool,
}

fn opt(v: &Option<String>) -> Option<String> {
    v.as_ref().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn too_long(code: &'static str, what: &str, max: usize, has: usize) -> Error {
    Error::unprocessable(
        code,
        format!("{what} dài quá {max} ký tự (hiện có {has} ký tự). Vui lòng rút gọn rồi gửi lại."),
    )
}

impl NewFeedback {
    /// Trimmed and checked (Vietnamese messages naming the field).
    pub fn check(&self) -> Result<NewFeedback> {
        let text = self.text.trim().to_string();
        let n = text.chars().count();
        if n == 0 {
            return Err(Error::unprocessable(
                "text_required",
                "Vui lòng nhập nội dung phản ánh.",
            ));
        }
        if n > MAX_TEXT_CHARS {
            return Err(too_long("text_too_long", "Nội dung phản ánh", MAX_TEXT_CHARS, n));
        }
        let area = self.area.trim().to_string();
        if area.is_empty() {
            return Err(Error::unprocessable("area_required", "Vui lòng chọn địa bàn."));
        }
        let name = opt(&self.name);
        let contact = opt(&self.contact);
        for (v, what) in [(&name, "Họ tên"), (&contact, "Thông tin liên hệ")] {
            if let Some(v) = v {
                let n = v.chars().count();
                if n > MAX_FIELD_CHARS {
                    return Err(too_long("field_too_long", what, MAX_FIELD_CHARS, n));
                }
            }
        }
        let policy_id = opt(&self.policy_id);
        if let Some(p) = &policy_id
            && (p.chars().count() > 100 || p.chars().any(char::is_control))
        {
            return Err(Error::unprocessable(
                "invalid_policy",
                "Mã chính sách không hợp lệ.",
            ));
        }
        Ok(NewFeedback {
            area,
            policy_id,
            text,
            show_name: self.show_name && name.is_some(),
            name,
            contact,
        })
    }
}

/// Characters of a tracking code: no 0/O, 1/I/L, U (read aloud over the phone without doubt).
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The tracking code made of 8 random bytes: `PA-XXXX-XXXX`.
pub fn code_from(random: [u8; 8]) -> String {
    let c: String = random
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    format!("PA-{}-{}", &c[..4], &c[4..])
}

/// A code as typed (lower case, spaces, without dashes) in its stored form; `None` if it cannot
/// be one.
pub fn normalise_code(s: &str) -> Option<String> {
    let raw: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let raw = if raw.len() == 10 {
        raw.strip_prefix("PA").unwrap_or(&raw)
    } else {
        &raw
    };
    (raw.len() == 8 && raw.bytes().all(|b| ALPHABET.contains(&b)))
        .then(|| format!("PA-{}-{}", &raw[..4], &raw[4..]))
}

/// The SLA deadline of an item of `area` received at `received_ms`: the nearest area (itself,
/// then its ancestors) with its own hours in `area_hours`, else `hours`.
pub fn due_at(
    tree: &AreaTree,
    area: &str,
    received_ms: i64,
    hours: u64,
    area_hours: &HashMap<String, u64>,
) -> i64 {
    let h = tree
        .chain(area)
        .iter()
        .find_map(|a| area_hours.get(a).copied())
        .unwrap_or(hours);
    received_ms + (h as i64) * 3_600_000
}

/// An item still waiting for its answer.
#[derive(Debug, Clone)]
pub struct Waiting {
    /// Id.
    pub id: String,
    /// Tracking code.
    pub code: String,
    /// Area.
    pub area: String,
    /// Received, unix ms.
    pub received_at: i64,
    /// SLA deadline, unix ms.
    pub due_at: i64,
}

/// The `feedback_overdue` conditions at `now`: one per waiting item past its deadline.
pub fn overdue_conditions(now: i64, waiting: &[Waiting]) -> Vec<Condition> {
    waiting
        .iter()
        .filter(|w| now >= w.due_at)
        .map(|w| Condition {
            kind: AlarmKind::FeedbackOverdue,
            subject_type: "feedback",
            subject_id: w.id.clone(),
            area: w.area.clone(),
            message: format!(
                "feedback {} unanswered {} h after receipt (deadline passed {} h ago)",
                w.code,
                (now - w.received_at) / 3_600_000,
                (now - w.due_at) / 3_600_000
            ),
        })
        .collect()
}

/// One item as staff see it (personal fields included while kept).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Feedback {
    /// Id (uuid v7).
    pub id: String,
    /// Tracking code.
    pub code: String,
    /// Area.
    pub area: String,
    /// Policy id.
    pub policy_id: Option<String>,
    /// The text.
    pub text: String,
    /// Name (none when not given or purged).
    pub name: Option<String>,
    /// Contact (none when not given or purged).
    pub contact: Option<String>,
    /// The citizen agreed to show the name beside a published answer.
    pub show_name: bool,
    /// Status.
    pub status: Status,
    /// Responsible organisation.
    pub organisation_id: Option<String>,
    /// The answer.
    pub answer: Option<String>,
    /// The answer is published.
    pub answer_public: bool,
    /// Who answered.
    pub answered_by: Option<String>,
    /// Unix ms.
    pub received_at: i64,
    /// SLA deadline, unix ms.
    pub due_at: i64,
    /// Unix ms.
    pub assigned_at: Option<i64>,
    /// Unix ms.
    pub answered_at: Option<i64>,
    /// Unix ms.
    pub closed_at: Option<i64>,
    /// When the personal fields and photos were purged (retention), unix ms.
    pub purged_at: Option<i64>,
    /// Photos (numbers 1–3), served to staff at `/api/v1/feedback/{id}/photos/{n}`.
    pub photos: Vec<i64>,
    /// Overdue now (waiting past its deadline).
    pub overdue: bool,
}

/// What anyone holding the tracking code sees: no name, no contact, no photos.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Tracked {
    /// Tracking code.
    pub code: String,
    /// Status.
    pub status: Status,
    /// Status in Vietnamese.
    pub status_label: String,
    /// Area code.
    pub area: String,
    /// Policy id.
    pub policy_id: Option<String>,
    /// The citizen's text.
    pub text: String,
    /// Unix ms.
    pub received_at: i64,
    /// Unix ms.
    pub answered_at: Option<i64>,
    /// The answer (once answered).
    pub answer: Option<String>,
    /// The name, only when the answer is published and the citizen chose to show it.
    pub name: Option<String>,
}

impl Feedback {
    /// The public view of this item for its tracking code.
    pub fn tracked(&self) -> Tracked {
        let answered = matches!(self.status, Status::Answered | Status::Closed);
        Tracked {
            code: self.code.clone(),
            status: self.status,
            status_label: self.status.label_vi().to_string(),
            area: self.area.clone(),
            policy_id: self.policy_id.clone(),
            text: self.text.clone(),
            received_at: self.received_at,
            answered_at: self.answered_at,
            answer: self.answer.clone().filter(|_| answered),
            name: self
                .name
                .clone()
                .filter(|_| self.show_name && self.answer_public && answered),
        }
    }
}

/// Body of `POST /api/v1/feedback/{id}/assign`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    /// The responsible organisation.
    pub organisation_id: String,
}

/// Body of `POST /api/v1/feedback/{id}/answer`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// The answer (shown to whoever holds the tracking code).
    pub answer: String,
    /// Also publish it in the public list of answers.
    #[serde(default)]
    pub publish: bool,
}

impl Answer {
    /// Trimmed and checked.
    pub fn check(&self) -> Result<Answer> {
        let a = self.answer.trim().to_string();
        let n = a.chars().count();
        if n == 0 {
            return Err(Error::unprocessable("answer_required", "`answer` is empty"));
        }
        if n > MAX_ANSWER_CHARS {
            return Err(Error::unprocessable(
                "answer_too_long",
                format!("`answer` has {n} characters, more than {MAX_ANSWER_CHARS}"),
            ));
        }
        Ok(Answer {
            answer: a,
            publish: self.publish,
        })
    }
}

#[cfg(test)]
mod tests;
