//! The one guard for text written into a CSV file that people open in a spreadsheet (issue 11,
//! item 10): a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return would be read
//! as a formula by Excel or LibreOffice (`=HYPERLINK(...)`, DDE), so such a cell is written with a
//! leading `'` (the OWASP rule for CSV injection). Every CSV writer of the workspace passes its
//! text cells through [`cell`]: the provisioning tool's secrets CSV here, and the server's report
//! and demo-credential CSVs (through `nguon_server::domain::spreadsheet`, which re-exports it);
//! numbers a writer formats itself are written as they are.

use std::borrow::Cow;

/// `text` safe to write as a CSV cell: prefixed with `'` when it starts with a formula character.
pub fn cell(text: &str) -> Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn formula_characters_at_the_start_are_neutralised_and_nothing_else_changes() {
        for bad in [
            "=1+2",
            "+1",
            "-1",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
            "=HYPERLINK(\"http://x\")",
        ] {
            assert_eq!(cell(bad), format!("'{bad}"));
        }
        for ok in ["", "Xã Sa Pa", "08003", "1-2", "a=b", " =1", "'quoted"] {
            assert_eq!(cell(ok), ok);
        }
    }
}
