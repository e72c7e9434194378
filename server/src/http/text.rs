//! The request's text check: a path, a query, or a JSON or urlencoded form body holding NUL or
//! another control character (`domain::text`; tab and line breaks are allowed in bodies) is
//! answered 422 `{"error":{"code":"invalid_text",…}}` naming the field, before any handler runs,
//! so no id, name, title, filter or search text carrying one reaches a query (PostgreSQL refuses a
//! NUL byte in a text value, which used to surface as a 500). One middleware for every route, so
//! no handler can forget it. Multipart uploads are checked where their text fields are used
//! (`services::media`).

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::domain::text::{check_json, clean_text};
use crate::error::{Error, Result};

/// Largest body read for the check: axum's default body limit for JSON and forms, which those
/// extractors apply anyway.
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// Check the percent-decoded path segments and query pairs of a request URI.
pub fn check_uri(uri: &axum::http::Uri) -> Result<()> {
    for (k, v) in form_urlencoded::parse(uri.path().as_bytes()) {
        clean_text("path", &k)?;
        clean_text("path", &v)?;
    }
    if let Some(q) = uri.query() {
        check_form(q.as_bytes())?;
    }
    Ok(())
}

/// Check every name and value of a urlencoded form (or query string).
pub fn check_form(body: &[u8]) -> Result<()> {
    for (k, v) in form_urlencoded::parse(body) {
        clean_text(&k, &k)?;
        clean_text(&k, &v)?;
    }
    Ok(())
}

/// Check a body by its content type: every string of a JSON document (one that does not parse is
/// left to the handler's own error), every field of a urlencoded form.
pub fn check_body(content_type: &str, body: &[u8]) -> Result<()> {
    if content_type.starts_with("application/json") {
        if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(body) {
            check_json(&doc)?;
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        check_form(body)?;
    }
    Ok(())
}

/// Middleware: 422 for a request whose path, query or JSON/form body holds a control character,
/// else the handler (with the body it would have read).
pub async fn refuse_control_characters(req: Request, next: Next) -> Response {
    if let Err(e) = check_uri(req.uri()) {
        return e.into_response();
    }
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !(content_type.starts_with("application/json")
        || content_type.starts_with("application/x-www-form-urlencoded"))
    {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => return Error::TooLarge(format!("the body is over {BODY_LIMIT} bytes")).into_response(),
    };
    if let Err(e) = check_body(&content_type, &bytes) {
        return e.into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoded_nul_in_the_path_or_the_query_is_refused() {
        let ok: axum::http::Uri = "/api/v1/devices?q=x%C3%A3%20A&area=08003".parse().unwrap();
        assert!(check_uri(&ok).is_ok());
        for bad in ["/api/v1/devices/lc%00", "/api/v1/devices?q=a%00b", "/x?a%01=1"] {
            let uri: axum::http::Uri = bad.parse().unwrap();
            assert!(check_uri(&uri).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_and_form_bodies_are_checked_and_other_bodies_left_alone() {
        assert!(check_body("application/json", br#"{"name":"a\u0000b"}"#).is_err());
        assert!(check_body("application/json; charset=utf-8", br#"{"body":"a\nb\tc"}"#).is_ok());
        assert!(
            check_body("application/json", b"{not json").is_ok(),
            "the handler says why"
        );
        assert!(check_body("application/x-www-form-urlencoded", b"csrf=x&name=a%00b").is_err());
        assert!(check_body("application/x-www-form-urlencoded", b"csv=a%0D%0Ab%09c").is_ok());
        assert!(check_body("application/octet-stream", b"\0\0\0").is_ok());
    }
}
