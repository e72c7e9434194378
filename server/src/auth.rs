//! Authentication of API callers: the bootstrap admin bearer token for now.

/// A fresh random token (32 random bytes, hex).
pub fn generate_token() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("operating system random generator");
    hex::encode(b)
}
