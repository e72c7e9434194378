//! The text-to-speech API: `GET/PUT /api/v1/tts/lexicon` (the operators' abbreviations),
//! `POST /api/v1/tts/preview` (normalise, synthesise and store a draft media item) and
//! `GET /api/v1/tts/voices`. The use cases are `services::speech`.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::Result;
use crate::http::auth::Admin;
use crate::services::AppState;
use crate::services::speech::{self, LexiconEntry, SpeechMedia};

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
    Admin(caller): Admin,
    State(state): State<AppState>,
    Json(req): Json<PreviewRequest>,
) -> Result<Json<PreviewResponse>> {
    let engine = state.tts.engine();
    let voice = speech::voice(&state, req.voice.as_deref(), req.speed, req.pitch)?;
    let (normalized, media) = speech::preview(&state, &caller.username, &req.text, &voice, &req.text).await?;
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
