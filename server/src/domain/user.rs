//! Users as the rest of the server sees them (never the password hash), and the rules for them
//! and their secrets: usernames and passwords ([`check_username`], [`check_password`]; the
//! minimum strength of every password and token is [`weakness`]), the bootstrap admin token kept
//! only as its sha256 ([`AdminToken`]), what an
//! admin may not do to their own account ([`guard_self`]), the login lock ([`MAX_FAILURES`] in
//! [`LOCK_MS`]), argon2id password checks ([`verify_password`]); only the sha256 of a session id
//! or API token is stored ([`hash_secret`]); secrets are compared in constant time by
//! `domain::scope::constant_time_eq`.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordVerifier};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::scope::{Caller, Role};
use crate::error::{Error, Result};

/// Failures allowed per username and IP inside the window before the pair is locked.
pub const MAX_FAILURES: i64 = 5;
/// The failure window and the lock duration (15 minutes).
pub const LOCK_MS: i64 = 15 * 60 * 1000;
/// Session lifetime (12 hours).
pub const SESSION_MS: i64 = 12 * 60 * 60 * 1000;

/// A user as the API shows it (never the hash).
#[derive(Debug, Clone, Serialize)]
pub struct User {
    /// Id (uuid).
    pub id: String,
    /// Login name.
    pub username: String,
    /// Shown name.
    pub display_name: String,
    /// Role (the first; `admin` for an admin).
    pub role: Role,
    /// The other roles (issue 13).
    pub extra_roles: Vec<Role>,
    /// Scope roots (`[]` = unrestricted).
    pub areas: Vec<String>,
    /// Whether the user may log in.
    pub enabled: bool,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// Body of `POST /api/v1/users` (also the console's form).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Login name: 3–64 of `[a-z0-9._-]`.
    pub username: String,
    /// Shown name (default: the username).
    #[serde(default)]
    pub display_name: Option<String>,
    /// Role.
    pub role: Role,
    /// Further roles held at once (default none), e.g. `["operator"]` beside `editor`.
    #[serde(default)]
    pub roles: Vec<Role>,
    /// Scope roots (default `[]` = unrestricted).
    #[serde(default)]
    pub areas: Vec<String>,
    /// At least 8 characters.
    pub password: String,
}

/// Changes of `PATCH /api/v1/users/{id}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// New shown name.
    pub display_name: Option<String>,
    /// New role.
    pub role: Option<Role>,
    /// New further roles (replacing the old ones).
    pub roles: Option<Vec<Role>>,
    /// New scope roots.
    pub areas: Option<Vec<String>>,
    /// New password.
    pub password: Option<String>,
    /// Enable or disable (disabling ends the user's sessions).
    pub enabled: Option<bool>,
}

/// Answer of `POST /api/v1/users/{id}/tokens`: the token is shown once.
#[derive(Debug, Serialize)]
pub struct IssuedToken {
    /// Token id.
    pub id: String,
    /// The bearer token (store it now: only its hash is kept).
    pub token: String,
}

/// An API token as listed (never the secret).
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    /// Token id.
    pub id: String,
    /// Label.
    pub name: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms of the last request made with it.
    pub last_used_at: Option<i64>,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// Why a login failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginError {
    /// Wrong username or password (or a disabled user).
    BadCredentials,
    /// Too many failures for this username from this address.
    Locked,
    /// Too many attempts from this address, or from everyone at once.
    Throttled,
}

/// 400 unless the username is 3–64 characters of `a-z`, `0-9`, `.`, `_`, `-`.
pub fn check_username(u: &str) -> Result<()> {
    let ok = (3..=64).contains(&u.len())
        && u.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::bad(
            "invalid_username",
            "`username` must be 3–64 characters of a-z, 0-9, `.`, `_`, `-`",
        ))
    }
}

/// Shortest password or token accepted, characters.
pub const MIN_SECRET_CHARS: usize = 12;

