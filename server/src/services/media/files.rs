//! The library's files on disk: where a content address lives (`data_dir/media/<sha256>`) and
//! opening one for `GET /media/{sha256}` (whole or one byte range); bulletin files
//! (`GET /files/{sha256}`) are opened the same way ([`open_at`]). The range rules are
//! `domain::range`; the headers `http::media::send_file`. An approved file may be served from
//! memory instead ([`super::hot`]).

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::domain::media::is_sha;
use crate::domain::range::ByteRange;
use crate::error::Result;

/// Where a media file lives.
pub fn media_path(data_dir: &Path, sha: &str) -> PathBuf {
    data_dir.join("media").join(sha)
}

/// A stored file (media or a bulletin's file) opened for reading, or its bytes already in
/// memory (`hot`).
pub struct MediaFile {
    held: Held,
    /// Bytes.
    pub len: u64,
}

enum Held {
    Disk(tokio::fs::File),
    Memory(Bytes),
}

/// The bytes of a response, in chunks.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

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
    Ok(Some(MediaFile {
        held: Held::Disk(file),
        len,
    }))
}

impl MediaFile {
    /// A file whose bytes are in memory.
    pub fn memory(bytes: Bytes) -> MediaFile {
        MediaFile {
            len: bytes.len() as u64,
            held: Held::Memory(bytes),
        }
    }

    /// All its bytes, read into memory.
    pub async fn read_all(self) -> Result<Bytes> {
        match self.held {
            Held::Memory(b) => Ok(b),
            Held::Disk(f) => {
                let mut v = Vec::with_capacity(self.len as usize);
                f.take(self.len).read_to_end(&mut v).await?;
                Ok(Bytes::from(v))
            }
        }
    }

    /// The bytes of the whole file, or of `range` only, in chunks of at most 64 KiB read as the
    /// body is sent (from memory: one chunk).
    pub async fn stream(self, range: Option<ByteRange>) -> Result<ByteStream> {
        match self.held {
            Held::Memory(b) => {
                let part = match range {
                    None => b,
                    Some(r) => b.slice(r.start as usize..(r.start + r.len()) as usize),
                };
                Ok(futures::stream::once(async move { Ok(part) }).boxed())
            }
            Held::Disk(mut file) => {
                let reader = match range {
                    None => file.take(self.len),
                    Some(r) => {
                        file.seek(SeekFrom::Start(r.start)).await?;
                        file.take(r.len())
                    }
                };
                Ok(tokio_util::io::ReaderStream::with_capacity(reader, 64 * 1024).boxed())
            }
        }
    }
}
