//! Numbers read the Vietnamese way, built from the rules of the spoken language rather than from
//! a table: hundreds/tens/units inside groups of three (mười for ten, mươi for the tens, mốt for
//! a one after mươi, lăm for a five after mười/mươi, linh or lẻ for a zero ten after a hundred),
//! groups named nghìn or ngàn, triệu, tỷ; digit strings read one digit at a time; decimals with a
//! comma (phẩy); ordinals (thứ nhất, thứ tư); Roman numerals parsed by their subtractive rule.
//!
//! [`Dialect`] picks the regional forms: Northern (linh, nghìn) by default, Southern (lẻ, ngàn).

/// Regional number words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// "linh", "nghìn" (the default, also used for Central voices).
    #[default]
    North,
    /// "lẻ", "ngàn".
    South,
}

impl Dialect {
    fn zero_ten(self) -> &'static str {
        match self {
            Dialect::North => "linh",
            Dialect::South => "lẻ",
        }
    }
    fn thousand(self) -> &'static str {
        match self {
            Dialect::North => "nghìn",
            Dialect::South => "ngàn",
        }
    }
}

/// The ten digits.
pub const DIGITS: [&str; 10] = [
    "không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín",
];

/// Read a non-negative integer in Vietnamese words (Northern forms).
pub fn read_number(n: u64) -> String {
    read_number_in(n, Dialect::North)
}

/// Read a non-negative integer in Vietnamese words in `dialect`.
pub fn read_number_in(n: u64, dialect: Dialect) -> String {
    let mut w = Vec::new();
    read_int(n, dialect, &mut w);
    w.join(" ")
}

fn read_int(n: u64, d: Dialect, w: &mut Vec<&'static str>) {
    const BILLION: u64 = 1_000_000_000;
    if n == 0 {
        w.push("không");
    } else if n >= BILLION {
        read_int(n / BILLION, d, w);
        w.push("tỷ");
        let lo = n % BILLION;
        if lo > 0 {
            read_below_billion(lo, false, d, w);
        }
    } else {
        read_below_billion(n, true, d, w);
    }
}

fn read_below_billion(n: u64, leading: bool, d: Dialect, w: &mut Vec<&'static str>) {
    let groups = [
        (n / 1_000_000, "triệu"),
        ((n / 1000) % 1000, d.thousand()),
        (n % 1000, ""),
    ];
    let mut first = leading;
    for (g, name) in groups {
        if g == 0 {
            continue;
        }
        read_triple(g, !first, d, w);
        if !name.is_empty() {
            w.push(name);
        }
        first = false;
    }
}

/// Three digits; `full` reads "không trăm" / "linh" as a group inside a larger number does.
fn read_triple(g: u64, full: bool, d: Dialect, w: &mut Vec<&'static str>) {
    let (h, t, u) = ((g / 100) as usize, ((g / 10) % 10) as usize, (g % 10) as usize);
    let has_hundreds = h > 0 || full;
    if has_hundreds {
        w.push(DIGITS[h]);
        w.push("trăm");
    }
    match t {
        0 => {
            if u > 0 {
                if has_hundreds {
                    w.push(d.zero_ten());
                }
                w.push(DIGITS[u]);
            }
        }
        1 => {
            w.push("mười");
            match u {
                0 => {}
                5 => w.push("lăm"),
                _ => w.push(DIGITS[u]),
            }
        }
        _ => {
            w.push(DIGITS[t]);
            w.push("mươi");
            match u {
                0 => {}
                1 => w.push("mốt"),
                5 => w.push("lăm"),
                _ => w.push(DIGITS[u]),
            }
        }
    }
}

