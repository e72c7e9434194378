//! Server refusals in the user's language (issue 13): [`error_text`] turns an [`Error`] into the
//! catalogue's `err.*` sentence in Vietnamese (by error code; 403, 404 and 409 by what they
//! refuse, with the name and number they carry), and [`error_field`] names the form field it is
//! about, so a form shows it next to that field.

use super::{Lang, t};
use crate::error::Error;

/// The titles of the error page by HTTP status: key, Vietnamese, English.
pub const CATALOGUE: &[(&str, &str, &str)] = &[
    ("error.400", "Yêu cầu không hợp lệ", "Bad request"),
    ("error.403", "Không có quyền", "Forbidden"),
    ("error.404", "Không tìm thấy", "Not found"),
    ("error.409", "Xung đột dữ liệu", "Conflict"),
    ("error.413", "Tệp quá lớn", "Too large"),
    ("error.415", "Định dạng không hỗ trợ", "Unsupported format"),
    ("error.422", "Dữ liệu không hợp lệ", "Invalid data"),
    ("error.429", "Quá nhiều lần thử", "Too many attempts"),
    ("error.500", "Lỗi máy chủ", "Server error"),
];

/// A refusal in the user's language: in Vietnamese the catalogue's `err.<code>` sentence (403,
/// 404 and 409 by what they refuse), else the server's own message (English), which an English
/// page shows as it is.
pub fn error_text(e: &Error, lang: Lang) -> String {
    let msg = e.to_string();
    // The server's own messages are English: an English page shows them as they are.
    if lang == Lang::En {
        return msg;
    }
    // A message the console already wrote in the user's language (outside the quoted names).
    let own_words: String = msg.split('`').step_by(2).collect();
    if !own_words.is_ascii() {
        return msg;
    }
    let key = match e {
        Error::Forbidden(m) if m.contains("four-eyes") => "err.four_eyes".to_string(),
        Error::Forbidden(m) if m.contains("outside your scope") => "err.forbidden_area".to_string(),
        Error::Forbidden(m) if m.contains("role") => "err.forbidden_role".to_string(),
        Error::Conflict(m) => [
            ("child area(s)", "err.area_children"),
            ("device(s); move", "err.area_devices"),
            ("schedule(s); change", "err.area_schedules"),
            ("media file(s)", "err.area_media"),
            ("already exists", "err.exists"),
            ("is taken", "err.username_taken"),
            ("your own account", "err.own_account"),
            ("your own admin role", "err.own_admin"),
            ("library of an area outside", "err.media_elsewhere"),
            ("one video", "err.one_video"),
        ]
        .iter()
        .find(|(needle, _)| m.contains(needle))
        .map_or("err.conflict", |(_, k)| k)
        .to_string(),
        e => format!("err.{}", e.code()),
    };
    match t(&key, lang) {
        found if found != key && found.contains('{') => {
            // `{code}`: the first name in backticks; `{n}`: the first number after it.
            let code = msg.split('`').nth(1).unwrap_or_default();
            let rest = msg.splitn(3, '`').nth(2).unwrap_or(&msg);
            let n: String = rest
                .chars()
                .skip_while(|c| !c.is_ascii_digit())
                .take_while(char::is_ascii_digit)
                .collect();
            found.replace("{code}", code).replace("{n}", &n)
        }
        found if found != key => match e {
            // The identifier of what was not found stays useful in any language.
            Error::NotFound(what) => format!("{found} ({what})"),
            _ => found.to_string(),
        },
        _ if lang == Lang::Vi && !e.is_internal() => {
            let generic = t("err.invalid", lang);
            format!("{generic} ({msg})")
        }
        _ => msg,
    }
}

/// The form field a refusal is about: the first `` `name` `` of its message, up to a dot
/// (`` `rule.at` `` → `rule`), so a form can show the message next to that field.
pub fn error_field(e: &Error) -> Option<String> {
    let msg = e.to_string();
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    let name = &msg[start..start + len];
    let name = name.split('.').next().unwrap_or(name);
    name.chars()
        .all(|c| c.is_ascii_lowercase() || c == '_')
        .then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_shown_in_the_users_language_next_to_their_field() {
        let e = Error::bad("invalid_cron", "cron pattern `x` has 1 fields");
        assert!(error_text(&e, Lang::Vi).starts_with("Mẫu cron không hợp lệ"));
        assert_eq!(error_text(&e, Lang::En), "cron pattern `x` has 1 fields");
        let e = Error::bad("invalid_rule", "`rule.at`: `` is not a local date-time");
        assert_eq!(error_field(&e).as_deref(), Some("rule"));
        let e = Error::Forbidden("area `xa-b` is outside your scope".into());
        assert_eq!(error_text(&e, Lang::Vi), t("err.forbidden_area", Lang::Vi));
    }
}
