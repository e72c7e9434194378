//! Vietnamese text normalisation before synthesis: numbers read the Vietnamese way (mười/mươi,
//! lăm/năm, mốt, linh, nghìn, triệu, tỷ), dates, times, percentages, decimals, units after a number,
//! phone numbers digit by digit, and abbreviations from a lexicon (built-in table plus the
//! operators' `tts_lexicon` rows, which win).
//!
//! Pure functions, no I/O: [`normalize`] takes the text and a [`Lexicon`].

use std::collections::HashMap;

const DIGITS: [&str; 10] = [
    "không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín",
];

/// Built-in abbreviations (term → expansion). Operators extend or override them in `tts_lexicon`.
pub const BUILTIN_LEXICON: &[(&str, &str)] = &[
    ("UBND", "Ủy ban nhân dân"),
    ("HĐND", "Hội đồng nhân dân"),
    ("TT&TT", "Thông tin và Truyền thông"),
    ("TTTT", "Thông tin và Truyền thông"),
    ("BHYT", "bảo hiểm y tế"),
    ("BHXH", "bảo hiểm xã hội"),
    ("BHTN", "bảo hiểm thất nghiệp"),
    ("THCS", "trung học cơ sở"),
    ("THPT", "trung học phổ thông"),
    ("CSGT", "cảnh sát giao thông"),
    ("MTTQ", "Mặt trận Tổ quốc"),
    ("PCCC", "phòng cháy chữa cháy"),
    ("ATGT", "an toàn giao thông"),
    ("CAND", "Công an nhân dân"),
    ("QĐND", "Quân đội nhân dân"),
    ("KT-XH", "kinh tế xã hội"),
    ("NTM", "nông thôn mới"),
    ("TP", "thành phố"),
    ("TW", "Trung ương"),
    ("VN", "Việt Nam"),
    ("CHXHCN", "Cộng hòa xã hội chủ nghĩa"),
    ("ĐBQH", "đại biểu Quốc hội"),
    ("PCTT", "phòng chống thiên tai"),
    ("TKCN", "tìm kiếm cứu nạn"),
    ("BCĐ", "Ban chỉ đạo"),
    ("Sở TT&TT", "Sở Thông tin và Truyền thông"),
];

/// Units read after a number (unit as written → reading).
const UNITS: &[(&str, &str)] = &[
    ("km/h", "ki lô mét trên giờ"),
    ("km2", "ki lô mét vuông"),
    ("km²", "ki lô mét vuông"),
    ("km", "ki lô mét"),
    ("m2", "mét vuông"),
    ("m²", "mét vuông"),
    ("m3", "mét khối"),
    ("m³", "mét khối"),
    ("cm", "xăng ti mét"),
    ("mm", "mi li mét"),
    ("m", "mét"),
    ("kg", "ki lô gam"),
    ("g", "gam"),
    ("ha", "héc ta"),
    ("°C", "độ C"),
    ("độC", "độ C"),
    ("l", "lít"),
    ("ml", "mi li lít"),
    ("tr", "triệu"),
    ("đ", "đồng"),
    ("VNĐ", "đồng"),
    ("VND", "đồng"),
    ("kWh", "ki lô oát giờ"),
    ("kW", "ki lô oát"),
    ("MW", "mê ga oát"),
];

/// Abbreviation table used by [`normalize`]: exact (case-sensitive) terms first, then a
/// case-insensitive match for terms of two or more letters.
#[derive(Debug, Clone, Default)]
pub struct Lexicon {
    exact: HashMap<String, String>,
    folded: HashMap<String, String>,
}

impl Lexicon {
    /// The built-in table.
    pub fn builtin() -> Lexicon {
        let mut l = Lexicon::default();
        for (t, e) in BUILTIN_LEXICON {
            l.insert(t, e);
        }
        l
    }

    /// Add or override one term.
    pub fn insert(&mut self, term: &str, expansion: &str) {
        let term = term.trim();
        if term.is_empty() {
            return;
        }
        self.exact.insert(term.to_string(), expansion.trim().to_string());
        if term.chars().count() >= 2 {
            self.folded
                .insert(term.to_lowercase(), expansion.trim().to_string());
        }
    }

