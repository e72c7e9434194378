//! The manifest of a backup (`manifest.json`, written last, so a backup without one is
//! incomplete): format, nguon version, database kind and schema level, and every file with its
//! size, sha256 and mode. Paths are relative and checked before any use (no `..`, no absolute
//! path), so a tampered manifest cannot make a restore write outside its target.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The manifest's file name inside a backup directory.
pub const NAME: &str = "manifest.json";

/// The format this binary writes and reads.
pub const FORMAT: u32 = 1;

/// Which database a backup holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Database {
    /// `db/nguon.db`, a `VACUUM INTO` copy.
    Sqlite,
    /// `db/nguon.pgdump`, `pg_dump --format=custom`.
    Postgres,
}

/// One file of the backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Path inside the backup directory (`db/…` or `data/…`), `/`-separated.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// Hex sha256 of the content.
    pub sha256: String,
    /// Unix permission bits (e.g. 0o600 for the signing key).
    pub mode: u32,
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The nguon-server version that wrote it.
    pub nguon_version: String,
    /// When (RFC 3339, UTC).
    pub created_at: String,
    /// Which database.
    pub database: Database,
    /// The highest migration applied to the saved database.
    pub schema_version: i64,
    /// That migration's description.
    pub schema_description: String,
    /// Every file, the database first.
    pub files: Vec<Entry>,
}

impl Manifest {
    /// Read and check `dir/manifest.json` (format, paths).
    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(NAME);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::unprocessable(
                "backup_incomplete",
                format!(
                    "{}: cannot read ({e}); a backup without its manifest is incomplete",
                    path.display()
                ),
            )
        })?;
        let m: Manifest = serde_json::from_str(&text).map_err(|e| {
            Error::unprocessable(
                "backup_manifest",
                format!("{}: not a nguon backup manifest: {e}", path.display()),
            )
        })?;
        if m.format > FORMAT {
            return Err(Error::unprocessable(
                "backup_format",
                format!(
                    "{}: backup format {} is newer than this nguon-server reads ({FORMAT}); restore it with nguon-server {} or newer",
                    path.display(),
                    m.format,
                    m.nguon_version
                ),
            ));
        }
        for e in &m.files {
            safe_relative(&e.path)?;
        }
        Ok(m)
    }

    /// Write `dir/manifest.json` atomically (a temp file renamed), the last step of a backup.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join(format!("{NAME}.tmp"));
        let text = serde_json::to_string_pretty(self).map_err(Error::context("encode manifest"))?;
        std::fs::write(&tmp, text)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, dir.join(NAME))?;
        Ok(())
    }

    /// Check every file's size and sha256 against the manifest; the first bad one is named.
    pub fn verify(&self, dir: &Path) -> Result<()> {
        for e in &self.files {
            let path = dir.join(&e.path);
            let (size, sha) = hash_file(&path).map_err(|err| {
                Error::unprocessable(
                    "backup_file_missing",
                    format!("{}: cannot read ({err})", path.display()),
                )
            })?;
            if size != e.size || sha != e.sha256 {
                return Err(Error::unprocessable(
                    "backup_checksum",
                    format!(
                        "{}: checksum mismatch (manifest: {} bytes, sha256 {}; file: {size} bytes, sha256 {sha}); the backup is damaged",
                        path.display(),
                        e.size,
                        e.sha256
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `path` as a relative path without `..`, or an error naming it.
pub fn safe_relative(path: &str) -> Result<PathBuf> {
    let p = PathBuf::from(path);
    let ok = !path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(p)
    } else {
        Err(Error::unprocessable(
            "backup_manifest",
            format!("manifest.json: file path {path:?} is not a plain relative path"),
        ))
    }
}

/// Size and hex sha256 of a file, streamed.
pub fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(h.finalize())))
}

/// The unix mode bits of a file (0o644 elsewhere).
pub fn mode_of(meta: &std::fs::Metadata) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o7777
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        0o644
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_leave_the_directory_are_refused() {
        assert!(safe_relative("data/media/abc").is_ok());
        for bad in ["../etc/passwd", "/etc/passwd", "data/../../x", "", "./x"] {
            let e = safe_relative(bad).unwrap_err().to_string();
            assert!(e.contains("manifest.json"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_changed_byte_is_reported_with_the_file_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/clip"), b"hello").unwrap();
        let (size, sha256) = hash_file(&dir.path().join("data/clip")).unwrap();
        let m = Manifest {
            format: FORMAT,
            nguon_version: "0".into(),
            created_at: String::new(),
            database: Database::Sqlite,
            schema_version: 1,
            schema_description: String::new(),
            files: vec![Entry {
                path: "data/clip".into(),
                size,
                sha256,
                mode: 0o644,
            }],
        };
        m.write(dir.path()).unwrap();
        let back = Manifest::read(dir.path()).unwrap();
        back.verify(dir.path()).unwrap();
        std::fs::write(dir.path().join("data/clip"), b"hellO").unwrap();
        let e = back.verify(dir.path()).unwrap_err().to_string();
        assert!(e.contains("data/clip") && e.contains("checksum mismatch"), "{e}");
    }
}
