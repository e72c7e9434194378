//! The proof-of-work challenge of the public feedback form (issue 15): spam protection without a
//! third-party service. The server issues a challenge signed with its own key,
//! `v1.<issued_ms>.<bits>.<salt>.<mac>` (mac: the first 32 hex digits of HMAC-SHA256 over the
//! part before it); the form's script finds a decimal `nonce` such that
//! SHA-256(`<challenge>:<nonce>`) starts with `bits` zero bits (about 2^bits hashes, a second or
//! two on a phone at the default 16), and sends both. [`verify`] checks the signature, the age,
//! that `bits` is at least the configured difficulty, and the hash; the salt is stored with the
//! feedback under a unique index, so a solved challenge serves once.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::domain::scope::constant_time_eq;
use crate::error::{Error, Result};

/// A fresh challenge for `salt` (16 random bytes, hex) issued at `now_ms`.
pub fn issue(key: &[u8], now_ms: i64, bits: u8, salt: &str) -> String {
    let body = format!("v1.{now_ms}.{bits}.{salt}");
    format!("{body}.{}", mac(key, &body))
}

fn mac(key: &[u8], body: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("hmac takes any key length");
    m.update(body.as_bytes());
    hex::encode(m.finalize().into_bytes())[..32].to_string()
}

/// Leading zero bits of a digest.
pub fn zero_bits(digest: &[u8]) -> u32 {
    let mut n = 0;
    for b in digest {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

/// Whether `nonce` solves `challenge` at `bits`.
pub fn solves(challenge: &str, nonce: &str, bits: u8) -> bool {
    let d = Sha256::digest(format!("{challenge}:{nonce}").as_bytes());
    zero_bits(&d) >= u32::from(bits)
}

/// Find a nonce (for tests and non-browser clients; the form's script does the same).
pub fn solve(challenge: &str, bits: u8) -> String {
    (0u64..)
        .map(|n| n.to_string())
        .find(|n| solves(challenge, n, bits))
        .unwrap_or_default()
}

/// What the form sent when the browser ran no script.
fn refused_without_script() -> Error {
    Error::bad(
        "challenge_required",
        "Cần bật JavaScript để gửi phản ánh: trang dùng một phép tính nhỏ thay cho mã xác nhận để chống thư rác. \
         Vui lòng bật JavaScript (hoặc dùng trình duyệt khác) rồi gửi lại.",
    )
}

/// Check a solved challenge: signed by `key`, issued at most `ttl_ms` before `now_ms` (and not in
/// the future), at least `min_bits` hard, and solved. Returns the salt (stored, unique).
pub fn verify(
    key: &[u8],
    challenge: &str,
    nonce: &str,
    now_ms: i64,
    ttl_ms: i64,
    min_bits: u8,
) -> Result<String> {
    if challenge.trim().is_empty() || nonce.trim().is_empty() {
        return Err(refused_without_script());
    }
    let failed = || {
        Error::bad(
            "challenge_failed",
            "Không xác minh được phép tính chống thư rác. Vui lòng tải lại trang rồi gửi lại.",
        )
    };
    let (body, sent_mac) = challenge.rsplit_once('.').ok_or_else(failed)?;
    if !constant_time_eq(mac(key, body).as_bytes(), sent_mac.as_bytes()) {
        return Err(failed());
    }
    let parts: Vec<&str> = body.split('.').collect();
    let [v, issued, bits, salt] = parts[..] else {
        return Err(failed());
    };
    let issued: i64 = issued.parse().map_err(|_| failed())?;
    let bits: u8 = bits.parse().map_err(|_| failed())?;
    if v != "v1" || bits < min_bits || salt.is_empty() {
        return Err(failed());
    }
    if issued > now_ms + 60_000 || now_ms - issued > ttl_ms {
        return Err(Error::bad(
            "challenge_expired",
            "Trang đã mở quá lâu nên phép tính chống thư rác hết hạn. Vui lòng tải lại trang rồi gửi lại.",
        ));
    }
    if nonce.len() > 20 || !solves(challenge, nonce, bits) {
        return Err(failed());
    }
    Ok(salt.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_solved_challenge_verifies_once_signed_and_fresh() {
        let key = b"k";
        let c = issue(key, 1_000, 8, "abcd");
        let n = solve(&c, 8);
        assert_eq!(verify(key, &c, &n, 2_000, 600_000, 8).unwrap(), "abcd");
        // Another key, an edited difficulty, an old challenge, a wrong nonce, no script.
        assert!(verify(b"other", &c, &n, 2_000, 600_000, 8).is_err());
        let easier = c.replacen(".8.", ".1.", 1);
        assert!(verify(key, &easier, &n, 2_000, 600_000, 1).is_err());
        let e = verify(key, &c, &n, 1_000 + 600_001, 600_000, 8).unwrap_err();
        assert!(e.to_string().contains("hết hạn"), "{e}");
        assert!(
            verify(key, &c, &n, 2_000, 600_000, 12).is_err(),
            "below the configured bits"
        );
        let wrong = (0u64..)
            .map(|i| i.to_string())
            .find(|i| !solves(&c, i, 8))
            .unwrap();
        assert!(verify(key, &c, &wrong, 2_000, 600_000, 8).is_err());
        let e = verify(key, "", "", 2_000, 600_000, 8).unwrap_err();
        assert!(e.to_string().contains("JavaScript"), "{e}");
    }

    #[test]
    fn zero_bits_counts_leading_zeros() {
        assert_eq!(zero_bits(&[0, 0x0f]), 12);
        assert_eq!(zero_bits(&[0x80]), 0);
    }
}