    fn get(&self, word: &str) -> Option<&str> {
        self.exact
            .get(word)
            .or_else(|| {
                // Case-insensitive only for all-caps-looking input, so ordinary words ("tp" inside a
                // sentence) stay as written.
                if word
                    .chars()
                    .filter(|c| c.is_alphabetic())
                    .all(|c| c.is_uppercase())
                {
                    self.folded.get(&word.to_lowercase())
                } else {
                    None
                }
            })
            .map(String::as_str)
    }
}

/// Read a non-negative integer in Vietnamese words.
pub fn read_number(n: u64) -> String {
    let mut w = Vec::new();
    read_int(n, &mut w);
    w.join(" ")
}

fn read_int(n: u64, w: &mut Vec<&'static str>) {
    const BILLION: u64 = 1_000_000_000;
    if n == 0 {
        w.push("không");
    } else if n >= BILLION {
        read_int(n / BILLION, w);
        w.push("tỷ");
        let lo = n % BILLION;
        if lo > 0 {
            read_below_billion(lo, false, w);
        }
    } else {
        read_below_billion(n, true, w);
    }
}

fn read_below_billion(n: u64, leading: bool, w: &mut Vec<&'static str>) {
    let groups = [
        (n / 1_000_000, "triệu"),
        ((n / 1000) % 1000, "nghìn"),
        (n % 1000, ""),
    ];
    let mut first = leading;
    for (g, name) in groups {
        if g == 0 {
            continue;
        }
        read_triple(g, !first, w);
        if !name.is_empty() {
            w.push(name);
        }
        first = false;
    }
}

/// Three digits; `full` reads "không trăm" / "linh" as a group inside a larger number does.
fn read_triple(g: u64, full: bool, w: &mut Vec<&'static str>) {
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
                    w.push("linh");
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

fn read_digits(s: &str) -> String {
    s.chars()
        .filter_map(|c| c.to_digit(10))
        .map(|d| DIGITS[d as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn parse_small(s: &str) -> Option<u64> {
    if all_digits(s) && s.len() <= 18 {
        s.parse().ok()
    } else {
        None
    }
}

/// An integer as written: `1250`, `1.250`, `1.250.000` (dot as thousands separator); phone-like
/// numbers with a leading zero are read digit by digit.
fn read_integer_token(s: &str) -> Option<String> {
    if all_digits(s) {
        if s.len() > 1 && s.starts_with('0') {
            return Some(read_digits(s));
        }
        return parse_small(s).map(read_number);
    }
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() >= 2
        && all_digits(parts[0])
        && parts[0].len() <= 3
        && !parts[0].starts_with('0')
        && parts[1..].iter().all(|p| p.len() == 3 && all_digits(p))
    {
        return parse_small(&parts.concat()).map(read_number);
    }
    None
}

/// A number with an optional decimal comma: `2,5` → "hai phẩy năm", `1.250,75`.
fn read_decimal_token(s: &str) -> Option<String> {
    if let Some(i) = read_integer_token(s) {
        return Some(i);
    }
    let (int, frac) = s.split_once(',').or_else(|| {
        // `2.5` written the English way (not a thousands group).
        s.split_once('.').filter(|(_, f)| f.len() != 3)
    })?;
    let int_words = read_integer_token(int)?;
    if !all_digits(frac) {
        return None;
    }
    let frac_words = if frac.starts_with('0') {
        read_digits(frac)
    } else {
        read_number(parse_small(frac)?)
    };
    Some(format!("{int_words} phẩy {frac_words}"))
}

fn month_word(m: u64) -> String {
    if m == 4 { "tư".to_string() } else { read_number(m) }
}

/// `15/6/2025`, `15-6-2025`, `15/6`, and (after "tháng") `6/2025`.
fn read_date(s: &str, prev_word: &str) -> Option<String> {
    let sep = if s.contains('/') {
        '/'
    } else if s.contains('-') {
        '-'
    } else {
        return None;
    };
    let parts: Vec<&str> = s.split(sep).collect();
    if !parts.iter().all(|p| all_digits(p)) {
        return None;
    }
    let nums: Vec<u64> = parts.iter().map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let prev = prev_word.to_lowercase();
    let day_prefix = if prev == "ngày" || prev == "hôm" {
        ""
    } else {
        "ngày "
    };
    match nums.as_slice() {
        [d, m, y] if (1..=31).contains(d) && (1..=12).contains(m) && parts[2].len() == 4 => Some(format!(
            "{day_prefix}{} tháng {} năm {}",
            read_number(*d),
            month_word(*m),
            read_number(*y)
        )),
        [m, y] if prev == "tháng" && (1..=12).contains(m) && parts[1].len() == 4 => {
            Some(format!("{} năm {}", month_word(*m), read_number(*y)))
        }
        [d, m] if sep == '/' && (1..=31).contains(d) && (1..=12).contains(m) && parts[1].len() <= 2 => Some(
            format!("{day_prefix}{} tháng {}", read_number(*d), month_word(*m)),
        ),
        _ => None,
    }
}

/// `7h30`, `7h`, `07:30`, `7g30`, `7h30'`, `07:30:15`.
fn read_time(s: &str) -> Option<String> {
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
    let mut out = format!("{} giờ", read_number(hour));
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
        out.push_str(&format!(" {} phút", read_number(minute)));
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
            out.push_str(&format!(" {} giây", read_number(second)));
        }
    }
    Some(out)
}

fn unit_reading(u: &str) -> Option<&'static str> {
    UNITS.iter().find(|(k, _)| *k == u).map(|(_, v)| *v)
}

/// A token made of a number glued to a unit or percent sign: `45%`, `50km`, `25°C`, `2,5%`.
fn read_number_with_suffix(s: &str) -> Option<String> {
    if let Some(n) = s.strip_suffix('%') {
        return read_decimal_token(n).map(|w| format!("{w} phần trăm"));
    }
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))?;
    if split == 0 {
        return None;
    }
    let (n, u) = s.split_at(split);
    let words = read_decimal_token(n)?;
    let unit = unit_reading(u)?;
    Some(format!("{words} {unit}"))
}

