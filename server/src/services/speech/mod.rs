//! Vietnamese text-to-speech: the engines and voices in use ([`voices::Tts`] in a replaceable
//! [`TtsSlot`]; espeak-ng by default, a command adapter such as Piper, a cloud HTTP adapter, all
//! behind [`engines::TtsEngine`]), the voice of an area ([`voices::area_voice`]), and
//! [`synthesize_to_media`]: normalise the text (built-in table plus the operators' lexicon, number
//! words of the voice's accent), look the result up in the speech cache (the sha256 of the text,
//! voice and engine version), else synthesise (espeak-ng stands in when a cloud engine fails,
//! and the rendition says so), loudness-normalise (EBU R128, −16 LUFS, −1 dBTP) and store the WAV
//! as an ordinary media item through the library's ingest path. The operators' lexicon:
//! [`lexicon_entries`], [`replace_lexicon`]. The pure rules are `domain::speech`.

pub mod cloud;
pub mod decode;
pub mod engines;
pub mod voices;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::domain::review::ReviewStatus;
use crate::domain::scope::Caller;
use crate::domain::speech::{self, BUILTIN_LEXICON, Lexicon, Voice, loudness};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::store::{self, now_ms};

pub use engines::{EngineVoice, TtsEngine};
pub use voices::{AreaVoice, Tts, TtsSlot, VoiceDef, area_voice, effective_area_voice, set_area_voice};

/// The voice of a request, checked against the voices in use (the voice's defaults filled in).
pub fn voice(state: &AppState, name: Option<&str>, speed: Option<u32>, pitch: Option<u32>) -> Result<Voice> {
    state.tts.get().request(name, speed, pitch)
}

/// `text` as the voice `voice` will read it (the operators' lexicon, the voice's accent), piece
/// by piece.
pub async fn normalize_text(state: &AppState, text: &str, voice: &str) -> Result<Vec<speech::Piece>> {
    speech::check_text(text)?;
    let accent = state.tts.get().voice(voice).map(|v| v.accent).unwrap_or_default();
    Ok(speech::normalize_pieces(
        text,
        &lexicon(state).await?,
        accent.dialect(),
    ))
}

