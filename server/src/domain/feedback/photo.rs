//! Which photos the public feedback form takes (issue 15): JPEG, PNG or WebP, told by their
//! first bytes, never by the file name or the browser's type. Decoding and the re-encoding that
//! strips every metadata block (EXIF with its GPS position, XMP, comments) are done by
//! `services::feedback::photos` with the `image` crate.

/// An accepted photo format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JPEG (`FF D8 FF`).
    Jpeg,
    /// PNG (the 8-byte signature).
    Png,
    /// WebP (`RIFF....WEBP`).
    Webp,
}

/// The format of `head` (a file's first bytes), or `None` for anything else.
pub fn sniff(head: &[u8]) -> Option<Format> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some(Format::Webp)
    } else {
        None
    }
}

/// Largest side of a stored photo, pixels (larger ones are scaled down).
pub const MAX_SIDE: u32 = 2048;
/// Largest side of a photo accepted for decoding, pixels (a decompression bomb is refused).
pub const MAX_DECODE_SIDE: u32 = 12_000;

/// Where a stored photo lives: `data_dir/feedback/<sha256>.jpg`.
pub fn path_of(data_dir: &std::path::Path, sha256: &str) -> std::path::PathBuf {
    data_dir.join("feedback").join(format!("{sha256}.jpg"))
}
