//! Tables `tts_renditions` (the speech cache and the record of which engine made each media
//! item, with its loudness) and `area_voices` (the voice each area's speech is read with).

use sqlx::Row;

use crate::error::Result;
use crate::store::{Conn, Store};

/// One synthesis: the media item it produced and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendition {
    /// Cache key (sha256 hex; `fallback:<key>` for a fallback).
    pub cache_key: String,
    /// The media item.
    pub sha256: String,
    /// Engine that made the audio.
    pub engine: String,
    /// Voice name asked for.
    pub voice: String,
    /// The engine that failed when espeak-ng stood in.
    pub fallback_from: Option<String>,
    /// Gain applied, hundredths of a dB.
    pub gain_cdb: i64,
    /// Integrated loudness after normalisation, hundredths of a LUFS.
    pub loudness_clufs: i64,
    /// True peak after normalisation, hundredths of a dBTP.
    pub true_peak_cdbtp: i64,
    /// When, ms since the epoch.
    pub created_at: i64,
}

fn row(r: &sqlx::any::AnyRow) -> Result<Rendition> {
    Ok(Rendition {
        cache_key: r.try_get("cache_key")?,
        sha256: r.try_get("sha256")?,
        engine: r.try_get("engine")?,
        voice: r.try_get("voice")?,
        fallback_from: r.try_get("fallback_from")?,
        gain_cdb: r.try_get("gain_cdb")?,
        loudness_clufs: r.try_get("loudness_clufs")?,
        true_peak_cdbtp: r.try_get("true_peak_cdbtp")?,
        created_at: r.try_get("created_at")?,
    })
}

/// The rendition stored under `key` whose media item still exists.
pub async fn cached(store: &Store, key: &str) -> Result<Option<Rendition>> {
    let r = sqlx::query(
        "SELECT r.cache_key, r.sha256, r.engine, r.voice, r.fallback_from, r.gain_cdb, r.loudness_clufs, \
         r.true_peak_cdbtp, r.created_at FROM tts_renditions r JOIN media m ON m.sha256 = r.sha256 \
         WHERE r.cache_key = $1",
    )
    .bind(key.to_string())
    .fetch_optional(&store.pool)
    .await?;
    r.as_ref().map(row).transpose()
}

/// Every rendition of a media item, newest first.
pub async fn of_media(store: &Store, sha256: &str) -> Result<Vec<Rendition>> {
    let rows = sqlx::query(
        "SELECT r.cache_key, r.sha256, r.engine, r.voice, r.fallback_from, r.gain_cdb, r.loudness_clufs, \
         r.true_peak_cdbtp, r.created_at FROM tts_renditions r WHERE r.sha256 = $1 \
         ORDER BY r.created_at DESC, r.cache_key",
    )
    .bind(sha256.to_string())
    .fetch_all(&store.pool)
    .await?;
    rows.iter().map(row).collect()
}

/// Store (or replace) a rendition.
pub async fn record(conn: &mut Conn, r: &Rendition) -> Result<()> {
    sqlx::query("DELETE FROM tts_renditions WHERE cache_key = $1")
        .bind(r.cache_key.clone())
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO tts_renditions (cache_key, sha256, engine, voice, fallback_from, gain_cdb, \
         loudness_clufs, true_peak_cdbtp, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(r.cache_key.clone())
    .bind(r.sha256.clone())
    .bind(r.engine.clone())
    .bind(r.voice.clone())
    .bind(r.fallback_from.clone())
    .bind(r.gain_cdb)
    .bind(r.loudness_clufs)
    .bind(r.true_peak_cdbtp)
    .bind(r.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// An area's own voice setting `(voice, speed, pitch)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaVoice {
    /// Area code.
    pub area: String,
    /// Voice name.
    pub voice: String,
    /// Words per minute.
    pub speed: i64,
    /// Pitch.
    pub pitch: i64,
}

/// Every area's own voice setting.
pub async fn area_voices(store: &Store) -> Result<Vec<AreaVoice>> {
    let rows = sqlx::query("SELECT area, voice, speed, pitch FROM area_voices ORDER BY area")
        .fetch_all(&store.pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(AreaVoice {
                area: r.try_get("area")?,
                voice: r.try_get("voice")?,
                speed: r.try_get("speed")?,
                pitch: r.try_get("pitch")?,
            })
        })
        .collect()
}

/// Set (`Some`) or clear (`None`) an area's voice; returns the setting before.
pub async fn set_area_voice(
    conn: &mut Conn,
    area: &str,
    v: Option<&AreaVoice>,
    now: i64,
) -> Result<Option<AreaVoice>> {
    let before = sqlx::query("SELECT area, voice, speed, pitch FROM area_voices WHERE area = $1")
        .bind(area.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| -> Result<AreaVoice> {
            Ok(AreaVoice {
                area: r.try_get("area")?,
                voice: r.try_get("voice")?,
                speed: r.try_get("speed")?,
                pitch: r.try_get("pitch")?,
            })
        })
        .transpose()?;
    sqlx::query("DELETE FROM area_voices WHERE area = $1")
        .bind(area.to_string())
        .execute(&mut *conn)
        .await?;
    if let Some(v) = v {
        sqlx::query(
            "INSERT INTO area_voices (area, voice, speed, pitch, updated_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(area.to_string())
        .bind(v.voice.clone())
        .bind(v.speed)
        .bind(v.pitch)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(before)
}
