//! `[cap]`: CAP 1.2 intake (issue 12 §4, docs/cap.md): the senders whose alerts are issued at
//! once, the Atom/RSS feeds of CAP items polled, how often, and the delivery share at which
//! nguon answers a received alert with a `msgType=Ack`.

use serde::Deserialize;

/// `[cap]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CapSettings {
    /// Senders (`<sender>`, exact) whose alerts are issued without approval
    /// (`NGUON_CAP_TRUSTED_SENDERS`, comma-separated; default none: every alert waits for an
    /// approver).
    pub trusted_senders: Vec<String>,
    /// Atom or RSS feeds of CAP items to poll (`NGUON_CAP_FEEDS`, comma-separated http(s) URLs).
    pub feeds: Vec<String>,
    /// Seconds between two polls of each feed (`NGUON_CAP_POLL_INTERVAL_S`, default 60, 1–86400).
    pub poll_interval_s: u64,
    /// Share of an alert's targets, in percent, that must have played it before the Ack is
    /// written (`NGUON_CAP_ACK_THRESHOLD_PCT`, default 95, 1–100).
    pub ack_threshold_pct: u8,
}

impl Default for CapSettings {
    fn default() -> Self {
        CapSettings {
            trusted_senders: Vec::new(),
            feeds: Vec::new(),
            poll_interval_s: 60,
            ack_threshold_pct: 95,
        }
    }
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

impl CapSettings {
    /// Take the `NGUON_CAP_*` variables, then validate; an error names the key.
    pub fn check(&mut self, env: &[(String, String)]) -> Result<(), (String, String)> {
        for (k, v) in env {
            let bad = |m: String| (k.clone(), m);
            match k.as_str() {
                "NGUON_CAP_TRUSTED_SENDERS" => self.trusted_senders = list(v),
                "NGUON_CAP_FEEDS" => self.feeds = list(v),
                "NGUON_CAP_POLL_INTERVAL_S" => {
                    self.poll_interval_s = v.parse().map_err(|e| bad(format!("`{v}`: {e}")))?
                }
                "NGUON_CAP_ACK_THRESHOLD_PCT" => {
                    self.ack_threshold_pct = v.parse().map_err(|e| bad(format!("`{v}`: {e}")))?
                }
                _ => {}
            }
        }
        if !(1..=86_400).contains(&self.poll_interval_s) {
            return Err(("cap.poll_interval_s".into(), "must be 1–86400 seconds".into()));
        }
        if !(1..=100).contains(&self.ack_threshold_pct) {
            return Err(("cap.ack_threshold_pct".into(), "must be 1–100 percent".into()));
        }
        for (i, f) in self.feeds.iter().enumerate() {
            if !(f.starts_with("http://") || f.starts_with("https://")) || f.contains(char::is_whitespace) {
                return Err((format!("cap.feeds[{i}]"), format!("`{f}` is not an http(s) URL")));
            }
        }
        for (i, s) in self.trusted_senders.iter().enumerate() {
            if s.contains(char::is_whitespace) {
                return Err((format!("cap.trusted_senders[{i}]"), format!("`{s}` has spaces")));
            }
        }
        Ok(())
    }

    /// Whether alerts of `sender` are issued without approval.
    pub fn trusts(&self, sender: &str) -> bool {
        self.trusted_senders.iter().any(|s| s == sender)
    }
}

#[cfg(test)]
mod tests {
    use super::CapSettings;

    #[test]
    fn env_lists_and_bounds() {
        let mut c = CapSettings::default();
        let env = vec![
            (
                "NGUON_CAP_TRUSTED_SENDERS".to_string(),
                " a@x.vn, b@y.vn ,".to_string(),
            ),
            (
                "NGUON_CAP_FEEDS".to_string(),
                "http://127.0.0.1:9/feed".to_string(),
            ),
        ];
        c.check(&env).unwrap();
        assert_eq!(c.trusted_senders, vec!["a@x.vn", "b@y.vn"]);
        assert!(c.trusts("a@x.vn") && !c.trusts("c@z.vn"));
        let bad = vec![("NGUON_CAP_ACK_THRESHOLD_PCT".to_string(), "0".to_string())];
        assert_eq!(c.clone().check(&bad).unwrap_err().0, "cap.ack_threshold_pct");
        let bad = vec![("NGUON_CAP_FEEDS".to_string(), "ftp://x".to_string())];
        assert_eq!(c.check(&bad).unwrap_err().0, "cap.feeds[0]");
    }
}
