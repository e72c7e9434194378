//! Roles and area scope (issue 7): who a caller is ([`Caller`]), what their [`Role`] grants, and
//! which areas they may see and target. Pure rules; the HTTP extractors that build a caller live
//! in `http::auth`, the look-ups behind them in `services::auth`, and the one SQL form of the
//! scope rule in `store::scope`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What a user may do. `admin` may do everything; every role may read (`viewer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Users, areas, devices, and everything else.
    Admin,
    /// Prepares content: uploads and submits media.
    Editor,
    /// A leader who approves or rejects content.
    Approver,
    /// Schedules and controls devices in their scope.
    Operator,
    /// Reads only.
    Viewer,
    /// An organisation's account (issue 15): submits content to the Department and sees only
    /// its own submissions; no other role's rights, not even reading.
    Contributor,
}

impl Role {
    /// All roles, most powerful first.
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Editor,
        Role::Approver,
        Role::Operator,
        Role::Viewer,
        Role::Contributor,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Approver => "approver",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::Contributor => "contributor",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Result<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            Error::bad(
                "invalid_role",
                format!("`role`: `{s}` is not one of admin, editor, approver, operator, viewer, contributor"),
            )
        })
    }

    /// Whether this role grants `needed` (every role but `contributor` grants reading).
    pub fn grants(self, needed: Role) -> bool {
        self == Role::Admin || self == needed || (needed == Role::Viewer && self != Role::Contributor)
    }
}

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The bootstrap admin token.
    AdminToken,
    /// A per-user API token.
    ApiToken,
    /// A console session cookie.
    Session,
}

/// An authenticated API or console caller with its role and area scope.
#[derive(Debug, Clone)]
pub struct Caller {
    /// User id (`admin-token` for the bootstrap token).
    pub user_id: String,
    /// Username (written to the audit log).
    pub username: String,
    /// Role (the first of the user's roles; `admin` when the user is an admin).
    pub role: Role,
    /// The user's other roles (issue 13: a commune clerk is editor and operator at once).
    pub extra_roles: Vec<Role>,
    /// Every area code the caller may see and target (scope roots with their subtrees); `None`
    /// = unrestricted.
    pub scope_areas: Option<Vec<String>>,
    /// The user's scope roots (what `scope_areas` was expanded from); `None` = unrestricted.
    pub scope_roots: Option<Vec<String>>,
    /// How it authenticated.
    pub via: Via,
    /// The session's CSRF token (sessions only).
    pub csrf: Option<String>,
}

impl Caller {
    /// The bootstrap admin token's caller: role `admin`, unrestricted.
    pub fn admin_token() -> Caller {
        Caller {
            user_id: "admin-token".into(),
            username: "admin-token".into(),
            role: Role::Admin,
            extra_roles: Vec::new(),
            scope_areas: None,
            scope_roots: None,
            via: Via::AdminToken,
            csrf: None,
        }
    }

    /// Every role of the caller, the first one first.
    pub fn roles(&self) -> Vec<Role> {
        let mut all = vec![self.role];
        all.extend(self.extra_roles.iter().filter(|r| **r != self.role));
        all
    }

    /// Whether the caller holds no role but `contributor` (issue 15): such a caller reaches only
    /// the submission endpoints and pages (`http::auth` refuses the rest).
    pub fn contributor_only(&self) -> bool {
        self.roles().iter().all(|r| *r == Role::Contributor)
    }

    /// Whether one of the caller's roles grants `needed`.
    pub fn grants(&self, needed: Role) -> bool {
        self.role.grants(needed) || self.extra_roles.iter().any(|r| r.grants(needed))
    }

