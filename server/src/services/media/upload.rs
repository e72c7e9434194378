//! Storing a file in the library: staging a stream to `data_dir/tmp` while hashing and counting
//! it ([`stage`], refused past the upload limit), then [`finish`]: dedupe by content, probe
//! ([`super::probe`]), and in one transaction the record (and, for an upload by a user, its audit
//! entry) while the file is renamed atomically to `data_dir/media/<sha256>`. A refused or failed
//! file leaves nothing behind: the temp file is removed on drop.

use std::path::{Path, PathBuf};
use std::pin::pin;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::files::media_path;
use super::probe::{ProbeError, probe_file};
use crate::domain::media::{self, Media};
use crate::domain::review::ReviewStatus;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::services::AppState;
use crate::store::{self, now_ms};

/// A temp file removed on drop unless [`TempFile::persist`] moved it.
pub(super) struct TempFile {
    path: Option<PathBuf>,
}

impl TempFile {
    pub(super) async fn create(data_dir: &Path) -> Result<(TempFile, tokio::fs::File)> {
        let dir = data_dir.join("tmp");
        tokio::fs::create_dir_all(&dir).await?;
        let mut b = [0u8; 12];
        getrandom::fill(&mut b).map_err(Error::context("random file name"))?;
        let path = dir.join(format!("upload-{}", hex::encode(b)));
        let f = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        Ok((TempFile { path: Some(path) }, f))
    }
    fn path(&self) -> &Path {
        self.path.as_deref().expect("temp file present")
    }
    /// Rename into place (atomic on one file system).
    pub(super) async fn persist(mut self, to: &Path) -> Result<()> {
        let from = self.path.take().expect("temp file present");
        if let Some(dir) = to.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        if let Err(e) = tokio::fs::rename(&from, to).await {
            let _ = std::fs::remove_file(&from);
            return Err(e.into());
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// An incoming file written to a temp file, with its hash and size. Dropping it removes the file.
pub struct Staged {
    tmp: TempFile,
    sha256: String,
    size: u64,
}

impl Staged {
    /// Lowercase hex sha256 of the content.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
}

/// Hash a file with sha256 (streaming, 256 KiB buffer).
pub fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex::encode(h.finalize()), n))
}

/// Copy a reader into a temp file while hashing and counting; refuse past the size limit (413
/// `too_large`, counted as a rejected upload). A read error is returned as `Error::Io` with the
/// reader's error inside (the HTTP layer recognises its own).
pub async fn stage(state: &AppState, src: impl AsyncRead) -> Result<Staged> {
    let mut src = pin!(src);
    let (tmp, mut f) = TempFile::create(&state.settings.data_dir).await?;
    let limit = media::limit_bytes(state.settings.max_upload_mb);
    let mut h = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        let k = src.read(&mut buf).await?;
        if k == 0 {
            break;
        }
        size += k as u64;
        if size > limit {
            Metrics::inc(&state.metrics.uploads_rejected);
            return Err(media::too_large(state.settings.max_upload_mb));
        }
        h.update(&buf[..k]);
        f.write_all(&buf[..k]).await?;
    }
    f.sync_all().await?;
    Ok(Staged {
        tmp,
        sha256: hex::encode(h.finalize()),
        size,
    })
}

fn probe_error(e: ProbeError) -> Error {
    let message = e.to_string();
    match e {
        ProbeError::Empty => Error::bad("empty", message),
        ProbeError::NotAudio(_) => Error::Unsupported {
            code: "not_audio",
            message,
        },
        ProbeError::UnsupportedCodec(_) => Error::Unsupported {
            code: "unsupported_codec",
            message,
        },
        ProbeError::Corrupt(_) => Error::unprocessable("corrupt", message),
        ProbeError::OutOfRange { field, .. } => Error::unprocessable(
            match field {
                "channels" => "invalid_channels",
                _ => "invalid_sample_rate",
            },
            message,
        ),
        ProbeError::Io(m) => Error::internal(format!("probe: {m}")),
    }
}

/// Where a staged file goes and who stores it.
pub struct Finish<'a> {
    /// The file name as given (cleaned here).
    pub filename: &'a str,
    /// The title as given (the file name when blank).
    pub title: Option<&'a str>,
    /// Owning area; `None` = province-wide.
    pub area: Option<&'a str>,
    /// The user whose upload this is (audited as `media.upload`); `None` for files the server
    /// stores itself (speech, a bulletin's recording, the demo), as before.
    pub actor: Option<&'a str>,
    /// Measure the loudness and store a normalised rendition beside the original
    /// ([`super::loudness`]): uploads and recordings; not speech (normalised when synthesised).
    pub normalize: bool,
}

