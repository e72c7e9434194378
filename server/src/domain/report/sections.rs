//! The report's sections beyond the broadcast table (issue 13): bulletins and boards (published,
//! proof of display), the breakdown of plays and displays by language and content category, the
//! distinct counts (programmes, bulletins) per commune, district and total, and the form around
//! the figures: the reporting unit, the heading of the official form and the signature block.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::AreaReport;

/// A proof-of-display record as the report reads it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportDisplay {
    /// Board.
    pub device_id: String,
    /// Bulletin shown.
    pub bulletin_id: String,
    /// Shown from (unix ms).
    pub shown_from: i64,
    /// Shown until (unix ms).
    pub shown_to: i64,
    /// The bulletin's category.
    pub category: String,
    /// The language shown (the board's, else `vi`).
    pub language: String,
}

/// A bulletin published in the period.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublishedBulletin {
    /// Id.
    pub id: String,
    /// Target areas.
    pub targets: Vec<String>,
}

/// One line of the breakdown: plays and displays of one language or one category.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Breakdown {
    /// `language` or `category`.
    pub dimension: String,
    /// The language code or category (empty: not known, e.g. audio not made from a bulletin).
    pub key: String,
    /// Plays on air.
    pub plays: i64,
    /// Minutes on air.
    pub minutes: f64,
    /// Proof-of-display records.
    pub displays: i64,
    /// Minutes on screen.
    pub display_minutes: f64,
}

