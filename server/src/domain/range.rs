//! HTTP validators and byte ranges of content-addressed files (`GET /media/{sha256}`): the
//! strong ETag of a hash, `If-None-Match` and `If-Range` matching, and the one `bytes=` range the
//! server honours (several ranges are answered with the whole file). Pure; the file I/O is
//! `services::media::files`, the headers are `http::media`.

/// An inclusive byte range inside a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte (inclusive).
    pub end: u64,
}

impl ByteRange {
    /// Number of bytes.
    pub fn len(self) -> u64 {
        self.end - self.start + 1
    }

    /// Never empty (`end >= start`); for clippy's `len` without `is_empty` rule.
    pub fn is_empty(self) -> bool {
        false
    }
}

/// A `Range` header that no byte of the file satisfies (416).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsatisfiable;

/// The strong ETag of content-addressed data: its hash, quoted.
pub fn etag(sha256: &str) -> String {
    format!("\"{sha256}\"")
}

/// Whether an `If-None-Match` value matches `etag` (`*`, the tag itself or its weak form, in a
/// comma-separated list).
pub fn none_match(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').any(|t| {
        let t = t.trim();
        t == "*" || t == etag || t.strip_prefix("W/") == Some(etag)
    })
}

/// Whether a `Range` header may be honoured given the request's `If-Range` value (absent, or
/// equal to the current ETag; another validator means: send the whole file).
pub fn if_range_allows(if_range: Option<&str>, etag: &str) -> bool {
    if_range.is_none_or(|v| v.trim() == etag)
}

/// Parse a single `bytes=` range against `len`: `Ok(None)` = whole file (no `bytes=` unit, or
/// several ranges), `Err(Unsatisfiable)` = 416. The end is clamped to the file.
pub fn parse_range(h: &str, len: u64) -> Result<Option<ByteRange>, Unsatisfiable> {
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // multiple ranges: serve the whole file
    }
    let (a, b) = spec.trim().split_once('-').ok_or(Unsatisfiable)?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| Unsatisfiable)?;
        if n == 0 || len == 0 {
            return Err(Unsatisfiable);
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let s: u64 = a.parse().map_err(|_| Unsatisfiable)?;
        let e: u64 = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            b.parse::<u64>()
                .map_err(|_| Unsatisfiable)?
                .min(len.saturating_sub(1))
        };
        (s, e)
    };
    if start >= len || start > end {
        return Err(Unsatisfiable);
    }
    Ok(Some(ByteRange { start, end }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> Result<Option<ByteRange>, Unsatisfiable> {
        Ok(Some(ByteRange { start, end }))
    }

    #[test]
    fn ranges_are_parsed_and_clamped() {
        assert_eq!(parse_range("bytes=0-9", 100), r(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), r(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), r(90, 99));
        assert_eq!(parse_range("bytes=50-500", 100), r(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), Err(Unsatisfiable));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
        assert_eq!(parse_range("bytes=9-3", 100), Err(Unsatisfiable));
        assert_eq!(parse_range("bytes=-0", 100), Err(Unsatisfiable));
        assert_eq!(parse_range("bytes=x-3", 100), Err(Unsatisfiable));
        assert_eq!(ByteRange { start: 100, end: 199 }.len(), 100);
    }

    #[test]
    fn validators_match_the_strong_tag_its_weak_form_and_star() {
        let tag = etag("ab12");
        assert_eq!(tag, "\"ab12\"");
        assert!(none_match("\"ab12\"", &tag));
        assert!(none_match("\"x\", W/\"ab12\"", &tag));
        assert!(none_match("*", &tag));
        assert!(!none_match("\"ab13\"", &tag));
        assert!(if_range_allows(None, &tag));
        assert!(if_range_allows(Some(" \"ab12\" "), &tag));
        assert!(!if_range_allows(Some("Tue, 15 Nov 1994 08:12:31 GMT"), &tag));
    }
}
