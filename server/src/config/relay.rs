//! `[relay]`: relays (tiếp sóng, issue 17, docs/relay.md): whether loudspeakers fetch an external
//! stream through the server (`proxy`, one upstream connection per relay for the whole province)
//! or each from the station (`direct`), and how long the save-time check of a relay URL waits.

use serde::Deserialize;

/// How devices reach a relay's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RelayMode {
    /// Through the server: `{public_url}/relay/{schedule_id}`, one upstream connection fanned
    /// out to every listener.
    #[default]
    Proxy,
    /// Each device fetches the stream's own URL.
    Direct,
}

/// `[relay]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelaySettings {
    /// `proxy` (default) or `direct` (`NGUON_RELAY_MODE`).
    pub mode: RelayMode,
    /// Seconds the save-time check waits for the stream's headers and first bytes
    /// (`NGUON_RELAY_CHECK_TIMEOUT_S`, default 5, 1–60); an unreachable stream is accepted with a
    /// warning.
    pub check_timeout_s: u64,
    /// Seconds the proxy keeps an upstream connection after its last listener left
    /// (`NGUON_RELAY_LINGER_S`, default 5, 0–300), so devices reconnecting find it open.
    pub linger_s: u64,
}

impl Default for RelaySettings {
    fn default() -> Self {
        RelaySettings {
            mode: RelayMode::Proxy,
            check_timeout_s: 5,
            linger_s: 5,
        }
    }
}

impl RelaySettings {
    /// Take the `NGUON_RELAY_*` variables, then validate; an error names the key.
    pub fn check(&mut self, env: &[(String, String)]) -> Result<(), (String, String)> {
        for (k, v) in env {
            let bad = |m: String| (k.clone(), m);
            let num = |v: &str| v.parse::<u64>().map_err(|e| bad(format!("`{v}`: {e}")));
            match k.as_str() {
                "NGUON_RELAY_MODE" => {
                    self.mode = match v.as_str() {
                        "proxy" => RelayMode::Proxy,
                        "direct" => RelayMode::Direct,
                        other => return Err(bad(format!("`{other}` is not `proxy` or `direct`"))),
                    }
                }
                "NGUON_RELAY_CHECK_TIMEOUT_S" => self.check_timeout_s = num(v)?,
                "NGUON_RELAY_LINGER_S" => self.linger_s = num(v)?,
                _ => {}
            }
        }
        if !(1..=60).contains(&self.check_timeout_s) {
            return Err(("relay.check_timeout_s".into(), "must be between 1 and 60".into()));
        }
        if self.linger_s > 300 {
            return Err(("relay.linger_s".into(), "must be between 0 and 300".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_and_bad_values_are_named() {
        let mut r = RelaySettings::default();
        assert_eq!(r.mode, RelayMode::Proxy);
        let env = vec![("NGUON_RELAY_MODE".to_string(), "direct".to_string())];
        r.check(&env).unwrap();
        assert_eq!(r.mode, RelayMode::Direct);
        let env = vec![("NGUON_RELAY_MODE".to_string(), "both".to_string())];
        assert_eq!(r.check(&env).unwrap_err().0, "NGUON_RELAY_MODE");
        let mut r = RelaySettings {
            check_timeout_s: 0,
            ..RelaySettings::default()
        };
        assert_eq!(r.check(&[]).unwrap_err().0, "relay.check_timeout_s");
    }
}
