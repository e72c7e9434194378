//! The console's schedule form (issue 13) read into schedule requests: weekday checkboxes (T2…CN)
//! and one or more times of day (or one date and time, or a cron pattern under "nâng cao"),
//! validity dates, several communes or villages, a time zone chosen from a list. A weekly form
//! becomes one cron rule per minute of the hour used (`30 6 * * 1-5`; 06:30 and 17:30 share
//! `30 6,17 * * 1-5`, 06:30 and 17:00 need two rules), so every time given plays and no other.
//! Pure: no I/O; the page handlers are in `schedules`.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};

use crate::domain::relay::RelayStream;
use crate::domain::schedule::{NewSchedule, RuleSpec, Targets, local_to_utc};
use crate::error::{Error, Result};
use crate::http::form::Fields;

/// The weekdays in the order shown (Monday first), as cron numbers (Sunday = 0).
pub const WEEK: [u8; 7] = [1, 2, 3, 4, 5, 6, 0];

/// Times of day offered as one-click chips beside the time field (the usual morning, noon and
/// evening slots of commune loudspeakers).
pub const USUAL_TIMES: [&str; 5] = ["06:00", "06:30", "11:00", "17:00", "17:30"];

/// What the form holds, as typed (shown again when it is refused or previewed).
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// Title.
    pub title: String,
    /// The clip (sha256).
    pub media: String,
    /// Chosen areas.
    pub areas: Vec<String>,
    /// `normal`, `priority`, `emergency`.
    pub priority: String,
    /// "Phát ngay" of an emergency: a repetition preset (`domain::repetition::PRESETS`) or empty
    /// (once).
    pub repetition: String,
    /// `weekly`, `once` or `cron`.
    pub mode: String,
    /// Ticked weekdays (cron numbers).
    pub days: Vec<u8>,
    /// Times of day (`HH:MM`), empty ones dropped.
    pub times: Vec<String>,
    /// The one-off date and time (`datetime-local`).
    pub at: String,
    /// The advanced cron pattern.
    pub cron: String,
    /// Time zone name.
    pub time_zone: String,
    /// First day (`YYYY-MM-DD`) or empty.
    pub valid_from: String,
    /// Last day (`YYYY-MM-DD`) or empty.
    pub valid_until: String,
    /// A relay's stream URL (tiếp sóng, issue 17); empty for a clip. The clip is then the
    /// relay's fallback.
    pub relay_url: String,
    /// A relay's length in minutes (default 30).
    pub relay_minutes: String,
}

impl Input {
    /// Read the posted (or previewed) form; `default_tz` when it names no zone.
    pub fn read(f: &Fields, default_tz: &str) -> Input {
        Input {
            title: f.one("title"),
            media: f.one("media"),
            repetition: f.one("repetition"),
            areas: f.all("area").into_iter().filter(|a| !a.is_empty()).collect(),
            priority: f.opt("priority").unwrap_or_else(|| "normal".into()),
            // `kind` is the field's name in the form before issue 13 (once | cron).
            mode: f
                .opt("mode")
                .or_else(|| f.opt("kind"))
                .unwrap_or_else(|| "weekly".into()),
            days: f
                .all("dow")
                .iter()
                .filter_map(|d| d.parse().ok())
                .filter(|d| *d < 7)
                .collect(),
            times: f
                .all("time")
                .into_iter()
                .filter(|t| !t.trim().is_empty())
                .collect(),
            at: f.one("at"),
            cron: f.one("cron"),
            time_zone: f.opt("time_zone").unwrap_or_else(|| default_tz.to_string()),
            valid_from: f.one("valid_from"),
            valid_until: f.one("valid_until"),
            relay_url: f.one("relay_url"),
            relay_minutes: f.one("relay_minutes"),
        }
    }

    /// The form's values for the template.
    pub fn to_json(&self) -> Value {
        json!({"title": self.title, "media": self.media, "areas": self.areas, "priority": self.priority, "repetition": self.repetition,
               "mode": self.mode, "days": self.days, "times": self.times, "at": self.at, "cron": self.cron,
               "time_zone": self.time_zone, "valid_from": self.valid_from, "valid_until": self.valid_until,
               "relay_url": self.relay_url, "relay_minutes": self.relay_minutes})
    }

