//! `[alarms]` and `[smtp]` settings (issue 12 §6): when the alarm worker raises an alarm, how
//! notifications are retried, and the SMTP relay e-mail notifications go through. Read after the
//! TOML file by [`apply`] (the `NGUON_ALARMS_*` and `NGUON_SMTP_*` variables, the SMTP password
//! only from `NGUON_SMTP_PASSWORD`), then checked; every error names the key.

use serde::Deserialize;

use super::{ConfigError, Secret, Settings};

/// `[alarms]`: thresholds of the alarm worker (`workers::alarms`) and the webhook retries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlarmSettings {
    /// How often the conditions are evaluated, seconds (`NGUON_ALARMS_EVALUATE_EVERY_S`, default
    /// 30, 1 to 3600).
    pub evaluate_every_s: u64,
    /// A device not heard from for this long while offline raises `device_offline`, seconds
    /// (`NGUON_ALARMS_OFFLINE_AFTER_S`, default 600). An area may set its own
    /// (`PUT /api/v1/areas/{code}/alarm-settings`), inherited by its descendants.
    pub offline_after_s: u64,
    /// The agents' heartbeat interval, seconds (default 60, the agent's default).
    pub heartbeat_interval_s: u64,
    /// An online device whose last heartbeat is older than this many intervals raises
    /// `heartbeat_missed` (default 3).
    pub heartbeats_missed: u32,
    /// An emergency with fewer than this share of its targets reached ... (percent, default 95)
    pub delivery_threshold_pct: u32,
    /// ... this long after it was issued raises `delivery_below_threshold` (seconds, default 120).
    pub delivery_after_s: u64,
    /// A device whose free disk is under this share of its total raises `low_disk` (percent,
    /// default 10; agents too old to report their total are not judged).
    pub low_disk_pct: u32,
    /// Proofs of play younger than this are read for `playback_failed` and `silence` (hours,
    /// default 24).
    pub play_lookback_h: u64,
    /// Attempts of one webhook notification before it is given up (default 6, 1 to 20).
    pub webhook_attempts: u32,
    /// Wait before the second attempt, doubled before each later one, milliseconds (default 2000).
    pub webhook_backoff_ms: u64,
    /// Time allowed to one webhook or SMTP attempt, milliseconds (default 10000).
    pub notify_timeout_ms: u64,
}

impl Default for AlarmSettings {
    fn default() -> Self {
        AlarmSettings {
            evaluate_every_s: 30,
            offline_after_s: 600,
            heartbeat_interval_s: 60,
            heartbeats_missed: 3,
            delivery_threshold_pct: 95,
            delivery_after_s: 120,
            low_disk_pct: 10,
            play_lookback_h: 24,
            webhook_attempts: 6,
            webhook_backoff_ms: 2_000,
            notify_timeout_ms: 10_000,
        }
    }
}

/// `[smtp]`: the relay e-mail notifications go through (off when absent).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSettings {
    /// Host name (`NGUON_SMTP_HOST`).
    pub host: String,
    /// Port (`NGUON_SMTP_PORT`, default 25).
    pub port: u16,
    /// Sender address, `Name <addr@example.vn>` or `addr@example.vn` (`NGUON_SMTP_FROM`).
    pub from: String,
    /// User to authenticate as (`NGUON_SMTP_USER`); its password comes from
    /// `NGUON_SMTP_PASSWORD` only.
    pub user: Option<String>,
    /// Upgrade the connection with STARTTLS, required (`NGUON_SMTP_STARTTLS`, default false).
    pub starttls: bool,
    /// The password (from `NGUON_SMTP_PASSWORD`).
    #[serde(skip)]
    pub password: Option<Secret>,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            host: String::new(),
            port: 25,
            from: String::new(),
            user: None,
            starttls: false,
            password: None,
        }
    }
}

