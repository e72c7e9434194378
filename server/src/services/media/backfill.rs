//! Loudness backfill (issue 18): files stored before uploads were measured (migration 0160) have
//! no `media_loudness` row and are played as they were uploaded. [`loudness_backfill`] (the
//! offline command `nguon-server media loudness-backfill`, safe while the server runs) measures
//! each of them with the upload's own rules ([`super::loudness::render`]), stores the rendition
//! beside the original and, in one transaction per file, its loudness row, an audit entry
//! (`media.loudness_backfill`, actor [`ACTOR`]) and a dispatch outbox row, so the running server's
//! dispatcher sends devices the rendition within seconds. Speech (already normalised when
//! synthesised, `tts_renditions`) is left alone. It is idempotent: a file with a row is skipped,
//! and one that cannot be decoded or whose bytes are missing gets a row with a `note` saying so
//! (played as it is, not tried again).

use std::path::Path;

use tokio::io::AsyncWriteExt;

use crate::domain::change::Change;
use crate::domain::media::{MediaLoudness, subject};
use crate::domain::speech::loudness::TARGET_LUFS;
use crate::error::{Error, Result};
use crate::store::{self, Store};

use super::files::media_path;
use super::upload::TempFile;

/// The audit actor of the backfill's entries.
pub const ACTOR: &str = "system:loudness-backfill";

/// What a backfill did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Files without a loudness row found (at most the limit).
    pub found: usize,
    /// Given a rendition.
    pub normalised: usize,
    /// Measured and played as they are (silent, at the target, too long).
    pub as_is: usize,
    /// Not measurable (missing bytes, undecodable): recorded with a note.
    pub failed: usize,
}

/// Measure and normalise up to `limit` (all when `None`) stored files that have no loudness
/// row, oldest first.
pub async fn loudness_backfill(store: &Store, data_dir: &Path, limit: Option<usize>) -> Result<Summary> {
    let rows = store::loudness::unmeasured(store).await?;
    let mut s = Summary::default();
    for r in rows.into_iter().take(limit.unwrap_or(usize::MAX)) {
        s.found += 1;
        let store::loudness::Unmeasured {
            sha256: sha,
            filename,
            format,
            frames,
            channels,
        } = r;
        let path = media_path(data_dir, &sha);
        let rendered = if tokio::fs::metadata(&path).await.is_err() {
            Err(format!("the file {} is missing", path.display()))
        } else {
            let (p, name) = (path.clone(), filename.clone());
            tokio::task::spawn_blocking(move || super::loudness::render(&p, &name, &format, frames, channels))
                .await
                .map_err(Error::context("loudness task"))?
                .map_err(|e| e.to_string())
        };
        let (loudness, wav) = match rendered {
            Ok(r) => (r.loudness, r.wav),
            Err(why) => {
                tracing::warn!(sha256 = %sha, file = %filename, %why, "loudness backfill: not measured");
                let note = format!("not measured by the backfill ({why}): played as uploaded");
                let l = MediaLoudness {
                    loudness_lufs: None,
                    true_peak_dbtp: None,
                    target_lufs: TARGET_LUFS,
                    rendition: None,
                    note: Some(note),
                };
                (l, None)
            }
        };
        if let Some((bytes, rsha)) = &wav {
            let dest = media_path(data_dir, rsha);
            if tokio::fs::metadata(&dest).await.is_err() {
                let (tmp, mut f) = TempFile::create(data_dir).await?;
                f.write_all(bytes).await?;
                f.sync_all().await?;
                tmp.persist(&dest).await?;
            }
        }
        let mut tx = store.begin_write().await?;
        store::loudness::record(&mut tx, &sha, &loudness, crate::store::now_ms()).await?;
        let after = serde_json::to_value(&loudness).map_err(Error::context("loudness json"))?;
        store::audit::record(
            &mut tx,
            ACTOR,
            "media.loudness_backfill",
            &subject(&sha),
            None,
            Some(after),
        )
        .await?;
        if wav.is_some() {
            store::outbox::insert(&mut tx, &Change::All).await?;
        }
        tx.commit().await?;
        match (&wav, &loudness.note) {
            (Some(_), _) => s.normalised += 1,
            (None, Some(n)) if n.starts_with("not measured") => s.failed += 1,
            (None, _) => s.as_is += 1,
        }
        tracing::info!(sha256 = %sha, loudness_lufs = ?loudness.loudness_lufs,
            rendition = ?loudness.rendition.as_ref().map(|r| &r.sha256), note = ?loudness.note,
            "loudness backfill");
    }
    Ok(s)
}
