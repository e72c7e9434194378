//! The text-to-speech API: `GET/PUT /api/v1/tts/lexicon` (the operators' abbreviations) and
//! `POST /api/v1/tts/lexicon/entries` (add or correct one), `POST /api/v1/tts/normalize` (the
//! text as a voice will read it), `POST /api/v1/tts/preview` (normalise, synthesise and store a
//! draft media item), `GET /api/v1/tts/voices`, `GET /api/v1/tts/renditions/{sha256}` (which
//! engine made a media item, whether espeak-ng stood in, its loudness) and
//! `GET/PUT/DELETE /api/v1/areas/{code}/voice`. The use cases are `services::speech`.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::Result;
use crate::http::auth::{Admin, Caller};
use crate::services::AppState;
use crate::services::speech::{self, AreaVoice, LexiconEntry, SpeechMedia, VoiceDef};

/// OpenAPI description of this module's endpoints (merged in `openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        get_lexicon,
        put_lexicon,
        add_lexicon_entry,
        normalize,
        preview,
        voices,
        renditions,
        get_area_voice,
        put_area_voice,
        delete_area_voice
    ),
    components(schemas(
        LexiconEntry,
        LexiconBody,
        NormalizeRequest,
        NormalizeResponse,
        PreviewRequest,
        PreviewResponse,
        SpeechMedia,
        VoiceList,
        VoiceDef,
        AreaVoice,
        Rendition
    ))
)]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tts/lexicon", get(get_lexicon).put(put_lexicon))
        .route("/api/v1/tts/lexicon/entries", post(add_lexicon_entry))
        .route("/api/v1/tts/normalize", post(normalize))
        .route("/api/v1/tts/preview", post(preview))
        .route("/api/v1/tts/voices", get(voices))
        .route("/api/v1/tts/renditions/{sha256}", get(renditions))
        .route(
            "/api/v1/areas/{code}/voice",
            get(get_area_voice).put(put_area_voice).delete(delete_area_voice),
        )
}

/// Body of `PUT /api/v1/tts/lexicon` and of its answers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LexiconBody {
    /// Entries. On PUT: the operators' complete table (replaces it). On GET: operator entries
    /// followed by the built-in ones they do not override.
    pub entries: Vec<LexiconEntry>,
}

/// The abbreviation table in effect.
#[utoipa::path(get, path = "/api/v1/tts/lexicon", tag = "speech",
    responses((status = 200, body = LexiconBody)))]
async fn get_lexicon(_: Admin, State(state): State<AppState>) -> Result<Json<LexiconBody>> {
    Ok(Json(LexiconBody {
        entries: speech::lexicon_entries(&state).await?,
    }))
}

/// Replace the operators' abbreviation table (built-in entries stay unless overridden).
#[utoipa::path(put, path = "/api/v1/tts/lexicon", tag = "speech", request_body = LexiconBody,
    responses((status = 200, body = LexiconBody), (status = 400, description = "Empty or duplicate term")))]
async fn put_lexicon(
    Admin(caller): Admin,
    State(state): State<AppState>,
    Json(body): Json<LexiconBody>,
) -> Result<Json<LexiconBody>> {
    Ok(Json(LexiconBody {
        entries: speech::replace_lexicon(&state, &caller, &body.entries).await?,
    }))
}

/// Add one operator entry, or correct it (editors: a word the editor corrected in a bulletin).
#[utoipa::path(post, path = "/api/v1/tts/lexicon/entries", tag = "speech", request_body = LexiconEntry,
    responses((status = 200, body = LexiconBody), (status = 400, description = "Bad term or expansion")))]
async fn add_lexicon_entry(
    caller: Caller,
    State(state): State<AppState>,
    Json(entry): Json<LexiconEntry>,
) -> Result<Json<LexiconBody>> {
    Ok(Json(LexiconBody {
        entries: speech::add_lexicon_entry(&state, &caller, &entry).await?,
    }))
}

/// Body of `POST /api/v1/tts/normalize`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NormalizeRequest {
    /// Vietnamese text as written.
    pub text: String,
    /// Voice whose accent the numbers follow (default: the default voice).
    pub voice: Option<String>,
}

/// Answer of `POST /api/v1/tts/normalize`.
#[derive(Debug, Serialize, ToSchema)]
pub struct NormalizeResponse {
    /// The text as it will be read.
    pub normalized: String,
    /// Voice.
    pub voice: String,
    /// Piece by piece: `written` (as written), `term` (without punctuation), `read`.
    #[schema(value_type = Vec<Object>)]
    pub pieces: Vec<crate::domain::speech::Piece>,
}

/// The text as a voice will read it, without synthesising.
#[utoipa::path(post, path = "/api/v1/tts/normalize", tag = "speech", request_body = NormalizeRequest,
    responses((status = 200, body = NormalizeResponse), (status = 400, description = "Empty text or unknown voice")))]