/// The `NGUON_ALARMS_*` and `NGUON_SMTP_*` variables of `env` onto `s`, then the checks of both
/// sections. `source` names the file (or `settings`) for errors found by the checks.
pub fn apply(s: &mut Settings, env: &[(String, String)], source: &str) -> Result<(), ConfigError> {
    for (k, v) in env {
        let bad = |m: String| ConfigError {
            key: k.clone(),
            source_name: "environment".into(),
            message: m,
        };
        let num = |v: &str| v.parse::<u64>().map_err(|e| bad(format!("`{v}`: {e}")));
        let a = &mut s.alarms;
        match k.as_str() {
            "NGUON_ALARMS_EVALUATE_EVERY_S" => a.evaluate_every_s = num(v)?,
            "NGUON_ALARMS_OFFLINE_AFTER_S" => a.offline_after_s = num(v)?,
            "NGUON_ALARMS_HEARTBEAT_INTERVAL_S" => a.heartbeat_interval_s = num(v)?,
            "NGUON_ALARMS_DELIVERY_AFTER_S" => a.delivery_after_s = num(v)?,
            "NGUON_ALARMS_WEBHOOK_BACKOFF_MS" => a.webhook_backoff_ms = num(v)?,
            "NGUON_SMTP_HOST"
            | "NGUON_SMTP_PORT"
            | "NGUON_SMTP_FROM"
            | "NGUON_SMTP_USER"
            | "NGUON_SMTP_STARTTLS"
            | "NGUON_SMTP_PASSWORD" => {
                let m = s.smtp.get_or_insert_with(SmtpSettings::default);
                match k.as_str() {
                    "NGUON_SMTP_HOST" => m.host = v.clone(),
                    "NGUON_SMTP_PORT" => m.port = v.parse().map_err(|e| bad(format!("`{v}`: {e}")))?,
                    "NGUON_SMTP_FROM" => m.from = v.clone(),
                    "NGUON_SMTP_USER" => m.user = Some(v.clone()).filter(|u| !u.is_empty()),
                    "NGUON_SMTP_STARTTLS" => {
                        m.starttls = match v.as_str() {
                            "1" | "true" | "yes" => true,
                            "0" | "false" | "no" | "" => false,
                            _ => return Err(bad(format!("`{v}`: expected true or false"))),
                        }
                    }
                    _ => m.password = Some(Secret::new(v.clone())).filter(|p| !p.expose().is_empty()),
                }
            }
            _ => {}
        }
    }
    check(s).map_err(|(key, message)| ConfigError {
        key,
        source_name: source.to_string(),
        message,
    })
}

fn check(s: &Settings) -> Result<(), (String, String)> {
    let a = &s.alarms;
    let range = |key: &str, v: u64, lo: u64, hi: u64| {
        if (lo..=hi).contains(&v) {
            Ok(())
        } else {
            Err((format!("alarms.{key}"), format!("must be between {lo} and {hi}")))
        }
    };
    range("evaluate_every_s", a.evaluate_every_s, 1, 3_600)?;
    range("offline_after_s", a.offline_after_s, 1, 30 * 86_400)?;
    range("heartbeat_interval_s", a.heartbeat_interval_s, 1, 3_600)?;
    range("heartbeats_missed", a.heartbeats_missed.into(), 1, 100)?;
    range("delivery_threshold_pct", a.delivery_threshold_pct.into(), 1, 100)?;
    range("delivery_after_s", a.delivery_after_s, 1, 86_400)?;
    range("low_disk_pct", a.low_disk_pct.into(), 0, 99)?;
    range("play_lookback_h", a.play_lookback_h, 1, 24 * 31)?;
    range("webhook_attempts", a.webhook_attempts.into(), 1, 20)?;
    range("webhook_backoff_ms", a.webhook_backoff_ms, 10, 3_600_000)?;
    range("notify_timeout_ms", a.notify_timeout_ms, 100, 300_000)?;
    let Some(m) = &s.smtp else {
        return Ok(());
    };
    if m.host.trim().is_empty() {
        return Err(("smtp.host".into(), "is required when [smtp] is set".into()));
    }
    if m.port == 0 {
        return Err(("smtp.port".into(), "must be between 1 and 65535".into()));
    }
    if m.from.parse::<lettre::message::Mailbox>().is_err() {
        return Err((
            "smtp.from".into(),
            format!(
                "`{}` is not an e-mail address (`Name <addr@host>` or `addr@host`)",
                m.from
            ),
        ));
    }
    if m.user.is_some() && m.password.is_none() {
        return Err((
            "NGUON_SMTP_PASSWORD".into(),
            "is required when smtp.user is set (the password is read from the environment only)".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Settings;

    fn load(env: &[(&str, &str)]) -> Result<Settings, super::ConfigError> {
        Settings::load(None, env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn alarm_and_smtp_settings_are_checked_by_name() {
        assert_eq!(
            load(&[("NGUON_ALARMS_OFFLINE_AFTER_S", "0")]).unwrap_err().key,
            "alarms.offline_after_s"
        );
        assert_eq!(
            load(&[("NGUON_ALARMS_OFFLINE_AFTER_S", "x")]).unwrap_err().key,
            "NGUON_ALARMS_OFFLINE_AFTER_S"
        );
        assert_eq!(load(&[("NGUON_SMTP_HOST", "mail")]).unwrap_err().key, "smtp.from");
        let user = [
            ("NGUON_SMTP_HOST", "mail"),
            ("NGUON_SMTP_FROM", "a@b.vn"),
            ("NGUON_SMTP_USER", "u"),
        ];
        assert_eq!(load(&user).unwrap_err().key, "NGUON_SMTP_PASSWORD");
        let mut ok = user.to_vec();
        ok.push(("NGUON_SMTP_PASSWORD", "p"));
        let s = load(&ok).unwrap();
        let m = s.smtp.unwrap();
        assert_eq!(
            (m.host.as_str(), m.port, m.user.as_deref()),
            ("mail", 25, Some("u"))
        );
        assert!(format!("{:?}", m.password).contains("***"));
        assert!(load(&[]).unwrap().smtp.is_none());
    }
}
