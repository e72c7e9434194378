//! `[ota]`: signed agent updates (issue 16, docs/ota.md): the largest agent binary an operator
//! may upload, and how long a new agent version has to confirm itself on a device before the
//! device rolls back (the default of a rollout that names none).

use serde::Deserialize;

/// `[ota]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtaSettings {
    /// Largest agent binary accepted, MiB (`NGUON_OTA_MAX_BINARY_MB`, default 64, 1–1024).
    pub max_binary_mb: u64,
    /// Minutes a new version has to connect and confirm itself before the device goes back to
    /// the previous one, when a rollout names none (`NGUON_OTA_CONFIRM_MINUTES`, default 10,
    /// 1–1440).
    pub confirm_minutes: u64,
    /// For test installations only: when not 0, every rollout gives a new version this many
    /// seconds to confirm itself instead of its `confirm_minutes` (`NGUON_OTA_TEST_CONFIRM_S`,
    /// default 0 = off, else 5–59), so a system test can wait out a deadline in seconds.
    pub test_confirm_s: u32,
}

impl Default for OtaSettings {
    fn default() -> Self {
        OtaSettings {
            max_binary_mb: 64,
            confirm_minutes: 10,
            test_confirm_s: 0,
        }
    }
}

impl OtaSettings {
    /// Take the `NGUON_OTA_*` variables, then validate; an error names the key.
    pub fn check(&mut self, env: &[(String, String)]) -> Result<(), (String, String)> {
        for (k, v) in env {
            let num = |v: &str| v.parse::<u64>().map_err(|e| (k.clone(), format!("`{v}`: {e}")));
            match k.as_str() {
                "NGUON_OTA_MAX_BINARY_MB" => self.max_binary_mb = num(v)?,
                "NGUON_OTA_CONFIRM_MINUTES" => self.confirm_minutes = num(v)?,
                "NGUON_OTA_TEST_CONFIRM_S" => {
                    self.test_confirm_s = u32::try_from(num(v)?).unwrap_or(u32::MAX)
                }
                _ => {}
            }
        }
        if !(1..=1024).contains(&self.max_binary_mb) {
            return Err(("ota.max_binary_mb".into(), "must be between 1 and 1024".into()));
        }
        if !(1..=1440).contains(&self.confirm_minutes) {
            return Err(("ota.confirm_minutes".into(), "must be between 1 and 1440".into()));
        }
        if self.test_confirm_s != 0 && !(5..=59).contains(&self.test_confirm_s) {
            return Err((
                "ota.test_confirm_s".into(),
                "must be 0 (off) or between 5 and 59".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_and_bad_values_are_named() {
        let mut o = OtaSettings::default();
        let env = vec![("NGUON_OTA_CONFIRM_MINUTES".to_string(), "3".to_string())];
        assert_eq!(o.check(&env), Ok(()));
        assert_eq!(o.confirm_minutes, 3);
        let env = vec![("NGUON_OTA_MAX_BINARY_MB".to_string(), "0".to_string())];
        assert_eq!(o.check(&env).unwrap_err().0, "ota.max_binary_mb");
        let env = vec![("NGUON_OTA_CONFIRM_MINUTES".to_string(), "x".to_string())];
        assert_eq!(o.check(&env).unwrap_err().0, "NGUON_OTA_CONFIRM_MINUTES");
        let mut o = OtaSettings::default();
        let env = vec![("NGUON_OTA_TEST_CONFIRM_S".to_string(), "4".to_string())];
        assert_eq!(o.check(&env).unwrap_err().0, "ota.test_confirm_s");
        let env = vec![("NGUON_OTA_TEST_CONFIRM_S".to_string(), "15".to_string())];
        assert_eq!(o.check(&env), Ok(()));
        assert_eq!(o.test_confirm_s, 15);
    }
}
