//! The small, safe Markdown subset of bulletin bodies, parsed with pulldown-cmark (CommonMark)
//! and rendered to HTML: paragraphs (blank-line separated; single newlines become `<br>`),
//! `**bold**`, `*italic*` / `_italic_`, bullet lists (`- `, `* ` or `• `) and numbered lists
//! (`1. ` or `1) `, at most three digits). Nothing else is interpreted: every other construct
//! (headings, quotes, code, links, images, raw HTML, rules) is shown as its source text, escaped.
//! No event's text reaches the output unescaped, so raw HTML in a body is shown as text, never
//! interpreted; the renderer writes no attribute at all.

use std::ops::Range;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use crate::domain::html::escape;

/// The body as CommonMark sees the subset: CRLF → LF, `• ` bullets → `- `, and a line starting
/// with four or more digits and `. ` / `) ` kept as text (a year, not a numbered list).
fn prepare(body: &str) -> String {
    let body = body.replace("\r\n", "\n");
    let mut out = String::with_capacity(body.len() + 8);
    for (i, line) in body.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let indent = line.len() - line.trim_start().len();
        let (lead, rest) = line.split_at(indent);
        if let Some(item) = rest.strip_prefix("• ") {
            out.push_str(lead);
            out.push_str("- ");
            out.push_str(item);
            continue;
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 3 && (rest[digits..].starts_with(". ") || rest[digits..].starts_with(") ")) {
            out.push_str(lead);
            out.push_str(&rest[..digits]);
            out.push('\\');
            out.push_str(&rest[digits..]);
            continue;
        }
        out.push_str(line);
    }
    out
}

/// A construct outside the subset, shown as its source text.
fn unsupported_block(tag: &Tag<'_>) -> bool {
    !matches!(
        tag,
        Tag::Paragraph | Tag::List(_) | Tag::Item | Tag::Emphasis | Tag::Strong
    )
}

/// Whether `tag` is inline (its source stays inside the current line of text).
fn inline(tag: &Tag<'_>) -> bool {
    matches!(
        tag,
        Tag::Emphasis
            | Tag::Strong
            | Tag::Strikethrough
            | Tag::Superscript
            | Tag::Subscript
            | Tag::Link { .. }
            | Tag::Image { .. }
    )
}

/// The source lines of `range`, trimmed, without the empty ones.
fn source_lines<'a>(src: &'a str, range: &Range<usize>) -> Vec<&'a str> {
    src[range.clone()]
        .split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

/// Render a body to HTML.
pub fn to_html(body: &str) -> String {
    let src = prepare(body);
    let mut out = String::new();
    // Open list items, and whether the current item already has a paragraph.
    let mut items: Vec<bool> = Vec::new();
    let mut events = Parser::new_ext(&src, Options::empty()).into_offset_iter();
    while let Some((event, range)) = events.next() {
        match event {
            Event::Start(tag) if unsupported_block(&tag) => {
                skip(&mut events);
                let lines: Vec<String> = source_lines(&src, &range).into_iter().map(escape).collect();
                if inline(&tag) || !items.is_empty() {
                    out.push_str(&lines.join("<br>"));
                } else if !lines.is_empty() {
                    out.push_str(&format!("<p>{}</p>", lines.join("<br>")));
                }
            }
            Event::Start(Tag::Paragraph) => match items.last_mut() {
                Some(seen) => {
                    if *seen {
                        out.push_str("<br>");
                    }
                    *seen = true;
                }
                None => out.push_str("<p>"),
            },
            Event::End(TagEnd::Paragraph) => {
                if items.is_empty() {
                    out.push_str("</p>");
                }
            }
            Event::Start(Tag::List(start)) => out.push_str(if start.is_some() { "<ol>" } else { "<ul>" }),
            Event::End(TagEnd::List(ordered)) => out.push_str(if ordered { "</ol>" } else { "</ul>" }),
            Event::Start(Tag::Item) => {
                items.push(false);
                out.push_str("<li>");
            }
            Event::End(TagEnd::Item) => {
                items.pop();
                out.push_str("</li>");
            }
            Event::Start(Tag::Strong) => out.push_str("<strong>"),
            Event::End(TagEnd::Strong) => out.push_str("</strong>"),
            Event::Start(Tag::Emphasis) => out.push_str("<em>"),
            Event::End(TagEnd::Emphasis) => out.push_str("</em>"),
            Event::Text(t) => out.push_str(&escape(&t)),
            Event::SoftBreak | Event::HardBreak => out.push_str("<br>"),
            // Code spans, raw HTML, rules and the rest: their source, escaped.
            _ => {
                let lines: Vec<String> = source_lines(&src, &range).into_iter().map(escape).collect();
                let block = matches!(event, Event::Html(_) | Event::Rule);
                if block && items.is_empty() {
                    if !lines.is_empty() {
                        out.push_str(&format!("<p>{}</p>", lines.join("<br>")));
                    }
                } else {
                    out.push_str(&escape(&src[range].replace('\n', " ")));
                }
            }
        }
    }
    out
}

/// Skip the events inside a construct whose `Start` was just read, up to its `End`.
fn skip<'a>(events: &mut impl Iterator<Item = (Event<'a>, Range<usize>)>) {
    let mut depth = 1usize;
    for (e, _) in events.by_ref() {
        match e {
            Event::Start(_) => depth += 1,
            Event::End(_) => {
                depth -= 1;
                if depth == 0 {
                    return;
                }
            }
            _ => {}
        }
    }
}