/// Every digit of `s` read on its own ("0214" → "không hai một bốn"); other characters skipped.
pub fn read_digits(s: &str) -> String {
    s.chars()
        .filter_map(|c| c.to_digit(10))
        .map(|d| DIGITS[d as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

/// True for a non-empty string of ASCII digits.
pub fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A digit string of at most 18 digits as a number.
pub fn parse_small(s: &str) -> Option<u64> {
    if all_digits(s) && s.len() <= 18 {
        s.parse().ok()
    } else {
        None
    }
}

/// An integer as written: `1250`, `1.250`, `1.250.000` (dot as the thousands separator), `04`
/// (a leading zero in a short count is not read: "bốn"). A digit string of four or more digits
/// starting with 0 is a code or a phone number and is read digit by digit.
pub fn read_integer(s: &str, d: Dialect) -> Option<String> {
    if all_digits(s) {
        if s.len() > 1 && s.starts_with('0') {
            if s.len() <= 3 {
                return parse_small(s).map(|n| read_number_in(n, d));
            }
            return Some(read_digits(s));
        }
        return parse_small(s).map(|n| read_number_in(n, d));
    }
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() >= 2
        && all_digits(parts[0])
        && parts[0].len() <= 3
        && !parts[0].starts_with('0')
        && parts[1..].iter().all(|p| p.len() == 3 && all_digits(p))
    {
        return parse_small(&parts.concat()).map(|n| read_number_in(n, d));
    }
    None
}

/// A number with an optional decimal comma: `2,5` → "hai phẩy năm", `1.250,75`, `0,05` →
/// "không phẩy không năm". `2.5` written the English way is read as a decimal too when the part
/// after the dot is not a group of three.
pub fn read_decimal(s: &str, d: Dialect) -> Option<String> {
    if let Some(i) = read_integer(s, d) {
        return Some(i);
    }
    let (int, frac) = s.rsplit_once(',').or_else(|| {
        s.split_once('.')
            .filter(|(_, f)| f.len() != 3 && !f.contains('.'))
    })?;
    let int_words = if int == "0" {
        "không".to_string()
    } else {
        read_integer(int, d)?
    };
    if !all_digits(frac) {
        return None;
    }
    let frac_words = if frac.starts_with('0') {
        read_digits(frac)
    } else {
        read_number_in(parse_small(frac)?, d)
    };
    Some(format!("{int_words} phẩy {frac_words}"))
}

/// An ordinal after "thứ": 1 → "nhất", 4 → "tư", otherwise the number.
pub fn read_ordinal(n: u64, d: Dialect) -> String {
    match n {
        1 => "nhất".into(),
        4 => "tư".into(),
        _ => read_number_in(n, d),
    }
}

/// A month's name after "tháng": 4 → "tư", otherwise the number.
pub fn month_word(m: u64, d: Dialect) -> String {
    if m == 4 {
        "tư".to_string()
    } else {
        read_number_in(m, d)
    }
}

/// Parse an upper-case Roman numeral in its canonical form (`I`…`MMMCMXCIX`); `None` for
/// anything else (`IIII`, `VX`, `IC`, lower case).
pub fn parse_roman(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 15 {
        return None;
    }
    let value = |c: char| match c {
        'I' => Some(1),
        'V' => Some(5),
        'X' => Some(10),
        'L' => Some(50),
        'C' => Some(100),
        'D' => Some(500),
        'M' => Some(1000),
        _ => None,
    };
    let vals: Vec<u64> = s.chars().map(value).collect::<Option<_>>()?;
    // Canonical check: writing the value back must give the same string.
    let n = roman_value(&vals)?;
    (to_roman(n) == s).then_some(n)
}

fn roman_value(vals: &[u64]) -> Option<u64> {
    let mut total: i64 = 0;
    for (i, v) in vals.iter().enumerate() {
        let v = *v as i64;
        if vals.get(i + 1).is_some_and(|next| (*next as i64) > v) {
            total -= v;
        } else {
            total += v;
        }
    }
    (1..4000).contains(&total).then_some(total as u64)
}

/// Write `n` (1–3999) as a canonical Roman numeral.
pub fn to_roman(mut n: u64) -> String {
    const TABLE: [(u64, &str); 13] = [
        (1000, "M"),
        (900, "CM"),
        (500, "D"),
        (400, "CD"),
        (100, "C"),
        (90, "XC"),
        (50, "L"),
        (40, "XL"),
        (10, "X"),
        (9, "IX"),
        (5, "V"),
        (4, "IV"),
        (1, "I"),
    ];
    let mut s = String::new();
    for (v, r) in TABLE {
        while n >= v {
            s.push_str(r);
            n -= v;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_the_vietnamese_way() {
        let cases = [
            (0, "không"),
            (5, "năm"),
            (10, "mười"),
            (11, "mười một"),
            (15, "mười lăm"),
            (20, "hai mươi"),
            (21, "hai mươi mốt"),
            (25, "hai mươi lăm"),
            (45, "bốn mươi lăm"),
            (100, "một trăm"),
            (105, "một trăm linh năm"),
            (110, "một trăm mười"),
            (115, "một trăm mười lăm"),
            (1005, "một nghìn không trăm linh năm"),
            (1250, "một nghìn hai trăm năm mươi"),
            (2025, "hai nghìn không trăm hai mươi lăm"),
            (1_000_000, "một triệu"),
            (1_500_000, "một triệu năm trăm nghìn"),
            (2_000_000_000, "hai tỷ"),
            (3_000_021_000, "ba tỷ không trăm hai mươi mốt nghìn"),
        ];
        for (v, want) in cases {
            assert_eq!(read_number(v), want, "{v}");
        }
    }

    #[test]
    fn southern_voices_say_le_and_ngan() {
        assert_eq!(read_number_in(105, Dialect::South), "một trăm lẻ năm");
        assert_eq!(
            read_number_in(2_007, Dialect::South),
            "hai ngàn không trăm lẻ bảy"
        );
        assert_eq!(
            read_number_in(2_007, Dialect::North),
            "hai nghìn không trăm linh bảy"
        );
    }

    #[test]
    fn integers_decimals_and_leading_zeros() {
        let d = Dialect::North;
        assert_eq!(
            read_integer("1.250.000", d).unwrap(),
            "một triệu hai trăm năm mươi nghìn"
        );
        assert_eq!(read_integer("04", d).unwrap(), "bốn");
        assert_eq!(read_integer("007", d).unwrap(), "bảy");
        assert_eq!(read_integer("0214", d).unwrap(), "không hai một bốn");
        assert_eq!(read_integer("1.25", d), None);
        assert_eq!(read_decimal("2,5", d).unwrap(), "hai phẩy năm");
        assert_eq!(read_decimal("0,05", d).unwrap(), "không phẩy không năm");
        assert_eq!(
            read_decimal("1.250,75", d).unwrap(),
            "một nghìn hai trăm năm mươi phẩy bảy mươi lăm"
        );
        assert_eq!(read_decimal("2.5", d).unwrap(), "hai phẩy năm");
        assert_eq!(read_decimal("2,5a", d), None);
    }

    #[test]
    fn roman_numerals_parse_only_in_canonical_form() {
        for (s, v) in [
            ("I", 1),
            ("II", 2),
            ("IV", 4),
            ("IX", 9),
            ("XIII", 13),
            ("XV", 15),
            ("XIV", 14),
            ("XL", 40),
            ("MCMXLV", 1945),
        ] {
            assert_eq!(parse_roman(s), Some(v), "{s}");
        }
        for s in ["", "IIII", "VX", "IC", "ii", "A", "VV"] {
            assert_eq!(parse_roman(s), None, "{s}");
        }
        assert_eq!(read_ordinal(1, Dialect::North), "nhất");
        assert_eq!(read_ordinal(4, Dialect::North), "tư");
        assert_eq!(read_ordinal(12, Dialect::North), "mười hai");
    }
}