/// The text of [`normalize_text`]'s pieces.
pub fn joined(pieces: &[speech::Piece]) -> String {
    pieces
        .iter()
        .map(|p| p.read.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Built-in table plus the operators' `tts_lexicon` rows.
pub async fn lexicon(state: &AppState) -> Result<Lexicon> {
    let mut l = Lexicon::builtin();
    for (term, expansion) in store::lexicon::entries(&state.store).await? {
        l.insert(&term, &expansion);
    }
    Ok(l)
}

/// A synthesised, stored speech item.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SpeechMedia {
    /// Media sha256 (lowercase hex).
    pub sha256: String,
    /// Duration in milliseconds.
    pub duration_ms: i64,
    /// Size in bytes.
    pub size: i64,
    /// Media status (`draft` for previews, `approved` for an approved bulletin's speech).
    #[schema(value_type = String)]
    pub status: ReviewStatus,
    /// Where devices fetch it.
    pub url: String,
    /// Gain applied by loudness normalisation, dB.
    pub gain_db: f64,
    /// Integrated loudness of the stored audio, LUFS.
    pub loudness_lufs: f64,
    /// True peak of the stored audio, dBTP.
    pub true_peak_dbtp: f64,
    /// Voice asked for.
    pub voice: String,
    /// Engine that made the audio (`espeak-ng` when it stood in for a failed engine).
    pub engine: String,
    /// The engine that failed when espeak-ng stood in.
    pub fallback_from: Option<String>,
    /// Taken from the speech cache (same text, voice and engine version): nothing synthesised.
    pub cached: bool,
}

/// A text-to-speech preview by `actor` (the API's `POST /api/v1/tts/preview` and the console's
/// speech preview): `text` synthesised with `voice` as a `draft` media item titled
/// `TTS: <title>`, audited as `tts.preview`. The media item is stored first (by the same path as
/// an upload); the audit entry follows in a transaction of its own. Returns the normalised text
/// and the media.
pub async fn preview(
    state: &AppState,
    actor: &str,
    text: &str,
    voice: &Voice,
    title: &str,
) -> Result<(String, SpeechMedia)> {
    let label: String = title.trim().chars().take(80).collect();
    let (normalized, m) = synthesize_to_media(state, text, voice, &format!("TTS: {label}"), false).await?;
    let mut tx = state.store.begin_write().await?;
    store::audit::record(
        &mut tx,
        actor,
        "tts.preview",
        &format!("media:{}", m.sha256),
        None,
        Some(serde_json::json!({"voice": voice.name, "speed": voice.speed, "sha256": m.sha256, "duration_ms": m.duration_ms})),
    )
    .await?;
    tx.commit().await?;
    Ok((normalized, m))
}

/// The speech cache key: sha256 of the normalised text, the voice, its speed and pitch, and the
/// engine's name and version.
pub fn cache_key(normalized: &str, voice: &Voice, engine: &dyn TtsEngine) -> String {
    let mut h = Sha256::new();
    for part in [
        normalized,
        &voice.name,
        &voice.speed.to_string(),
        &voice.pitch.to_string(),
        engine.name(),
        engine.version(),
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

/// Audio made by an engine, before loudness normalisation.
struct Made {
    audio: Vec<u8>,
    engine: String,
    fallback_from: Option<String>,
}

/// Synthesise with the voice's engine; when it fails and falls back, with espeak-ng's voice of
/// the same accent.
async fn synthesize_audio(
    state: &AppState,
    tts: &Tts,
    def: &VoiceDef,
    text: &str,
    voice: &Voice,
) -> Result<Made> {
    let engine = tts
        .engine(&def.engine)
        .ok_or_else(|| Error::internal(format!("no engine {}", def.engine)))?;
    let scratch = state.settings.data_dir.join("tmp");
    let ev = EngineVoice {
        id: def.engine_voice.clone(),
        speed: voice.speed,
        pitch: voice.pitch,
    };
    match engine.synthesize(text, &ev, &scratch).await {
        Ok(audio) => Ok(Made {
            audio,
            engine: engine.name().to_string(),
            fallback_from: None,
        }),
        Err(e) if engine.falls_back() => {
            tracing::warn!(engine = engine.name(), error = %e, "tts engine failed; espeak-ng stands in");
            let fb = tts.fallback_voice(def.accent);
            let espeak = tts
                .engine("espeak-ng")
                .ok_or_else(|| Error::internal("no espeak-ng"))?;
            let ev = EngineVoice {
                id: fb.engine_voice.clone(),
                ..ev
            };
            let audio = espeak.synthesize(text, &ev, &scratch).await?;
            Ok(Made {
                audio,
                engine: espeak.name().to_string(),
                fallback_from: Some(engine.name().to_string()),
            })
        }
        Err(e) => Err(e),
    }
}

/// Normalise `text`, then take the speech from the cache, or synthesise it with `voice`,
/// loudness-normalise it and store it as a media item titled `title` with its rendition record.
/// `approved` stores (or marks) it approved (speech of an approved bulletin), otherwise `draft`
/// like any upload. Returns the normalised text and the media.
pub async fn synthesize_to_media(
    state: &AppState,
    text: &str,
    voice: &Voice,
    title: &str,
    approved: bool,
) -> Result<(String, SpeechMedia)> {
    speech::check_text(text)?;
    let tts = state.tts.get();
    let def = tts.voice(&voice.name).cloned().ok_or_else(|| {
        Error::bad(
            "unknown_voice",
            format!("voice `{}` is not configured", voice.name),
        )
    })?;
    let normalized = speech::normalize_in(text, &lexicon(state).await?, def.accent.dialect());
    let engine = tts
        .engine(&def.engine)
        .ok_or_else(|| Error::internal(format!("no engine {}", def.engine)))?;
    let key = cache_key(&normalized, voice, engine.as_ref());
    if let Some(r) = store::speech::cached(&state.store, &key).await? {
        let mut m = media_of(state, &r.sha256, approved).await?;
        m.gain_db = r.gain_cdb as f64 / 100.0;
        m.loudness_lufs = r.loudness_clufs as f64 / 100.0;
        m.true_peak_dbtp = r.true_peak_cdbtp as f64 / 100.0;
        m.voice = r.voice;
        m.engine = r.engine;
        m.cached = true;
        return Ok((normalized, m));
    }
    let made = synthesize_audio(state, &tts, &def, &normalized, voice).await?;
    let audio = made.audio;
    let (bytes, report) = tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, loudness::Report)> {
        let mut pcm = decode::decode(&audio).map_err(|e| Error::internal(format!("tts audio: {e}")))?;
        let report = loudness::normalize(&mut pcm, loudness::TARGET_LUFS, loudness::PEAK_CEILING_DBFS)?;
        Ok((pcm.to_wav(), report))
    })
    .await
    .map_err(Error::context("tts task"))??;
    let mut media = store_wav(state, &bytes, title, approved).await?;
    let rendition = store::speech::Rendition {
        cache_key: match &made.fallback_from {
            Some(_) => format!("fallback:{key}"),
            None => key,
        },
        sha256: media.sha256.clone(),
        engine: made.engine.clone(),
        voice: voice.name.clone(),
        fallback_from: made.fallback_from.clone(),
        gain_cdb: (report.gain_db * 100.0).round() as i64,
        loudness_clufs: (report.loudness_after_lufs * 100.0).round() as i64,
        true_peak_cdbtp: (report.true_peak_after_dbtp * 100.0).round() as i64,
        created_at: now_ms(),
    };
    let mut tx = state.store.begin_write().await?;
    store::speech::record(&mut tx, &rendition).await?;
    tx.commit().await?;
    media.gain_db = report.gain_db;
    media.loudness_lufs = report.loudness_after_lufs;
    media.true_peak_dbtp = report.true_peak_after_dbtp;
    media.voice = voice.name.clone();
    media.engine = made.engine;
    media.fallback_from = made.fallback_from;
    Ok((normalized, media))
}

/// The media item `sha` as speech (approved first when `approved` and it is not yet).
async fn media_of(state: &AppState, sha: &str, approved: bool) -> Result<SpeechMedia> {
    let mut row = store::media::get(&state.store, sha)
        .await?
        .ok_or_else(|| Error::internal("cached speech without its media"))?;
    if approved && row.status != ReviewStatus::Approved {
        row = crate::services::media::approve_unreviewed(
            state,
            &row.sha256,
            "text-to-speech of an approved bulletin",
        )
        .await?;
    }
    Ok(speech_media(state, row))
}

fn speech_media(state: &AppState, row: crate::domain::media::Media) -> SpeechMedia {
    SpeechMedia {
        url: format!("{}/media/{}", state.public_url, row.sha256),
        sha256: row.sha256,
        duration_ms: row.duration_ms,
        size: row.size,
        status: row.status,
        gain_db: 0.0,
        loudness_lufs: 0.0,
        true_peak_dbtp: 0.0,
        voice: String::new(),
        engine: String::new(),
        fallback_from: None,
        cached: false,
    }
}

/// Store WAV bytes as an ordinary media item through the media library's ingest path
/// ([`crate::services::media::ingest_bytes`]: hash, probe, dedupe, `data_dir/media/<sha256>`, a
/// `draft` record); `approved` then approves it (speech of an approved bulletin).
pub async fn store_wav(state: &AppState, bytes: &[u8], title: &str, approved: bool) -> Result<SpeechMedia> {
    let sha = hex::encode(Sha256::digest(bytes));
    let (row, _) =
        crate::services::media::ingest_bytes(state, bytes, &format!("tts-{}.wav", &sha[..12]), Some(title))
            .await?;
    media_of_row(state, row, approved).await
}

async fn media_of_row(
    state: &AppState,
    mut row: crate::domain::media::Media,
    approved: bool,
) -> Result<SpeechMedia> {
    if approved && row.status != ReviewStatus::Approved {
        row = crate::services::media::approve_unreviewed(
            state,
            &row.sha256,
            "text-to-speech of an approved bulletin",
        )
        .await?;
    }
    Ok(speech_media(state, row))
}

/// The renditions (engine, fallback, loudness) recorded for a media item, newest first.
pub async fn renditions(state: &AppState, sha256: &str) -> Result<Vec<store::speech::Rendition>> {
    store::speech::of_media(&state.store, sha256).await
}

/// One lexicon entry.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LexiconEntry {
    /// The abbreviation as written, e.g. `UBND`.
    pub term: String,
    /// How it is read, e.g. `Ủy ban nhân dân`.
    pub expansion: String,
    /// `builtin` or `operator` (ignored on input).
    #[serde(default)]
    pub source: Option<String>,
}

