//! The one error type of the agent library.

use std::path::PathBuf;

use nguon_device_config::ConfigError;

/// Everything that can go wrong in the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration file (or a file it names) is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A file of the local store or cache could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The local store holds something unreadable.
    #[error("store: {0}")]
    Store(String),
    /// An HTTP request failed.
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// A media file could not be fetched or verified.
    #[error("media {sha256}: {reason}")]
    Media {
        /// The file.
        sha256: String,
        /// Why.
        reason: String,
    },
    /// The server answered a media request with an error status.
    #[error("media {sha256}: GET {url}: HTTP {status}")]
    MediaStatus {
        /// The file.
        sha256: String,
        /// The URL asked.
        url: String,
        /// The status code.
        status: u16,
    },
    /// A live stream could not be opened or broke off.
    #[error("live stream: {0}")]
    Stream(String),
    /// Decoding or audio output failed.
    #[error("audio: {0}")]
    Audio(String),
    /// The agent could not be set up (missing crypto provider, bad broker options...).
    #[error("setup: {0}")]
    Setup(String),
    /// One of the agent's tasks ended while the agent was meant to run.
    #[error("the {task} task {how}")]
    TaskEnded {
        /// `player` or `link`.
        task: &'static str,
        /// How: `ended`, `panicked: <message>` or `was cancelled`.
        how: String,
    },
}

impl AgentError {
    /// An I/O error on a path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AgentError::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether trying again later may succeed: the network failed or timed out, or the server
    /// answered 5xx, 408 or 429 (overloaded, restarting). A 404, a file whose hash is wrong or a
    /// full disk is not retried.
    pub fn is_transient(&self) -> bool {
        match self {
            AgentError::Http(e) => !e.is_builder() && !e.is_redirect(),
            AgentError::MediaStatus { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            _ => false,
        }
    }
}
