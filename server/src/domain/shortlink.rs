//! Short links of bulletins (issue 15): `/b/{code}`, printed as a QR code on boards and posters.
//! The code is derived from the bulletin id (the first 40 bits of its sha256 in lowercase
//! base32, 8 characters), so boards, feeds and pages name it without a stored table, and it
//! resolves only among the bulletins that are public (`services::public::resolve`).

use sha2::{Digest, Sha256};

/// Lowercase base32 without the letters easily misread (RFC 4648 alphabet, lowercase).
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Length of a code.
pub const LEN: usize = 8;

/// The short code of bulletin `id`.
pub fn code(id: &str) -> String {
    let h = Sha256::digest(format!("nguon-short-link:{id}").as_bytes());
    let bits = u64::from_be_bytes([0, 0, 0, h[0], h[1], h[2], h[3], h[4]]);
    (0..LEN)
        .rev()
        .map(|i| ALPHABET[((bits >> (i * 5)) & 31) as usize] as char)
        .collect()
}

/// Whether `s` looks like a code (so a random path is refused before any lookup).
pub fn is_code(s: &str) -> bool {
    s.len() == LEN && s.bytes().all(|b| ALPHABET.contains(&b))
}

/// The path of bulletin `id`'s short link.
pub fn path(id: &str) -> String {
    format!("/b/{}", code(id))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_code_is_stable_eight_characters_and_differs_between_bulletins() {
        let a = super::code("0190aaaa-0000-7000-8000-000000000001");
        assert_eq!(a, super::code("0190aaaa-0000-7000-8000-000000000001"));
        assert_eq!(a.len(), 8);
        assert!(super::is_code(&a));
        assert_ne!(a, super::code("0190aaaa-0000-7000-8000-000000000002"));
        assert!(!super::is_code("../etc/p"));
    }
}
