//! Schedule rules: a `once` local date-time or a 5-field cron pattern ([`CronRule`]), as a client
//! sends it ([`RuleSpec`]) and validated ([`Rule`]), evaluated in local time in an IANA time zone
//! with croner + chrono-tz and converted to UTC, so occurrences follow daylight-saving changes
//! (see `docs/scheduling.md` for the gap and overlap behaviour).

use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::{Cron, Direction};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, Result};

/// A validated 5-field cron pattern (minute hour day-of-month month day-of-week).
#[derive(Debug, Clone)]
pub struct CronRule {
    text: String,
    cron: Cron,
}

impl CronRule {
    /// Parse, refusing anything but exactly five fields; the error names the problem.
    pub fn parse(s: &str) -> std::result::Result<CronRule, String> {
        let text = s.split_whitespace().collect::<Vec<_>>().join(" ");
        let n = text.split(' ').filter(|f| !f.is_empty()).count();
        if n != 5 {
            return Err(format!(
                "cron pattern `{s}` has {n} fields; expected 5 (minute hour day-of-month month day-of-week)"
            ));
        }
        let cron = Cron::from_str(&text).map_err(|e| format!("cron pattern `{s}`: {e}"))?;
        Ok(CronRule { text, cron })
    }
    /// The normalised pattern.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// When a schedule plays, as sent by a client.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleSpec {
    /// Once, at a local date-time in the schedule's time zone (`2026-12-01T06:30:00`).
    Once {
        /// Local date-time without offset.
        at: String,
    },
    /// A 5-field cron pattern evaluated in the schedule's time zone.
    Cron {
        /// E.g. `30 6 * * 1-5`.
        cron: String,
    },
}

/// A validated rule.
#[derive(Debug, Clone)]
pub enum Rule {
    /// One local instant.
    Once(NaiveDateTime),
    /// A cron pattern.
    Cron(Box<CronRule>),
}

impl Rule {
    /// Validate a client rule.
    pub fn parse(spec: &RuleSpec) -> Result<Rule> {
        match spec {
            RuleSpec::Once { at } => {
                let t = [
                    "%Y-%m-%dT%H:%M:%S%.f",
                    "%Y-%m-%dT%H:%M",
                    "%Y-%m-%d %H:%M:%S",
                    "%Y-%m-%d %H:%M",
                ]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(at, f).ok())
                .ok_or_else(|| {
                    Error::bad(
                        "invalid_rule",
                        format!(
                            "`rule.at`: `{at}` is not a local date-time like 2026-12-01T06:30:00 (no offset)"
                        ),
                    )
                })?;
                Ok(Rule::Once(t))
            }
            RuleSpec::Cron { cron } => CronRule::parse(cron)
                .map(|c| Rule::Cron(Box::new(c)))
                .map_err(|m| Error::bad("invalid_cron", m)),
        }
    }

    /// The client form.
    pub fn spec(&self) -> RuleSpec {
        match self {
            Rule::Once(t) => RuleSpec::Once {
                at: t.format("%Y-%m-%dT%H:%M:%S").to_string(),
            },
            Rule::Cron(c) => RuleSpec::Cron { cron: c.text.clone() },
        }
    }

    /// Instants in `[from, to)`, evaluated in local time in `tz` and converted to UTC, at most `limit`.
    pub fn occurrences(
        &self,
        tz: Tz,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        match self {
            Rule::Once(t) => {
                let at = local_to_utc(tz, *t);
                if at >= from && at < to {
                    vec![at]
                } else {
                    Vec::new()
                }
            }
            Rule::Cron(c) => c
                .cron
                .iter_from(from.with_timezone(&tz), Direction::Forward)
                .map(|t| t.with_timezone(&Utc))
                .take_while(|t| *t < to)
                .take(limit)
                .collect(),
        }
    }
}

/// A local date-time to UTC the way croner treats fixed times: in a fall-back overlap the first
/// (earlier) instant; in a spring-forward gap the first valid minute after the gap.
pub fn local_to_utc(tz: Tz, t: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = t;
    for _ in 0..(26 * 60) {
        match tz.from_local_datetime(&probe) {
            LocalResult::Single(x) => return x.with_timezone(&Utc),
            LocalResult::Ambiguous(a, _) => return a.with_timezone(&Utc),
            LocalResult::None => {
                probe = probe.with_second(0).unwrap_or(probe) + Duration::minutes(1);
            }
        }
    }
    Utc.from_utc_datetime(&t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_weekday_cron_in_ho_chi_minh_fires_at_2330_utc_the_previous_day() {
        let r = Rule::Cron(Box::new(CronRule::parse("30 6 * * 1-5").unwrap()));
        let tz: Tz = "Asia/Ho_Chi_Minh".parse().unwrap();
        // 2026-11-30 is a Monday.
        let got = r.occurrences(tz, utc("2026-11-28T00:00:00Z"), utc("2026-12-06T00:00:00Z"), 100);
        let want: Vec<_> = [
            "2026-11-29T23:30:00Z",
            "2026-11-30T23:30:00Z",
            "2026-12-01T23:30:00Z",
            "2026-12-02T23:30:00Z",
            "2026-12-03T23:30:00Z",
        ]
        .iter()
        .map(|s| utc(s))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn berlin_spring_forward_gap_moves_0230_to_0300_and_fall_back_plays_once() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let r = Rule::Cron(Box::new(CronRule::parse("30 2 * * *").unwrap()));
        let got = r.occurrences(tz, utc("2026-03-28T00:00:00Z"), utc("2026-03-31T00:00:00Z"), 100);
        // 28th 02:30 CET = 01:30Z; 29th 02:30 does not exist → 03:00 CEST = 01:00Z; 30th 02:30 CEST = 00:30Z.
        assert_eq!(
            got,
            vec![
                utc("2026-03-28T01:30:00Z"),
                utc("2026-03-29T01:00:00Z"),
                utc("2026-03-30T00:30:00Z")
            ]
        );
        let r = Rule::Cron(Box::new(CronRule::parse("0 9 * * *").unwrap()));
        let got = r.occurrences(tz, utc("2026-10-24T00:00:00Z"), utc("2026-10-27T00:00:00Z"), 100);
        assert_eq!(
            got,
            vec![
                utc("2026-10-24T07:00:00Z"),
                utc("2026-10-25T08:00:00Z"),
                utc("2026-10-26T08:00:00Z")
            ]
        );
        let r = Rule::Cron(Box::new(CronRule::parse("30 2 * * *").unwrap()));
        let got = r.occurrences(tz, utc("2026-10-24T12:00:00Z"), utc("2026-10-26T00:00:00Z"), 100);
        // 02:30 happens twice on the 25th (CEST 00:30Z, then CET 01:30Z): played once, the first.
        assert_eq!(got, vec![utc("2026-10-25T00:30:00Z")]);
    }

    #[test]
    fn once_rules_follow_the_same_gap_and_overlap_rules() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let t = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").unwrap();
        assert_eq!(
            local_to_utc(tz, t("2026-03-29T02:30:00")),
            utc("2026-03-29T01:00:00Z")
        );
        assert_eq!(
            local_to_utc(tz, t("2026-10-25T02:30:00")),
            utc("2026-10-25T00:30:00Z")
        );
    }

    #[test]
    fn bad_cron_patterns_name_the_problem() {
        assert!(CronRule::parse("30 6 * *").unwrap_err().contains("4 fields"));
        assert!(CronRule::parse("0 30 6 * * 1").unwrap_err().contains("6 fields"));
        assert!(CronRule::parse("61 6 * * *").is_err());
    }
}