/// The abbreviation table in effect: the operators' entries, then the built-in ones they do not
/// override.
pub async fn lexicon_entries(state: &AppState) -> Result<Vec<LexiconEntry>> {
    let mut entries = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (term, expansion) in store::lexicon::entries(&state.store).await? {
        seen.insert(term.clone());
        entries.push(LexiconEntry {
            term,
            expansion,
            source: Some("operator".into()),
        });
    }
    for (t, e) in BUILTIN_LEXICON {
        if !seen.contains(*t) {
            entries.push(LexiconEntry {
                term: t.to_string(),
                expansion: e.to_string(),
                source: Some("builtin".into()),
            });
        }
    }
    Ok(entries)
}

/// Add (or correct) one operator entry, e.g. a word an editor corrected in a bulletin's
/// normalised text (editors and up; checked and audited like [`replace_lexicon`]).
pub async fn add_lexicon_entry(
    state: &AppState,
    caller: &Caller,
    entry: &LexiconEntry,
) -> Result<Vec<LexiconEntry>> {
    caller.require(crate::domain::scope::Role::Editor)?;
    let mut entries: Vec<LexiconEntry> = store::lexicon::entries(&state.store)
        .await?
        .into_iter()
        .filter(|(t, _)| t != entry.term.trim())
        .map(|(term, expansion)| LexiconEntry {
            term,
            expansion,
            source: None,
        })
        .collect();
    entries.push(entry.clone());
    replace_lexicon_unchecked_role(state, caller, &entries).await
}

