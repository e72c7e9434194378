//! The agent's version, as it reports it (telemetry, update reports): read at run time from a
//! fixed slot in the binary's data, [`VERSION_SLOT`]: the marker [`MARKER`] then the version,
//! NUL-padded. The build writes `CARGO_PKG_VERSION` there; a release pipeline (and the OTA system
//! test) may stamp another version into a built binary by rewriting the bytes after the marker
//! (`nguon_tests::ota::stamp_version`), which gives a second build that differs only in the
//! version it reports, without compiling again. The slot is read with a volatile read, so the
//! compiler cannot fold the build's version into the code.

/// Marks the start of the slot in the binary (found once in it).
pub const MARKER: &[u8; 24] = b"NGUON-AGENT-VERSION-SLOT";
/// Room for the version after the marker.
pub const VERSION_ROOM: usize = 64;
const SLOT_LEN: usize = MARKER.len() + VERSION_ROOM;

const fn slot() -> [u8; SLOT_LEN] {
    let mut s = [0u8; SLOT_LEN];
    let mut i = 0;
    while i < MARKER.len() {
        s[i] = MARKER[i];
        i += 1;
    }
    let v = env!("CARGO_PKG_VERSION").as_bytes();
    let mut j = 0;
    while j < v.len() && j < VERSION_ROOM {
        s[MARKER.len() + j] = v[j];
        j += 1;
    }
    s
}

/// The slot.
#[used]
static VERSION_SLOT: [u8; SLOT_LEN] = slot();

/// The version this binary reports: the slot's, or `CARGO_PKG_VERSION` when the slot does not
/// hold a valid version.
pub fn version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        // SAFETY: a plain read of a static of plain bytes; volatile so it is not folded.
        let slot: [u8; SLOT_LEN] = unsafe { std::ptr::read_volatile(&raw const VERSION_SLOT) };
        let v = &slot[MARKER.len()..];
        let end = v.iter().position(|b| *b == 0).unwrap_or(v.len());
        match std::str::from_utf8(&v[..end]) {
            Ok(s) if nguon_protocol::ota::valid_version(s) => s.to_string(),
            _ => env!("CARGO_PKG_VERSION").to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unstamped_build_reports_its_package_version() {
        assert_eq!(super::version(), env!("CARGO_PKG_VERSION"));
    }
}
