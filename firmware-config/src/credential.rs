//! Device MQTT credentials. One hash format serves both brokers: Mosquitto's own PBKDF2-SHA512
//! `password_file` format (`$7$<iterations>$<base64 salt>$<base64 hash>`), which nguon-server's
//! embedded broker also checks. Passwords are random (see [`generate_password`]), so their
//! entropy, not the iteration count, is what protects them; the count is kept moderate so that a
//! reconnect storm of thousands of devices costs the server little CPU.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::Sha512;

/// PBKDF2 iterations written by [`hash_password`].
pub const ITERATIONS: u32 = 1000;
const SALT_LEN: usize = 12;
const HASH_LEN: usize = 64;

/// A random password: 24 characters from a 62-letter alphabet (≈ 143 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(24);
    let mut buf = [0u8; 1];
    while out.len() < 24 {
        getrandom::fill(&mut buf).expect("operating system random generator");
        // Rejection sampling keeps the distribution uniform.
        if (buf[0] as usize) < 248 {
            out.push(ALPHABET[buf[0] as usize % 62] as char);
        }
    }
    out
}

/// Hash a password in Mosquitto's `$7$` format with a fresh random salt.
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).expect("operating system random generator");
    hash_with(password, &salt, ITERATIONS)
}

fn hash_with(password: &str, salt: &[u8], iterations: u32) -> String {
    let mut out = [0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), salt, iterations, &mut out);
    format!("$7${iterations}${}${}", B64.encode(salt), B64.encode(out))
}

/// Check a password against a `$7$` hash. Malformed hashes never match.
pub fn verify_password(password: &str, hash: &str) -> bool {
    let mut parts = hash.split('$');
    let (Some(""), Some("7"), Some(iter), Some(salt), Some(h), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Ok(iter), Ok(salt), Ok(expected)) = (iter.parse::<u32>(), B64.decode(salt), B64.decode(h)) else {
        return false;
    };
    if iter == 0 || iter > 10_000_000 || expected.is_empty() {
        return false;
    }
    let mut out = vec![0u8; expected.len()];
    pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), &salt, iter, &mut out);
    // Constant-time comparison.
    out.iter()
        .zip(expected.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_only_its_password() {
        let pw = generate_password();
        assert_eq!(pw.len(), 24);
        let h = hash_password(&pw);
        assert!(h.starts_with("$7$1000$"));
        assert!(verify_password(&pw, &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password(&pw, "$7$x$y$z"));
        assert!(!verify_password(&pw, ""));
    }
}
