//! The output directory: where each file goes ([`Layout`]) and how files are written (through a
//! temporary file and a rename, only when their content changes; secrets files only created new).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{ProvisionError, Result};

/// Paths inside the output directory.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The output directory.
    pub root: PathBuf,
}

impl Layout {
    /// `DIR/state.json`
    pub fn state(&self) -> PathBuf {
        self.root.join("state.json")
    }
    /// `DIR/registry.json`
    pub fn registry(&self) -> PathBuf {
        self.root.join("registry.json")
    }
    /// `DIR/mosquitto/password_file`
    pub fn password_file(&self) -> PathBuf {
        self.root.join("mosquitto").join("password_file")
    }
    /// `DIR/mosquitto/acl_file`
    pub fn acl_file(&self) -> PathBuf {
        self.root.join("mosquitto").join("acl_file")
    }
    /// `DIR/mosquitto/nguon.conf`
    pub fn mosquitto_conf(&self) -> PathBuf {
        self.root.join("mosquitto").join("nguon.conf")
    }
    /// `DIR/devices/<id>`
    pub fn device_dir(&self, id: &str) -> PathBuf {
        self.root.join("devices").join(id)
    }
    /// `DIR/bundles/<id>.tar.gz`
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.root.join("bundles").join(format!("{id}.tar.gz"))
    }
    /// `DIR/secrets`
    pub fn secrets_dir(&self) -> PathBuf {
        self.root.join("secrets")
    }
    /// `DIR/secrets/server-mqtt-password`
    pub fn server_password(&self) -> PathBuf {
        self.secrets_dir().join("server-mqtt-password")
    }
}

/// A file to write: path, bytes, mode.
pub(super) struct Output {
    pub(super) path: PathBuf,
    pub(super) bytes: Vec<u8>,
    pub(super) mode: u32,
}

pub(super) fn read_or_empty(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

/// Write `bytes` to `path` through a temporary file and a rename, unless it already holds them.
/// Returns whether the file was written.
pub fn write_if_changed(path: &Path, bytes: &[u8], mode: u32) -> Result<bool> {
    if let Ok(meta) = std::fs::metadata(path)
        && meta.len() == bytes.len() as u64
        && meta.permissions().mode() & 0o777 == mode
        && std::fs::read(path).map(|b| b == bytes).unwrap_or(false)
    {
        return Ok(false);
    }
    let dir = path.parent().expect("output paths have a parent");
    std::fs::create_dir_all(dir).map_err(|e| ProvisionError::io(dir, e))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().expect("file name").to_string_lossy()
    ));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| ProvisionError::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| ProvisionError::io(&tmp, e))?;
    // The umask may have narrowed the mode; set it exactly.
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| ProvisionError::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| ProvisionError::io(path, e))?;
    Ok(true)
}

/// Create a new file with `mode` (fails if it exists).
pub(super) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    f.write_all(bytes)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.sync_all()
}

pub(super) fn secrets_file_path(layout: &Layout) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let mut path = layout.secrets_dir().join(format!("new-passwords-{stamp}.csv"));
    let mut n = 1;
    while path.exists() {
        n += 1;
        path = layout
            .secrets_dir()
            .join(format!("new-passwords-{stamp}-{n}.csv"));
    }
    path
}
