//! The one mapping of [`Error`] to HTTP: every error becomes
//! `{"error": {"code": "...", "message": "..."}}` with a 4xx that names the problem, or an opaque
//! 500 whose cause (with its source chain) goes to the log; axum's own plain-text rejections
//! get the same shape through one middleware ([`json_rejections`]).

use axum::Json;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::Error;

impl Error {
    /// The HTTP status of this error (also used by console forms shown again with it).
    pub fn status(&self) -> StatusCode {
        status_and_code(self).0
    }

    /// The stable machine-readable code of this error (`error.code` in the JSON body).
    pub fn code(&self) -> &'static str {
        status_and_code(self).1
    }
}

fn status_and_code(e: &Error) -> (StatusCode, &'static str) {
    match e {
        Error::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
        Error::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
        Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        Error::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        Error::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        Error::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
        Error::Unsupported { code, .. } => (StatusCode::UNSUPPORTED_MEDIA_TYPE, code),
        Error::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
        Error::Upstream(_) => (StatusCode::BAD_GATEWAY, "bad_gateway"),
        e if e.is_db_unique_violation() => (StatusCode::CONFLICT, "conflict"),
        Error::Db(_) | Error::Migrate(_) | Error::Io(_) | Error::Config(_) | Error::Internal { .. } => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        }
    }
}

/// The error with its chain of sources, for the log.
fn chain(e: &Error) -> String {
    let mut out = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = status_and_code(&self);
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %chain(&self), "request failed");
            "internal error; see the server log".to_string()
        } else if let Error::Db(_) = self {
            "the change conflicts with stored data (duplicate)".to_string()
        } else {
            self.to_string()
        };
        (
            status,
            Json(json!({ "error": { "code": code, "message": message } })),
        )
            .into_response()
    }
}

/// Axum's own rejections (a body that is not JSON, a query or path that does not parse, a
/// method the route does not take, a missing route, a body over the limit) are plain text; this
/// middleware, applied once to the whole router, gives every such answer outside the console
/// the `{"error": {"code", "message"}}` shape too, with a code named after the status. Answers
/// that already carry a body of another type (JSON, HTML, files) pass unchanged.
pub async fn json_rejections(req: Request, next: Next) -> Response {
    let console = req.uri().path().starts_with("/console");
    let resp = next.run(req).await;
    let status = resp.status();
    if console || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.starts_with("text/plain"));
    if !plain {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::RANGE_NOT_SATISFIABLE => "range_not_satisfiable",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
        StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = if status.is_server_error() {
        "internal error; see the server log".to_string()
    } else if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    let body = json!({ "error": { "code": code, "message": message } }).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;

    use crate::error::Error;

    async fn body(e: Error) -> (u16, serde_json::Value) {
        let r = e.into_response();
        let status = r.status().as_u16();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn errors_keep_the_json_shape_and_internal_ones_stay_opaque() {
        let (s, v) = body(Error::unprocessable(
            "unknown_parent",
            "parent area `x` does not exist",
        ))
        .await;
        assert_eq!(s, 422);
        assert_eq!(v["error"]["code"], "unknown_parent");
        assert_eq!(v["error"]["message"], "parent area `x` does not exist");
        let (s, v) = body(Error::NotFound("device `d1`".into())).await;
        assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")));
        assert_eq!(v["error"]["message"], "device `d1` not found");
        let (s, v) = body(Error::internal_from("secret path", std::io::Error::other("boom"))).await;
        assert_eq!(s, 500);
        assert_eq!(v["error"]["code"], "internal");
        assert_eq!(v["error"]["message"], "internal error; see the server log");
    }
}