    /// 403 unless one of the caller's roles grants `role` (admin grants everything; everyone may
    /// read).
    pub fn require(&self, role: Role) -> Result<()> {
        if self.grants(role) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "this needs the `{}` role; you are `{}`",
                role.as_str(),
                self.role.as_str()
            )))
        }
    }

    /// 403 unless the caller may choose one role among `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<()> {
        if roles.iter().any(|r| self.grants(*r)) {
            Ok(())
        } else {
            self.require(roles[0])
        }
    }

    /// Whether an area is inside the caller's scope.
    pub fn in_scope(&self, code: &str) -> bool {
        self.scope_areas
            .as_ref()
            .is_none_or(|s| s.iter().any(|c| c == code))
    }

    /// Whether media owned by `area` is visible: province-wide media (`None`) to everyone, else
    /// only inside the caller's scope.
    pub fn sees_media(&self, area: Option<&str>) -> bool {
        area.is_none_or(|a| self.in_scope(a))
    }

    /// 403 unless the area is inside the caller's scope.
    pub fn check_area(&self, code: &str) -> Result<()> {
        if self.in_scope(code) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!("area `{code}` is outside your scope")))
        }
    }

    /// 403 unless a device in `area` is inside the caller's scope (`id` names it).
    pub fn check_device_area(&self, id: &str, area: &str) -> Result<()> {
        if self.in_scope(area) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!("device `{id}` is outside your scope")))
        }
    }

    /// 403 unless the session's CSRF token is `sent` (compared in constant time).
    pub fn check_csrf(&self, sent: &str, refusal: &str) -> Result<()> {
        let want = self.csrf.as_deref().unwrap_or("");
        if want.is_empty() || !constant_time_eq(sent.as_bytes(), want.as_bytes()) {
            return Err(Error::Forbidden(refusal.to_string()));
        }
        Ok(())
    }
}

/// Compare two secrets (tokens, CSRF values, hashes) in time independent of where they differ
/// (`subtle`); different lengths are unequal.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::{Caller, Role, Via};

    fn caller(role: Role, areas: Option<Vec<String>>) -> Caller {
        Caller {
            user_id: "u".into(),
            username: "u".into(),
            role,
            extra_roles: Vec::new(),
            scope_areas: areas,
            scope_roots: None,
            via: Via::Session,
            csrf: Some("tok".into()),
        }
    }

    #[test]
    fn roles_grant_themselves_and_viewing_and_admin_grants_all() {
        assert!(Role::Admin.grants(Role::Editor));
        assert!(Role::Editor.grants(Role::Viewer));
        assert!(!Role::Operator.grants(Role::Approver));
        let c = caller(Role::Operator, None);
        assert!(c.require(Role::Operator).is_ok());
        assert_eq!(
            c.require(Role::Admin).unwrap_err().to_string(),
            "this needs the `admin` role; you are `operator`"
        );
        assert!(c.require_any(&[Role::Approver, Role::Operator]).is_ok());
        assert_eq!(Role::parse("editor").unwrap(), Role::Editor);
        assert!(
            !Role::Contributor.grants(Role::Viewer),
            "contributors read only their own"
        );
        let k = caller(Role::Contributor, None);
        assert!(k.contributor_only() && k.require(Role::Viewer).is_err());
        assert!(!c.contributor_only());
        assert!(Role::parse("root").is_err());
    }

    #[test]
    fn scope_limits_areas_and_media_but_not_province_wide_media() {
        let c = caller(Role::Operator, Some(vec!["a".into(), "a1".into()]));
        assert!(c.in_scope("a1") && !c.in_scope("b"));
        assert!(c.check_area("b").is_err());
        assert!(c.sees_media(None) && c.sees_media(Some("a")) && !c.sees_media(Some("b")));
        assert!(c.check_device_area("d", "b").is_err());
        assert!(Caller::admin_token().in_scope("anything"));
    }

    #[test]
    fn the_csrf_token_must_match() {
        let c = caller(Role::Viewer, None);
        assert!(c.check_csrf("tok", "no").is_ok());
        assert_eq!(c.check_csrf("bad", "refused").unwrap_err().to_string(), "refused");
        assert!(Caller::admin_token().check_csrf("", "refused").is_err());
    }
}
