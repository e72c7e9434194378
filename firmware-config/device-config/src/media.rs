//! `[media]`: how the agent fetches the media of its schedule (issue 14). When a province-wide
//! change reaches every device at once, fetching its media at once sends the whole fleet to the
//! server in the same second; at 100,000 devices the server ran out of file descriptors. So media
//! for an item that starts later is fetched at a random instant within a window: at most
//! `prefetch_spread_secs`, and at most half the time left before the item is prepared. Media of an
//! emergency, a message with a validity window, a play-now command, or an item prepared within
//! 30 s is fetched at once.
//!
//!
//! `mirrors`: other places that serve the same content-addressed files (`<mirror>/media/<sha256>`:
//! a provincial cache, a caching reverse proxy, a CDN), so that an emergency heard by every device
//! at once is not 10,000 or 100,000 fetches from the one server. A device starts at the mirror
//! its id picks (the fleet is spread over them), fails over to the next on any error, and asks
//! the server (`server.base_url`) last. Mirrors are not trusted: every file is checked against
//! its sha256 before it is kept, whoever served it.
//!
//! ```toml
//! [media]
//! prefetch_spread_secs = 300           # 0..3600; 0 fetches everything at once
//! mirrors = ["https://cache-1.example.vn", "https://cache-2.example.vn"]   # optional, ≤ 16
//! ```

use serde::{Deserialize, Serialize};

/// The longest spread accepted (s).
pub const MAX_PREFETCH_SPREAD_SECS: u32 = 3600;

/// `[media]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSection {
    /// The longest window (0–3600 s) over which media for a later item is fetched at a random
    /// instant; the window is also at most half the time left before the item is prepared. 0:
    /// everything at once (a single device, a test).
    #[serde(default = "default_prefetch_spread_secs")]
    pub prefetch_spread_secs: u32,
    /// Base URLs (http:// or https://, at most [`MAX_MIRRORS`], each once) that serve
    /// `/media/<sha256>` like the server; tried before `server.base_url`, starting at the one the
    /// device id picks ([`MediaSection::media_bases`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<String>,
}

/// The most mirrors accepted.
pub const MAX_MIRRORS: usize = 16;

/// The default of `media.prefetch_spread_secs`: 100,000 devices fetch about 333 files a second.
pub fn default_prefetch_spread_secs() -> u32 {
    300
}

impl Default for MediaSection {
    fn default() -> Self {
        Self {
            prefetch_spread_secs: default_prefetch_spread_secs(),
            mirrors: Vec::new(),
        }
    }
}

impl MediaSection {
    /// Whether every key has its default (the section is then not written).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The dotted key and the problem.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.prefetch_spread_secs > MAX_PREFETCH_SPREAD_SECS {
            return Err((
                "media.prefetch_spread_secs",
                format!(
                    "{} is above {MAX_PREFETCH_SPREAD_SECS} (seconds)",
                    self.prefetch_spread_secs
                ),
            ));
        }
        if self.mirrors.len() > MAX_MIRRORS {
            return Err((
                "media.mirrors",
                format!("{} mirrors; at most {MAX_MIRRORS}", self.mirrors.len()),
            ));
        }
        for (i, m) in self.mirrors.iter().enumerate() {
            let host = m.strip_prefix("http://").or_else(|| m.strip_prefix("https://"));
            if host.is_none_or(|h| h.trim_matches('/').is_empty()) || m.contains(char::is_whitespace) {
                return Err((
                    "media.mirrors",
                    format!("`{m}` is not an http:// or https:// URL"),
                ));
            }
            if self.mirrors[..i].iter().any(|o| same_base(o, m)) {
                return Err(("media.mirrors", format!("`{m}` is listed twice")));
            }
        }
        Ok(())
    }

    /// The base URLs a device tries for a file, in order: the mirrors starting at the one `device`
    /// picks (a stable hash of its id, so a fleet spreads over them), then `server` (the origin)
    /// unless a mirror is the server itself. Without mirrors: the server alone.
    pub fn media_bases(&self, device: &str, server: &str) -> Vec<String> {
        // FNV-1a of the id: stable across builds and platforms (a device keeps its mirror).
        let by = device.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let n = self.mirrors.len().max(1) as u64;
        let mut v = crate::broker::rotated(&self.mirrors, (by % n) as usize);
        if !v.iter().any(|m| same_base(m, server)) {
            v.push(server.to_string());
        }
        v
    }
}

/// Two base URLs that differ only by a trailing slash.
fn same_base(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(mirrors: &[&str]) -> MediaSection {
        MediaSection {
            mirrors: mirrors.iter().map(|m| m.to_string()).collect(),
            ..MediaSection::default()
        }
    }

    #[test]
    fn a_fleet_spreads_over_the_mirrors_and_asks_the_server_last() {
        let m = with(&["http://a", "http://b", "http://c"]);
        let mut first = std::collections::HashMap::new();
        for i in 0..300 {
            let bases = m.media_bases(&format!("lc-{i}"), "http://origin/");
            assert_eq!(bases.len(), 4);
            assert_eq!(bases[3], "http://origin/");
            // A rotation of the mirrors: each once, in their order.
            let k = m.mirrors.iter().position(|x| *x == bases[0]).unwrap();
            assert_eq!(bases[..3], crate::broker::rotated(&m.mirrors, k)[..]);
            *first.entry(bases[0].clone()).or_insert(0) += 1;
            // Stable for a device.
            assert_eq!(bases, m.media_bases(&format!("lc-{i}"), "http://origin/"));
        }
        assert!(first.values().all(|n| *n > 50), "{first:?}");
        // No mirrors: the server; the server listed as a mirror: not asked twice.
        assert_eq!(with(&[]).media_bases("lc-1", "http://o"), ["http://o"]);
        assert_eq!(with(&["http://o/"]).media_bases("lc-1", "http://o").len(), 1);
    }

    #[test]
    fn mirrors_are_http_urls_listed_once_and_at_most_16() {
        assert!(with(&["http://a", "https://b:8443/cdn"]).validate().is_ok());
        for bad in [
            &["ftp://a"][..],
            &["http://"],
            &["http://a b"],
            &["http://a", "http://a/"],
        ] {
            assert_eq!(with(bad).validate().unwrap_err().0, "media.mirrors", "{bad:?}");
        }
        let many: Vec<String> = (0..17).map(|i| format!("http://m{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(with(&refs).validate().unwrap_err().0, "media.mirrors");
    }
}
