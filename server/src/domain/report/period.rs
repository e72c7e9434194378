//! The report's period: the reporting periods of Decree 09/2019/NĐ-CP (art. 12): the half-year
//! report runs from 15 December of the previous year to 14 June (due before 15 June), the annual
//! report from 15 December of the previous year to 14 December (due before 15 December), so
//! every day falls in exactly one half-year and one annual period; or any range of days. Read in
//! Asia/Ho_Chi_Minh.

use chrono::{Datelike, Duration, NaiveDate, TimeZone};

/// The first and last day of `year`'s half-year and annual report periods (Decree 09/2019/NĐ-CP
/// art. 12): 15 Dec of `year − 1` to 14 Jun of `year`, and 15 Dec of `year − 1` to 14 Dec of
/// `year`.
pub fn preset_period(preset: &str, year: i32) -> Option<(NaiveDate, NaiveDate)> {
    let start = NaiveDate::from_ymd_opt(year - 1, 12, 15)?;
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

/// The report year a day belongs to: 15–31 December already count in the next year's periods.
pub fn report_year(day: NaiveDate) -> i32 {
    if (day.month(), day.day()) >= (12, 15) {
        day.year() + 1
    } else {
        day.year()
    }
}

/// Parse a `YYYY-MM-DD` day, naming the field when it is not one.
pub fn parse_day(field: &str, s: &str) -> crate::error::Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        crate::error::Error::bad(
            "invalid_date",
            format!("`{field}`: `{s}` is not a date like 2026-06-14 (YYYY-MM-DD)"),
        )
    })
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
/// known preset of `year` (default: the report year today falls in) wins; otherwise `from`
/// (default the first day of the current annual period) to `to` (default today, and never
/// before `from`). Dates that do not parse are defaults.
pub fn resolve(req: &PeriodRequest<'_>, today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let year = req.year.unwrap_or_else(|| report_year(today));
    if let Some(p) = req.preset.and_then(|p| preset_period(p, year)) {
        return p;
    }
    let parse = |s: Option<&str>| s.and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let from =
        parse(req.from).unwrap_or_else(|| preset_period("annual", report_year(today)).map_or(today, |p| p.0));
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
    fn the_presets_are_the_decrees_periods_and_leave_no_day_out() {
        assert_eq!(
            preset_period("half", 2025),
            Some((d(2024, 12, 15), d(2025, 6, 14)))
        );
        assert_eq!(
            preset_period("annual", 2025),
            Some((d(2024, 12, 15), d(2025, 12, 14)))
        );
        assert_eq!(preset_period("quarter", 2025), None);
        // 15–31 December belong to the next year's periods; the annual periods follow each
        // other without a gap.
        assert_eq!(super::report_year(d(2025, 12, 14)), 2025);
        assert_eq!(super::report_year(d(2025, 12, 15)), 2026);
        assert_eq!(super::report_year(d(2025, 12, 31)), 2026);
        assert_eq!(super::report_year(d(2026, 1, 1)), 2026);
        let (a, b) = (
            preset_period("annual", 2025).unwrap(),
            preset_period("annual", 2026).unwrap(),
        );
        assert_eq!(a.1.succ_opt(), Some(b.0));
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
        assert_eq!(resolve(&half, today), (d(2024, 12, 15), d(2025, 6, 14)));
        let this_year = PeriodRequest {
            preset: Some("annual"),
            ..Default::default()
        };
        assert_eq!(resolve(&this_year, today), (d(2025, 12, 15), d(2026, 12, 14)));
        assert_eq!(
            resolve(&PeriodRequest::default(), today),
            (d(2025, 12, 15), today)
        );
        // On 20 December the current report year is the next one.
        assert_eq!(
            resolve(&this_year, d(2026, 12, 20)),
            (d(2026, 12, 15), d(2027, 12, 14))
        );
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
        assert_eq!(resolve(&junk, today), (d(2025, 12, 15), today));
    }
}
