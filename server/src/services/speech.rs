//! Vietnamese text-to-speech: the engine in use ([`TtsSlot`], replaceable at run time, e.g. by a
//! neural voice service), the [`TtsEngine`] trait and its default [`EspeakEngine`] (the
//! `espeak-ng` program), and [`synthesize_to_media`]: normalise the text (built-in table plus the
//! operators' lexicon), synthesise, loudness-normalise (EBU R128) and store the WAV as an ordinary
//! media item through the library's ingest path. The operators' lexicon: [`lexicon_entries`],
//! [`replace_lexicon`]. The pure rules are `domain::speech`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::domain::review::ReviewStatus;
use crate::domain::scope::Caller;
use crate::domain::speech::{self, BUILTIN_LEXICON, Lexicon, Voice, loudness};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::store::{self, now_ms};

/// A speech synthesiser. Implementations are blocking; callers run them on a blocking thread.
pub trait TtsEngine: Send + Sync + 'static {
    /// Engine name for logs and responses, e.g. `espeak-ng`.
    fn name(&self) -> &'static str;
    /// Voice names this engine accepts.
    fn voices(&self) -> Vec<String>;
    /// Synthesise already-normalised `text` to a 16-bit PCM WAV file's bytes.
    fn synthesize(&self, text: &str, voice: &Voice, scratch_dir: &Path) -> Result<Vec<u8>>;
}

/// The engine in use, replaceable at run time.
#[derive(Clone)]
pub struct TtsSlot(Arc<RwLock<Arc<dyn TtsEngine>>>);

impl Default for TtsSlot {
    fn default() -> Self {
        TtsSlot(Arc::new(RwLock::new(Arc::new(EspeakEngine::default()))))
    }
}

impl TtsSlot {
    /// The engine in use.
    pub fn engine(&self) -> Arc<dyn TtsEngine> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replace the engine.
    pub fn set(&self, engine: Arc<dyn TtsEngine>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = engine;
    }
}

/// The default engine: the `espeak-ng` program (text on stdin, WAV written with `-w`, no shell).
#[derive(Debug, Clone)]
pub struct EspeakEngine {
    /// Program path or name (default `espeak-ng`).
    pub program: String,
}

impl Default for EspeakEngine {
    fn default() -> Self {
        EspeakEngine {
            program: "espeak-ng".into(),
        }
    }
}

impl TtsEngine for EspeakEngine {
    fn name(&self) -> &'static str {
        "espeak-ng"
    }

    fn voices(&self) -> Vec<String> {
        ["vi", "vi-vn-x-central", "vi-vn-x-south"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn synthesize(&self, text: &str, voice: &Voice, scratch_dir: &Path) -> Result<Vec<u8>> {
        std::fs::create_dir_all(scratch_dir)?;
        let out = tempfile::Builder::new()
            .prefix("tts-")
            .suffix(".wav")
            .tempfile_in(scratch_dir)?;
        let mut child = Command::new(&self.program)
            .arg("-v")
            .arg(&voice.name)
            .arg("-s")
            .arg(voice.speed.to_string())
            .arg("-p")
            .arg(voice.pitch.to_string())
            .arg("-w")
            .arg(out.path())
            .arg("--stdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(Error::context(format!("cannot run {}", self.program)))?;
        {
            let mut stdin = child
                .stdin
                .take()
                .ok_or_else(|| Error::internal("espeak-ng stdin"))?;
            stdin.write_all(text.as_bytes())?;
        }
        let result = child.wait_with_output()?;
        if !result.status.success() {
            return Err(Error::internal(format!(
                "{} failed: {}",
                self.program,
                String::from_utf8_lossy(&result.stderr).trim()
            )));
        }
        Ok(std::fs::read(out.path())?)
    }
}

/// The voice of a request, checked against the engine in use (defaults filled in).
pub fn voice(state: &AppState, name: Option<&str>, speed: Option<u32>, pitch: Option<u32>) -> Result<Voice> {
    Voice::from_request(&state.tts.engine().voices(), name, speed, pitch)
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

/// Normalise `text`, synthesise it with `voice`, loudness-normalise and store it as a media item
/// titled `title`. `approved` stores it approved (speech of an approved bulletin), otherwise
/// `draft` like any upload. Returns the normalised text and the media.
pub async fn synthesize_to_media(
    state: &AppState,
    text: &str,
    voice: &Voice,
    title: &str,
    approved: bool,
) -> Result<(String, SpeechMedia)> {
    speech::check_text(text)?;
    let normalized = speech::normalize(text, &lexicon(state).await?);
    let engine = state.tts.engine();
    let scratch = state.settings.data_dir.join("tmp");
    let (n2, v2) = (normalized.clone(), voice.clone());
    let wav = tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, loudness::Report)> {
        let raw = engine.synthesize(&n2, &v2, &scratch)?;
        let mut pcm = loudness::Pcm::parse_wav(&raw)?;
        let report = loudness::normalize(&mut pcm, loudness::TARGET_LUFS, loudness::PEAK_CEILING_DBFS)?;
        Ok((pcm.to_wav(), report))
    })
    .await
    .map_err(Error::context("tts task"))??;
    let (bytes, report) = wav;
    let media = store_wav(state, &bytes, title, approved).await?;
    Ok((
        normalized,
        SpeechMedia {
            gain_db: report.gain_db,
            ..media
        },
    ))
}

/// Store WAV bytes as an ordinary media item through the media library's ingest path
/// ([`crate::services::media::ingest_bytes`]: hash, probe, dedupe, `data_dir/media/<sha256>`, a
/// `draft` record); `approved` then approves it (speech of an approved bulletin).
async fn store_wav(state: &AppState, bytes: &[u8], title: &str, approved: bool) -> Result<SpeechMedia> {
    let sha = hex::encode(Sha256::digest(bytes));
    let (mut row, _) =
        crate::services::media::ingest_bytes(state, bytes, &format!("tts-{}.wav", &sha[..12]), Some(title))
            .await?;
    if approved && row.status != ReviewStatus::Approved {
        row = crate::services::media::approve_unreviewed(
            state,
            &row.sha256,
            "text-to-speech of an approved bulletin",
        )
        .await?;
    }
    Ok(SpeechMedia {
        url: format!("{}/media/{}", state.public_url, row.sha256),
        sha256: row.sha256,
        duration_ms: row.duration_ms,
        size: row.size,
        status: row.status,
        gain_db: 0.0,
    })
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

/// Replace the operators' abbreviation table (built-in entries stay unless overridden): checked
/// (`domain::speech::check_lexicon`), then written in one transaction with its audit entry
/// (`tts.lexicon`). Returns the table in effect.
pub async fn replace_lexicon(
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
