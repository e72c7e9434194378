//! The report's policy sections as files (issue 15): CSV of the policy coverage (one line per
//! stage, then the total, then one line per gap) and of the public channel reach (the three
//! totals, then the most read paths) and of the engagement (feedback figures, then submissions
//! per organisation) and of the communes' answers to province content (issue 16), for
//! `format=csv&section=policy|reach|engagement|autonomy`; and their XLSX sheets (`Chinh sach`,
//! `Kenh cong khai`, `Tuong tac`, `Xa tiep nhan`) added to the workbook. Same guards as the commune
//! table: UTF-8 with a BOM, text cells guarded against formula injection.

use rust_xlsxwriter::{Format, Workbook, XlsxError};

use super::Filed;
use crate::domain::spreadsheet::cell;
use crate::error::{Error, Result};

/// A section of the report that has its own CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The commune table (the default).
    Communes,
    /// Policy coverage.
    Policy,
    /// Public channel reach.
    Reach,
    /// Submissions per organisation and citizens' feedback.
    Engagement,
    /// The communes' answers to province content (issue 16).
    Autonomy,
}

impl Section {
    /// Parse `section=` (absent: the commune table; 422 naming the accepted values otherwise).
    pub fn parse(s: Option<&str>) -> Result<Section> {
        match s.unwrap_or("communes") {
            "communes" | "" => Ok(Section::Communes),
            "policy" => Ok(Section::Policy),
            "reach" => Ok(Section::Reach),
            "engagement" => Ok(Section::Engagement),
            "autonomy" => Ok(Section::Autonomy),
            other => Err(Error::unprocessable(
                "invalid_section",
                format!("`section`: `{other}` is not one of communes, policy, reach, engagement, autonomy"),
            )),
        }
    }
}

fn rate(r: Option<f64>) -> String {
    r.map(|v| format!("{v:.4}")).unwrap_or_default()
}

/// The lines of the policy section: header, one line per stage, the total, then the gaps.
fn policy_lines(f: &Filed) -> Vec<Vec<String>> {
    let p = &f.policy;
    let mut out = vec![vec![
        "Giai đoạn".to_string(),
        "Chính sách đến giai đoạn".into(),
        "Đã truyền thông".into(),
        "Tỷ lệ".into(),
    ]];
    for s in &p.stages {
        out.push(vec![
            s.label.clone(),
            s.reached.to_string(),
            s.communicated.to_string(),
            rate(s.rate),
        ]);
    }
    out.push(vec![
        "Tổng: chính sách tác động trực tiếp, truyền thông đủ mọi giai đoạn".into(),
        p.policies.to_string(),
        p.fully_communicated.to_string(),
        rate(p.rate),
    ]);
    out.push(vec![]);
    out.push(vec![
        "Chưa truyền thông: chính sách".into(),
        "Cơ quan ban hành".into(),
        "Giai đoạn".into(),
        "Mã".into(),
    ]);
    for g in &p.gaps {
        out.push(vec![
            g.title.clone(),
            g.issuer.clone(),
            g.label.clone(),
            g.policy_id.clone(),
        ]);
    }
    out
}

/// The lines of the reach section.
fn reach_lines(f: &Filed) -> Vec<Vec<String>> {
    let r = &f.reach;
    let mut out = vec![
        vec!["Kênh".to_string(), "Lượt truy cập".into()],
        vec!["Trang công khai".into(), r.pages.to_string()],
        vec!["Nguồn tin RSS, Atom, JSON".into(), r.feeds.to_string()],
        vec!["Mã QR".into(), r.qr.to_string()],
        vec![],
        vec!["Đường dẫn".into(), "Lượt truy cập".into()],
    ];
    for h in &r.top {
        out.push(vec![h.path.clone(), h.hits.to_string()]);
    }
    out
}

