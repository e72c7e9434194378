//! Alarm notifications (issue 12 §6): subscriptions per area and per role, and what a
//! notification carries. Pure rules: validation of a subscription ([`NewSubscription::validate`]),
//! which alarm kinds a role is told of ([`role_kinds`]), the webhook signature ([`signature`]:
//! `X-Nguon-Signature: sha256=<hex HMAC-SHA256 of the body with the subscription's secret>`),
//! the e-mail text ([`email_text`]) and the retry backoff ([`backoff_ms`]). Sending is
//! `workers::notifier`'s.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

use crate::domain::alarm::{Alarm, AlarmKind};
use crate::domain::scope::Role;
use crate::error::{Error, Result};

/// The header carrying a webhook body's signature.
pub const SIGNATURE_HEADER: &str = "X-Nguon-Signature";

/// A subscription as the API shows it (the secret only in the answer that created it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Subscription {
    /// Id (uuid v7).
    pub id: String,
    /// Alarms of this area and its descendants.
    pub area: String,
    /// The role the recipient acts in; chooses the kinds unless `kinds` names them.
    pub role: String,
    /// `webhook` or `email`.
    pub channel: String,
    /// The URL (webhook) or the address (email).
    pub target: String,
    /// Kinds sent (the role's when the subscription names none).
    pub kinds: Vec<AlarmKind>,
    /// Whether it is in use.
    pub enabled: bool,
    /// Who created it.
    pub created_by: String,
    /// The webhook's HMAC key: only in the answer of the creation (or of a new secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// A subscription to create, or the fields to change (`PATCH`: each field optional).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// Area code.
    pub area: Option<String>,
    /// admin, operator, approver, editor or viewer.
    pub role: Option<String>,
    /// `webhook` or `email`.
    pub channel: Option<String>,
    /// An `http(s)://` URL or an e-mail address.
    pub target: Option<String>,
    /// Kinds (empty: the role's).
    pub kinds: Option<Vec<String>>,
    /// The webhook's HMAC key (at least 16 characters; default: generated and returned once).
    pub secret: Option<String>,
    /// Whether it is in use (default true).
    pub enabled: Option<bool>,
}

/// A validated subscription (the stored row without its id and authorship).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionFields {
    /// Area code.
    pub area: String,
    /// Role.
    pub role: Role,
    /// `webhook` or `email`.
    pub channel: String,
    /// URL or address.
    pub target: String,
    /// Kinds named (empty: the role's).
    pub kinds: Vec<AlarmKind>,
    /// HMAC key (webhook only).
    pub secret: Option<String>,
    /// In use.
    pub enabled: bool,
}

fn missing(field: &str) -> Error {
    Error::unprocessable("missing_field", format!("`{field}`: required"))
}

impl NewSubscription {
    /// The fields of `self` laid over `base` (a creation has none), checked; each error is a
    /// 422 naming the field.
    pub fn validate(&self, base: Option<&SubscriptionFields>) -> Result<SubscriptionFields> {
        let area = match (&self.area, base) {
            (Some(a), _) if !a.trim().is_empty() => a.trim().to_string(),
            (None, Some(b)) => b.area.clone(),
            _ => return Err(missing("area")),
        };
        let role = match (&self.role, base) {
            (Some(r), _) => Role::parse(r).map_err(|_| {
                Error::unprocessable(
                    "invalid_role",
                    format!("`role`: `{r}` is not one of admin, editor, approver, operator, viewer"),
                )
            })?,
            (None, Some(b)) => b.role,
            (None, None) => Role::Operator,
        };
        let channel = match (&self.channel, base) {
            (Some(c), _) if c == "webhook" || c == "email" => c.clone(),
            (Some(c), _) => {
                return Err(Error::unprocessable(
                    "invalid_channel",
                    format!("`channel`: `{c}` is not one of webhook, email"),
                ));
            }
            (None, Some(b)) => b.channel.clone(),
            (None, None) => return Err(missing("channel")),
        };
        let target = match (&self.target, base) {
            (Some(t), _) => t.trim().to_string(),
            (None, Some(b)) if b.channel == channel => b.target.clone(),
            _ => return Err(missing("target")),
        };
        if channel == "webhook" {
            let ok = (target.starts_with("http://") || target.starts_with("https://"))
                && target.len() <= 2_000
                && !target.contains(char::is_whitespace);
            if !ok {
                return Err(Error::unprocessable(
                    "invalid_target",
                    format!("`target`: `{target}` is not an http(s) URL"),
                ));
            }
        } else if target.parse::<lettre::Address>().is_err() {
            return Err(Error::unprocessable(
                "invalid_target",
                format!("`target`: `{target}` is not an e-mail address"),
            ));
        }
        let kinds = match (&self.kinds, base) {
            (Some(k), _) => k
                .iter()
                .enumerate()
                .map(|(i, k)| AlarmKind::parse(k, &format!("kinds[{i}]")))
                .collect::<Result<Vec<_>>>()?,
            (None, Some(b)) => b.kinds.clone(),
            (None, None) => Vec::new(),
        };
        let secret = match (&self.secret, base) {
            _ if channel != "webhook" => None,
            (Some(s), _) if s.chars().count() < 16 || s.len() > 200 => {
                return Err(Error::unprocessable(
                    "invalid_secret",
                    "`secret`: 16 to 200 characters",
                ));
            }
            (Some(s), _) => Some(s.clone()),
            (None, Some(b)) => b.secret.clone(),
            (None, None) => None,
        };
        Ok(SubscriptionFields {
            area,
            role,
            channel,
            target,
            kinds,
            secret,
            enabled: self.enabled.or(base.map(|b| b.enabled)).unwrap_or(true),
        })
    }
}

