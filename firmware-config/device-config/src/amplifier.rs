//! `[amplifier]`: the relay that powers the loudspeaker amplifier (issue 12 §5). The agent switches
//! it on `preroll_ms` before the first sample of an item and off `postroll_ms` after the last,
//! through a GPIO line of the Linux character device or a command hook.
//!
//! ```toml
//! [amplifier]
//! gpio = { chip = "/dev/gpiochip0", line = 17, active_low = false }
//! # or: hook = ["/usr/local/bin/amp-relay", "--board", "2"]   # run with `on` / `off` appended
//! preroll_ms = 1500
//! postroll_ms = 2000
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Longest pre-roll accepted (ms).
pub const MAX_PREROLL_MS: u32 = 10_000;
/// Longest post-roll accepted (ms).
pub const MAX_POSTROLL_MS: u32 = 600_000;

/// `[amplifier]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmplifierSection {
    /// The relay on a GPIO line (Linux GPIO character device).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpio: Option<GpioLine>,
    /// The relay through a command: program and arguments; `on` or `off` is appended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<Vec<String>>,
    /// How long before the first sample the relay switches on (0–10000 ms).
    #[serde(default = "default_preroll")]
    pub preroll_ms: u32,
    /// How long after the last sample it switches off (0–600000 ms); items closer together than
    /// this keep it on in between.
    #[serde(default = "default_postroll")]
    pub postroll_ms: u32,
}

/// A GPIO output line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpioLine {
    /// The GPIO chip's character device, e.g. `/dev/gpiochip0`.
    pub chip: PathBuf,
    /// The line offset on that chip.
    pub line: u32,
    /// The relay is on when the line is low.
    #[serde(default)]
    pub active_low: bool,
}

fn default_preroll() -> u32 {
    1500
}

fn default_postroll() -> u32 {
    2000
}

impl AmplifierSection {
    /// Checks beyond types; the dotted key and the problem.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        match (&self.gpio, &self.hook) {
            (None, None) => {
                return Err(("amplifier", "set `gpio` or `hook`".into()));
            }
            (Some(_), Some(_)) => {
                return Err(("amplifier.hook", "set only one of `gpio` and `hook`".into()));
            }
            (Some(g), None) => {
                if !g.chip.is_absolute() {
                    return Err((
                        "amplifier.gpio.chip",
                        format!(
                            "`{}` is not an absolute path to a GPIO chip (e.g. /dev/gpiochip0)",
                            g.chip.display()
                        ),
                    ));
                }
            }
            (None, Some(h)) => {
                if h.first().is_none_or(|p| p.trim().is_empty()) {
                    return Err((
                        "amplifier.hook",
                        "needs a program: [\"/path/to/cmd\", \"args…\"]".into(),
                    ));
                }
            }
        }
        if self.preroll_ms > MAX_PREROLL_MS {
            return Err((
                "amplifier.preroll_ms",
                format!("{} is above {MAX_PREROLL_MS}", self.preroll_ms),
            ));
        }
        if self.postroll_ms > MAX_POSTROLL_MS {
            return Err((
                "amplifier.postroll_ms",
                format!("{} is above {MAX_POSTROLL_MS}", self.postroll_ms),
            ));
        }
        Ok(())
    }
}
