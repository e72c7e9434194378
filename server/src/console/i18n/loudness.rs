//! The console's strings of the loudness of uploads (issue 18): the library's column and the
//! detail page's figures of the original and of the normalised rendition loudspeakers play.
//! [`super::t`] looks here after the other catalogues.

/// key, Vietnamese, English.
pub const CATALOGUE: &[(&str, &str, &str)] = &[
    ("loud.column", "Độ to", "Loudness"),
    ("loud.original", "Độ to bản gốc", "Loudness of the original"),
    (
        "loud.rendition",
        "Bản chuẩn hoá (loa phát bản này)",
        "Normalised rendition (what loudspeakers play)",
    ),
    ("loud.gain", "tăng/giảm", "gain"),
    ("loud.none", "Chưa đo", "Not measured"),
    (
        "loud.as_uploaded",
        "Loa phát bản gốc",
        "Loudspeakers play the original",
    ),
    ("loud.preview", "Nghe bản chuẩn hoá", "Listen to the rendition"),
];
