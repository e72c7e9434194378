//! The report's period: the half-year report (1 Jan–14 Jun, due before 15 June), the annual report
//! (1 Jan–14 Dec, due before 15 December), or any range of days, read in Asia/Ho_Chi_Minh.

use chrono::{Datelike, Duration, NaiveDate, TimeZone};

/// The first day of `year`'s half-year and annual report periods, and their last days
/// (1 Jan–14 Jun, due before 15 June; 1 Jan–14 Dec, due before 15 December).
pub fn preset_period(preset: &str, year: i32) -> Option<(NaiveDate, NaiveDate)> {
    let start = NaiveDate::from_ymd_opt(year, 1, 1)?;
    match preset {
        "half" => Some((start, NaiveDate::from_ymd_opt(year, 6, 14)?)),
        "annual" => Some((start, NaiveDate::from_ymd_opt(year, 12, 14)?)),
        _ => None,
    }
}

/// `[from 00:00, to+1 00:00)` in Asia/Ho_Chi_Minh as unix ms.
pub fn period_ms(from: NaiveDate, to: NaiveDate) -> (i64, i64) {
    let tz = chrono_tz::Asia::Ho_Chi_Minh;
    let a = tz
        .from_local_datetime(&from.and_hms_opt(0, 0, 0).unwrap_or_default())
        .single();
    let b = tz
        .from_local_datetime(&(to + Duration::days(1)).and_hms_opt(0, 0, 0).unwrap_or_default())
        .single();
    (
        a.map_or(0, |t| t.timestamp_millis()),
        b.map_or(0, |t| t.timestamp_millis()),
    )
}

/// What a report request asks for (the console's query string).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeriodRequest<'a> {
    /// First day, `YYYY-MM-DD`.
    pub from: Option<&'a str>,
    /// Last day, `YYYY-MM-DD`.
    pub to: Option<&'a str>,
    /// `half` or `annual`.
    pub preset: Option<&'a str>,
    /// The preset's year (default: this year).
    pub year: Option<i32>,
}

/// The first and last day of the requested period, `today` being today's date in Vietnam: a
/// known preset of `year` (default this year) wins; otherwise `from` (default 1 January of this
/// year) to `to` (default today, and never before `from`). Dates that do not parse are defaults.
pub fn resolve(req: &PeriodRequest<'_>, today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let year = req.year.unwrap_or(today.year());
    if let Some(p) = req.preset.and_then(|p| preset_period(p, year)) {
        return p;
    }
    let parse = |s: Option<&str>| s.and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let from =
        parse(req.from).unwrap_or_else(|| NaiveDate::from_ymd_opt(today.year(), 1, 1).unwrap_or(today));
    let to = parse(req.to).unwrap_or(today).max(from);
    (from, to)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::{PeriodRequest, period_ms, preset_period, resolve};

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn the_presets_end_the_day_before_the_reports_are_due() {
        assert_eq!(preset_period("half", 2025), Some((d(2025, 1, 1), d(2025, 6, 14))));
        assert_eq!(
            preset_period("annual", 2025),
            Some((d(2025, 1, 1), d(2025, 12, 14)))
        );
        assert_eq!(preset_period("quarter", 2025), None);
    }

    #[test]
    fn a_period_runs_from_midnight_to_the_midnight_after_its_last_day_in_vietnam() {
        // 2025-01-01 00:00 +07:00 and 2025-06-15 00:00 +07:00.
        assert_eq!(
            period_ms(d(2025, 1, 1), d(2025, 6, 14)),
            (1_735_664_400_000, 1_749_920_400_000)
        );
    }

    #[test]
    fn a_request_takes_a_preset_else_its_dates_with_defaults() {
        let today = d(2026, 3, 10);
        let half = PeriodRequest {
            preset: Some("half"),
            year: Some(2025),
            from: Some("2024-01-01"),
            ..Default::default()
        };
        assert_eq!(resolve(&half, today), (d(2025, 1, 1), d(2025, 6, 14)));
        let this_year = PeriodRequest {
            preset: Some("annual"),
            ..Default::default()
        };
        assert_eq!(resolve(&this_year, today), (d(2026, 1, 1), d(2026, 12, 14)));
        assert_eq!(resolve(&PeriodRequest::default(), today), (d(2026, 1, 1), today));
        let range = PeriodRequest {
            from: Some("2025-04-01"),
            to: Some("2025-04-30"),
            preset: Some("unknown"),
            ..Default::default()
        };
        assert_eq!(resolve(&range, today), (d(2025, 4, 1), d(2025, 4, 30)));
        let backwards = PeriodRequest {
            from: Some("2025-04-01"),
            to: Some("2025-03-01"),
            ..Default::default()
        };
        assert_eq!(resolve(&backwards, today), (d(2025, 4, 1), d(2025, 4, 1)));
        let junk = PeriodRequest {
            from: Some("1/4/2025"),
            to: Some("soon"),
            ..Default::default()
        };
        assert_eq!(resolve(&junk, today), (d(2026, 1, 1), today));
    }
}
