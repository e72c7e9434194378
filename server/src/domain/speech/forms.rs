//! Readings of one written form that starts with a digit: times (`7h30`, `17h`, `07:30`),
//! dates (`15/12/2025`, `2/9`, `6/2025` after "tháng", `15-17/12`), phone numbers written with
//! separators (`0912.345.678`, `0214-3820-000`), numbers glued to a unit or a percent sign
//! (`45%`, `50km`, `25°C`, `500.000đ`), ranges (`150-250`, `7h30-9h`, `10-15%`) and ratios
//! (`24/24`, `24/7` after "trực"). [`read_numeric`] tries them in that order.

use super::numbers::{
    Dialect, all_digits, month_word, parse_small, read_decimal, read_digits, read_number_in,
};
use super::words::{RATIO_CUES, unit};

/// `7h30`, `7h`, `07:30`, `7g30`, `7h30'`, `07:30:15`.
pub fn read_time(s: &str, d: Dialect) -> Option<String> {
    let lower = s.to_lowercase();
    let (h, m, sec, colon) = if let Some((h, m)) = lower.split_once('h') {
        (h, m.trim_end_matches('\''), None, false)
    } else if let Some((h, m)) = lower.split_once('g') {
        // "7g30" only: a bare "8g" is eight grams.
        if m.is_empty() {
            return None;
        }
        (h, m, None, false)
    } else if let Some((h, rest)) = lower.split_once(':') {
        match rest.split_once(':') {
            Some((m, sec)) => (h, m, Some(sec), true),
            None => (h, rest, None, true),
        }
    } else {
        return None;
    };
    if !all_digits(h) || h.len() > 2 {
        return None;
    }
    let hour: u64 = h.parse().ok()?;
    if hour > 24 {
        return None;
    }
    let mut out = format!("{} giờ", read_number_in(hour, d));
    if m.is_empty() && !colon {
        return Some(out);
    }
    if !all_digits(m) || m.len() > 2 || (colon && m.len() != 2) {
        return None;
    }
    let minute: u64 = m.parse().ok()?;
    if minute >= 60 {
        return None;
    }
    if minute > 0 {
        out.push_str(&format!(" {} phút", read_number_in(minute, d)));
    }
    if let Some(sec) = sec {
        if !all_digits(sec) || sec.len() != 2 {
            return None;
        }
        let second: u64 = sec.parse().ok()?;
        if second >= 60 {
            return None;
        }
        if second > 0 {
            out.push_str(&format!(" {} giây", read_number_in(second, d)));
        }
    }
    Some(out)
}

/// "ngày" before a day and month, unless a word before says it already (`ngày`, `hôm`, `mùng`),
/// the date is a street's name (`đường 3/2`, `phố 19/5`) or it ends a list of days (`ngày 28,
/// 29/12`: the previous word is a bare number).
fn day_prefix(prev: &str) -> &'static str {
    if matches!(prev, "ngày" | "hôm" | "mùng" | "mồng" | "đường" | "phố") || all_digits(prev) {
        ""
    } else {
        "ngày "
    }
}

