//! `[media]`: how the agent fetches the media of its schedule (issue 14). When a province-wide
//! change reaches every device at once, fetching its media at once sends the whole fleet to the
//! server in the same second; at 100,000 devices the server ran out of file descriptors. So media
//! for an item that starts later is fetched at a random instant within a window: at most
//! `prefetch_spread_secs`, and at most half the time left before the item is prepared. Media of an
//! emergency, a message with a validity window, a play-now command, or an item prepared within
//! 30 s is fetched at once.
//!
//! ```toml
//! [media]
//! prefetch_spread_secs = 300           # 0..3600; 0 fetches everything at once
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
}

/// The default of `media.prefetch_spread_secs`: 100,000 devices fetch about 333 files a second.
pub fn default_prefetch_spread_secs() -> u32 {
    300
}

impl Default for MediaSection {
    fn default() -> Self {
        Self {
            prefetch_spread_secs: default_prefetch_spread_secs(),
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
        Ok(())
    }
}
