//! The console's strings of the downmix of multichannel uploads (issue 16): a file of more than
//! two channels plays as its stereo mix. [`super::t`] looks here after the other catalogues.

/// key, Vietnamese, English.
pub const CATALOGUE: &[(&str, &str, &str)] = &[(
    "loud.downmixed_from",
    "gộp xuống stereo (ITU-R BS.775) từ số kênh",
    "mixed down to stereo (ITU-R BS.775) from channels",
)];
