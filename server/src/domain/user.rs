//! Users as the rest of the server sees them (never the password hash), and the rules for their
//! secrets: only the sha256 of a session id or API token is stored ([`hash_secret`]), and
//! secrets are compared in constant time ([`constant_time_eq`]).

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::domain::scope::Role;

/// A user as the API shows it (never the hash).
#[derive(Debug, Clone, Serialize)]
pub struct User {
    /// Id (uuid).
    pub id: String,
    /// Login name.
    pub username: String,
    /// Shown name.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Scope roots (`[]` = unrestricted).
    pub areas: Vec<String>,
    /// Whether the user may log in.
    pub enabled: bool,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// sha256 hex of a secret (session ids and API tokens are stored this way).
pub fn hash_secret(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
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
    #[test]
    fn equal_tokens_match_and_different_ones_do_not() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn secrets_are_stored_as_their_sha256() {
        assert_eq!(
            super::hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
