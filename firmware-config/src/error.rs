//! The crate's one error type for provisioning: what went wrong, with the file, line or key
//! that a person has to fix. Configuration-file errors keep their own [`ConfigError`] (file and
//! key) and are wrapped here.

use std::path::PathBuf;

use crate::config::{ConfigError, DeviceKind};

/// Anything `nguon-provision` can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A device configuration file is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The station list has invalid rows; nothing was written.
    #[error("{}: {} invalid row(s), nothing written:\n{}", file.display(), errors.len(), list(errors))]
    InvalidRows {
        /// The station list.
        file: PathBuf,
        /// Every problem, in line order.
        errors: Vec<RowError>,
    },
    /// The communes table (`--communes`) is invalid.
    #[error("{}: {} invalid row(s):\n{}", file.display(), errors.len(), list(errors))]
    InvalidCommunes {
        /// The communes table.
        file: PathBuf,
        /// Every problem, in line order.
        errors: Vec<RowError>,
    },
    /// A command-line setting is missing or wrong.
    #[error("{option}: {message}")]
    Setting {
        /// The option, e.g. `--server-public-key`.
        option: &'static str,
        /// What was expected.
        message: String,
    },
    /// The state file in the output directory cannot be used.
    #[error("{}: {message}", path.display())]
    State {
        /// `DIR/state.json`.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An existing install bundle cannot be read or does not match the state file.
    #[error("{}: {message}", path.display())]
    Bundle {
        /// `DIR/bundles/<id>.tar.gz`.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// One invalid row of the station list or the communes table (or the header, line 1).
///
/// It lives here, not in `stations`, so that the error type depends on nothing that depends on
/// it: `stations` uses [`ProvisionError`], and [`ProvisionError`] lists these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct RowError {
    /// 1-based line number in the file.
    pub line: u64,
    /// What is wrong and what was expected.
    pub reason: String,
    /// The row's kind when it could be read (for per-kind counts).
    pub kind: Option<DeviceKind>,
}

fn list(errors: &[RowError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ProvisionError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ProvisionError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result with [`ProvisionError`].
pub type Result<T, E = ProvisionError> = std::result::Result<T, E>;
