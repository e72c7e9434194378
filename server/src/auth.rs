//! Authentication of API callers (issue 7). A [`Caller`] is whoever presented one of: the
//! bootstrap admin bearer token (role `admin`, unrestricted), a per-user API token
//! (`Authorization: Bearer`, stored hashed), or a console session cookie (`nguon_session`; on
//! `/api/` a state-changing request made with the cookie must also carry the session's CSRF token
//! in `X-CSRF-Token`, else 403). Anything else gets 401 `{"error":{"code":"unauthorized",...}}`.
//! [`Admin`] is a caller with role `admin`; other roles get 403.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::AppState;
use crate::error::{Error, Result};
use crate::user::{self, Role, User};

/// Name of the console session cookie.
pub const SESSION_COOKIE: &str = "nguon_session";

/// A fresh random token (32 random bytes, hex).
pub fn generate_token() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("operating system random generator");
    hex::encode(b)
}

/// Most scope codes bound one by one in [`Caller::scope_sql`]; past it the subtree is expanded in SQL.
pub const SCOPE_INLINE_MAX: usize = 500;

/// An SQL condition and the values it binds, in order (see [`Caller::scope_sql`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeSql {
    /// The condition, e.g. `d.area IN ($1, $2)`.
    pub sql: String,
    /// Values for its placeholders.
    pub binds: Vec<String>,
}

impl ScopeSql {
    /// The number of the placeholder after this condition's last one, given it started at `start`.
    pub fn next(&self, start: usize) -> usize {
        start + self.binds.len()
    }
}

/// Proof that the caller has the `admin` role (the bootstrap token or an admin user).
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let c = Caller::from_request_parts(parts, state).await?;
        c.require(Role::Admin)?;
        Ok(Admin(c))
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
    /// Role.
    pub role: Role,
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
    /// 403 unless the role grants `role` (admin grants everything; everyone may read).
    pub fn require(&self, role: Role) -> Result<()> {
        if self.role.grants(role) {
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
        if roles.iter().any(|r| self.role.grants(*r)) {
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

    /// The one SQL form of the scope rule: a condition keeping rows whose `column` (an area code)
    /// is inside the caller's scope, with placeholders numbered from `$start` and the values to
    /// bind in order. Unrestricted callers get `1 = 1` and nothing to bind. The subtree codes
    /// (computed once per request in [`Caller::of_user`]) are bound one by one while there are at
    /// most [`SCOPE_INLINE_MAX`]; a larger subtree is expanded inside the query from the few scope
    /// roots (recursive CTE on `areas.parent`), which keeps under SQLite's and PostgreSQL's limits
    /// on bound parameters.
    pub fn scope_sql(&self, column: &str, start: usize) -> ScopeSql {
        let (Some(codes), roots) = (&self.scope_areas, &self.scope_roots) else {
            return ScopeSql {
                sql: "1 = 1".into(),
                binds: Vec::new(),
            };
        };
        if codes.is_empty() {
            return ScopeSql {
                sql: "1 = 0".into(),
                binds: Vec::new(),
            };
        }
        match roots {
            Some(roots) if codes.len() > SCOPE_INLINE_MAX && !roots.is_empty() => ScopeSql {
                sql: format!(
                    "{column} IN (WITH RECURSIVE scope_sub(code) AS (SELECT code FROM areas WHERE code IN ({}) \
                     UNION SELECT a.code FROM areas a JOIN scope_sub s ON a.parent = s.code) SELECT code FROM scope_sub)",
                    crate::area::placeholders(start, roots.len())
                ),
                binds: roots.clone(),
            },
            _ => ScopeSql {
                sql: format!("{column} IN ({})", crate::area::placeholders(start, codes.len())),
                binds: codes.clone(),
            },
        }
    }

    /// 403 unless the area is inside the caller's scope.
    pub fn check_area(&self, code: &str) -> Result<()> {
        if self.in_scope(code) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!("area `{code}` is outside your scope")))
        }
    }

    /// 403 unless the device's area is inside the caller's scope (404 if unknown).
    pub async fn check_device(&self, state: &AppState, id: &str) -> Result<()> {
        if self.scope_areas.is_none() {
            return Ok(());
        }
        let d = crate::fleet::get(&state.store, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("device `{id}`")))?;
        if self.in_scope(&d.area) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!("device `{id}` is outside your scope")))
        }
    }

    /// 403 unless every target area and device is inside the caller's scope.
    pub async fn check_targets(&self, state: &AppState, areas: &[String], devices: &[String]) -> Result<()> {
        for a in areas {
            self.check_area(a)?;
        }
        for d in devices {
            self.check_device(state, d).await?;
        }
        Ok(())
    }

    /// The caller of a user record.
    pub async fn of_user(state: &AppState, u: &User, via: Via, csrf: Option<String>) -> Result<Caller> {
        let scope_areas = if u.areas.is_empty() {
            None
        } else {
            Some(crate::area::subtree(&state.store, &u.areas).await?)
        };
        Ok(Caller {
            user_id: u.id.clone(),
            username: u.username.clone(),
            role: u.role,
            scope_areas,
            scope_roots: (!u.areas.is_empty()).then(|| u.areas.clone()),
            via,
            csrf,
        })
    }

    /// The caller of a session cookie, without any CSRF check (the console checks its forms).
    pub async fn from_cookie(parts: &Parts, state: &AppState) -> Result<Option<Caller>> {
        let Some(sid) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        match user::session_user(&state.store, &sid).await? {
            Some((u, csrf)) => Ok(Some(Caller::of_user(state, &u, Via::Session, Some(csrf)).await?)),
            None => Ok(None),
        }
    }
}