/// `15/6/2025`, `15-6-2025`, `15/6`, `15-17/12` and (after "tháng") `6/2025`.
pub fn read_date(s: &str, prev_word: &str, d: Dialect) -> Option<String> {
    let prev = prev_word.to_lowercase();
    let sep = if s.contains('/') {
        '/'
    } else if s.contains('-') {
        '-'
    } else {
        return None;
    };
    let parts: Vec<&str> = s.split(sep).collect();
    let n = |x: u64| read_number_in(x, d);
    // Days of one month: `15-17/12`, `15-17/12/2025`.
    if sep == '/'
        && let Some((a, b)) = parts[0].split_once('-')
    {
        let (a, b) = (parse_small(a)?, parse_small(b)?);
        let m = parse_small(parts.get(1)?)?;
        if !(1..=31).contains(&a) || !(1..=31).contains(&b) || a >= b || !(1..=12).contains(&m) {
            return None;
        }
        let mut out = format!(
            "{}{} đến {} tháng {}",
            day_prefix(&prev),
            n(a),
            n(b),
            month_word(m, d)
        );
        match parts.get(2) {
            Some(y) if y.len() == 4 => out.push_str(&format!(" năm {}", n(parse_small(y)?))),
            Some(_) => return None,
            None => {}
        }
        return Some(out);
    }
    if !parts.iter().all(|p| all_digits(p)) {
        return None;
    }
    let nums: Vec<u64> = parts.iter().map(|p| p.parse().ok()).collect::<Option<_>>()?;
    match nums.as_slice() {
        [dd, m, y] if (1..=31).contains(dd) && (1..=12).contains(m) && parts[2].len() == 4 => Some(format!(
            "{}{} tháng {} năm {}",
            day_prefix(&prev),
            n(*dd),
            month_word(*m, d),
            n(*y)
        )),
        [m, y] if prev == "tháng" && (1..=12).contains(m) && parts[1].len() == 4 => {
            Some(format!("{} năm {}", month_word(*m, d), n(*y)))
        }
        [dd, m]
            if sep == '/'
                && (1..=31).contains(dd)
                && (1..=12).contains(m)
                && parts[1].len() <= 2
                && !RATIO_CUES.contains(&prev.as_str()) =>
        {
            Some(format!(
                "{}{} tháng {}",
                day_prefix(&prev),
                n(*dd),
                month_word(*m, d)
            ))
        }
        _ => None,
    }
}

/// A phone number written in one token with separators: `0912.345.678`, `0214-3820-000`,
/// `1900.1234`: each group digit by digit, groups apart.
pub fn read_phone_token(s: &str) -> Option<String> {
    // A toll-free or service number in one piece: `18001091`, `1900123456`.
    if all_digits(s) && matches!(s.len(), 8 | 10) && (s.starts_with("1800") || s.starts_with("1900")) {
        return Some(read_digits(s));
    }
    let groups: Vec<&str> = s.split(['.', '-']).collect();
    if groups.len() < 2 || !groups.iter().all(|g| all_digits(g) && g.len() <= 4) {
        return None;
    }
    let digits: usize = groups.iter().map(|g| g.len()).sum();
    let first = groups[0];
    let phone_like = first.starts_with('0') || first == "1800" || first == "1900";
    if !phone_like || !(8..=12).contains(&digits) {
        return None;
    }
    Some(
        groups
            .iter()
            .map(|g| read_digits(g))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// A number glued to a unit or percent sign: `45%`, `50km`, `25°C`, `2,5%`, `500.000đ`.
pub fn read_number_with_suffix(s: &str, d: Dialect) -> Option<String> {
    if let Some(n) = s.strip_suffix('%') {
        return read_decimal(n, d).map(|w| format!("{w} phần trăm"));
    }
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))?;
    if split == 0 {
        return None;
    }
    let (n, u) = s.split_at(split);
    let n = n.trim_end_matches(['.', ',']);
    let words = read_decimal(n, d)?;
    if let Some(unit) = unit(u) {
        return Some(format!("{words} {unit}"));
    }
    // `1A`, `12B`: a number with a letter (a road, a class, a block).
    if u.chars().count() <= 2 && u.chars().all(|c| c.is_ascii_uppercase()) {
        return Some(format!("{words} {u}"));
    }
    None
}