    /// The repetition chosen (a preset name), if any: checked by the schedule or the command
    /// (422 `invalid_repetition` naming `repetition`, shown on the form).
    pub fn repetition_request(&self) -> Option<Value> {
        Some(self.repetition.trim())
            .filter(|r| !r.is_empty())
            .map(|r| Value::String(r.to_string()))
    }

    /// The schedule requests this form makes (one per minute of the hour for a weekly form),
    /// or the first refusal, naming its field. A one-off time before `now` is refused.
    pub fn requests(&self, now: DateTime<Utc>) -> Result<Vec<NewSchedule>> {
        let tz: Tz = self.time_zone.parse().map_err(|_| {
            Error::bad(
                "invalid_time_zone",
                format!("`time_zone`: `{}` is not an IANA time zone", self.time_zone),
            )
        })?;
        if self.media.is_empty() {
            return Err(Error::bad("media_required", "`media`: choose an approved clip"));
        }
        if self.areas.is_empty() {
            return Err(Error::unprocessable(
                "targets_required",
                "`area`: choose at least one area",
            ));
        }
        let rules = match self.mode.as_str() {
            "once" => {
                let at = super::parse_datetime_local(&self.at, tz)
                    .flatten()
                    .ok_or_else(|| Error::bad("invalid_rule", "`at`: choose a date and a time"))?;
                if at < now {
                    return Err(Error::bad("in_the_past", "`at`: that time has passed"));
                }
                vec![RuleSpec::Once {
                    at: at.with_timezone(&tz).format("%Y-%m-%dT%H:%M:%S").to_string(),
                }]
            }
            "cron" => vec![RuleSpec::Cron {
                cron: self.cron.trim().to_string(),
            }],
            _ => weekly(&self.days, &self.times)?
                .into_iter()
                .map(|cron| RuleSpec::Cron { cron })
                .collect(),
        };
        let valid_from = day_start(&self.valid_from, tz, 0, "valid_from")?;
        let valid_until = day_start(&self.valid_until, tz, 1, "valid_until")?;
        let priority = self.priority.parse().unwrap_or_default();
        let relay = self.relay()?;
        Ok(rules
            .into_iter()
            .map(|rule| NewSchedule {
                title: self.title.clone(),
                media: vec![self.media.clone()],
                targets: Targets {
                    areas: self.areas.clone(),
                    devices: Vec::new(),
                },
                priority,
                rule,
                time_zone: Some(self.time_zone.clone()),
                valid_from,
                valid_until,
                volume: None,
                repeat: None,
                on_preempt: Default::default(),
                repetition: self.repetition_request(),
                valid_for_s: None,
                relay: relay.clone(),
            })
            .collect())
    }

    /// The relay this form asks for (its URL given), or none.
    fn relay(&self) -> Result<Option<RelayStream>> {
        let url = self.relay_url.trim();
        if url.is_empty() {
            return Ok(None);
        }
        let minutes = match self.relay_minutes.trim() {
            "" => 30,
            m => m
                .parse::<u32>()
                .ok()
                .filter(|m| (1..=1440).contains(m))
                .ok_or_else(|| {
                    Error::unprocessable("invalid_relay", "`relay.duration_s`: give 1–1440 minutes")
                })?,
        };
        Ok(Some(RelayStream {
            url: url.to_string(),
            duration_s: minutes * 60,
            fallback_after_s: 15,
        }))
    }
}

