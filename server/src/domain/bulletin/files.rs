//! What a bulletin file is, read from its bytes: the type from magic bytes (the file name's
//! extension is ignored), image dimensions from the header (PNG IHDR, JPEG SOF, GIF, WebP
//! VP8/VP8L/VP8X), and the limits per kind.

use crate::error::{Error, Result};

/// Largest image, bytes.
pub const MAX_IMAGE_BYTES: u64 = 20 * 1024 * 1024;
/// Largest PDF, bytes.
pub const MAX_PDF_BYTES: u64 = 50 * 1024 * 1024;
/// Largest width or height of an image, pixels.
pub const MAX_IMAGE_SIDE: u32 = 8192;
/// Largest image area, pixels.
pub const MAX_IMAGE_PIXELS: u64 = 40_000_000;

/// What a file is, from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    /// MIME type.
    pub mime: &'static str,
    /// `image`, `video` or `attachment`.
    pub kind: &'static str,
}

/// Identify a file from its first bytes (at least 16 are needed).
pub fn sniff(b: &[u8]) -> Option<Sniffed> {
    let s = |mime, kind| Some(Sniffed { mime, kind });
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        s("image/png", "image")
    } else if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        s("image/jpeg", "image")
    } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        s("image/gif", "image")
    } else if b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        s("image/webp", "image")
    } else if b.len() >= 12 && &b[4..8] == b"ftyp" {
        s("video/mp4", "video")
    } else if b.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        s("video/webm", "video")
    } else if b.starts_with(b"%PDF-") {
        s("application/pdf", "attachment")
    } else {
        None
    }
}

fn be16(b: &[u8]) -> u32 {
    u16::from_be_bytes([b[0], b[1]]) as u32
}
fn le16(b: &[u8]) -> u32 {
    u16::from_le_bytes([b[0], b[1]]) as u32
}
fn le24(b: &[u8]) -> u32 {
    b[0] as u32 | (b[1] as u32) << 8 | (b[2] as u32) << 16
}

/// Width and height of an image from its header bytes.
pub fn dimensions(mime: &str, b: &[u8]) -> Option<(u32, u32)> {
    match mime {
        "image/png" if b.len() >= 24 && &b[12..16] == b"IHDR" => Some((
            u32::from_be_bytes([b[16], b[17], b[18], b[19]]),
            u32::from_be_bytes([b[20], b[21], b[22], b[23]]),
        )),
        "image/gif" if b.len() >= 10 => Some((le16(&b[6..]), le16(&b[8..]))),
        "image/webp" if b.len() >= 30 => match &b[12..16] {
            b"VP8 " => Some((le16(&b[26..]) & 0x3FFF, le16(&b[28..]) & 0x3FFF)),
            b"VP8L" => {
                let v = u32::from_le_bytes([b[21], b[22], b[23], b[24]]);
                Some(((v & 0x3FFF) + 1, ((v >> 14) & 0x3FFF) + 1))
            }
            b"VP8X" => Some((le24(&b[24..]) + 1, le24(&b[27..]) + 1)),
            _ => None,
        },
        "image/jpeg" => {
            let mut i = 2;
            while i + 9 < b.len() {
                if b[i] != 0xFF {
                    return None;
                }
                let m = b[i + 1];
                if m == 0xFF {
                    i += 1;
                    continue;
                }
                let len = be16(&b[i + 2..]) as usize;
                // SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC).
                if (0xC0..=0xCF).contains(&m) && m != 0xC4 && m != 0xC8 && m != 0xCC {
                    return Some((be16(&b[i + 7..]), be16(&b[i + 5..])));
                }
                i += 2 + len;
            }
            None
        }
        _ => None,
    }
}

/// Largest file of `kind` (`image`, `video`, `attachment`) under the server's `max_upload`.
pub fn limit_for(kind: &str, max_upload: u64) -> u64 {
    match kind {
        "image" => MAX_IMAGE_BYTES.min(max_upload),
        "attachment" => MAX_PDF_BYTES.min(max_upload),
        _ => max_upload,
    }
}

/// The dimensions of an image within the limits (422 `unreadable_image` / `image_too_large`).
pub fn check_image(mime: &str, head: &[u8]) -> Result<(u32, u32)> {
    let (w, h) = dimensions(mime, head).ok_or_else(|| {
        Error::unprocessable(
            "unreadable_image",
            format!("cannot read the dimensions of this {mime}"),
        )
    })?;
    if w == 0 || h == 0 || w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE || w as u64 * h as u64 > MAX_IMAGE_PIXELS
    {
        return Err(Error::unprocessable(
            "image_too_large",
            format!(
                "image is {w}×{h} pixels; at most {MAX_IMAGE_SIDE} pixels a side and {MAX_IMAGE_PIXELS} pixels in all"
            ),
        ));
    }
    Ok((w, h))
}

/// The 415 of content that is no accepted type.
pub fn unsupported(head: &[u8]) -> Error {
    let what = if head.is_empty() {
        "the file is empty".to_string()
    } else if std::str::from_utf8(&head[..head.len().min(512)]).is_ok() {
        "the content is text, not an image, video or PDF".to_string()
    } else {
        "the content is not a recognised image, video or PDF".to_string()
    };
    Error::Unsupported {
        code: "unsupported_file",
        message: format!(
            "{what}; accepted: PNG, JPEG, WebP, GIF, MP4, WebM, PDF (type read from the content)"
        ),
    }
}

/// The 413 of a `kind` file over `limit` bytes.
pub fn too_large(kind: &str, limit: u64) -> Error {
    Error::TooLarge(format!(
        "{kind} is larger than the limit of {} bytes ({} MB)",
        limit,
        limit / (1024 * 1024)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_magic_bytes_and_dimensions_from_headers() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&1920u32.to_be_bytes());
        png.extend_from_slice(&1080u32.to_be_bytes());
        assert_eq!(sniff(&png).unwrap().mime, "image/png");
        assert_eq!(dimensions("image/png", &png), Some((1920, 1080)));
        assert_eq!(
            sniff(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n").unwrap().kind,
            "attachment"
        );
        assert_eq!(sniff(b"\0\0\0\x20ftypisom\0\0\0\0").unwrap().mime, "video/mp4");
        assert!(sniff(b"hello, this is plain text").is_none());
        // Minimal JPEG: SOI, APP0 (len 16), SOF0 with 480 rows × 640 columns.
        let mut jpg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
        jpg.extend_from_slice(&[0; 14]);
        jpg.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08, 0x01, 0xE0, 0x02, 0x80, 0x03]);
        assert_eq!(dimensions("image/jpeg", &jpg), Some((640, 480)));
        let gif = b"GIF89a\x40\x01\xf0\x00";
        assert_eq!(dimensions("image/gif", gif), Some((320, 240)));
    }
}