/// The value of cookie `name` in the request headers.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(header) = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        {
            let (scheme, token) = header.trim().split_once(' ').ok_or(Error::Unauthorized)?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(Error::Unauthorized);
            }
            let token = token.trim();
            if constant_time_eq(token.as_bytes(), state.admin_token.expose().as_bytes()) {
                return Ok(Caller {
                    user_id: "admin-token".into(),
                    username: "admin-token".into(),
                    role: Role::Admin,
                    scope_areas: None,
                    scope_roots: None,
                    via: Via::AdminToken,
                    csrf: None,
                });
            }
            let u = user::token_user(&state.store, token)
                .await?
                .ok_or(Error::Unauthorized)?;
            return Caller::of_user(state, &u, Via::ApiToken, None).await;
        }
        let c = Caller::from_cookie(parts, state)
            .await?
            .ok_or(Error::Unauthorized)?;
        let safe = matches!(
            parts.method,
            axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
        );
        if !safe {
            let sent = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let want = c.csrf.as_deref().unwrap_or("");
            if want.is_empty() || !constant_time_eq(sent.as_bytes(), want.as_bytes()) {
                return Err(Error::Forbidden(
                    "missing or wrong CSRF token (`X-CSRF-Token`)".into(),
                ));
            }
        }
        Ok(c)
    }
}

/// Compare two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    fn caller(areas: Option<Vec<String>>, roots: Option<Vec<String>>) -> super::Caller {
        super::Caller {
            user_id: "u".into(),
            username: "u".into(),
            role: crate::user::Role::Operator,
            scope_areas: areas,
            scope_roots: roots,
            via: super::Via::ApiToken,
            csrf: None,
        }
    }

    #[test]
    fn the_scope_condition_binds_codes_or_expands_the_roots_in_sql() {
        let all = caller(None, None).scope_sql("d.area", 1);
        assert_eq!((all.sql.as_str(), all.binds.len()), ("1 = 1", 0));
        let small =
            caller(Some(vec!["a".into(), "a1".into()]), Some(vec!["a".into()])).scope_sql("d.area", 3);
        assert_eq!(small.sql, "d.area IN ($3, $4)");
        assert_eq!(small.binds, vec!["a", "a1"]);
        assert_eq!(small.next(3), 5);
        let many: Vec<String> = (0..=super::SCOPE_INLINE_MAX).map(|i| format!("c{i}")).collect();
        let big = caller(Some(many), Some(vec!["c0".into()])).scope_sql("d.area", 1);
        assert!(big.sql.starts_with("d.area IN (WITH RECURSIVE"), "{}", big.sql);
        assert_eq!(big.binds, vec!["c0"]);
    }

    #[test]
    fn equal_tokens_match_and_different_ones_do_not() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"abcd"));
    }
}