/// Read one core token (no surrounding punctuation) if it is a number, date, time, percentage or
/// number with unit.
fn read_numeric(core: &str, prev_word: &str) -> Option<String> {
    if !core.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    read_time(core)
        .or_else(|| read_date(core, prev_word))
        .or_else(|| read_decimal_token(core))
        .or_else(|| read_number_with_suffix(core))
        .or_else(|| {
            // Ranges: `7h30-9h`, `10-15%`, `2024-2025`.
            let (a, b) = core.split_once('-')?;
            let b_read = read_numeric(b, "")?;
            let a_read = read_numeric(a, prev_word).or_else(|| {
                // `10-15%`: the first part borrows the suffix's reading.
                read_decimal_token(a)
            })?;
            Some(format!("{a_read} đến {b_read}"))
        })
}

fn is_trim_punct(c: char) -> bool {
    matches!(
        c,
        '.' | ',' | ';' | ':' | '!' | '?' | '(' | ')' | '"' | '\'' | '“' | '”' | '«' | '»' | '[' | ']' | '…'
    )
}

/// Normalise Vietnamese text for speech. Whitespace is collapsed; punctuation around tokens is kept
/// (it shapes the synthesiser's pauses).
pub fn normalize(text: &str, lexicon: &Lexicon) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut prev_word = String::new();
    let mut prev_was_number = false;
    let chunks: Vec<&str> = text.split_whitespace().collect();
    let mut i = 0;
    while i < chunks.len() {
        let chunk = chunks[i];
        i += 1;
        // Multi-word lexicon terms ("Sở TT&TT") first.
        if i < chunks.len() {
            let pair = format!("{chunk} {}", chunks[i].trim_end_matches(is_trim_punct));
            if let Some(e) = lexicon.get(&pair) {
                let tail = &chunks[i][chunks[i].trim_end_matches(is_trim_punct).len()..];
                out.push(format!("{e}{tail}"));
                i += 1;
                prev_word = String::new();
                prev_was_number = false;
                continue;
            }
        }
        let start = chunk.len() - chunk.trim_start_matches(is_trim_punct).len();
        let core = chunk
            .trim_start_matches(is_trim_punct)
            .trim_end_matches(is_trim_punct);
        if core.is_empty() {
            out.push(chunk.to_string());
            continue;
        }
        let lead = &chunk[..start];
        let mut tail = &chunk[start + core.len()..];
        if tail.starts_with('\'') && core.contains('h') {
            tail = &tail[1..];
        }
        let reading = if let Some(e) = lexicon.get(core) {
            prev_was_number = false;
            e.to_string()
        } else if let Some(r) = read_numeric(core, &prev_word) {
            prev_was_number = true;
            r
        } else if prev_was_number && let Some(u) = unit_reading(core) {
            prev_was_number = false;
            u.to_string()
        } else if let Some(stem) = core.strip_suffix('%') {
            // "45 %" style or a word ending in % — read the sign.
            prev_was_number = false;
            format!("{stem} phần trăm").trim().to_string()
        } else if let Some(e) = core.strip_suffix("&") {
            prev_was_number = false;
            format!("{e} và")
        } else {
            prev_was_number = false;
            if core.contains('&') {
                core.replace('&', " và ")
            } else {
                core.to_string()
            }
        };
        prev_word = core.to_string();
        out.push(
            format!("{lead}{reading}{tail}")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        normalize(s, &Lexicon::builtin())
    }

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
    fn dates_times_percentages_and_units_are_spelled_out() {
        assert_eq!(
            n("15/6/2025"),
            "ngày mười lăm tháng sáu năm hai nghìn không trăm hai mươi lăm"
        );
        assert_eq!(
            n("ngày 1/4/2025"),
            "ngày một tháng tư năm hai nghìn không trăm hai mươi lăm"
        );
        assert_eq!(n("7h30"), "bảy giờ ba mươi phút");
        assert_eq!(n("07:30"), "bảy giờ ba mươi phút");
        assert_eq!(n("lúc 7h."), "lúc bảy giờ.");
        assert_eq!(n("45%"), "bốn mươi lăm phần trăm");
        assert_eq!(n("2,5%"), "hai phẩy năm phần trăm");
        assert_eq!(n("1.250 người"), "một nghìn hai trăm năm mươi người");
        assert_eq!(
            n("dài 12 km, rộng 3,5m"),
            "dài mười hai ki lô mét, rộng ba phẩy năm mét"
        );
        assert_eq!(n("nhiệt độ 38°C"), "nhiệt độ ba mươi tám độ C");
        assert_eq!(n("300 ha lúa"), "ba trăm héc ta lúa");
        assert_eq!(
            n("gọi 0912345678"),
            "gọi không chín một hai ba bốn năm sáu bảy tám"
        );
        assert_eq!(n("7h30-9h"), "bảy giờ ba mươi phút đến chín giờ");
    }

    #[test]
    fn abbreviations_expand_and_the_operator_table_wins() {
        assert_eq!(
            n("UBND xã và HĐND huyện"),
            "Ủy ban nhân dân xã và Hội đồng nhân dân huyện"
        );
        assert_eq!(n("(BHYT)"), "(bảo hiểm y tế)");
        assert_eq!(n("Sở TT&TT tỉnh"), "Sở Thông tin và Truyền thông tỉnh");
        assert_eq!(
            n("học sinh THCS, THPT."),
            "học sinh trung học cơ sở, trung học phổ thông."
        );
        let mut l = Lexicon::builtin();
        l.insert("UBND", "Ủy ban");
        l.insert("HTX", "hợp tác xã");
        assert_eq!(normalize("UBND và HTX", &l), "Ủy ban và hợp tác xã");
        // Plain words that only look like a lexicon term in lower case stay as written.
        assert_eq!(n("tp"), "tp");
    }
}
