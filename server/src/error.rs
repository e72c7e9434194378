//! The server's one error type and its mapping to HTTP: every error becomes
//! `{"error": {"code": "...", "message": "..."}}` with a 4xx that names the problem, or an opaque,
//! logged 500.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Everything that can go wrong in the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400: the request is malformed or a value is invalid. `code` is a stable machine name.
    #[error("{message}")]
    BadRequest {
        /// Stable machine-readable code, e.g. `not_audio`.
        code: &'static str,
        /// Human explanation naming the problem.
        message: String,
    },
    /// 401: no or bad credentials.
    #[error("authentication required")]
    Unauthorized,
    /// 403: authenticated but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0} not found")]
    NotFound(String),
    /// 409: conflicts with stored state.
    #[error("{0}")]
    Conflict(String),
    /// 413: over a size limit.
    #[error("{0}")]
    TooLarge(String),
    /// 415: unsupported media or codec.
    #[error("{message}")]
    Unsupported {
        /// Stable machine-readable code.
        code: &'static str,
        /// Human explanation.
        message: String,
    },
    /// 422: well-formed but semantically wrong (e.g. scheduling unapproved media).
    #[error("{message}")]
    Unprocessable {
        /// Stable machine-readable code.
        code: &'static str,
        /// Human explanation.
        message: String,
    },
    /// Database failure (500, logged).
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Migration failure at start.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// I/O failure (500, logged).
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// Configuration problem at start.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Anything else internal (500, logged).
    #[error("internal: {0}")]
    Internal(String),
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for a 400.
    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Error::BadRequest {
            code,
            message: message.into(),
        }
    }
    /// Shorthand for a 422.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Error::Unprocessable {
            code,
            message: message.into(),
        }
    }

    /// The HTTP status of this error (also used by console forms shown again with it).
    pub(crate) fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Error::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            Error::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Error::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Error::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Error::Unsupported { code, .. } => (StatusCode::UNSUPPORTED_MEDIA_TYPE, code),
            Error::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            Error::Db(e) if is_unique_violation(e) => (StatusCode::CONFLICT, "conflict"),
            Error::Db(_) | Error::Migrate(_) | Error::Io(_) | Error::Config(_) | Error::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => d.is_unique_violation(),
        _ => false,
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, "request failed");
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