/// Passwords that guessing lists try first (compared case-insensitively, ignoring spaces); the
/// length rule already refuses the shorter ones.
const COMMON: &[&str] = &[
    "123456789012",
    "1234567890123",
    "12345678910",
    "password1234",
    "password12345",
    "passw0rd1234",
    "qwertyuiop12",
    "qwertyuiop123",
    "qwerty123456",
    "1q2w3e4r5t6y",
    "1qaz2wsx3edc",
    "abc123456789",
    "administrator",
    "admin1234567",
    "admin12345678",
    "adminadmin12",
    "iloveyou1234",
    "letmein12345",
    "welcome12345",
    "changeme1234",
    "matkhau12345",
    "matkhau123456",
    "123456789abc",
    "aaaaaaaaaaaa",
    "111111111111",
    "000000000000",
    "abcdefghijkl",
    "asdfghjkl123",
    "zxcvbnm12345",
    "nguon1234567",
    "nguonadmin12",
    "laocai123456",
];

/// Why `secret` is too weak to be a password or token, or `None`: fewer than
/// [`MIN_SECRET_CHARS`] characters, one repeated character, or a well-known password.
pub fn weakness(secret: &str) -> Option<String> {
    let n = secret.chars().count();
    if n < MIN_SECRET_CHARS {
        return Some(format!("must have at least {MIN_SECRET_CHARS} characters"));
    }
    let mut chars = secret.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return Some("must not repeat one character".into());
    }
    let folded: String = secret
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase();
    if COMMON.contains(&folded.as_str()) {
        return Some("is a well-known password".into());
    }
    None
}

/// 422 `weak_password` naming `field` unless `secret` passes [`weakness`]: the one strength
/// check of every password the API takes (users' and devices' MQTT passwords).
pub fn check_secret(field: &str, secret: &str) -> Result<()> {
    match weakness(secret) {
        Some(why) => Err(Error::unprocessable("weak_password", format!("`{field}` {why}"))),
        None => Ok(()),
    }
}

/// [`check_secret`] of the request field `password`.
pub fn check_password(p: &str) -> Result<()> {
    check_secret("password", p)
}

/// The bootstrap admin bearer token as the server keeps it: only its sha256 (the token itself
/// is shown once, when it is generated, or comes from the configuration).
#[derive(Clone)]
pub struct AdminToken {
    sha256: String,
}

impl AdminToken {
    /// The token of the hex sha256 `digest` (as stored).
    pub fn from_digest(digest: &str) -> AdminToken {
        AdminToken {
            sha256: digest.trim().to_ascii_lowercase(),
        }
    }

    /// The hex sha256 kept for `token`.
    pub fn digest(&self) -> &str {
        &self.sha256
    }

    /// Whether `presented` is the admin token (its sha256 compared in constant time).
    pub fn matches(&self, presented: &str) -> bool {
        crate::domain::scope::constant_time_eq(hash_secret(presented).as_bytes(), self.sha256.as_bytes())
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(sha256 …)")
    }
}

/// 400 unless a new shown name is 1–200 characters.
pub fn check_display_name(d: &str) -> Result<()> {
    if d.trim().is_empty() || d.chars().count() > 200 {
        return Err(Error::bad(
            "invalid_field",
            "`display_name` must be 1–200 characters",
        ));
    }
    Ok(())
}

/// The shown name of a new user: the trimmed `display_name`, else the username; at most 200
/// characters.
pub fn display_name_of(username: &str, display_name: Option<&str>) -> String {
    display_name
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| username.to_string())
        .chars()
        .take(200)
        .collect()
}

/// A user's roles as stored: the first role (`admin` first whenever it is among them) and the
/// others, each once; 400 `roles_required` for none.
pub fn split_roles(all: &[Role]) -> Result<(Role, Vec<Role>)> {
    let first = if all.contains(&Role::Admin) {
        Role::Admin
    } else {
        *all.first()
            .ok_or_else(|| Error::bad("roles_required", "`roles`: choose at least one role"))?
    };
    let mut rest: Vec<Role> = Vec::new();
    for r in all {
        if *r != first && !rest.contains(r) {
            rest.push(*r);
        }
    }
    Ok((first, rest))
}

