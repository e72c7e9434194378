//! The photos of a citizen's feedback (issue 15): told by their content (`domain::feedback::photo`:
//! JPEG, PNG or WebP only), decoded with the `image` crate under size limits (a decompression
//! bomb is refused before any pixel is allocated), turned upright by their EXIF orientation,
//! scaled to at most 2048 px, and re-encoded as a fresh JPEG: nothing of the original file is
//! kept, so EXIF (with its GPS position), XMP, ICC and comments are gone. Stored under
//! `data_dir/feedback/<sha256>.jpg`.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use sha2::{Digest, Sha256};

use crate::domain::feedback::photo::{self, Format, MAX_DECODE_SIDE, MAX_SIDE};
use crate::error::{Error, Result};

/// A photo ready to store.
#[derive(Debug, Clone)]
pub struct Processed {
    /// The re-encoded JPEG.
    pub jpeg: Vec<u8>,
    /// sha256 of `jpeg`.
    pub sha256: String,
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
}

/// 415 for a file that is not a photo the form takes.
pub fn not_image(name: &str) -> Error {
    Error::Unsupported {
        code: "not_image",
        message: format!(
            "Tệp «{name}» không phải ảnh JPEG, PNG hoặc WebP. Chỉ gửi được ảnh chụp ở các định dạng này."
        ),
    }
}

/// Check, decode and re-encode one photo (CPU-bound: run it off the async threads).
pub fn process(name: &str, bytes: &[u8]) -> Result<Processed> {
    let format = match photo::sniff(bytes).ok_or_else(|| not_image(name))? {
        Format::Jpeg => ImageFormat::Jpeg,
        Format::Png => ImageFormat::Png,
        Format::Webp => ImageFormat::WebP,
    };
    let unreadable = |e: image::ImageError| {
        tracing::debug!(error = %e, file = name, "feedback photo refused");
        Error::Unsupported {
            code: "bad_image",
            message: format!(
                "Không đọc được ảnh «{name}»: tệp bị hỏng hoặc ảnh quá lớn (tối đa {MAX_DECODE_SIDE} điểm ảnh mỗi chiều)."
            ),
        }
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DECODE_SIDE);
    limits.max_image_height = Some(MAX_DECODE_SIDE);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(unreadable)?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(unreadable)?;
    img.apply_orientation(orientation);
    if img.width() > MAX_SIDE || img.height() > MAX_SIDE {
        img = img.resize(MAX_SIDE, MAX_SIDE, image::imageops::FilterType::Triangle);
    }
    let rgb = img.to_rgb8();
    let mut jpeg = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85);
    rgb.write_with_encoder(encoder)
        .map_err(|e| Error::internal_from("encode feedback photo", e))?;
    Ok(Processed {
        sha256: hex::encode(Sha256::digest(&jpeg)),
        width: rgb.width(),
        height: rgb.height(),
        jpeg,
    })
}

pub use crate::domain::feedback::photo::path_of;

/// Write a photo (through a temporary file renamed into place).
pub async fn store(data_dir: &Path, p: &Processed) -> Result<()> {
    let dir = data_dir.join("feedback");
    tokio::fs::create_dir_all(&dir).await?;
    let dest = path_of(data_dir, &p.sha256);
    if tokio::fs::try_exists(&dest).await.unwrap_or(false) {
        return Ok(());
    }
    let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4()));
    tokio::fs::write(&tmp, &p.jpeg).await?;
    tokio::fs::rename(&tmp, &dest).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_png_becomes_a_jpeg_and_text_is_refused() {
        let img = image::RgbImage::from_pixel(40, 30, image::Rgb([200, 10, 10]));
        let mut png = Vec::new();
        img.write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let p = process("a.png", &png).unwrap();
        assert!(p.jpeg.starts_with(&[0xFF, 0xD8, 0xFF]));
        assert_eq!((p.width, p.height), (40, 30));
        let e = process("a.txt", b"<script>alert(1)</script>").unwrap_err();
        assert!(e.to_string().contains("không phải ảnh"), "{e}");
        let mut broken = png.clone();
        broken.truncate(30);
        assert!(
            process("b.png", &broken)
                .unwrap_err()
                .to_string()
                .contains("Không đọc được")
        );
    }
}