/// The cron patterns of weekdays × times: one per minute of the hour used.
pub fn weekly(days: &[u8], times: &[String]) -> Result<Vec<String>> {
    if days.is_empty() {
        return Err(Error::bad("days_required", "`dow`: choose at least one day"));
    }
    if times.is_empty() {
        return Err(Error::bad(
            "times_required",
            "`time`: give at least one time of day",
        ));
    }
    let mut by_minute: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for t in times {
        let parsed = t
            .trim()
            .split_once(':')
            .and_then(|(h, m)| Some((h.parse::<u32>().ok()?, m.get(..2)?.parse::<u32>().ok()?)))
            .filter(|(h, m)| *h < 24 && *m < 60);
        let (h, m) = parsed.ok_or_else(|| {
            Error::bad(
                "times_required",
                format!("`time`: `{t}` is not a time of day (hh:mm)"),
            )
        })?;
        let hours = by_minute.entry(m).or_default();
        if !hours.contains(&h) {
            hours.push(h);
        }
    }
    let mut d: Vec<u8> = days.to_vec();
    d.sort_unstable();
    d.dedup();
    let dow = if d.len() == 7 { "*".to_string() } else { ranges(&d) };
    Ok(by_minute
        .into_iter()
        .map(|(m, mut hours)| {
            hours.sort_unstable();
            let h: Vec<String> = hours.iter().map(u32::to_string).collect();
            format!("{m} {} * * {dow}", h.join(","))
        })
        .collect())
}

/// `1,2,3,4,5` → `1-5`; `0,6` → `0,6`.
fn ranges(d: &[u8]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < d.len() {
        let mut j = i;
        while j + 1 < d.len() && d[j + 1] == d[j] + 1 {
            j += 1;
        }
        out.push(if j >= i + 2 {
            format!("{}-{}", d[i], d[j])
        } else if j == i + 1 {
            format!("{},{}", d[i], d[j])
        } else {
            d[i].to_string()
        });
        i = j + 1;
    }
    out.join(",")
}

/// Local midnight of `YYYY-MM-DD` plus `plus_days` in `tz` (none for an empty field).
fn day_start(v: &str, tz: Tz, plus_days: i64, field: &str) -> Result<Option<DateTime<Utc>>> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let d = NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map_err(|_| Error::bad("invalid_validity", format!("`{field}`: `{v}` is not a date")))?;
    let d = d + chrono::Duration::days(plus_days);
    Ok(Some(local_to_utc(tz, d.and_hms_opt(0, 0, 0).unwrap_or_default())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn weekdays_and_times_become_one_cron_rule_per_minute_of_the_hour() {
        assert_eq!(
            weekly(&[1, 2, 3, 4, 5], &t(&["06:30"])).unwrap(),
            ["30 6 * * 1-5"]
        );
        assert_eq!(
            weekly(&[5, 1, 3], &t(&["17:30", "06:30"])).unwrap(),
            ["30 6,17 * * 1,3,5"]
        );
        assert_eq!(
            weekly(&[0, 6], &t(&["06:30", "17:00"])).unwrap(),
            ["0 17 * * 0,6", "30 6 * * 0,6"]
        );
        assert_eq!(weekly(&WEEK, &t(&["06:00"])).unwrap(), ["0 6 * * *"]);
        assert_eq!(ranges(&[0, 1, 2, 4, 5]), "0-2,4,5");
        assert!(weekly(&[], &t(&["06:30"])).is_err());
        assert!(weekly(&[1], &[]).is_err());
        assert!(weekly(&[1], &t(&["25:00"])).is_err());
    }

    #[test]
    fn a_one_off_time_in_the_past_is_refused_and_validity_days_are_whole_local_days() {
        let now = Utc::now();
        let mut i = Input {
            title: "x".into(),
            media: "m".into(),
            areas: vec!["a".into()],
            mode: "once".into(),
            at: "2020-01-01T06:30".into(),
            time_zone: "Asia/Ho_Chi_Minh".into(),
            ..Input::default()
        };
        let e = i.requests(now).unwrap_err();
        assert_eq!(e.code(), "in_the_past");
        i.mode = "weekly".into();
        i.days = vec![1];
        i.times = t(&["06:30"]);
        i.valid_from = "2026-12-01".into();
        i.valid_until = "2026-12-31".into();
        let r = i.requests(now).unwrap();
        // 00:00 in Hồ Chí Minh City is 17:00 UTC the day before.
        assert_eq!(r[0].valid_from.unwrap().to_rfc3339(), "2026-11-30T17:00:00+00:00");
        assert_eq!(
            r[0].valid_until.unwrap().to_rfc3339(),
            "2026-12-31T17:00:00+00:00"
        );
    }
}
