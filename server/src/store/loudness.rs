//! Table `media_loudness`: an upload's measured loudness and the normalised rendition stored
//! beside it ([`record`], [`of`]), and which original a rendition's content address belongs to
//! ([`original_of`]: fetch access and proofs of play); the stored files that have no row yet
//! ([`unmeasured`]: the backfill).

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::media::{LoudnessRendition, MediaLoudness};
use crate::error::Result;
use crate::store::{Conn, Store, placeholders};

/// Hundredths of a dB from dB (`None` for a non-finite figure: silence).
pub fn centi(db: f64) -> Option<i64> {
    db.is_finite().then(|| (db * 100.0).round() as i64)
}

fn db(c: Option<i64>) -> Option<f64> {
    c.map(|c| c as f64 / 100.0)
}

fn row(r: &AnyRow) -> Result<MediaLoudness> {
    let rendition = match r.try_get::<Option<String>, _>("rendition_sha256")? {
        Some(sha256) => Some(LoudnessRendition {
            sha256,
            size: r.try_get::<Option<i64>, _>("rendition_size")?.unwrap_or(0),
            duration_ms: r.try_get::<Option<i64>, _>("rendition_duration_ms")?.unwrap_or(0),
            loudness_lufs: db(r.try_get("rendition_loudness_clufs")?).unwrap_or(f64::NAN),
            true_peak_dbtp: db(r.try_get("rendition_true_peak_cdbtp")?).unwrap_or(f64::NAN),
            gain_db: db(r.try_get("gain_cdb")?).unwrap_or(0.0),
            downmixed_from: r.try_get("downmixed_from")?,
        }),
        None => None,
    };
    Ok(MediaLoudness {
        loudness_lufs: db(r.try_get("loudness_clufs")?),
        true_peak_dbtp: db(r.try_get("true_peak_cdbtp")?),
        target_lufs: r.try_get::<i64, _>("target_clufs")? as f64 / 100.0,
        rendition,
        note: r.try_get("note")?,
    })
}

const COLUMNS: &str = "sha256, loudness_clufs, true_peak_cdbtp, rendition_sha256, rendition_size, \
     rendition_duration_ms, rendition_loudness_clufs, rendition_true_peak_cdbtp, gain_cdb, \
     target_clufs, note, downmixed_from";

/// Store the loudness of the media item `sha` (inside the upload's transaction).
pub async fn record(conn: &mut Conn, sha: &str, l: &MediaLoudness, now: i64) -> Result<()> {
    let r = l.rendition.as_ref();
    sqlx::query(
        "INSERT INTO media_loudness (sha256, loudness_clufs, true_peak_cdbtp, rendition_sha256, \
         rendition_size, rendition_duration_ms, rendition_loudness_clufs, rendition_true_peak_cdbtp, \
         gain_cdb, target_clufs, note, created_at, downmixed_from) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(sha.to_string())
    .bind(l.loudness_lufs.and_then(centi))
    .bind(l.true_peak_dbtp.and_then(centi))
    .bind(r.map(|r| r.sha256.clone()))
    .bind(r.map(|r| r.size))
    .bind(r.map(|r| r.duration_ms))
    .bind(r.and_then(|r| centi(r.loudness_lufs)))
    .bind(r.and_then(|r| centi(r.true_peak_dbtp)))
    .bind(r.and_then(|r| centi(r.gain_db)))
    .bind(centi(l.target_lufs).unwrap_or(0))
    .bind(l.note.clone())
    .bind(now)
    .bind(r.and_then(|r| r.downmixed_from))
    .execute(conn)
    .await?;
    Ok(())
}

/// The loudness rows of those of `shas` that have one, by sha256.
pub async fn of(store: &Store, shas: &[String]) -> Result<HashMap<String, MediaLoudness>> {
    let mut out = HashMap::new();
    for chunk in shas.chunks(500) {
        let sql = format!(
            "SELECT {COLUMNS} FROM media_loudness WHERE sha256 IN ({})",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for sha in chunk {
            q = q.bind(sha.clone());
        }
        for r in q.fetch_all(&store.pool).await? {
            out.insert(r.try_get("sha256")?, row(&r)?);
        }
    }
    Ok(out)
}

/// The media item whose rendition has the content address `rendition`, if any.
pub async fn original_of(store: &Store, rendition: &str) -> Result<Option<String>> {
    let r =
        sqlx::query("SELECT sha256 FROM media_loudness WHERE rendition_sha256 = $1 ORDER BY sha256 LIMIT 1")
            .bind(rendition.to_string())
            .fetch_optional(&store.pool)
            .await?;
    Ok(match r {
        Some(r) => Some(r.try_get("sha256")?),
        None => None,
    })
}

/// A stored file without a loudness row (what the backfill needs of it).
#[derive(Debug, Clone)]
pub struct Unmeasured {
    /// Content address.
    pub sha256: String,
    /// File name as uploaded.
    pub filename: String,
    /// `container/codec` as probed.
    pub format: String,
    /// Frames (samples per channel), from the probed duration and rate.
    pub frames: u64,
    /// Channels as probed.
    pub channels: u16,
}

/// The media items with no loudness row, speech excepted (`tts_renditions`: normalised when
/// synthesised), oldest first.
pub async fn unmeasured(store: &Store) -> Result<Vec<Unmeasured>> {
    let rows = sqlx::query(
        "SELECT m.sha256, m.filename, m.container, m.codec, m.sample_rate, m.channels, m.duration_ms \
         FROM media m WHERE NOT EXISTS (SELECT 1 FROM media_loudness l WHERE l.sha256 = m.sha256) \
         AND NOT EXISTS (SELECT 1 FROM tts_renditions t WHERE t.sha256 = m.sha256) \
         ORDER BY m.created_at, m.sha256",
    )
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let (rate, channels, ms): (i64, i64, i64) = (
                r.try_get("sample_rate")?,
                r.try_get("channels")?,
                r.try_get("duration_ms")?,
            );
            Ok(Unmeasured {
                sha256: r.try_get("sha256")?,
                filename: r.try_get("filename")?,
                format: format!(
                    "{}/{}",
                    r.try_get::<String, _>("container")?,
                    r.try_get::<String, _>("codec")?
                ),
                frames: ms.max(0) as u64 * rate.max(0) as u64 / 1000,
                channels: channels.clamp(1, u16::MAX as i64) as u16,
            })
        })
        .collect()
}