/// 409 if `caller` would disable themselves or take away their own admin role (the console and
/// the API share this rule, so nobody locks themselves out).
pub fn guard_self(caller: &Caller, id: &str, p: &UserPatch) -> Result<()> {
    if caller.user_id != id {
        return Ok(());
    }
    if p.enabled == Some(false) {
        return Err(Error::Conflict("you cannot disable your own account".into()));
    }
    if caller.role == Role::Admin
        && p.role.is_some_and(|r| r != Role::Admin)
        && !p.roles.as_ref().is_some_and(|rs| rs.contains(&Role::Admin))
    {
        return Err(Error::Conflict(
            "you cannot remove your own admin role; ask another admin".into(),
        ));
    }
    Ok(())
}

/// 403 unless the caller is the user `id` or an admin (the rule for a user's API tokens).
pub fn require_self_or_admin(caller: &Caller, id: &str) -> Result<()> {
    if caller.user_id != id {
        caller.require(Role::Admin)?;
    }
    Ok(())
}

/// Whether `failures` failed attempts inside the window lock the (username, IP) pair.
pub fn is_locked(failures: i64) -> bool {
    failures >= MAX_FAILURES
}

/// Whether `password` matches the stored PHC hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// A well-formed argon2id hash of no one's password: checked when the username is unknown, so a
/// failed login takes the same time whether the user exists or not.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY";

/// sha256 hex of a secret (session ids and API tokens are stored this way).
pub fn hash_secret(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scope::Via;

    #[test]
    fn usernames_and_passwords_follow_their_rules() {
        assert!(check_username("xa.lao-cai_1").is_ok());
        for bad in ["ab", "Admin", "ngư", "a b c", &"x".repeat(65)] {
            assert!(check_username(bad).is_err(), "{bad}");
        }
        assert!(check_password("12345678").is_err());
        assert!(check_password("correct horse").is_ok());
        assert!(check_password("Password1234").is_err(), "well-known, any case");
        assert!(
            check_password("xxxxxxxxxxxxxxx").is_err(),
            "one repeated character"
        );
        let t = AdminToken::from_digest(&hash_secret("the-admin-token-1"));
        assert!(t.matches("the-admin-token-1") && !t.matches("the-admin-token-2"));
        assert!(check_password("mậtkhẩu").is_err());
        assert!(check_display_name(" ").is_err());
        assert_eq!(display_name_of("an", Some("  ")), "an");
        assert_eq!(display_name_of("an", Some(" Anh ")), "Anh");
    }

    #[test]
    fn an_admin_cannot_disable_or_demote_themselves_but_may_others() {
        let me = Caller {
            user_id: "me".into(),
            username: "me".into(),
            role: Role::Admin,
            extra_roles: Vec::new(),
            scope_areas: None,
            scope_roots: None,
            via: Via::Session,
            csrf: None,
        };
        let disable = UserPatch {
            enabled: Some(false),
            ..UserPatch::default()
        };
        let demote = UserPatch {
            role: Some(Role::Viewer),
            ..UserPatch::default()
        };
        assert!(matches!(guard_self(&me, "me", &disable), Err(Error::Conflict(_))));
        assert!(matches!(guard_self(&me, "me", &demote), Err(Error::Conflict(_))));
        assert!(guard_self(&me, "other", &disable).is_ok());
        assert!(require_self_or_admin(&me, "other").is_ok());
        let viewer = Caller {
            role: Role::Viewer,
            ..me
        };
        assert!(require_self_or_admin(&viewer, "me").is_ok());
        assert!(require_self_or_admin(&viewer, "other").is_err());
    }

    #[test]
    fn the_fifth_failure_locks_and_the_dummy_hash_matches_nothing() {
        assert!(!is_locked(MAX_FAILURES - 1) && is_locked(MAX_FAILURES));
        assert!(!verify_password("anything", DUMMY_HASH));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn equal_tokens_match_and_different_ones_do_not() {
        assert!(crate::domain::scope::constant_time_eq(b"abc", b"abc"));
        assert!(!crate::domain::scope::constant_time_eq(b"abc", b"abd"));
        assert!(!crate::domain::scope::constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn secrets_are_stored_as_their_sha256() {
        assert_eq!(
            super::hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