/// Collects the breakdown.
#[derive(Debug, Default)]
pub(super) struct BreakdownBuilder(BTreeMap<(&'static str, String), Breakdown>);

impl BreakdownBuilder {
    fn line(&mut self, dimension: &'static str, key: &str) -> &mut Breakdown {
        self.0
            .entry((dimension, key.to_string()))
            .or_insert_with(|| Breakdown {
                dimension: dimension.into(),
                key: key.into(),
                plays: 0,
                minutes: 0.0,
                displays: 0,
                display_minutes: 0.0,
            })
    }

    pub(super) fn play(&mut self, language: &str, category: &str, minutes: f64) {
        for (dim, key) in [("language", language), ("category", category)] {
            let l = self.line(dim, key);
            l.plays += 1;
            l.minutes += minutes;
        }
    }

    pub(super) fn display(&mut self, language: &str, category: &str, minutes: f64) {
        for (dim, key) in [("language", language), ("category", category)] {
            let l = self.line(dim, key);
            l.displays += 1;
            l.display_minutes += minutes;
        }
    }

    /// Languages first, then categories, each by key.
    pub(super) fn finish(self) -> Vec<Breakdown> {
        let (mut out, categories): (Vec<_>, Vec<_>) =
            self.0.into_values().partition(|b| b.dimension == "language");
        out.extend(categories);
        out
    }
}

/// Distinct things per commune, district and in total.
#[derive(Debug, Default)]
pub(super) struct Distinct {
    sets: HashMap<(Kind, Level, String), HashSet<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Programme,
    Shown,
    Published,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Level {
    Row,
    District,
    Total,
}

impl Distinct {
    fn add(&mut self, kind: Kind, unit: &str, district: &str, value: &str) {
        if value.is_empty() {
            return;
        }
        for (level, key) in [
            (Level::Row, unit),
            (Level::District, district),
            (Level::Total, ""),
        ] {
            self.sets
                .entry((kind, level, key.to_string()))
                .or_default()
                .insert(value.to_string());
        }
    }

    pub(super) fn programme(&mut self, unit: &str, district: &str, sha256: &str) {
        self.add(Kind::Programme, unit, district, sha256);
    }

    pub(super) fn shown(&mut self, unit: &str, district: &str, bulletin: &str) {
        self.add(Kind::Shown, unit, district, bulletin);
    }

    pub(super) fn published(&mut self, unit: &str, district: &str, bulletin: &str) {
        self.add(Kind::Published, unit, district, bulletin);
    }

    fn set(&self, level: Level, key: &str, r: &mut AreaReport) {
        let n = |k: Kind| {
            self.sets
                .get(&(k, level, key.to_string()))
                .map_or(0, |s| s.len() as i64)
        };
        r.programmes = n(Kind::Programme);
        r.bulletins_shown = n(Kind::Shown);
        r.bulletins_published = n(Kind::Published);
    }

    pub(super) fn set_row(&self, r: &mut AreaReport) {
        let code = r.code.clone();
        self.set(Level::Row, &code, r);
    }

    pub(super) fn set_district(&self, r: &mut AreaReport) {
        let code = r.code.clone();
        self.set(Level::District, &code, r);
    }

    pub(super) fn set_total(&self, r: &mut AreaReport) {
        self.set(Level::Total, "", r);
    }
}

/// The official form around the figures: who reports, for which period, and who signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Form {
    /// The reporting unit (đơn vị báo cáo), e.g. `UBND tỉnh Lào Cai`.
    pub unit: String,
    /// The national heading, first line.
    pub nation: String,
    /// The national heading, motto.
    pub motto: String,
    /// The report's title.
    pub title: String,
    /// The legal basis of the periods.
    pub basis: String,
    /// `Kỳ báo cáo: từ ngày … đến ngày …`.
    pub period: String,
    /// Place and date line above the signatures (`…, ngày 14 tháng 6 năm 2026`).
    pub dated: String,
    /// The signature block: (role, note) left to right.
    pub signatures: Vec<(String, String)>,
}

/// The reporting unit for a caller: the name of the single top area of the scope (the
/// province for a provincial user), prefixed `UBND` unless it already names an office.
pub fn reporting_unit(top_area_names: &[String]) -> String {
    match top_area_names {
        [one] if one.to_uppercase().starts_with("UBND") || one.starts_with("Sở") => one.clone(),
        [one] => format!("UBND {}", lower_first(one)),
        [] => "UBND".into(),
        many => format!(
            "UBND {}",
            many.iter().map(|n| lower_first(n)).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// `Tỉnh Lào Cai` → `tỉnh Lào Cai` (the unit's kind is written in lower case after `UBND`).
fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) if s.split_whitespace().count() > 1 => f.to_lowercase().chain(c).collect(),
        Some(f) => std::iter::once(f).chain(c).collect(),
        None => String::new(),
    }
}

/// The form for `unit` over `from`–`to` (dd/mm/yyyy), signed on `today` (dd, mm, yyyy).
pub fn form(unit: &str, from: &str, to: &str, today: (u32, u32, i32)) -> Form {
    Form {
        unit: unit.to_string(),
        nation: "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM".into(),
        motto: "Độc lập - Tự do - Hạnh phúc".into(),
        title: "BÁO CÁO KẾT QUẢ HOẠT ĐỘNG THÔNG TIN CƠ SỞ".into(),
        basis: "Theo Nghị định số 09/2019/NĐ-CP quy định về chế độ báo cáo của cơ quan hành chính nhà nước"
            .into(),
        period: format!("Kỳ báo cáo: từ ngày {from} đến ngày {to}"),
        dated: format!("…………, ngày {} tháng {} năm {}", today.0, today.1, today.2),
        signatures: vec![
            ("NGƯỜI LẬP BIỂU".into(), "(Ký, ghi rõ họ tên)".into()),
            ("THỦ TRƯỞNG ĐƠN VỊ".into(), "(Ký, ghi rõ họ tên, đóng dấu)".into()),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::{BreakdownBuilder, reporting_unit};

    #[test]
    fn the_reporting_unit_is_the_scopes_top_area() {
        assert_eq!(reporting_unit(&["Tỉnh Lào Cai".into()]), "UBND tỉnh Lào Cai");
        assert_eq!(reporting_unit(&["UBND xã Bản Lầu".into()]), "UBND xã Bản Lầu");
        assert_eq!(reporting_unit(&["Xã A".into(), "Xã B".into()]), "UBND xã A, xã B");
    }

    #[test]
    fn the_breakdown_lists_languages_then_categories() {
        let mut b = BreakdownBuilder::default();
        b.play("vi", "thời sự", 2.0);
        b.play("hmn", "thời sự", 1.0);
        b.display("vi", "y tế", 0.5);
        let out = b.finish();
        let keys: Vec<(&str, &str, i64, i64)> = out
            .iter()
            .map(|l| (l.dimension.as_str(), l.key.as_str(), l.plays, l.displays))
            .collect();
        assert_eq!(
            keys,
            [
                ("language", "hmn", 1, 0),
                ("language", "vi", 1, 1),
                ("category", "thời sự", 2, 0),
                ("category", "y tế", 0, 1)
            ]
        );
        assert_eq!(out[3].display_minutes, 0.5);
    }
}