/// Read one core token (no surrounding punctuation) if it is a time, date, phone number,
/// number, number with a unit, range or ratio of numbers.
pub fn read_numeric(core: &str, prev_word: &str, d: Dialect) -> Option<String> {
    if !core.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let core = &core.replace('–', "-");
    read_time(core, d)
        .or_else(|| read_phone_token(core))
        .or_else(|| read_date(core, prev_word, d))
        .or_else(|| read_decimal(core, d))
        .or_else(|| read_number_with_suffix(core, d))
        .or_else(|| {
            // Ranges: `7h30-9h`, `10-15%`, `2021-2025`, `150-250mm`.
            let (a, b) = core.split_once('-')?;
            let b_read = read_numeric(b, "", d)?;
            let a_read = read_numeric(a, prev_word, d).or_else(|| read_decimal(a, d))?;
            Some(format!("{a_read} đến {b_read}"))
        })
        .or_else(|| {
            // Ratios: `24/24`, `24/24h`, `3/5`.
            let (a, b) = core.split_once('/')?;
            let a_read = read_decimal(a, d)?;
            let b_read = read_numeric(b, "", d)?;
            Some(format!("{a_read} trên {b_read}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: Dialect = Dialect::North;

    #[test]
    fn times() {
        assert_eq!(read_time("7h30", N).unwrap(), "bảy giờ ba mươi phút");
        assert_eq!(read_time("17h", N).unwrap(), "mười bảy giờ");
        assert_eq!(read_time("07:30", N).unwrap(), "bảy giờ ba mươi phút");
        assert_eq!(read_time("7g30", N).unwrap(), "bảy giờ ba mươi phút");
        assert_eq!(
            read_time("23:05:09", N).unwrap(),
            "hai mươi ba giờ năm phút chín giây"
        );
        assert_eq!(read_time("8g", N), None);
        assert_eq!(read_time("25h", N), None);
        assert_eq!(read_time("7h75", N), None);
    }

    #[test]
    fn dates() {
        assert_eq!(read_date("2/9", "", N).unwrap(), "ngày hai tháng chín");
        assert_eq!(read_date("2/9", "ngày", N).unwrap(), "hai tháng chín");
        assert_eq!(
            read_date("01/01/2026", "", N).unwrap(),
            "ngày một tháng một năm hai nghìn không trăm hai mươi sáu"
        );
        assert_eq!(
            read_date("6/2025", "tháng", N).unwrap(),
            "sáu năm hai nghìn không trăm hai mươi lăm"
        );
        assert_eq!(
            read_date("15-17/12", "", N).unwrap(),
            "ngày mười lăm đến mười bảy tháng mười hai"
        );
        assert_eq!(read_date("24/24", "", N), None);
        assert_eq!(read_date("24/7", "trực", N), None);
        assert_eq!(read_date("32/1/2025", "", N), None);
    }

    #[test]
    fn phones_suffixes_ranges_and_ratios() {
        assert_eq!(
            read_phone_token("0912.345.678").unwrap(),
            "không chín một hai, ba bốn năm, sáu bảy tám"
        );
        assert_eq!(read_phone_token("1.250.000"), None);
        assert_eq!(
            read_number_with_suffix("500.000đ", N).unwrap(),
            "năm trăm nghìn đồng"
        );
        assert_eq!(read_number_with_suffix("25°C", N).unwrap(), "hai mươi lăm độ C");
        assert_eq!(read_number_with_suffix("1A", N).unwrap(), "một A");
        assert_eq!(read_number_with_suffix("5xyz", N), None);
        assert_eq!(
            read_numeric("150-250mm", "", N).unwrap(),
            "một trăm năm mươi đến hai trăm năm mươi mi li mét"
        );
        assert_eq!(
            read_numeric("10-15%", "", N).unwrap(),
            "mười đến mười lăm phần trăm"
        );
        assert_eq!(
            read_numeric("24/24", "", N).unwrap(),
            "hai mươi bốn trên hai mươi bốn"
        );
        assert_eq!(read_numeric("24/7", "trực", N).unwrap(), "hai mươi bốn trên bảy");
        assert_eq!(
            read_numeric("24/24h", "", N).unwrap(),
            "hai mươi bốn trên hai mươi bốn giờ"
        );
    }
}
