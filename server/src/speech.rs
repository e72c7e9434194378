//! Vietnamese text-to-speech: a pluggable [`TtsEngine`] (default [`EspeakEngine`], the `espeak-ng`
//! program), text normalisation ([`normalize`]: numbers, dates, times, units, abbreviations from
//! the built-in table and the operators' `tts_lexicon`), loudness normalisation ([`loudness`]) and
//! storage of the result as an ordinary media item (content-addressed WAV).
//!
//! HTTP: `GET/PUT /api/v1/tts/lexicon`, `POST /api/v1/tts/preview`, `GET /api/v1/tts/voices`.

pub mod loudness;
pub mod normalize;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{Error, Result};
use crate::http::auth::Admin;
use crate::store::now_ms;

pub use normalize::{Lexicon, normalize, read_number};

/// OpenAPI description of this module's endpoints (merged in `openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(get_lexicon, put_lexicon, preview, voices),
    components(schemas(
        LexiconEntry,
        LexiconBody,
        PreviewRequest,
        PreviewResponse,
        SpeechMedia,
        VoiceList
    ))
)]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tts/lexicon", get(get_lexicon).put(put_lexicon))
        .route("/api/v1/tts/preview", post(preview))
        .route("/api/v1/tts/voices", get(voices))
}

/// Longest text accepted for one synthesis, in characters.
pub const MAX_TEXT_CHARS: usize = 20_000;

/// Voice settings for one synthesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voice {
    /// Engine voice name, e.g. `vi`, `vi-vn-x-central`, `vi-vn-x-south`.
    pub name: String,
    /// Words per minute (80–450).
    pub speed: u32,
    /// Pitch (0–99).
    pub pitch: u32,
}

impl Default for Voice {
    fn default() -> Self {
        Voice {
            name: "vi".into(),
            speed: 150,
            pitch: 50,
        }
    }
}

impl Voice {
    /// Validate optional request values against `engine`, filling defaults.
    pub fn from_request(
        engine: &dyn TtsEngine,
        name: Option<&str>,
        speed: Option<u32>,
        pitch: Option<u32>,
    ) -> Result<Voice> {
        let d = Voice::default();
        let name = name
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or(&d.name)
            .to_string();
        if !engine.voices().contains(&name) {
            return Err(Error::bad(
                "unknown_voice",
                format!("voice `{name}` is not one of {}", engine.voices().join(", ")),
            ));
        }
        let speed = speed.unwrap_or(d.speed);
        if !(80..=450).contains(&speed) {
            return Err(Error::bad(
                "invalid_speed",
                format!("speed {speed} must be 80–450 words per minute"),
            ));
        }
        let pitch = pitch.unwrap_or(d.pitch);
        if pitch > 99 {
            return Err(Error::bad("invalid_pitch", format!("pitch {pitch} must be 0–99")));
        }
        Ok(Voice { name, speed, pitch })
    }
}

/// A speech synthesiser. Implementations are blocking; callers run them on a blocking thread.
pub trait TtsEngine: Send + Sync + 'static {
    /// Engine name for logs and responses, e.g. `espeak-ng`.
    fn name(&self) -> &'static str;
    /// Voice names this engine accepts.
    fn voices(&self) -> Vec<String>;
    /// Synthesise already-normalised `text` to a 16-bit PCM WAV file's bytes.
    fn synthesize(&self, text: &str, voice: &Voice, scratch_dir: &Path) -> Result<Vec<u8>>;
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

/// Built-in table plus the operators' `tts_lexicon` rows.
pub async fn lexicon(state: &AppState) -> Result<Lexicon> {
    let mut l = Lexicon::builtin();
    for r in sqlx::query("SELECT term, expansion FROM tts_lexicon")
        .fetch_all(&state.store.pool)
        .await?
    {
        l.insert(
            &r.try_get::<String, _>("term")?,
            &r.try_get::<String, _>("expansion")?,
        );
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
    pub status: String,
    /// Where devices fetch it.
    pub url: String,
    /// Gain applied by loudness normalisation, dB.
    pub gain_db: f64,
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
    if text.trim().is_empty() {
        return Err(Error::bad("empty_text", "text must not be empty"));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(Error::TooLarge(format!(
            "text is longer than {MAX_TEXT_CHARS} characters"
        )));
    }
    let normalized = normalize(text, &lexicon(state).await?);
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
/// ([`crate::media::ingest_bytes`]: hash, probe, dedupe, `data_dir/media/<sha256>`, a `draft`
/// row); `approved` then approves it (speech of an approved bulletin).
async fn store_wav(state: &AppState, bytes: &[u8], title: &str, approved: bool) -> Result<SpeechMedia> {
    let sha = hex::encode(Sha256::digest(bytes));
    let (mut row, _) =
        crate::media::ingest_bytes(state, bytes, &format!("tts-{}.wav", &sha[..12]), Some(title)).await?;
    if approved && row.status != "approved" {
        sqlx::query(
            "UPDATE media SET status = 'approved', status_note = $1, updated_at = $2 WHERE sha256 = $3",
        )
        .bind(Some("text-to-speech of an approved bulletin".to_string()))
        .bind(now_ms())
        .bind(row.sha256.clone())
        .execute(&state.store.pool)
        .await?;
        row.status = "approved".into();
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

/// Body of `PUT /api/v1/tts/lexicon` and of its answers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LexiconBody {
    /// Entries. On PUT: the operators' complete table (replaces it). On GET: operator entries
    /// followed by the built-in ones they do not override.
    pub entries: Vec<LexiconEntry>,
}

async fn lexicon_body(state: &AppState) -> Result<LexiconBody> {
    let rows = sqlx::query("SELECT term, expansion FROM tts_lexicon ORDER BY term")
        .fetch_all(&state.store.pool)
        .await?;
    let mut entries = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in rows {
        let term: String = r.try_get("term")?;
        seen.insert(term.clone());
        entries.push(LexiconEntry {
            term,
            expansion: r.try_get("expansion")?,
            source: Some("operator".into()),
        });
    }
    for (t, e) in normalize::BUILTIN_LEXICON {
        if !seen.contains(*t) {
            entries.push(LexiconEntry {
                term: t.to_string(),
                expansion: e.to_string(),
                source: Some("builtin".into()),
            });
        }
    }
    Ok(LexiconBody { entries })
}

/// The abbreviation table in effect.
#[utoipa::path(get, path = "/api/v1/tts/lexicon", tag = "speech",
    responses((status = 200, body = LexiconBody)))]
async fn get_lexicon(_: Admin, State(state): State<AppState>) -> Result<Json<LexiconBody>> {
    Ok(Json(lexicon_body(&state).await?))
}

/// Replace the operators' abbreviation table (built-in entries stay unless overridden).
#[utoipa::path(put, path = "/api/v1/tts/lexicon", tag = "speech", request_body = LexiconBody,
    responses((status = 200, body = LexiconBody), (status = 400, description = "Empty or duplicate term")))]
