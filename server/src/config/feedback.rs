//! `[feedback]`: citizens' feedback (issue 15, docs/feedback.md): the answer deadline (global
//! and per area), the spam protection of the public form (per-address budget, proof-of-work
//! difficulty and lifetime), the photo size limit, and how long personal data is kept.

use std::collections::HashMap;

use serde::Deserialize;

/// `[feedback]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedbackSettings {
    /// Hours to answer a feedback before `feedback_overdue` is raised
    /// (`NGUON_FEEDBACK_SLA_HOURS`, default 72, 1–8760).
    pub sla_hours: u64,
    /// Areas with their own deadline, hours (`[feedback.area_sla_hours]`, `"08003" = 24`),
    /// inherited by their descendants.
    pub area_sla_hours: HashMap<String, u64>,
    /// Feedback accepted from one address a minute, also the burst
    /// (`NGUON_FEEDBACK_PER_IP_PER_MINUTE`, default 2, 1–1000).
    pub per_ip_per_minute: u32,
    /// Leading zero bits the form's proof of work needs (`NGUON_FEEDBACK_POW_BITS`, default 16,
    /// 1–28; each bit doubles the work).
    pub pow_bits: u8,
    /// Seconds a challenge stays valid (`NGUON_FEEDBACK_POW_TTL_S`, default 1800, 60–86400).
    pub pow_ttl_s: u64,
    /// Largest photo accepted, KiB (`NGUON_FEEDBACK_PHOTO_MAX_KB`, default 5120, 16–51200).
    pub photo_max_kb: u64,
    /// Days the name, contact and photos of a feedback are kept after it was received; then the
    /// retention worker clears them (`NGUON_FEEDBACK_RETENTION_DAYS`, default 365, 1–3650).
    pub retention_days: u64,
}

impl Default for FeedbackSettings {
    fn default() -> Self {
        FeedbackSettings {
            sla_hours: 72,
            area_sla_hours: HashMap::new(),
            per_ip_per_minute: 2,
            pow_bits: 16,
            pow_ttl_s: 1800,
            photo_max_kb: 5120,
            retention_days: 365,
        }
    }
}

impl FeedbackSettings {
    /// Take the `NGUON_FEEDBACK_*` variables, then validate; an error names the key.
    pub fn check(&mut self, env: &[(String, String)]) -> Result<(), (String, String)> {
        for (k, v) in env {
            let bad = |m: String| (k.clone(), m);
            let num = |v: &str| v.parse::<u64>().map_err(|e| bad(format!("`{v}`: {e}")));
            match k.as_str() {
                "NGUON_FEEDBACK_SLA_HOURS" => self.sla_hours = num(v)?,
                "NGUON_FEEDBACK_PER_IP_PER_MINUTE" => {
                    self.per_ip_per_minute = u32::try_from(num(v)?).unwrap_or(u32::MAX)
                }
                "NGUON_FEEDBACK_POW_BITS" => self.pow_bits = u8::try_from(num(v)?).unwrap_or(u8::MAX),
                "NGUON_FEEDBACK_POW_TTL_S" => self.pow_ttl_s = num(v)?,
                "NGUON_FEEDBACK_PHOTO_MAX_KB" => self.photo_max_kb = num(v)?,
                "NGUON_FEEDBACK_RETENTION_DAYS" => self.retention_days = num(v)?,
                _ => {}
            }
        }
        let range = |key: &str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err((
                    format!("feedback.{key}"),
                    format!("must be between {lo} and {hi}"),
                ))
            }
        };
        range("sla_hours", self.sla_hours, 1, 8760)?;
        range("per_ip_per_minute", self.per_ip_per_minute.into(), 1, 1000)?;
        range("pow_bits", self.pow_bits.into(), 1, 28)?;
        range("pow_ttl_s", self.pow_ttl_s, 60, 86_400)?;
        range("photo_max_kb", self.photo_max_kb, 16, 51_200)?;
        range("retention_days", self.retention_days, 1, 3650)?;
        for (area, h) in &self.area_sla_hours {
            range(&format!("area_sla_hours.{area}"), *h, 1, 8760)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::FeedbackSettings;

    #[test]
    fn a_bad_value_is_named() {
        let mut f = FeedbackSettings::default();
        let env = vec![("NGUON_FEEDBACK_POW_BITS".to_string(), "40".to_string())];
        assert_eq!(f.check(&env).unwrap_err().0, "feedback.pow_bits");
        let mut f = FeedbackSettings::default();
        f.area_sla_hours.insert("x".into(), 0);
        assert_eq!(f.check(&[]).unwrap_err().0, "feedback.area_sla_hours.x");
    }
}
