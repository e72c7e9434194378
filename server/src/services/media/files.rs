//! The library's files on disk: where a content address lives (`data_dir/media/<sha256>`) and
//! opening one for `GET /media/{sha256}` (whole or one byte range); bulletin files
//! (`GET /files/{sha256}`) are opened the same way ([`open_at`]). The range rules are
//! `domain::range`; the headers `http::media::send_file`.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncSeekExt, Take};

use crate::domain::media::is_sha;
use crate::domain::range::ByteRange;
use crate::error::Result;

/// Where a media file lives.
pub fn media_path(data_dir: &Path, sha: &str) -> PathBuf {
    data_dir.join("media").join(sha)
}

/// A stored file (media or a bulletin's file) opened for reading.
pub struct MediaFile {
    file: tokio::fs::File,
    /// Bytes.
    pub len: u64,
}

/// Open the file of content address `sha`; `None` when it is not a content address or not stored.
pub async fn open(data_dir: &Path, sha: &str) -> Result<Option<MediaFile>> {
    if !is_sha(sha) {
        return Ok(None);
    }
    open_at(&media_path(data_dir, sha)).await
}

/// Open the stored file at `path`; `None` when there is none.
pub async fn open_at(path: &Path) -> Result<Option<MediaFile>> {
    let file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let len = file.metadata().await?.len();
    Ok(Some(MediaFile { file, len }))
}

impl MediaFile {
    /// A reader of the whole file, or of `range` only.
    pub async fn reader(mut self, range: Option<ByteRange>) -> Result<Take<tokio::fs::File>> {
        Ok(match range {
            None => self.file.take(self.len),
            Some(r) => {
                self.file.seek(SeekFrom::Start(r.start)).await?;
                self.file.take(r.len())
            }
        })
    }
}
