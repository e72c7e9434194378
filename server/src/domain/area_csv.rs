//! The area CSV import (`code,name,parent,level`): [`parse_csv`] validates every line and
//! reports each bad one with its line number; nothing is written unless the whole file is good.
//! A parent must be stored or in the file, and no line may close a parent loop (the rule of a
//! PATCH, `domain::area::parent_cycles`). Re-exported by `domain::area`.

use std::collections::HashMap;

use nguon_protocol::AreaCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::area::{AreaFields, AreaTree, parent_cycles};

/// Result of a CSV import.
#[derive(Debug, Default, Serialize, ToSchema, PartialEq, Eq)]
pub struct ImportSummary {
    /// Areas inserted.
    pub created: u64,
    /// Existing areas whose name, parent or level changed.
    pub updated: u64,
    /// Lines identical to the stored area.
    pub unchanged: u64,
}

/// One refused CSV line.
#[derive(Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    /// Why it was refused.
    pub reason: String,
}

/// Parse and validate a CSV (`code,name,parent,level`, in any column order, header required);
/// every bad line is reported. `stored` is the stored tree: a parent must be stored or in the
/// file, and no line may put an area under itself or one of its descendants ([`parent_cycles`],
/// the rule of a PATCH).
pub fn parse_csv(text: &str, stored: &AreaTree) -> std::result::Result<Vec<AreaFields>, Vec<LineError>> {
    let mut errors = Vec::new();
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = match rdr.headers() {
        Ok(h) => h
            .iter()
            .map(|s| s.trim_start_matches('\u{feff}').to_ascii_lowercase())
            .collect::<Vec<_>>(),
        Err(e) => {
            return Err(vec![LineError {
                line: 1,
                reason: format!("unreadable header: {e}"),
            }]);
        }
    };
    let col = |n: &str| headers.iter().position(|h| h == n);
    let (Some(ci), Some(ni), Some(pi), Some(li)) = (col("code"), col("name"), col("parent"), col("level"))
    else {
        return Err(vec![LineError {
            line: 1,
            reason: format!(
                "header must be `code,name,parent,level`, got `{}`",
                headers.join(",")
            ),
        }]);
    };
    let mut out: Vec<AreaFields> = Vec::new();
    let mut lines_of: HashMap<String, u64> = HashMap::new();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                errors.push(LineError {
                    line,
                    reason: format!("unreadable: {e}"),
                });
                continue;
            }
        };
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.iter().all(|f| f.is_empty()) {
            continue;
        }
        let field = |i: usize| rec.get(i).unwrap_or("").to_string();
        let (code, name, parent, level) = (field(ci), field(ni), field(pi), field(li));
        let mut reasons = Vec::new();
        if let Err(e) = AreaCode::parse(code.clone()) {
            reasons.push(format!("code `{code}`: {e}"));
        }
        if name.is_empty() {
            reasons.push("name is empty".to_string());
        }
        if level.is_empty() {
            reasons.push("level is empty".to_string());
        }
        if !parent.is_empty() {
            if let Err(e) = AreaCode::parse(parent.clone()) {
                reasons.push(format!("parent `{parent}`: {e}"));
            } else if parent == code {
                reasons.push("an area cannot be its own parent".to_string());
            }
        }
        if let Some(first) = lines_of.get(&code) {
            reasons.push(format!("code `{code}` already on line {first}"));
        }
        if reasons.is_empty() {
            lines_of.insert(code.clone(), line);
            out.push(AreaFields {
                code,
                name,
                parent: (!parent.is_empty()).then_some(parent),
                level,
            });
        } else {
            errors.push(LineError {
                line,
                reason: reasons.join("; "),
            });
        }
    }
    // Parents must exist, in the store or in the file.
    for a in &out {
        if let Some(p) = &a.parent
            && !stored.contains(p)
            && !lines_of.contains_key(p)
        {
            errors.push(LineError {
                line: lines_of[&a.code],
                reason: format!("parent `{p}` is neither stored nor in the file"),
            });
        }
    }
    for (i, e) in parent_cycles(stored, &out) {
        errors.push(LineError {
            line: lines_of[&out[i].code],
            reason: e.to_string(),
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        errors.sort_by_key(|e| e.line);
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::area::check_parent;

    fn known(codes: &[&str]) -> AreaTree {
        AreaTree::new(codes.iter().map(|c| (c.to_string(), None)))
    }

    #[test]
    fn a_csv_that_closes_a_parent_loop_is_refused_like_a_patch() {
        // Stored: 10 ← 08003 ← 08003-01. Moving 10 under its grandchild is a loop.
        let stored = AreaTree::new([
            ("10".to_string(), None),
            ("08003".to_string(), Some("10".to_string())),
            ("08003-01".to_string(), Some("08003".to_string())),
        ]);
        let e = parse_csv(
            "code,name,parent,level
10,Tỉnh,08003-01,province
",
            &stored,
        )
        .unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].line, 2);
        assert_eq!(
            e[0].reason,
            check_parent(&stored, "10", "08003-01").unwrap_err().to_string()
        );
        // A loop made only of the file's lines, and one through a stored area.
        let e = parse_csv(
            "code,name,parent,level
a,A,b,x
b,B,a,x
",
            &known(&[]),
        )
        .unwrap_err();
        assert_eq!(e.iter().map(|l| l.line).collect::<Vec<_>>(), vec![2, 3], "{e:?}");
        let e = parse_csv(
            "code,name,parent,level
08003,X,n,x
n,N,08003-01,x
",
            &stored,
        )
        .unwrap_err();
        assert!(!e.is_empty(), "{e:?}");
        // Moving a subtree elsewhere is fine.
        assert!(
            parse_csv(
                "code,name,parent,level
08003-01,T,10,village
",
                &stored
            )
            .is_ok()
        );
    }

    #[test]
    fn a_csv_with_bad_lines_reports_each_line_with_its_reasons() {
        let csv = "code,name,parent,level\n\
                   10,Tỉnh,,province\n\
                   x/y,,,commune\n\
                   08003,Xã,10,commune\n\
                   08003,Again,10,commune\n\
                   08004,Self,08004,commune\n\
                   08005,Orphan,nowhere,commune\n";
        let errors = parse_csv(csv, &known(&[])).unwrap_err();
        let lines: Vec<(u64, &str)> = errors.iter().map(|e| (e.line, e.reason.as_str())).collect();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!(lines[0].0, 3);
        assert!(
            lines[0].1.starts_with("code `x/y`") && lines[0].1.contains("name is empty"),
            "{lines:?}"
        );
        assert_eq!(lines[1], (5, "code `08003` already on line 4"));
        assert_eq!(lines[2], (6, "an area cannot be its own parent"));
        assert_eq!(
            lines[3],
            (7, "parent `nowhere` is neither stored nor in the file")
        );
    }

    #[test]
    fn a_csv_header_is_required_columns_may_be_reordered_and_blank_lines_are_skipped() {
        let missing = parse_csv("code,name,level\n1,a,b\n", &known(&[])).unwrap_err();
        assert_eq!(missing[0].line, 1);
        assert!(missing[0].reason.starts_with("header must be"), "{missing:?}");
        let csv =
            "\u{feff}Level,Parent,Name,Code\ncommune,10,Xã Sa Pa,08003\n,,,\nvillage,08003,Thôn,08003-01\n";
        let areas = parse_csv(csv, &known(&["10"])).unwrap();
        assert_eq!(
            areas,
            vec![
                AreaFields {
                    code: "08003".into(),
                    name: "Xã Sa Pa".into(),
                    parent: Some("10".into()),
                    level: "commune".into()
                },
                AreaFields {
                    code: "08003-01".into(),
                    name: "Thôn".into(),
                    parent: Some("08003".into()),
                    level: "village".into()
                }
            ]
        );
    }
}
