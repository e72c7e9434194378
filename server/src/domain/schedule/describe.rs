//! The human sentence for a schedule rule, in Vietnamese or English ("Thứ Hai–Thứ Sáu lúc 06:30" /
//! "Monday–Friday at 06:30"), shown on the console's schedule pages and while a rule is typed.

use super::rule::{Rule, RuleSpec};

/// A human sentence for a rule in Vietnamese or English (`en`), e.g. "Thứ Hai–Thứ Sáu lúc 06:30"
/// / "Monday–Friday at 06:30"; an invalid rule gives the validation message.
pub fn describe(spec: &RuleSpec, en: bool) -> String {
    let rule = match Rule::parse(spec) {
        Ok(r) => r,
        Err(e) => return e.to_string(),
    };
    match rule {
        Rule::Once(t) => {
            if en {
                format!("Once, on {}", t.format("%d/%m/%Y at %H:%M"))
            } else {
                format!("Một lần, ngày {}", t.format("%d/%m/%Y lúc %H:%M"))
            }
        }
        Rule::Cron(c) => describe_cron(c.as_str(), en),
    }
}

fn describe_cron(text: &str, en: bool) -> String {
    let f: Vec<&str> = text.split(' ').collect();
    let fallback = || {
        if en {
            format!("By the pattern `{text}` (minute hour day month weekday)")
        } else {
            format!("Theo mẫu `{text}` (phút giờ ngày tháng thứ)")
        }
    };
    let (Ok(min), Ok(hour)) = (f[0].parse::<u32>(), f[1].parse::<u32>()) else {
        return fallback();
    };
    let at = format!("{hour:02}:{min:02}");
    let day_name = |d: &str| -> Option<&'static str> {
        let i: usize = d.parse().ok()?;
        let vi = [
            "Chủ nhật",
            "Thứ Hai",
            "Thứ Ba",
            "Thứ Tư",
            "Thứ Năm",
            "Thứ Sáu",
            "Thứ Bảy",
            "Chủ nhật",
        ];
        let enn = [
            "Sunday",
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
        ];
        Some(if en { enn.get(i)? } else { vi.get(i)? })
    };
    let days = if f[4] == "*" {
        None
    } else {
        let mut parts = Vec::new();
        for p in f[4].split(',') {
            let named = match p.split_once('-') {
                Some((a, b)) => day_name(a).zip(day_name(b)).map(|(a, b)| format!("{a}–{b}")),
                None => day_name(p).map(str::to_string),
            };
            match named {
                Some(n) => parts.push(n),
                None => return fallback(),
            }
        }
        Some(parts.join(", "))
    };
    match (f[2], f[3], days) {
        ("*", "*", None) => {
            if en {
                format!("Every day at {at}")
            } else {
                format!("Hằng ngày lúc {at}")
            }
        }
        ("*", "*", Some(d)) => {
            if en {
                format!("{d} at {at}")
            } else {
                format!("{d} lúc {at}")
            }
        }
        (dom, "*", None) if dom.parse::<u32>().is_ok() => {
            if en {
                format!("Day {dom} of every month at {at}")
            } else {
                format!("Ngày {dom} hằng tháng lúc {at}")
            }
        }
        (dom, mon, None) if dom.parse::<u32>().is_ok() && mon.parse::<u32>().is_ok() => {
            if en {
                format!("Every year on {dom:0>2}/{mon:0>2} at {at}")
            } else {
                format!("Hằng năm ngày {dom:0>2}/{mon:0>2} lúc {at}")
            }
        }
        _ => fallback(),
    }
}

#[cfg(test)]
mod tests {
    use super::describe;
    use crate::domain::schedule::RuleSpec;

    fn cron(c: &str) -> RuleSpec {
        RuleSpec::Cron { cron: c.into() }
    }

    #[test]
    fn common_rules_read_as_sentences_in_both_languages() {
        assert_eq!(
            describe(&cron("30 6 * * 1-5"), false),
            "Thứ Hai–Thứ Sáu lúc 06:30"
        );
        assert_eq!(describe(&cron("30 6 * * 1-5"), true), "Monday–Friday at 06:30");
        assert_eq!(describe(&cron("0 18 * * *"), true), "Every day at 18:00");
        assert_eq!(
            describe(&cron("0 7 15 * *"), false),
            "Ngày 15 hằng tháng lúc 07:00"
        );
        assert_eq!(describe(&cron("0 7 2 9 *"), true), "Every year on 02/09 at 07:00");
        let once = RuleSpec::Once {
            at: "2026-12-01T06:30:00".into(),
        };
        assert_eq!(describe(&once, false), "Một lần, ngày 01/12/2026 lúc 06:30");
    }

    #[test]
    fn unusual_patterns_fall_back_and_invalid_ones_give_the_reason() {
        assert_eq!(
            describe(&cron("*/15 6 * * *"), true),
            "By the pattern `*/15 6 * * *` (minute hour day month weekday)"
        );
        assert!(describe(&cron("30 6 * *"), true).contains("4 fields"));
    }
}
