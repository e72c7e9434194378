//! The server's one error type (foundation: every layer may use it). Each variant says what went
//! wrong in terms a caller can act on; internal failures keep their source error for the log.
//! The mapping to HTTP (`{"error": {"code", "message"}}` with a 4xx naming the problem, or an
//! opaque logged 500) lives in `http::error`; the mapping of database constraint violations to a
//! named 409/422 lives in `store::constraint`.

/// A boxed source error kept by [`Error::Internal`].
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

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
    /// 429: over a request budget (per address or global).
    #[error("{0}")]
    TooManyRequests(String),
    /// 415: unsupported media or codec.
    #[error("{message}")]
    Unsupported {
        /// Stable machine-readable code.
        code: &'static str,
        /// Human explanation.
        message: String,
    },
    /// A server this one relays (a relay's upstream stream) failed to answer (502).
    #[error("{0}")]
    Upstream(String),
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
    /// Anything else internal (500, logged with its source).
    #[error("internal: {context}{}", source.as_ref().map(|s| format!(": {s}")).unwrap_or_default())]
    Internal {
        /// What the server was doing, e.g. `render dashboard.html`.
        context: String,
        /// The error that caused it, if any.
        #[source]
        source: Option<Source>,
    },
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

    /// An internal failure without an underlying error (a broken invariant).
    pub fn internal(context: impl Into<String>) -> Self {
        Error::Internal {
            context: context.into(),
            source: None,
        }
    }

    /// An internal failure caused by `source`, kept for the log.
    pub fn internal_from(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Internal {
            context: context.into(),
            source: Some(Box::new(source)),
        }
    }

    /// `|e| Error::internal_from(context, e)`, for `map_err`.
    pub fn context<E: std::error::Error + Send + Sync + 'static>(
        context: impl Into<String>,
    ) -> impl FnOnce(E) -> Error {
        let context = context.into();
        move |e| Error::internal_from(context, e)
    }

    /// Whether this is a server-side failure (a logged 500) rather than a refusal of the request.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            Error::Db(_) | Error::Migrate(_) | Error::Io(_) | Error::Config(_) | Error::Internal { .. }
        ) && !self.is_db_unique_violation()
    }

    /// Whether this is a database unique violation that no use case named (shown as a 409).
    pub fn is_db_unique_violation(&self) -> bool {
        match self {
            Error::Db(sqlx::Error::Database(d)) => d.is_unique_violation(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn an_internal_error_keeps_its_source_and_shows_it_in_the_log_line() {
        let io = std::io::Error::other("disk on fire");
        let e = Error::internal_from("write media", io);
        assert_eq!(e.to_string(), "internal: write media: disk on fire");
        let source = std::error::Error::source(&e).expect("a source");
        assert_eq!(source.to_string(), "disk on fire");
        assert!(e.is_internal());
        let bare = Error::internal("row vanished");
        assert_eq!(bare.to_string(), "internal: row vanished");
        assert!(std::error::Error::source(&bare).is_none());
        let mapped: Error = Err::<(), _>(std::io::Error::other("x"))
            .map_err(Error::context("probe task"))
            .unwrap_err();
        assert_eq!(mapped.to_string(), "internal: probe task: x");
    }
}
