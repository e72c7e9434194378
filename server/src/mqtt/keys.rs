//! The server's ed25519 signing key: created on first start in the data dir (`server.key`, mode
//! 0600, base64 of the 32-byte seed) and read on every later start.

use std::io::Write;
use std::path::Path;

use nguon_protocol::ServerKey;

use crate::error::{Error, Result};

/// Load `dir/server.key`, creating it (0600) if missing.
pub fn load_or_create(dir: &Path) -> Result<ServerKey> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("server.key");
    if path.exists() {
        let text = std::fs::read_to_string(&path)?;
        return ServerKey::from_b64(&text)
            .map_err(Error::context(format!("{}: not a server key", path.display())));
    }
    let key = ServerKey::generate();
    let tmp = dir.join("server.key.tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(key.secret_b64().as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    tracing::info!(path = %path.display(), public_key = %key.public_b64(), "created server signing key");
    Ok(key)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_key_is_created_once_with_mode_0600_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = super::load_or_create(dir.path()).unwrap();
        let b = super::load_or_create(dir.path()).unwrap();
        assert_eq!(a.public_b64(), b.public_b64());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("server.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
