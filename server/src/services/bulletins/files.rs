//! Receiving bulletin files (images, video, PDF attachments): a stream or a spooled file is
//! written to `data_dir/tmp` while its type is sniffed from the content (the file name's
//! extension is ignored) and the size limit of its kind is enforced; images must have readable
//! dimensions within the limits. Accepted files are stored content-addressed under
//! `data_dir/files/<sha256>` (served at `GET /files/{sha256}`). A refused upload leaves nothing
//! behind (its temp file is removed, no row is written).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::domain::bulletin::files::{Sniffed, check_image, limit_for, sniff, too_large, unsupported};
use crate::domain::media::is_sha;
use crate::error::Result;
use crate::services::media::files::{MediaFile, open_at};

/// Bytes read to sniff a file's type and an image's dimensions.
const HEAD: usize = 256 * 1024;

/// A stored file.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Lowercase hex sha256.
    pub sha256: String,
    /// What it is.
    pub sniffed: Sniffed,
    /// Bytes.
    pub size: u64,
    /// Image dimensions.
    pub dims: Option<(u32, u32)>,
}

/// Where file `sha256` lives.
pub fn path_of(data_dir: &Path, sha256: &str) -> PathBuf {
    data_dir.join("files").join(sha256)
}

struct TempGuard(Option<PathBuf>);
impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Where the bytes of a received file come from.
pub enum Source<'a> {
    /// A body being uploaded (a multipart field), chunk by chunk.
    Stream(BoxStream<'a, Result<Bytes>>),
    /// A file already on disk (e.g. a console form's upload spooled to `data_dir/tmp`).
    File(tokio::fs::File),
}

impl Source<'_> {
    async fn chunk(&mut self) -> Result<Option<Bytes>> {
        match self {
            Source::Stream(s) => s.next().await.transpose(),
            Source::File(f) => {
                let mut buf = vec![0u8; 64 * 1024];
                let n = tokio::io::AsyncReadExt::read(f, &mut buf).await?;
                buf.truncate(n);
                Ok((n > 0).then(|| Bytes::from(buf)))
            }
        }
    }
}

/// Stream a file to `data_dir/tmp`, validate it (type, size limit of its kind, image
/// dimensions) and move it to `data_dir/files/<sha256>`. A refused file leaves nothing behind.
pub async fn receive(data_dir: &Path, max_upload: u64, mut src: Source<'_>) -> Result<Stored> {
    let tmp_dir = data_dir.join("tmp");
    tokio::fs::create_dir_all(&tmp_dir).await?;
    let tmp = tmp_dir.join(format!("upload-{}.part", uuid::Uuid::new_v4()));
    let mut guard = TempGuard(Some(tmp.clone()));
    let mut file = tokio::fs::File::create(&tmp).await?;
    let mut hasher = Sha256::new();
    let mut head: Vec<u8> = Vec::new();
    let mut sniffed: Option<Sniffed> = None;
    let mut size: u64 = 0;
    let mut limit = max_upload;
    while let Some(chunk) = src.chunk().await? {
        size += chunk.len() as u64;
        if head.len() < HEAD {
            let take = (HEAD - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        if sniffed.is_none() && head.len() >= 16 {
            let s = sniff(&head).ok_or_else(|| unsupported(&head))?;
            limit = limit_for(s.kind, max_upload);
            sniffed = Some(s);
        }
        if size > limit {
            return Err(too_large(sniffed.map(|s| s.kind).unwrap_or("file"), limit));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    drop(file);
    let sniffed = match sniffed {
        Some(s) => s,
        None => sniff(&head).ok_or_else(|| unsupported(&head))?,
    };
    let dims = if sniffed.kind == "image" {
        Some(check_image(sniffed.mime, &head)?)
    } else {
        None
    };
    let sha256 = hex::encode(hasher.finalize());
    let dest = path_of(data_dir, &sha256);
    tokio::fs::create_dir_all(dest.parent().unwrap_or(data_dir)).await?;
    if tokio::fs::metadata(&dest).await.is_ok() {
        // Already stored: the temp copy is dropped by the guard.
    } else {
        tokio::fs::rename(&tmp, &dest).await?;
        guard.0 = None;
    }
    Ok(Stored {
        sha256,
        sniffed,
        size,
        dims,
    })
}

/// The stored file `sha256`, opened (whole or one byte range); `None` when it is not a content
/// address or not stored.
pub async fn open(data_dir: &Path, sha256: &str) -> Result<Option<MediaFile>> {
    if !is_sha(sha256) {
        return Ok(None);
    }
    open_at(&path_of(data_dir, sha256)).await
}