/// The lines of the engagement section: the feedback figures, then one line per organisation.
fn engagement_lines(f: &Filed) -> Vec<Vec<String>> {
    let e = &f.engagement;
    let mut out = vec![
        vec!["Phản ánh, kiến nghị".to_string(), "Số lượng".into()],
        vec!["Tiếp nhận".into(), e.feedback.received.to_string()],
        vec!["Đã trả lời".into(), e.feedback.answered.to_string()],
        vec!["Quá hạn".into(), e.feedback.overdue.to_string()],
        vec![
            "Thời gian trả lời trung vị (giờ)".into(),
            super::engagement::median_hours(e),
        ],
        vec![],
        vec![
            "Đơn vị gửi bài".into(),
            "Loại".into(),
            "Số bài gửi".into(),
            "Đã duyệt".into(),
            "Bị từ chối".into(),
        ],
    ];
    for o in &e.submissions {
        out.push(vec![
            o.name.clone(),
            o.kind.clone(),
            o.submitted.to_string(),
            o.approved.to_string(),
            o.rejected.to_string(),
        ]);
    }
    out
}

/// The lines of the autonomy section: one line per commune (its code in the name, so a numeric
/// code stays text in the sheet).
fn autonomy_lines(f: &Filed) -> Vec<Vec<String>> {
    let mut out = vec![vec![
        "Xã (mã)".to_string(),
        "Tin của tỉnh cần tiếp nhận".into(),
        "Đã tiếp nhận".into(),
        "Từ chối".into(),
        "Đổi giờ".into(),
        "Không trả lời".into(),
        "Đang chờ".into(),
        "Thời gian trả lời trung vị (phút)".into(),
    ]];
    for c in &f.autonomy {
        out.push(vec![
            format!("{} ({})", c.name, c.area),
            c.asked.to_string(),
            c.accepted.to_string(),
            c.declined.to_string(),
            c.reslotted.to_string(),
            c.unanswered.to_string(),
            c.pending.to_string(),
            c.median_answer_s
                .map(|s| format!("{:.1}", s as f64 / 60.0))
                .unwrap_or_default(),
        ]);
    }
    out
}

/// The CSV of `section` (not the commune table: `export::csv`).
pub fn csv(f: &Filed, section: Section) -> Result<Vec<u8>> {
    let lines = match section {
        Section::Policy => policy_lines(f),
        Section::Reach => reach_lines(f),
        Section::Engagement => engagement_lines(f),
        Section::Autonomy => autonomy_lines(f),
        Section::Communes => return super::export::csv(f),
    };
    let err = |e: csv::Error| Error::internal_from("csv", e);
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
    for l in lines {
        let l: Vec<String> = l.iter().map(|c| cell(c).into_owned()).collect();
        w.write_record(&l).map_err(err)?;
    }
    let mut body = "\u{feff}".as_bytes().to_vec();
    body.extend(
        w.into_inner()
            .map_err(|e| Error::internal_from("csv", e.into_error()))?,
    );
    Ok(body)
}

fn x(e: XlsxError) -> Error {
    Error::internal_from("xlsx", e)
}

/// Add the sheets `Chinh sach`, `Kenh cong khai`, `Tuong tac` and `Xa tiep nhan` (numbers as
/// numbers).
pub fn sheets(wb: &mut Workbook, f: &Filed) -> Result<()> {
    let bold = Format::new().set_bold();
    for (name, lines) in [
        ("Chinh sach", policy_lines(f)),
        ("Kenh cong khai", reach_lines(f)),
        ("Tuong tac", engagement_lines(f)),
        ("Xa tiep nhan", autonomy_lines(f)),
    ] {
        let ws = wb.add_worksheet();
        ws.set_name(name).map_err(x)?;
        for (r, line) in lines.iter().enumerate() {
            for (c, v) in line.iter().enumerate() {
                let (r, c) = (r as u32, c as u16);
                if r == 0 {
                    ws.write_string_with_format(r, c, v, &bold).map_err(x)?;
                } else if let Ok(n) = v.parse::<f64>() {
                    ws.write_number(r, c, n).map_err(x)?;
                } else if !v.is_empty() {
                    ws.write_string(r, c, v).map_err(x)?;
                }
            }
        }
        ws.set_column_width(0, 48).map_err(x)?;
    }
    Ok(())
}
