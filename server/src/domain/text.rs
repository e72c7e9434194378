//! The one check of text that enters the server: names, titles, bodies, queries and path segments
//! from HTTP, and the text fields of what devices report. NUL and the other control characters
//! (C0 except tab, line feed and carriage return; DEL; C1) are refused: they mean nothing in a
//! name or a title, PostgreSQL refuses a NUL byte in any text value (one such byte used to fail
//! a whole ingest transaction), and they hide text from whoever reads it. [`clean_text`] allows
//! tab and line breaks (bodies, pasted CSV); [`clean_line`] refuses them too (one-line fields:
//! titles, names). [`check_json`] walks every string (and key) of a JSON document.

use crate::error::{Error, Result};

/// The first character that has no place in text, if any: a control character other than tab,
/// line feed and carriage return (`multiline`), or any control character (one line).
pub fn forbidden_char(s: &str, multiline: bool) -> Option<char> {
    s.chars()
        .find(|&c| c.is_control() && !(multiline && matches!(c, '\t' | '\n' | '\r')))
}

fn refusal(field: &str, c: char) -> Error {
    let what = if c == '\0' {
        "a NUL character".to_string()
    } else {
        format!("the control character U+{:04X}", c as u32)
    };
    Error::unprocessable("invalid_text", format!("`{field}` contains {what}"))
}

/// 422 `invalid_text` naming `field` when `value` holds NUL or a control character other than
/// tab and line breaks.
pub fn clean_text(field: &str, value: &str) -> Result<()> {
    match forbidden_char(value, true) {
        Some(c) => Err(refusal(field, c)),
        None => Ok(()),
    }
}

/// 422 `invalid_text` naming `field` when `value` holds any control character (tab and line
/// breaks included): for one-line fields such as names and titles.
pub fn clean_line(field: &str, value: &str) -> Result<()> {
    match forbidden_char(value, false) {
        Some(c) => Err(refusal(field, c)),
        None => Ok(()),
    }
}

/// [`clean_text`] over every string and object key of a JSON document; the refusal names the
/// path of the offending value (`title`, `items[2].name`).
pub fn check_json(v: &serde_json::Value) -> Result<()> {
    fn walk(v: &serde_json::Value, path: &mut String) -> Result<()> {
        match v {
            serde_json::Value::String(s) => clean_text(if path.is_empty() { "." } else { path }, s),
            serde_json::Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(x, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            serde_json::Value::Object(o) => {
                for (k, x) in o {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    clean_text(path, k)?;
                    walk(x, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    walk(v, &mut String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(e: Error) -> String {
        match e {
            Error::Unprocessable { code, message } => format!("{code}: {message}"),
            other => panic!("not a 422: {other:?}"),
        }
    }

    #[test]
    fn nul_and_control_characters_are_refused_naming_the_field() {
        assert!(clean_text("title", "Thông báo tiêm chủng\tđợt 2\r\nxã A").is_ok());
        assert_eq!(
            message(clean_text("name", "a\0b").unwrap_err()),
            "invalid_text: `name` contains a NUL character"
        );
        assert_eq!(
            message(clean_text("body", "x\u{1b}[31m").unwrap_err()),
            "invalid_text: `body` contains the control character U+001B"
        );
        assert!(clean_text("x", "\u{7f}").is_err(), "DEL");
        assert!(clean_text("x", "\u{85}").is_err(), "C1");
        assert!(clean_line("title", "one\nline").is_err());
        assert!(clean_line("title", "Bản tin 18:00 — xã Tả Phìn").is_ok());
    }

    #[test]
    fn every_string_and_key_of_a_json_document_is_checked_with_its_path() {
        let ok = serde_json::json!({"title": "a\nb", "items": [{"name": "x"}], "n": 3});
        assert!(check_json(&ok).is_ok());
        let bad = serde_json::json!({"title": "a", "items": [{"name": "x"}, {"name": "y\u{0}"}]});
        assert_eq!(
            message(check_json(&bad).unwrap_err()),
            "invalid_text: `items[1].name` contains a NUL character"
        );
        let key = serde_json::json!({"a\u{1}": 1});
        assert!(check_json(&key).is_err());
        assert!(check_json(&serde_json::json!("\u{0}")).is_err());
    }
}
