//! Vietnamese text normalisation before synthesis. The text is cut at whitespace; each chunk
//! keeps the punctuation around it (it shapes the synthesiser's pauses) and its core is read in
//! its context: abbreviations from the [`Lexicon`] (one or two words), phone numbers written in
//! digit groups (`0214 3820 000`), the hotlines 111–115 digit by digit unless a count word or a
//! quantity word around them makes them a quantity, Roman numerals and ordinals after their cue
//! words (`quý II`, `kỳ họp thứ IX`, `thứ 12`), the written forms of `super::forms` (times,
//! dates, ranges, money, decimals, percentages, units, ratios), units after a number and slashes
//! between words (`đồng/người` → "đồng mỗi người", `km/h`).
//!
//! Pure functions, no I/O: [`normalize_in`] takes the text, a [`Lexicon`] and a [`Dialect`].

use super::forms::read_numeric;
use super::lexicon::Lexicon;
use super::numbers::{Dialect, all_digits, parse_roman, read_digits, read_number_in, read_ordinal};
use super::words::{
    COUNT_WORDS, PER_WORDS, PHONE_CUES, QUANTITY_CUES, ROMAN_CUES, ROMAN_CUES_2, standalone_unit, unit,
};

fn is_trim_punct(c: char) -> bool {
    matches!(
        c,
        '.' | ',' | ';' | ':' | '!' | '?' | '(' | ')' | '"' | '\'' | '“' | '”' | '«' | '»' | '[' | ']' | '…'
    )
}

/// One whitespace-separated piece of the text: punctuation before, the core, punctuation after.
#[derive(Debug, Clone, Copy)]
struct Chunk<'a> {
    lead: &'a str,
    core: &'a str,
    tail: &'a str,
}

impl<'a> Chunk<'a> {
    fn new(s: &'a str) -> Chunk<'a> {
        let core_start = s.len() - s.trim_start_matches(is_trim_punct).len();
        let core = s[core_start..].trim_end_matches(is_trim_punct);
        let (lead, rest) = s.split_at(core_start);
        let mut tail = &rest[core.len()..];
        // `7h30'`: the minute mark belongs to the time.
        if tail.starts_with('\'') && core.contains('h') {
            tail = &tail[1..];
        }
        Chunk { lead, core, tail }
    }
}

/// Normalise Vietnamese text for speech with Northern number words.
pub fn normalize(text: &str, lexicon: &Lexicon) -> String {
    normalize_in(text, lexicon, Dialect::North)
}

/// Normalise Vietnamese text for speech in `dialect`. Whitespace is collapsed.
pub fn normalize_in(text: &str, lexicon: &Lexicon, dialect: Dialect) -> String {
    normalize_pieces(text, lexicon, dialect)
        .into_iter()
        .map(|p| p.read)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One piece of a text and how it is read: the bulletin editor shows these so an editor can
/// correct the reading of a word and add it to the lexicon.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Piece {
    /// The words as written, punctuation included.
    pub written: String,
    /// The words without the punctuation around them (a lexicon term).
    pub term: String,
    /// How they are read, punctuation included.
    pub read: String,
}

/// [`normalize_in`], piece by piece.
pub fn normalize_pieces(text: &str, lexicon: &Lexicon, dialect: Dialect) -> Vec<Piece> {
    let raw: Vec<&str> = text.split_whitespace().collect();
    let chunks: Vec<Chunk> = raw.iter().map(|s| Chunk::new(s)).collect();
    let mut r = Reader {
        lexicon,
        d: dialect,
        out: Vec::new(),
        prev_word: String::new(),
        prev2_word: String::new(),
        prev_number: false,
        hotline_chain: false,
        roman_chain: false,
    };
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < chunks.len() {
        let before = r.out.len();
        let used = r.step(&chunks, i);
        let read = r.out[before..].join(" ");
        let term = chunks[i..i + used]
            .iter()
            .map(|c| c.core)
            .collect::<Vec<_>>()
            .join(" ");
        pieces.push(Piece {
            written: raw[i..i + used].join(" "),
            term,
            read,
        });
        i += used;
    }
    pieces
}

struct Reader<'a> {
    lexicon: &'a Lexicon,
    d: Dialect,
    out: Vec<String>,
    /// The core of the previous chunk as written.
    prev_word: String,
    /// The core of the chunk before that.
    prev2_word: String,
    /// The previous chunk was read as a number (a unit may follow).
    prev_number: bool,
    /// The previous number was a hotline and only connectors came since (`113, 114 hoặc 115`).
    hotline_chain: bool,
    /// The previous word was a Roman numeral read as a number and only connectors came since
    /// (`khu vực I, II và III`).
    roman_chain: bool,
}

