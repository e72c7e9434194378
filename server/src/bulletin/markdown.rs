//! The small, safe Markdown subset of bulletin bodies, rendered to HTML: paragraphs (blank-line
//! separated; single newlines become `<br>`), `**bold**`, `*italic*` / `_italic_`, bullet lists
//! (`- ` or `* `) and numbered lists (`1. `). Everything is HTML-escaped first, so raw HTML in a
//! body is shown as text, never interpreted.

/// Escape text for HTML element content and attribute values.
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

/// Inline markup on already-escaped text: `**bold**`, then `*italic*` and `_italic_`.
fn inline(escaped: &str) -> String {
    let bold = pair(escaped, "**", "<strong>", "</strong>");
    let it = pair(&bold, "*", "<em>", "</em>");
    pair(&it, "_", "<em>", "</em>")
}

/// Replace balanced `mark … mark` pairs; an unbalanced last mark stays literal.
fn pair(s: &str, mark: &str, open: &str, close: &str) -> String {
    let parts: Vec<&str> = s.split(mark).collect();
    if parts.len() < 3 {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 16);
    let pairs = (parts.len() - 1) / 2;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            if i <= pairs * 2 {
                out.push_str(if i % 2 == 1 { open } else { close });
            } else {
                out.push_str(mark);
            }
        }
        out.push_str(p);
    }
    out
}

enum Block {
    Para(Vec<String>),
    Ul(Vec<String>),
    Ol(Vec<String>),
}

fn list_item(line: &str) -> Option<(bool, &str)> {
    let t = line.trim_start();
    if let Some(r) = t
        .strip_prefix("- ")
        .or_else(|| t.strip_prefix("* "))
        .or_else(|| t.strip_prefix("• "))
    {
        return Some((false, r));
    }
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0
        && digits <= 3
        && let Some(r) = t[digits..]
            .strip_prefix(". ")
            .or_else(|| t[digits..].strip_prefix(") "))
    {
        return Some((true, r));
    }
    None
}

/// Render a body to HTML.
pub fn to_html(body: &str) -> String {
    let mut blocks: Vec<Block> = Vec::new();
    let mut cur: Option<Block> = None;
    for line in body.replace("\r\n", "\n").split('\n') {
        if line.trim().is_empty() {
            if let Some(b) = cur.take() {
                blocks.push(b);
            }
            continue;
        }
        match (list_item(line), cur.as_mut()) {
            (Some((false, item)), Some(Block::Ul(items))) => items.push(item.to_string()),
            (Some((true, item)), Some(Block::Ol(items))) => items.push(item.to_string()),
            (Some((ordered, item)), _) => {
                if let Some(b) = cur.take() {
                    blocks.push(b);
                }
                cur = Some(if ordered {
                    Block::Ol(vec![item.into()])
                } else {
                    Block::Ul(vec![item.into()])
                });
            }
            (None, Some(Block::Para(lines))) => lines.push(line.trim().to_string()),
            (None, _) => {
                if let Some(b) = cur.take() {
                    blocks.push(b);
                }
                cur = Some(Block::Para(vec![line.trim().to_string()]));
            }
        }
    }
    if let Some(b) = cur.take() {
        blocks.push(b);
    }
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Para(lines) => {
                let inner: Vec<String> = lines.iter().map(|l| inline(&escape(l))).collect();
                out.push_str(&format!("<p>{}</p>", inner.join("<br>")));
            }
            Block::Ul(items) => {
                out.push_str("<ul>");
                for i in items {
                    out.push_str(&format!("<li>{}</li>", inline(&escape(i.trim()))));
                }
                out.push_str("</ul>");
            }
            Block::Ol(items) => {
                out.push_str("<ol>");
                for i in items {
                    out.push_str(&format!("<li>{}</li>", inline(&escape(i.trim()))));
                }
                out.push_str("</ol>");
            }
        }
    }
    out
}

/// The body as plain text (markup removed) for speech and tickers.
pub fn to_plain(body: &str) -> String {
    body.lines()
        .map(|l| {
            let l = match list_item(l) {
                Some((_, item)) => item,
                None => l,
            };
            l.replace("**", "").replace(['*', '_'], "")
        })
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .map(|l| {
            if l.ends_with(['.', '!', '?', ':', ';']) {
                l
            } else {
                format!("{l}.")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_renders_and_raw_html_is_escaped() {
        let html = to_html("Thông báo **khẩn**, *chú ý*.\n\n- Một\n- Hai <script>alert(1)</script>\n\n1. Ba");
        assert_eq!(
            html,
            "<p>Thông báo <strong>khẩn</strong>, <em>chú ý</em>.</p><ul><li>Một</li>\
             <li>Hai &lt;script&gt;alert(1)&lt;/script&gt;</li></ul><ol><li>Ba</li></ol>"
        );
        assert_eq!(to_html("a * b"), "<p>a * b</p>");
        assert_eq!(
            to_plain("Tiêu đề **đậm**\n- mục một\n- mục hai!"),
            "Tiêu đề đậm. mục một. mục hai!"
        );
    }
}