async fn normalize(
    caller: Caller,
    State(state): State<AppState>,
    Json(req): Json<NormalizeRequest>,
) -> Result<Json<NormalizeResponse>> {
    caller.require(crate::domain::scope::Role::Editor)?;
    let voice = speech::voice(&state, req.voice.as_deref(), None, None)?;
    let pieces = speech::normalize_text(&state, &req.text, &voice.name).await?;
    Ok(Json(NormalizeResponse {
        normalized: speech::joined(&pieces),
        voice: voice.name,
        pieces,
    }))
}

/// Body of `POST /api/v1/tts/preview`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// Vietnamese text as written.
    pub text: String,
    /// Voice (default: the configured default voice, `vi`).
    pub voice: Option<String>,
    /// Words per minute (default: the voice's, 150).
    pub speed: Option<u32>,
    /// Pitch 0–99 (default: the voice's, 50).
    pub pitch: Option<u32>,
}

/// Answer of `POST /api/v1/tts/preview`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewResponse {
    /// The text as it was read.
    pub normalized: String,
    /// Engine that made the audio.
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
    Admin(caller): Admin,
    State(state): State<AppState>,
    Json(req): Json<PreviewRequest>,
) -> Result<Json<PreviewResponse>> {
    let voice = speech::voice(&state, req.voice.as_deref(), req.speed, req.pitch)?;
    let (normalized, media) = speech::preview(&state, &caller.username, &req.text, &voice, &req.text).await?;
    Ok(Json(PreviewResponse {
        normalized,
        engine: media.engine.clone(),
        voice: voice.name,
        media,
    }))
}

/// Voices in use.
#[derive(Debug, Serialize, ToSchema)]
pub struct VoiceList {
    /// Engine of the default voice.
    pub engine: String,
    /// Voice names.
    pub voices: Vec<String>,
    /// The default voice.
    pub default_voice: String,
    /// Every voice with its engine, accent, speed and pitch.
    pub details: Vec<VoiceDef>,
}

/// List the voices.
#[utoipa::path(get, path = "/api/v1/tts/voices", tag = "speech", responses((status = 200, body = VoiceList)))]
async fn voices(_: Caller, State(state): State<AppState>) -> Json<VoiceList> {
    let tts = state.tts.get();
    let d = tts.default_voice().clone();
    Json(VoiceList {
        engine: d.engine.clone(),
        voices: tts.voices().iter().map(|v| v.name.clone()).collect(),
        default_voice: d.name,
        details: tts.voices().to_vec(),
    })
}

/// One synthesis of a media item.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rendition {
    /// Engine that made the audio.
    pub engine: String,
    /// Voice asked for.
    pub voice: String,
    /// The engine that failed when espeak-ng stood in.
    pub fallback_from: Option<String>,
    /// Gain applied, dB.
    pub gain_db: f64,
    /// Integrated loudness, LUFS.
    pub loudness_lufs: f64,
    /// True peak, dBTP.
    pub true_peak_dbtp: f64,
    /// When, ms since the epoch.
    pub created_at: i64,
}

/// Which engine made a media item (and whether espeak-ng stood in for a failed one).
#[utoipa::path(get, path = "/api/v1/tts/renditions/{sha256}", tag = "speech",
    responses((status = 200, body = Vec<Rendition>)))]
async fn renditions(
    _: Admin,
    State(state): State<AppState>,
    Path(sha): Path<String>,
) -> Result<Json<Vec<Rendition>>> {
    Ok(Json(
        speech::renditions(&state, &sha)
            .await?
            .into_iter()
            .map(|r| Rendition {
                engine: r.engine,
                voice: r.voice,
                fallback_from: r.fallback_from,
                gain_db: r.gain_cdb as f64 / 100.0,
                loudness_lufs: r.loudness_clufs as f64 / 100.0,
                true_peak_dbtp: r.true_peak_cdbtp as f64 / 100.0,
                created_at: r.created_at,
            })
            .collect(),
    ))
}

/// The voice an area's speech is read with (its own, an ancestor's, or the default).
#[utoipa::path(get, path = "/api/v1/areas/{code}/voice", tag = "speech", responses((status = 200, body = AreaVoice)))]
async fn get_area_voice(
    caller: Caller,
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<AreaVoice>> {
    caller.check_area(&code)?;
    Ok(Json(speech::effective_area_voice(&state, &code).await?))
}

/// Set an area's voice, speed and pitch.
#[utoipa::path(put, path = "/api/v1/areas/{code}/voice", tag = "speech", request_body = AreaVoice,
    responses((status = 200, body = AreaVoice), (status = 400, description = "Unknown voice or bad speed/pitch")))]
async fn put_area_voice(
    caller: Caller,
    State(state): State<AppState>,
    Path(code): Path<String>,
    Json(v): Json<AreaVoice>,
) -> Result<Json<AreaVoice>> {
    Ok(Json(
        speech::set_area_voice(&state, &caller, &code, Some(&v)).await?,
    ))
}

/// Clear an area's own voice (it takes its parent's again).
#[utoipa::path(delete, path = "/api/v1/areas/{code}/voice", tag = "speech", responses((status = 200, body = AreaVoice)))]
async fn delete_area_voice(
    caller: Caller,
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<AreaVoice>> {
    Ok(Json(speech::set_area_voice(&state, &caller, &code, None).await?))
}