impl Reader<'_> {
    fn emit(&mut self, lead: &str, reading: &str, tail: &str) {
        let s = format!("{lead}{reading}{tail}");
        self.out.push(s.split_whitespace().collect::<Vec<_>>().join(" "));
    }

    /// Read chunks from `i`; returns how many were consumed.
    fn step(&mut self, chunks: &[Chunk], i: usize) -> usize {
        let c = chunks[i];
        let next = chunks.get(i + 1);
        // Two-word lexicon terms ("Sở TT&TT").
        if let Some(n) = next
            && c.tail.is_empty()
            && n.lead.is_empty()
            && let Some(e) = self.lexicon.get(&format!("{} {}", c.core, n.core))
        {
            let e = e.to_string();
            self.emit(c.lead, &e, n.tail);
            self.set_prev(n.core, false);
            return 2;
        }
        if let Some((reading, used)) = phone_groups(chunks, i) {
            let last = chunks[i + used - 1];
            self.emit(
                c.lead.trim_end_matches('('),
                &reading,
                last.tail.trim_start_matches(')'),
            );
            self.set_prev(last.core, false);
            return used;
        }
        if c.core.is_empty() {
            self.out.push(format!("{}{}", c.lead, c.tail));
            return 1;
        }
        // A dash between two numbers: `150 - 250 mm`.
        if (c.core == "-" || c.core == "–")
            && self.prev_number
            && next.is_some_and(|n| n.core.starts_with(|ch: char| ch.is_ascii_digit()))
        {
            self.emit(c.lead, "đến", c.tail);
            self.prev_number = false;
            return 1;
        }
        // `Km 8 + 500`.
        if c.core == "+" && self.prev_number {
            self.emit(c.lead, "cộng", c.tail);
            self.prev_number = false;
            return 1;
        }
        // The next word counts only inside the same clause (`115, công an` is a hotline).
        let next_word = next
            .filter(|_| c.tail.is_empty())
            .map(|n| n.core.to_lowercase())
            .unwrap_or_default();
        let (mut reading, mut is_number) = self.read_core(c.core, &next_word);
        if self.lexicon.get(c.core).is_some() && self.at_sentence_start() {
            reading = capitalise(&reading);
        }
        // `2 triệu m3`: a number word keeps the number going for the unit after it.
        if self.prev_number && matches!(c.core, "nghìn" | "ngàn" | "triệu" | "tỷ" | "trăm" | "chục")
        {
            is_number = true;
        }
        self.emit(c.lead, &reading, c.tail);
        self.set_prev(c.core, is_number);
        1
    }

    fn at_sentence_start(&self) -> bool {
        self.out
            .last()
            .is_none_or(|l| l.ends_with(['.', '!', '?', ':', '\n']))
    }

    fn set_prev(&mut self, core: &str, is_number: bool) {
        let connector = matches!(core.to_lowercase().as_str(), "và" | "hoặc" | "hay" | "/" | "đến");
        if !is_number && !connector {
            self.hotline_chain = false;
        }
        if !connector && parse_roman(core).is_none() {
            self.roman_chain = false;
        }
        self.prev2_word = std::mem::take(&mut self.prev_word);
        self.prev_word = core.to_string();
        self.prev_number = is_number;
    }

    /// The reading of one core and whether it was a number.
    fn read_core(&mut self, core: &str, next_word: &str) -> (String, bool) {
        let d = self.d;
        let prev = self.prev_word.to_lowercase();
        // Roman numerals after their cue words: `quý II`, `khóa XV`, `thứ IX`, `quý II/2025`,
        // `báo động III`, and those that follow one (`khu vực I, II và III`).
        let cue2 = format!("{} {prev}", self.prev2_word.to_lowercase());
        if ROMAN_CUES.contains(&prev.as_str()) || ROMAN_CUES_2.contains(&cue2.as_str()) || self.roman_chain {
            let (roman, year) = match core.split_once('/') {
                Some((r, y)) if y.len() == 4 && all_digits(y) => (r, Some(y)),
                _ => (core, None),
            };
            if let Some(v) = parse_roman(roman) {
                let mut s = if prev == "thứ" {
                    read_ordinal(v, d)
                } else {
                    read_number_in(v, d)
                };
                if let Some(y) = year {
                    s.push_str(&format!(" năm {}", read_number_in(y.parse().unwrap_or(0), d)));
                }
                self.roman_chain = true;
                return (s, false);
            }
        }
        if let Some(e) = self.lexicon.get(core) {
            return (e.to_string(), false);
        }
        // Ordinals: `thứ 12`, `thứ 4`.
        if prev == "thứ"
            && all_digits(core)
            && let Ok(v) = core.parse::<u64>()
        {
            return (read_ordinal(v, d), true);
        }
        // Hotlines: `gọi 114`, `113, 114 hoặc 115`; not `115 hộ`, `có 112 người`.
        if matches!(core, "111" | "112" | "113" | "114" | "115")
            && (self.hotline_chain
                || !(COUNT_WORDS.contains(&next_word)
                    || QUANTITY_CUES.contains(&prev.as_str())
                    || self.prev_number))
        {
            self.hotline_chain = true;
            return (read_digits(core), true);
        }
        self.hotline_chain = false;
        // A number to dial after its cue: `đường dây nóng 1022`, `gọi 19001234`; not `gọi 100 người`.
        if PHONE_CUES.contains(&prev.as_str())
            && all_digits(core)
            && (3..=12).contains(&core.len())
            && !COUNT_WORDS.contains(&next_word)
        {
            return (read_digits(core), true);
        }
        // A negative number (`-1°C`, `xuống -2 độ`), or after a number the end of a range (`8 -11`).
        if let Some(rest) = core.strip_prefix(['-', '−', '–'])
            && let Some(r) = read_numeric(rest, "", d)
        {
            let word = if self.prev_number { "đến" } else { "âm" };
            return (format!("{word} {r}"), true);
        }
        if let Some(r) = self.read_document_number(core) {
            return (r, false);
        }
        if let Some(r) = read_numeric(core, &self.prev_word, d) {
            return (r, true);
        }
        if self.prev_number
            && let Some(u) = standalone_unit(core)
        {
            return (u.to_string(), true);
        }
        if let Some(r) = self.read_slash(core) {
            return (r, false);
        }
        if let Some(stem) = core.strip_suffix('%') {
            return (format!("{stem} phần trăm").trim().to_string(), false);
        }
        // Words with a number after a hyphen: `Covid-19`, `H5N1` stays.
        if let Some((w, n)) = core.split_once('-')
            && !w.is_empty()
            && let Some(r) = read_numeric(n, "", d)
        {
            let w = self
                .lexicon
                .get(w)
                .map(str::to_string)
                .unwrap_or_else(|| w.to_string());
            return (format!("{w} {r}"), true);
        }
        if core.contains('&') {
            return (core.replace('&', " và "), false);
        }
        (core.to_string(), false)
    }

    /// A document number `100/2019/NĐ-CP` → "một trăm năm hai nghìn không trăm mười chín nghị
    /// định của Chính phủ": number, year, then the issuer code from the lexicon (or as written).
    fn read_document_number(&self, core: &str) -> Option<String> {
        let mut parts = core.splitn(3, '/');
        let (n, y, code) = (parts.next()?, parts.next()?, parts.next()?);
        if !all_digits(n) || y.len() != 4 || !all_digits(y) || !code.chars().any(char::is_alphabetic) {
            return None;
        }
        let code = self
            .lexicon
            .get(code)
            .map(str::to_string)
            .unwrap_or_else(|| code.replace('-', " "));
        Some(format!(
            "{} năm {} {code}",
            read_number_in(n.parse().ok()?, self.d),
            read_number_in(y.parse().ok()?, self.d)
        ))
    }

    /// `đồng/người` → "đồng mỗi người", `kg/ha` → "ki lô gam mỗi héc ta", `m/s` → "mét trên
    /// giây", `CCCD/CMND` → "căn cước công dân hoặc chứng minh nhân dân", `và/hoặc`.
    fn read_slash(&self, core: &str) -> Option<String> {
        let (a, b) = core.rsplit_once('/')?;
        if a.is_empty() || b.is_empty() || !b.chars().all(char::is_alphanumeric) {
            return None;
        }
        if a.to_lowercase() == "và" && b.to_lowercase() == "hoặc" {
            return Some("và hoặc".into());
        }
        let word = |w: &str| -> String {
            self.lexicon
                .get(w)
                .or_else(|| unit(w))
                .map(str::to_string)
                .unwrap_or_else(|| w.to_string())
        };
        let left = if a.starts_with(|c: char| c.is_ascii_digit()) {
            read_numeric(a, "", self.d)?
        } else if a.contains('/') {
            self.read_slash(a)?
        } else {
            word(a)
        };
        let lower = b.to_lowercase();
        let money = matches!(a, "đ" | "đồng" | "VNĐ" | "VND");
        let connector = if unit(a).is_some() && unit(b).is_some() && !money {
            "trên"
        } else if PER_WORDS.contains(&lower.as_str()) || unit(b).is_some() {
            // Per a word that counts (`đồng/người`) or a unit (`người/km2`, `đ/kg`).
            "mỗi"
        } else {
            "hoặc"
        };
        Some(format!("{left} {connector} {}", word(b)))
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A phone number written in digit groups over several chunks: `0214 3820 000`,
/// `0912 345 678`, `(0214) 3820 000`, `1900 1234`, `+84 912 345 678`. Each group is read digit by
/// digit and the groups are separated by commas (a pause). Returns the reading and the chunks
/// consumed.
fn phone_groups(chunks: &[Chunk], i: usize) -> Option<(String, usize)> {
    let first = chunks[i];
    let lead_ok = first.lead.is_empty() || first.lead == "(";
    let (plus, head) = match first.core.strip_prefix("+84") {
        Some("") => (true, "84"),
        _ => (false, first.core),
    };
    let head_ok = all_digits(head)
        && (plus
            || (head.starts_with('0') && (3..=5).contains(&head.len()))
            || head == "1800"
            || head == "1900");
    if !lead_ok || !head_ok || !(first.tail.is_empty() || first.tail == ")") {
        return None;
    }
    let mut groups = vec![head];
    let mut j = i + 1;
    while let Some(c) = chunks.get(j) {
        if !c.lead.is_empty() || !all_digits(c.core) || !(2..=4).contains(&c.core.len()) {
            break;
        }
        groups.push(c.core);
        j += 1;
        if !c.tail.is_empty() || groups.len() == 5 {
            break;
        }
    }
    let digits: usize = groups.iter().map(|g| g.len()).sum();
    if groups.len() < 2 || !(8..=13).contains(&digits) {
        return None;
    }
    let mut read: Vec<String> = groups.iter().map(|g| read_digits(g)).collect();
    if plus {
        read[0] = format!("cộng {}", read[0]);
    }
    Some((read.join(", "), j - i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        normalize(s, &Lexicon::builtin())
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
        assert_eq!(n("lúc 7h."), "lúc bảy giờ.");
        assert_eq!(n("45%"), "bốn mươi lăm phần trăm");
        assert_eq!(
            n("dài 12 km, rộng 3,5m"),
            "dài mười hai ki lô mét, rộng ba phẩy năm mét"
        );
        assert_eq!(n("300 ha lúa"), "ba trăm héc ta lúa");
        assert_eq!(
            n("gọi 0912345678"),
            "gọi không chín một hai ba bốn năm sáu bảy tám"
        );
        assert_eq!(n("7h30-9h"), "bảy giờ ba mươi phút đến chín giờ");
    }

    #[test]
    fn hotlines_are_read_digit_by_digit_unless_they_count_something() {
        assert_eq!(n("gọi 114"), "gọi một một bốn");
        assert_eq!(
            n("Gọi ngay 113, 114 hoặc 115."),
            "Gọi ngay một một ba, một một bốn hoặc một một năm."
        );
        assert_eq!(n("có 115 hộ"), "có một trăm mười lăm hộ");
        assert_eq!(
            n("cấp cứu 115, công an 113"),
            "cấp cứu một một năm, công an một một ba"
        );
        assert_eq!(n("114 người"), "một trăm mười bốn người");
        assert_eq!(n("từ 100 đến 115"), "từ một trăm đến một trăm mười lăm");
    }

    #[test]
    fn phone_numbers_are_read_in_their_groups() {
        assert_eq!(
            n("liên hệ 0214 3820 000."),
            "liên hệ không hai một bốn, ba tám hai không, không không không."
        );
        assert_eq!(
            n("(0214) 3820 000"),
            "không hai một bốn, ba tám hai không, không không không"
        );
        assert_eq!(
            n("+84 912 345 678"),
            "cộng tám bốn, chín một hai, ba bốn năm, sáu bảy tám"
        );
        assert_eq!(n("1900 1234"), "một chín không không, một hai ba bốn");
        // Two counts side by side are not a phone number.
        assert_eq!(n("04 trường hợp"), "bốn trường hợp");
    }

    #[test]
    fn roman_numerals_and_ordinals_follow_their_cue_words() {
        assert_eq!(n("quý II"), "quý hai");
        assert_eq!(n("Quốc hội khóa XV"), "Quốc hội khóa mười lăm");
        assert_eq!(n("kỳ họp thứ IX"), "kỳ họp thứ chín");
        assert_eq!(n("lần thứ I"), "lần thứ nhất");
        assert_eq!(n("Chương III, Điều IV"), "Chương ba, Điều bốn");
        assert_eq!(n("quý II/2025"), "quý hai năm hai nghìn không trăm hai mươi lăm");
        assert_eq!(n("thứ 12"), "thứ mười hai");
        assert_eq!(n("Thứ 4"), "Thứ tư");
        assert_eq!(n("vitamin C"), "vitamin C");
    }

    #[test]
    fn negative_numbers_read_am() {
        assert_eq!(n("xuống -1°C"), "xuống âm một độ C");
        assert_eq!(n("từ -3 đến -1 độ C"), "từ âm ba đến âm một độ C");
        assert_eq!(n("8 -11 độ"), "tám đến mười một độ");
    }

    #[test]
    fn roman_numerals_after_two_word_cues_and_in_lists() {
        assert_eq!(n("trên báo động II 0,4m"), "trên báo động hai không phẩy bốn mét");
        assert_eq!(n("Khu vực I, II và III"), "Khu vực một, hai và ba");
        assert_eq!(n("quý I đến quý III"), "quý một đến quý ba");
        assert_eq!(n("khóa XV và CCB"), "khóa mười lăm và cựu chiến binh");
        assert_eq!(n("Đội I"), "Đội I");
    }

    #[test]
    fn numbers_to_dial_after_their_cue_words() {
        assert_eq!(n("đường dây nóng 1022."), "đường dây nóng một không hai hai.");
        assert_eq!(
            n("Tổng đài: 18001091"),
            "Tổng đài: một tám không không một không chín một"
        );
        assert_eq!(n("gọi 1080"), "gọi một không tám không");
        assert_eq!(n("gọi 100 người"), "gọi một trăm người");
        assert_eq!(n("nắng nóng 38 độ"), "nắng nóng ba mươi tám độ");
    }

    #[test]
    fn streets_named_after_dates_and_lists_of_days() {
        assert_eq!(n("đường 30/4"), "đường ba mươi tháng tư");
        assert_eq!(
            n("các ngày 28, 29/12"),
            "các ngày hai mươi tám, hai mươi chín tháng mười hai"
        );
        assert_eq!(n("Quốc khánh 2/9"), "Quốc khánh ngày hai tháng chín");
    }

    #[test]
    fn slashes_read_as_ratios_each_or_per() {
        assert_eq!(n("500 người/km2"), "năm trăm người mỗi ki lô mét vuông");
        assert_eq!(n("25.000 đ/kg"), "hai mươi lăm nghìn đồng mỗi ki lô gam");
        assert_eq!(n("5 m/s"), "năm mét trên giây");
        assert_eq!(n("HIV/AIDS"), "HIV AIDS");
        assert_eq!(n("trực 24/24"), "trực hai mươi bốn trên hai mươi bốn");
        assert_eq!(n("50.000 đồng/người"), "năm mươi nghìn đồng mỗi người");
        assert_eq!(n("60 km/h"), "sáu mươi ki lô mét trên giờ");
        assert_eq!(n("CCCD/CMND"), "căn cước công dân hoặc chứng minh nhân dân");
    }

    #[test]
    fn pieces_pair_what_is_written_with_how_it_is_read() {
        let p = normalize_pieces(
            "Mang CCCD, gọi 0214 3820 000.",
            &Lexicon::builtin(),
            Dialect::North,
        );
        let pairs: Vec<(&str, &str, &str)> = p
            .iter()
            .map(|p| (p.written.as_str(), p.term.as_str(), p.read.as_str()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("Mang", "Mang", "Mang"),
                ("CCCD,", "CCCD", "căn cước công dân,"),
                ("gọi", "gọi", "gọi"),
                (
                    "0214 3820 000.",
                    "0214 3820 000",
                    "không hai một bốn, ba tám hai không, không không không."
                ),
            ]
        );
    }

    #[test]
    fn southern_voices_read_le_and_ngan() {
        let l = Lexicon::builtin();
        assert_eq!(normalize_in("105 hộ", &l, Dialect::South), "một trăm lẻ năm hộ");
        assert_eq!(
            normalize_in("2.500 người", &l, Dialect::South),
            "hai ngàn năm trăm người"
        );
        assert_eq!(
            normalize_in("2.500 người", &l, Dialect::North),
            "hai nghìn năm trăm người"
        );
    }

    #[test]
    fn abbreviations_expand_and_the_operator_table_wins() {
        assert_eq!(
            n("UBND xã và HĐND huyện"),
            "Ủy ban nhân dân xã và Hội đồng nhân dân huyện"
        );
        assert_eq!(n("thẻ (BHYT)"), "thẻ (bảo hiểm y tế)");
        assert_eq!(n("TTYT huyện. TYT xã"), "Trung tâm y tế huyện. Trạm y tế xã");
        assert_eq!(n("Sở TT&TT tỉnh"), "Sở Thông tin và Truyền thông tỉnh");
        assert_eq!(n("làm CCCD"), "làm căn cước công dân");
        let mut l = Lexicon::builtin();
        l.insert("UBND", "Ủy ban");
        l.insert("HTX", "hợp tác xã");
        assert_eq!(normalize("UBND và HTX", &l), "Ủy ban và hợp tác xã");
        assert_eq!(n("tp"), "tp");
    }
}
