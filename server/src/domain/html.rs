//! The server's one HTML escaper: text placed in HTML element content or a quoted attribute value
//! (bulletin bodies, the board page's device id, console fragments built outside templates).

/// Escape text for HTML element content and attribute values (`& < > " '`).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_five_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(
            super::escape(r#"<a href="x" onclick='y'>Tôi & bạn</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;Tôi &amp; bạn&lt;/a&gt;"
        );
    }
}