async fn put_lexicon(
    _: Admin,
    State(state): State<AppState>,
    Json(body): Json<LexiconBody>,
) -> Result<Json<LexiconBody>> {
    let mut seen = std::collections::HashSet::new();
    for e in &body.entries {
        let t = e.term.trim();
        if t.is_empty()
            || t.chars().count() > 64
            || t.contains(char::is_whitespace) && t.split_whitespace().count() > 2
        {
            return Err(Error::bad(
                "invalid_term",
                format!("term `{}` must be 1–64 characters, at most two words", e.term),
            ));
        }
        if e.expansion.trim().is_empty() || e.expansion.chars().count() > 256 {
            return Err(Error::bad(
                "invalid_expansion",
                format!("expansion of `{t}` must be 1–256 characters"),
            ));
        }
        if !seen.insert(t.to_string()) {
            return Err(Error::bad("duplicate_term", format!("term `{t}` appears twice")));
        }
    }
    let now = now_ms();
    let mut tx = state.store.begin_write().await?;
    sqlx::query("DELETE FROM tts_lexicon").execute(&mut *tx).await?;
    for e in &body.entries {
        sqlx::query("INSERT INTO tts_lexicon (term, expansion, updated_at) VALUES ($1, $2, $3)")
            .bind(e.term.trim().to_string())
            .bind(e.expansion.trim().to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Json(lexicon_body(&state).await?))
}

/// Body of `POST /api/v1/tts/preview`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// Vietnamese text as written.
    pub text: String,
    /// Voice (default `vi`).
    pub voice: Option<String>,
    /// Words per minute (default 150).
    pub speed: Option<u32>,
    /// Pitch 0–99 (default 50).
    pub pitch: Option<u32>,
}

/// Answer of `POST /api/v1/tts/preview`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewResponse {
    /// The text as it was read.
    pub normalized: String,
    /// Engine name.
    pub engine: String,
    /// Voice used.
    pub voice: String,
    /// The stored speech (status `draft`: submit and approve it like any upload to broadcast it alone).
    pub media: SpeechMedia,
}

/// Normalise and synthesise a text; the audio is stored as a draft media item.
#[utoipa::path(post, path = "/api/v1/tts/preview", tag = "speech", request_body = PreviewRequest,
    responses((status = 200, body = PreviewResponse), (status = 400, description = "Empty text or bad voice settings")))]
async fn preview(
    _: Admin,
    State(state): State<AppState>,
    Json(req): Json<PreviewRequest>,
) -> Result<Json<PreviewResponse>> {
    let engine = state.tts.engine();
    let voice = Voice::from_request(engine.as_ref(), req.voice.as_deref(), req.speed, req.pitch)?;
    let title: String = req.text.chars().take(80).collect();
    let (normalized, media) =
        synthesize_to_media(&state, &req.text, &voice, &format!("TTS: {title}"), false).await?;
    Ok(Json(PreviewResponse {
        normalized,
        engine: engine.name().into(),
        voice: voice.name,
        media,
    }))
}

/// Voices of the engine in use.
#[derive(Debug, Serialize, ToSchema)]
pub struct VoiceList {
    /// Engine name.
    pub engine: String,
    /// Voice names.
    pub voices: Vec<String>,
}

/// List the engine's voices.
#[utoipa::path(get, path = "/api/v1/tts/voices", tag = "speech", responses((status = 200, body = VoiceList)))]
async fn voices(_: Admin, State(state): State<AppState>) -> Json<VoiceList> {
    let e = state.tts.engine();
    Json(VoiceList {
        engine: e.name().into(),
        voices: e.voices(),
    })
}