/// The body as plain text (markup removed) for speech and tickers: one sentence per line, list
/// item or paragraph, each ending in punctuation.
pub fn to_plain(body: &str) -> String {
    let src = prepare(body);
    let mut lines: Vec<String> = vec![String::new()];
    let mut events = Parser::new_ext(&src, Options::empty()).into_offset_iter();
    while let Some((event, range)) = events.next() {
        let line = lines.last_mut().expect("never empty");
        match event {
            Event::Start(tag) if unsupported_block(&tag) => {
                skip(&mut events);
                if inline(&tag) {
                    line.push_str(&src[range].replace('\n', " "));
                } else {
                    lines.extend(source_lines(&src, &range).into_iter().map(str::to_string));
                    lines.push(String::new());
                }
            }
            Event::Text(t) => line.push_str(&t),
            Event::Code(_) | Event::InlineHtml(_) => line.push_str(&src[range]),
            Event::Html(_) | Event::Rule => {
                lines.extend(source_lines(&src, &range).into_iter().map(str::to_string));
                lines.push(String::new());
            }
            Event::SoftBreak
            | Event::HardBreak
            | Event::End(TagEnd::Paragraph | TagEnd::Item)
            | Event::Start(Tag::Item) => lines.push(String::new()),
            _ => {}
        }
    }
    lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            if l.ends_with(['.', '!', '?', ':', ';']) {
                l.to_string()
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

    #[test]
    fn the_subset_paragraphs_breaks_underscores_and_bullets() {
        assert_eq!(
            to_html("Dòng một\nDòng _hai_\r\n\r\nĐoạn hai"),
            "<p>Dòng một<br>Dòng <em>hai</em></p><p>Đoạn hai</p>"
        );
        assert_eq!(to_html("• Một\n• Hai"), "<ul><li>Một</li><li>Hai</li></ul>");
        assert_eq!(to_html("1) Một\n2) Hai"), "<ol><li>Một</li><li>Hai</li></ol>");
        // A year is not a numbered list.
        assert_eq!(to_html("2026. Năm mới"), "<p>2026. Năm mới</p>");
        assert_eq!(to_html(""), "");
    }

    #[test]
    fn constructs_outside_the_subset_are_shown_as_their_source() {
        assert_eq!(to_html("# Tiêu đề"), "<p># Tiêu đề</p>");
        assert_eq!(to_html("> trích dẫn"), "<p>&gt; trích dẫn</p>");
        assert_eq!(to_html("xem `mã` nhé"), "<p>xem `mã` nhé</p>");
        assert_eq!(
            to_html("xem [trang](https://example.org) và ![ảnh](a.png)"),
            "<p>xem [trang](https://example.org) và ![ảnh](a.png)</p>"
        );
        assert_eq!(
            to_html("<https://example.org>"),
            "<p>&lt;https://example.org&gt;</p>"
        );
        assert_eq!(
            to_plain("# Tiêu đề\n\nxem [trang](https://x.vn)"),
            "# Tiêu đề. xem [trang](https://x.vn)."
        );
    }

    #[test]
    fn scripts_frames_javascript_links_and_handlers_never_become_markup() {
        let cases = [
            "<script>alert(1)</script>",
            "trước\n\n<script>\nalert(1)\n</script>\n\nsau",
            "<iframe src=\"https://evil.example\"></iframe>",
            "a <iframe src=x></iframe> b",
            "[bấm](javascript:alert(1))",
            "<javascript:alert(1)>",
            "[x]: javascript:alert(1)\n\n[bấm][x]",
            "<img src=x onerror=alert(1)>",
            "- <a href=\"#\" onclick=\"alert(1)\">mục</a>",
            "**<b onmouseover=alert(1)>đậm</b>**",
            "&lt;script&gt;alert(1)&lt;/script&gt;",
            "```\n<script>alert(1)</script>\n```",
        ];
        for body in cases {
            let html = to_html(body);
            let lower = html.to_ascii_lowercase();
            for bad in ["<script", "<iframe", "<img", "<a ", "<b "] {
                assert!(!lower.contains(bad), "{body:?} rendered {html:?}");
            }
            // Only the subset's own tags appear.
            let mut rest = html.as_str();
            while let Some(i) = rest.find('<') {
                let tag: String = rest[i..].chars().take_while(|c| *c != '>').collect();
                assert!(
                    [
                        "<p", "</p", "<br", "<ul", "</ul", "<ol", "</ol", "<li", "</li", "<strong",
                        "</strong", "<em", "</em"
                    ]
                    .contains(&tag.as_str()),
                    "{body:?} rendered tag {tag:?} in {html:?}"
                );
                rest = &rest[i + 1..];
            }
            // Attribute text from the input is escaped (no raw quote or `=` inside a tag).
            assert!(
                !html.contains("\"") && !html.contains('\''),
                "{body:?} rendered {html:?}"
            );
        }
        assert_eq!(
            to_html("[bấm](javascript:alert(1))"),
            "<p>[bấm](javascript:alert(1))</p>"
        );
        assert_eq!(
            to_html("<img src=x onerror=alert(1)>"),
            "<p>&lt;img src=x onerror=alert(1)&gt;</p>"
        );
    }
}
