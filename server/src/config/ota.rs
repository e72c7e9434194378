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
}

impl Default for OtaSettings {
    fn default() -> Self {
        OtaSettings {
            max_binary_mb: 64,
            confirm_minutes: 10,
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
                _ => {}
            }
        }
        if !(1..=1024).contains(&self.max_binary_mb) {
            return Err(("ota.max_binary_mb".into(), "must be between 1 and 1024".into()));
        }
        if !(1..=1440).contains(&self.confirm_minutes) {
            return Err(("ota.confirm_minutes".into(), "must be between 1 and 1440".into()));
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
    }
}