/// The kinds a role is told of when its subscription names none: leaders (approvers) the
/// critical ones (an emergency not reaching people, a silent speaker); operators and admins
/// everything; editors what concerns content (failed or silent plays); viewers the critical ones.
pub fn role_kinds(role: Role) -> Vec<AlarmKind> {
    match role {
        Role::Admin | Role::Operator => AlarmKind::ALL.to_vec(),
        Role::Editor => vec![AlarmKind::PlaybackFailed, AlarmKind::Silence],
        Role::Contributor => Vec::new(),
        Role::Approver | Role::Viewer => AlarmKind::ALL
            .into_iter()
            .filter(|k| k.severity() == "critical")
            .collect(),
    }
}

/// Whether a subscription with `role` and `kinds` is told of `kind`.
pub fn wants(role: Role, kinds: &[AlarmKind], kind: AlarmKind) -> bool {
    if kinds.is_empty() {
        role_kinds(role).contains(&kind)
    } else {
        kinds.contains(&kind)
    }
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The wait before attempt `attempt + 1` after `attempt` failed ones: `first_ms` doubled each
/// time, at most one hour.
pub fn backoff_ms(first_ms: u64, attempt: u32) -> i64 {
    let factor = 1u64 << attempt.saturating_sub(1).min(20);
    first_ms.saturating_mul(factor).min(3_600_000) as i64
}

/// The subject and body of an alarm's e-mail: Vietnamese first, English second.
pub fn email_text(a: &Alarm) -> (String, String) {
    let subject = format!(
        "[nguon] Cảnh báo / Alarm: {} — {} {}",
        a.kind.as_str(),
        a.subject_type,
        a.subject_id
    );
    let body = format!(
        "Cảnh báo mới (mức {sev}) / New alarm (severity {sev})\n\n\
         Loại / Kind: {kind}\nĐối tượng / Subject: {st} {sid}\nĐịa bàn / Area: {area}\n\
         Nội dung / Message: {msg}\nThời điểm / Raised at: {at}\nMã / Id: {id}\n\n\
         Xác nhận trên bảng điều khiển: /console/alarms — Acknowledge in the console.\n",
        sev = a.severity,
        kind = a.kind.as_str(),
        st = a.subject_type,
        sid = a.subject_id,
        area = a.area,
        msg = a.message,
        at = chrono::DateTime::from_timestamp_millis(a.raised_at)
            .unwrap_or_default()
            .to_rfc3339(),
        id = a.id,
    );
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_the_body_and_the_backoff_doubles() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            [1, 2, 3, 4].map(|n| backoff_ms(1000, n)),
            [1000, 2000, 4000, 8000]
        );
    }

    #[test]
    fn a_subscription_is_checked_field_by_field() {
        let new = |v: serde_json::Value| serde_json::from_value::<NewSubscription>(v).unwrap();
        let bad = |v: serde_json::Value| new(v).validate(None).unwrap_err().to_string();
        assert!(bad(serde_json::json!({"area": "a", "channel": "sms", "target": "x"})).contains("`channel`"));
        assert!(
            bad(serde_json::json!({"area": "a", "channel": "webhook", "target": "ftp://x"}))
                .contains("`target`")
        );
        assert!(
            bad(serde_json::json!({"area": "a", "channel": "email", "target": "nobody"}))
                .contains("`target`")
        );
        assert!(
            bad(serde_json::json!({"area": "a", "channel": "email", "target": "a@b.vn", "kinds": ["x"]}))
                .contains("`kinds[0]`")
        );
        assert!(bad(serde_json::json!({"channel": "email", "target": "a@b.vn"})).contains("`area`"));
        let ok =
            new(serde_json::json!({"area": "a", "role": "approver", "channel": "email", "target": "a@b.vn"}))
                .validate(None)
                .unwrap();
        assert!(wants(ok.role, &ok.kinds, AlarmKind::DeliveryBelowThreshold));
        assert!(!wants(ok.role, &ok.kinds, AlarmKind::LowDisk));
    }
}
