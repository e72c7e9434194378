//! Authentication of API and console callers (issue 7). A [`Caller`] is whoever presented one
//! of: the bootstrap admin bearer token (role `admin`, unrestricted), a per-user API token
//! (`Authorization: Bearer`, stored hashed), or a console session cookie (`nguon_session`; on
//! `/api/` a state-changing request made with the cookie must also carry the session's CSRF token
//! in `X-CSRF-Token`, else 403). Anything else gets 401 `{"error":{"code":"unauthorized",...}}`.
//! [`Admin`] is a caller with role `admin`; other roles get 403. A caller holding only the
//! `contributor` role reaches nothing but its submissions (403 elsewhere). The look-ups are
//! `services::auth`'s; the session's caller is looked up once per request ([`session_caller`]).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};

pub use crate::domain::scope::{Caller, Role, Via};
use crate::error::{Error, Result};
use crate::services::{self, AppState};

/// Name of the console session cookie.
pub const SESSION_COOKIE: &str = "nguon_session";

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

/// The value of cookie `name` in the request headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The session looked up for this request (kept in the request's extensions).
#[derive(Clone)]
struct SessionLookup(Option<Caller>);

/// The caller of the request's session cookie, without any CSRF check (console pages and forms
/// check their own). Looked up once per request, however many extractors ask.
pub async fn session_caller(parts: &mut Parts, state: &AppState) -> Result<Option<Caller>> {
    if let Some(SessionLookup(c)) = parts.extensions.get::<SessionLookup>() {
        return Ok(c.clone());
    }
    let caller = match cookie(&parts.headers, SESSION_COOKIE) {
        Some(sid) => services::auth::session(state, &sid).await?,
        None => None,
    };
    parts.extensions.insert(SessionLookup(caller.clone()));
    Ok(caller)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(header) = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        {
            let (scheme, token) = header.trim().split_once(' ').ok_or(Error::Unauthorized)?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(Error::Unauthorized);
            }
            let c = services::auth::bearer(state, token.trim()).await?;
            return contributor_gate(c, parts.uri.path());
        }
        let c = session_caller(parts, state).await?.ok_or(Error::Unauthorized)?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            let sent = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            c.check_csrf(sent, "missing or wrong CSRF token (`X-CSRF-Token`)")?;
        }
        contributor_gate(c, parts.uri.path())
    }
}

/// Where a caller holding only the `contributor` role may go (issue 15): its submissions.
pub fn contributor_may_reach(path: &str) -> bool {
    path == "/api/v1/submissions" || path.starts_with("/api/v1/submissions/")
}

/// 403 for a contributor-only caller anywhere but [`contributor_may_reach`]: one gate for every
/// API route, so no handler that only reads can leak to an organisation's account.
fn contributor_gate(c: Caller, path: &str) -> Result<Caller> {
    if c.contributor_only() && !contributor_may_reach(path) {
        return Err(Error::Forbidden(
            "a contributor account reaches only its submissions (`/api/v1/submissions`)".into(),
        ));
    }
    Ok(c)
}
