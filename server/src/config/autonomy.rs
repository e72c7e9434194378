//! `[autonomy]`: commune autonomy (Circular 39, issue 16, docs/autonomy.md): how long before its
//! first occurrence a commune must answer whether it accepts normal province content.

use serde::Deserialize;

/// `[autonomy]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutonomySettings {
    /// Seconds before an item's first occurrence past which an unanswered acceptance question is
    /// closed and the commune's `unanswered` policy applies (`NGUON_AUTONOMY_ANSWER_LEAD_S`,
    /// default 300, 5–86400): early enough for the devices to receive the item before it starts.
    pub answer_lead_s: u64,
}

impl Default for AutonomySettings {
    fn default() -> Self {
        AutonomySettings { answer_lead_s: 300 }
    }
}

impl AutonomySettings {
    /// Take the `NGUON_AUTONOMY_*` variables, then validate; an error names the key.
    pub fn check(&mut self, env: &[(String, String)]) -> Result<(), (String, String)> {
        for (k, v) in env {
            if k == "NGUON_AUTONOMY_ANSWER_LEAD_S" {
                self.answer_lead_s = v.parse().map_err(|e| (k.clone(), format!("`{v}`: {e}")))?;
            }
        }
        if !(5..=86_400).contains(&self.answer_lead_s) {
            return Err((
                "autonomy.answer_lead_s".into(),
                "must be between 5 and 86400".into(),
            ));
        }
        Ok(())
    }
}
