//! The filed report as files, for the console's downloads and `GET /api/v1/reports?format=`:
//! CSV (the commune table and its total, UTF-8 with a BOM so Excel reads Vietnamese, every text
//! cell guarded against formula injection) and XLSX (one sheet per section: `Bao cao` (the
//! communes, with the form's heading and signature block), districts, bulletins and boards, language, category;
//! numbers as numbers). The labels are the Vietnamese ones of the official form.

use std::collections::HashMap;

use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

use super::Filed;
use crate::domain::report::AreaReport;
use crate::domain::spreadsheet::cell;
use crate::error::{Error, Result};

/// `Tổng cộng`: the label of the total row.
pub const TOTAL: &str = "Tổng cộng";
/// Shown for a district row that gathers the communes under no district.
pub const NO_DISTRICT: &str = "(không thuộc huyện)";
/// Shown for an unknown language or category.
pub const UNKNOWN: &str = "(không xác định)";

/// One value of a row.
enum V {
    Text(String),
    Int(i64),
    /// A number written with `decimals` decimals in CSV.
    Num(f64, usize),
    /// Absent (a rate with nothing to divide).
    None,
}

/// A table: its header and a function giving a row's values.
type Column = (&'static str, fn(&AreaReport, &str) -> V);

fn rate(x: Option<f64>) -> V {
    x.map_or(V::None, |v| V::Num(v, 4))
}

/// The commune table's columns (the CSV, the first sheet, the console page's table).
const COMMUNE: &[Column] = &[
    ("Mã", |r, _| V::Text(r.code.clone())),
    ("Tên", |r, _| V::Text(r.name.clone())),
    ("Số cụm loa", |r, _| V::Int(r.devices)),
    ("Lượt phát", |r, _| V::Int(r.items)),
    ("Số phút phát", |r, _| V::Num(r.minutes, 2)),
    ("Lượt theo lịch", |r, _| V::Int(r.scheduled)),
    ("Lượt theo lịch đã phát", |r, _| V::Int(r.delivered)),
    ("Tỷ lệ phát thành công", |r, _| rate(r.delivery_rate)),
    ("Tỷ lệ thiết bị trực tuyến", |r, _| {
        rate(r.availability)
    }),
    ("Bản tin khẩn cấp", |r, _| V::Int(r.emergencies)),
    ("Thời gian đến lần phát đầu (giây)", |r, _| {
        rate(r.ttfp_seconds)
    }),
    ("Số chương trình", |r, _| V::Int(r.programmes)),
    ("Huyện", |_, d| V::Text(d.to_string())),
];

/// The bulletins and boards sheet's columns.
const BOARDS: &[Column] = &[
    ("Mã", |r, _| V::Text(r.code.clone())),
    ("Tên", |r, _| V::Text(r.name.clone())),
    ("Bản tin đã đăng", |r, _| V::Int(r.bulletins_published)),
    ("Số bảng tin", |r, _| V::Int(r.boards)),
    ("Bảng tin trực tuyến", |r, _| V::Int(r.boards_online)),
    ("Tỷ lệ bảng tin trực tuyến", |r, _| {
        rate(r.board_availability)
    }),
    ("Lượt hiển thị", |r, _| V::Int(r.displays)),
    ("Số phút hiển thị", |r, _| V::Num(r.display_minutes, 2)),
    ("Bản tin đã hiển thị", |r, _| V::Int(r.bulletins_shown)),
];

fn district_names(f: &Filed) -> HashMap<&str, &str> {
    f.districts
        .iter()
        .map(|d| (d.code.as_str(), d.name.as_str()))
        .collect()
}

/// The rows of a table over the communes and the total, with each row's district name.
fn rows(f: &Filed) -> Vec<(AreaReport, String)> {
    let names = district_names(f);
    let mut out: Vec<(AreaReport, String)> = f
        .areas
        .iter()
        .map(|r| {
            (
                r.clone(),
                names
                    .get(r.district.as_str())
                    .copied()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let mut total = f.total.clone();
    total.name = TOTAL.into();
    out.push((total, String::new()));
    out
}

/// The report's commune table as CSV.
pub fn csv(f: &Filed) -> Result<Vec<u8>> {
    let err = |e: csv::Error| Error::internal_from("csv", e);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(COMMUNE.iter().map(|c| c.0)).map_err(err)?;
    for (r, d) in rows(f) {
        let record: Vec<String> = COMMUNE
            .iter()
            .map(|c| match (c.1)(&r, &d) {
                V::Text(s) => cell(&s).into_owned(),
                V::Int(n) => n.to_string(),
                V::Num(x, p) => format!("{x:.p$}"),
                V::None => String::new(),
            })
            .collect();
        w.write_record(record).map_err(err)?;
    }
    let mut body = "\u{feff}".as_bytes().to_vec(); // BOM: Excel opens UTF-8 Vietnamese correctly
    body.extend(
        w.into_inner()
            .map_err(|e| Error::internal_from("csv", e.into_error()))?,
    );
    Ok(body)
}

fn x(e: XlsxError) -> Error {
    Error::internal_from("xlsx", e)
}

/// Write `columns` over `rows` from `(row0, 0)`: header then values; returns the next row.
fn table(
    ws: &mut Worksheet,
    row0: u32,
    columns: &[Column],
    rows: &[(AreaReport, String)],
    bold: &Format,
) -> Result<u32> {
    for (c, (h, _)) in columns.iter().enumerate() {
        ws.write_string_with_format(row0, c as u16, *h, bold).map_err(x)?;
    }
    for (i, (r, d)) in rows.iter().enumerate() {
        let row = row0 + 1 + i as u32;
        for (c, (_, get)) in columns.iter().enumerate() {
            let col = c as u16;
            match get(r, d) {
                V::Text(s) if !s.is_empty() => {
                    ws.write_string(row, col, s).map_err(x)?;
                }
                V::Int(n) => {
                    ws.write_number(row, col, n as f64).map_err(x)?;
                }
                V::Num(v, p) => {
                    let k = 10f64.powi(p as i32);
                    let v = if p == 2 { (v * k).round() / k } else { v };
                    ws.write_number(row, col, v).map_err(x)?;
                }
                _ => {}
            }
        }
    }
    ws.set_column_width(1, 28).map_err(x)?;
    Ok(row0 + 1 + rows.len() as u32)
}

/// The report as an XLSX workbook, one sheet per section.
pub fn xlsx(f: &Filed) -> Result<Vec<u8>> {
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let all = rows(f);

    // 1. Communes, inside the form: heading, the table, the signature block.
    let ws = wb.add_worksheet();
    ws.set_name("Bao cao").map_err(x)?;
    ws.write_string_with_format(0, 0, &f.form.unit, &bold)
        .map_err(x)?;
    ws.write_string_with_format(0, 6, &f.form.nation, &bold)
        .map_err(x)?;
    ws.write_string(1, 6, &f.form.motto).map_err(x)?;
    ws.write_string_with_format(3, 0, &f.form.title, &bold)
        .map_err(x)?;
    ws.write_string(4, 0, &f.form.period).map_err(x)?;
    ws.write_string(5, 0, &f.form.basis).map_err(x)?;
    let next = table(ws, 7, COMMUNE, &all, &bold)?;
    ws.write_string(next + 1, 6, &f.form.dated).map_err(x)?;
    for (i, (role, note)) in f.form.signatures.iter().enumerate() {
        let col = (i * 6) as u16;
        ws.write_string_with_format(next + 2, col, role, &bold)
            .map_err(x)?;
        ws.write_string(next + 3, col, note).map_err(x)?;
    }

    // 2. Districts.
    let ws = wb.add_worksheet();
    ws.set_name("Cap huyen").map_err(x)?;
    let districts: Vec<(AreaReport, String)> = f
        .districts
        .iter()
        .map(|d| {
            let mut d = d.clone();
            if d.code.is_empty() {
                d.name = NO_DISTRICT.into();
            }
            (d, String::new())
        })
        .chain(all.last().cloned())
        .collect();
    let no_district: Vec<Column> = COMMUNE.iter().filter(|c| c.0 != "Huyện").copied().collect();
    table(ws, 0, &no_district, &districts, &bold)?;

    // 3. Bulletins and boards.
    let ws = wb.add_worksheet();
    ws.set_name("Ban tin va bang tin").map_err(x)?;
    table(ws, 0, BOARDS, &all, &bold)?;

    // 4–5. Language and category.
    for (dimension, name, header) in [
        ("language", "Ngon ngu", "Ngôn ngữ"),
        ("category", "The loai", "Thể loại"),
    ] {
        let ws = wb.add_worksheet();
        ws.set_name(name).map_err(x)?;
        for (c, h) in [
            header,
            "Lượt phát",
            "Số phút phát",
            "Lượt hiển thị",
            "Số phút hiển thị",
        ]
        .iter()
        .enumerate()
        {
            ws.write_string_with_format(0, c as u16, *h, &bold).map_err(x)?;
        }
        let lines = f.breakdown.iter().filter(|b| b.dimension == dimension);
        for (i, b) in lines.enumerate() {
            let row = 1 + i as u32;
            let key = if b.key.is_empty() { UNKNOWN } else { &b.key };
            ws.write_string(row, 0, key).map_err(x)?;
            ws.write_number(row, 1, b.plays as f64).map_err(x)?;
            ws.write_number(row, 2, (b.minutes * 100.0).round() / 100.0)
                .map_err(x)?;
            ws.write_number(row, 3, b.displays as f64).map_err(x)?;
            ws.write_number(row, 4, (b.display_minutes * 100.0).round() / 100.0)
                .map_err(x)?;
        }
        ws.set_column_width(0, 24).map_err(x)?;
    }
    // 6–7. Policy coverage and public channel reach (issue 15).
    super::policy_export::sheets(&mut wb, f)?;
    wb.save_to_buffer().map_err(x)
}

/// The download's file name: `bao-cao-YYYYMMDD-YYYYMMDD.<ext>`.
pub fn file_name(f: &Filed, ext: &str) -> String {
    format!(
        "bao-cao-{}-{}.{ext}",
        f.period.from.replace('-', ""),
        f.period.to.replace('-', "")
    )
}