/// Replace the operators' abbreviation table (built-in entries stay unless overridden): checked
/// (`domain::speech::check_lexicon`), then written in one transaction with its audit entry
/// (`tts.lexicon`). Returns the table in effect.
pub async fn replace_lexicon(
    state: &AppState,
    caller: &Caller,
    entries: &[LexiconEntry],
) -> Result<Vec<LexiconEntry>> {
    replace_lexicon_unchecked_role(state, caller, entries).await
}

async fn replace_lexicon_unchecked_role(
    state: &AppState,
    caller: &Caller,
    entries: &[LexiconEntry],
) -> Result<Vec<LexiconEntry>> {
    let checked = speech::check_lexicon(entries.iter().map(|e| (e.term.as_str(), e.expansion.as_str())))?;
    let mut tx = state.store.begin_write().await?;
    let before = store::lexicon::entries_in(&mut tx).await?;
    store::lexicon::replace(&mut tx, &checked, now_ms()).await?;
    let json = |l: &[(String, String)]| {
        serde_json::to_value(l.iter().cloned().collect::<std::collections::BTreeMap<_, _>>()).ok()
    };
    store::audit::record(
        &mut tx,
        &caller.username,
        "tts.lexicon",
        "tts_lexicon",
        json(&before),
        json(&checked),
    )
    .await?;
    tx.commit().await?;
    lexicon_entries(state).await
}
