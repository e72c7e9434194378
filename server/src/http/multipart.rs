//! Bounds on request bodies (issue 11, item 14). Every request body is cut off past
//! [`body_limit`] (the upload limit plus [`FORM_OVERHEAD_BYTES`] for a form's other fields),
//! applied once to the whole router in `lib.rs` (`tower_http::limit`), so a multipart form is
//! bounded as a whole however its fields are split; routes that take a form disable axum's
//! default 2 MB limit but not this one. Inside a form, a field a handler does not use is skipped
//! with [`skip_field`], refused past [`OTHER_FIELD_MAX_BYTES`] (413 naming the field).

use axum::extract::multipart::{Field, MultipartError};
use axum::http::StatusCode;

use crate::domain::media;
use crate::error::{Error, Result};

/// Room for a form's fields besides its files (titles, areas, the CSRF token, boundaries).
pub const FORM_OVERHEAD_BYTES: u64 = 1024 * 1024;
/// Largest field a handler does not use, bytes.
pub const OTHER_FIELD_MAX_BYTES: usize = 64 * 1024;

/// The largest request body accepted: `max_upload_mb` plus [`FORM_OVERHEAD_BYTES`].
pub fn body_limit(max_upload_mb: u64) -> usize {
    usize::try_from(media::limit_bytes(max_upload_mb).saturating_add(FORM_OVERHEAD_BYTES))
        .unwrap_or(usize::MAX)
}

/// The answer to a broken multipart body: 413 past the body limit, else 400 `bad_multipart`.
pub fn error(max_upload_mb: u64, e: &MultipartError) -> Error {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::TooLarge(format!(
            "the request is larger than the limit of {max_upload_mb} MB (plus {} KiB for the form's other fields)",
            FORM_OVERHEAD_BYTES / 1024
        ))
    } else {
        Error::bad("bad_multipart", e.body_text())
    }
}

/// Read and drop a field the handler does not use; 413 past [`OTHER_FIELD_MAX_BYTES`].
pub async fn skip_field(max_upload_mb: u64, mut field: Field<'_>) -> Result<()> {
    let name = field.name().unwrap_or("").to_string();
    let mut seen = 0usize;
    while let Some(chunk) = field.chunk().await.map_err(|e| error(max_upload_mb, &e))? {
        seen += chunk.len();
        if seen > OTHER_FIELD_MAX_BYTES {
            return Err(Error::TooLarge(format!(
                "multipart field `{name}` is larger than {OTHER_FIELD_MAX_BYTES} bytes"
            )));
        }
    }
    Ok(())
}