/// Probe a staged file, dedupe, move it into place and insert the record (a `draft`). Returns the
/// record and whether the same content was stored already. A refusal is counted in
/// `uploads_rejected`.
pub async fn finish(state: &AppState, staged: Staged, to: Finish<'_>) -> Result<(Media, bool)> {
    let result = finish_inner(state, staged, to).await;
    if let Err(e) = &result
        && !e.is_internal()
    {
        Metrics::inc(&state.metrics.uploads_rejected);
    }
    result
}

async fn finish_inner(state: &AppState, staged: Staged, to: Finish<'_>) -> Result<(Media, bool)> {
    if staged.size == 0 {
        return Err(Error::bad("empty", "the file is empty"));
    }
    if let Some(t) = to.title {
        crate::domain::text::clean_line("title", t.trim())?;
    }
    if let Some(existing) = store::media::get(&state.store, &staged.sha256).await? {
        return Ok((existing, true));
    }
    let path = staged.tmp.path().to_path_buf();
    let info = tokio::task::spawn_blocking(move || probe_file(&path))
        .await
        .map_err(Error::context("probe task"))?
        .map_err(probe_error)?;
    let filename = media::clean_name(to.filename);
    let rendered = if to.normalize {
        let path = staged.tmp.path().to_path_buf();
        let (name, format) = (filename.clone(), format!("{}/{}", info.container, info.codec));
        let (frames, channels) = (info.frames, info.channels);
        Some(
            tokio::task::spawn_blocking(move || {
                super::loudness::render(&path, &name, &format, frames, channels)
            })
            .await
            .map_err(Error::context("loudness task"))??,
        )
    } else {
        None
    };
    let now = now_ms();
    let m = Media {
        sha256: staged.sha256.clone(),
        title: media::clean_title(to.title, &filename),
        filename,
        size: staged.size as i64,
        container: info.container,
        codec: info.codec,
        sample_rate: info.sample_rate as i64,
        channels: info.channels as i64,
        duration_ms: info.duration_ms,
        status: ReviewStatus::Draft,
        status_note: None,
        area: to.area.map(str::to_string),
        created_at: now,
        updated_at: now,
    };
    let mut tx = state.store.begin_write().await?;
    if !store::media::insert(&mut tx, &m).await? {
        // A concurrent upload of the same content won the race.
        drop(tx);
        let existing = store::media::get(&state.store, &m.sha256)
            .await?
            .ok_or_else(|| Error::internal("media row vanished"))?;
        return Ok((existing, true));
    }
    if let Some(actor) = to.actor {
        let after = serde_json::to_value(&m).map_err(Error::context("media json"))?;
        store::audit::record(&mut tx, actor, "media.upload", &m.subject(), None, Some(after)).await?;
    }
    // The rendition's file is in place before its row is visible (a file already there is the
    // same content: left as it is).
    let mut made_rendition = None;
    if let Some(r) = &rendered {
        store::loudness::record(&mut tx, &m.sha256, &r.loudness, now).await?;
        if let Some((wav, sha)) = &r.wav {
            let rdest = media_path(&state.settings.data_dir, sha);
            if tokio::fs::metadata(&rdest).await.is_err() {
                let (tmp, mut f) = TempFile::create(&state.settings.data_dir).await?;
                f.write_all(wav).await?;
                f.sync_all().await?;
                tmp.persist(&rdest).await?;
                made_rendition = Some(rdest);
            }
        }
    }
    // The file is in place before the record is visible; a failed commit takes it away again
    // (no other upload of this content can have committed while this transaction held its row).
    let dest = media_path(&state.settings.data_dir, &m.sha256);
    staged.tmp.persist(&dest).await?;
    if let Err(e) = tx.commit().await {
        let _ = tokio::fs::remove_file(&dest).await;
        if let Some(r) = made_rendition {
            let _ = tokio::fs::remove_file(r).await;
        }
        return Err(e.into());
    }
    if let Some(l) = rendered.as_ref().map(|r| &r.loudness) {
        tracing::info!(sha256 = %m.sha256, loudness_lufs = ?l.loudness_lufs, true_peak_dbtp = ?l.true_peak_dbtp,
            rendition = ?l.rendition.as_ref().map(|r| &r.sha256), note = ?l.note, "upload loudness");
    }
    tracing::info!(sha256 = %m.sha256, duration_ms = m.duration_ms, codec = %m.codec, "media stored");
    Ok((m, false))
}
