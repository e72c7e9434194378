//! The voices and engines in use ([`Tts`], built from `[tts]` at start, held in a replaceable
//! [`TtsSlot`]), and the voice of an area: its own setting in `area_voices`, else its nearest
//! ancestor's, else the configured default voice ([`area_voice`], [`set_area_voice`]).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::cloud::HttpEngine;
use super::engines::{CommandEngine, EspeakEngine, TtsEngine};
use crate::config::TtsSettings;
use crate::domain::scope::{Caller, Role};
use crate::domain::speech::{Accent, Voice};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::store::{self, now_ms};

/// One voice operators can pick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct VoiceDef {
    /// Name, e.g. `vi` or `bac-nu`.
    pub name: String,
    /// Label in the console.
    pub label: String,
    /// Engine name.
    pub engine: String,
    /// The engine's own voice id.
    pub engine_voice: String,
    /// Accent: `north`, `central` or `south`.
    #[schema(value_type = String)]
    pub accent: Accent,
    /// Default words per minute.
    pub speed: u32,
    /// Default pitch.
    pub pitch: u32,
}

/// The engines and voices in use.
pub struct Tts {
    engines: HashMap<String, Arc<dyn TtsEngine>>,
    voices: Vec<VoiceDef>,
    default_voice: String,
}

impl Tts {
    /// Build the engines and voices of `[tts]`: espeak-ng and its three voices always, then the
    /// configured ones. 500 naming the key when a reference does not resolve.
    pub fn from_settings(s: &TtsSettings) -> Result<Tts> {
        let mut engines: HashMap<String, Arc<dyn TtsEngine>> = HashMap::new();
        engines.insert("espeak-ng".into(), Arc::new(EspeakEngine::new(&s.espeak_program)));
        for e in &s.engines {
            let engine: Arc<dyn TtsEngine> = match e.kind.as_str() {
                "command" => Arc::new(CommandEngine::new(e.clone())),
                "http" => Arc::new(HttpEngine::new(e.clone())?),
                other => return Err(Error::internal(format!("tts.engines: unknown kind `{other}`"))),
            };
            engines.insert(e.name.clone(), engine);
        }
        let mut voices: Vec<VoiceDef> = EspeakEngine::VOICES
            .iter()
            .map(|(name, accent, label)| VoiceDef {
                name: name.to_string(),
                label: label.to_string(),
                engine: "espeak-ng".into(),
                engine_voice: name.to_string(),
                accent: Accent::parse(accent).unwrap_or_default(),
                speed: 150,
                pitch: 50,
            })
            .collect();
        for v in &s.voices {
            if !engines.contains_key(&v.engine) {
                return Err(Error::internal(format!(
                    "tts.voices `{}`: no engine `{}`",
                    v.name, v.engine
                )));
            }
            let def = VoiceDef {
                name: v.name.clone(),
                label: if v.label.is_empty() {
                    v.name.clone()
                } else {
                    v.label.clone()
                },
                engine: v.engine.clone(),
                engine_voice: if v.engine_voice.is_empty() {
                    v.name.clone()
                } else {
                    v.engine_voice.clone()
                },
                accent: Accent::parse(&v.accent).unwrap_or_default(),
                speed: v.speed,
                pitch: v.pitch,
            };
            voices.retain(|x| x.name != def.name);
            voices.push(def);
        }
        if !voices.iter().any(|v| v.name == s.default_voice) {
            return Err(Error::internal(format!(
                "tts.default_voice: no voice `{}`",
                s.default_voice
            )));
        }
        Ok(Tts {
            engines,
            voices,
            default_voice: s.default_voice.clone(),
        })
    }

    /// Every voice.
    pub fn voices(&self) -> &[VoiceDef] {
        &self.voices
    }

    /// One voice.
    pub fn voice(&self, name: &str) -> Option<&VoiceDef> {
        self.voices.iter().find(|v| v.name == name)
    }

    /// The voice used when nothing names one.
    pub fn default_voice(&self) -> &VoiceDef {
        self.voice(&self.default_voice).unwrap_or(&self.voices[0])
    }

    /// An engine by name.
    pub fn engine(&self, name: &str) -> Option<Arc<dyn TtsEngine>> {
        self.engines.get(name).cloned()
    }

    /// espeak-ng's voice of `accent` (the fallback when another engine fails).
    pub fn fallback_voice(&self, accent: Accent) -> VoiceDef {
        self.voices
            .iter()
            .find(|v| {
                v.engine == "espeak-ng"
                    && v.accent == accent
                    && EspeakEngine::VOICES.iter().any(|e| e.0 == v.name)
            })
            .cloned()
            .unwrap_or_else(|| self.voices[0].clone())
    }

    /// Check a request's voice settings, filling the voice's defaults.
    pub fn request(&self, name: Option<&str>, speed: Option<u32>, pitch: Option<u32>) -> Result<Voice> {
        let names: Vec<String> = self.voices.iter().map(|v| v.name.clone()).collect();
        let name = name
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or(&self.default_voice);
        let def = self.voice(name);
        Voice::from_request(
            &names,
            Some(name),
            speed.or(def.map(|d| d.speed)),
            pitch.or(def.map(|d| d.pitch)),
        )
    }
}

/// The engines and voices in use, replaceable at run time.
#[derive(Clone)]
pub struct TtsSlot(Arc<RwLock<Arc<Tts>>>);

impl TtsSlot {
    /// A slot holding `tts`.
    pub fn new(tts: Tts) -> TtsSlot {
        TtsSlot(Arc::new(RwLock::new(Arc::new(tts))))
    }

    /// The engines and voices in use.
    pub fn get(&self) -> Arc<Tts> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replace them.
    pub fn set(&self, tts: Tts) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(tts);
    }
}

/// An area's voice setting as shown and set through the API.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AreaVoice {
    /// Area code (ignored on input).
    #[serde(default)]
    pub area: String,
    /// Voice name.
    pub voice: String,
    /// Words per minute (default: the voice's).
    pub speed: Option<u32>,
    /// Pitch (default: the voice's).
    pub pitch: Option<u32>,
    /// The area this setting comes from (itself or an ancestor; `null` for the default voice).
    #[serde(default)]
    pub from_area: Option<String>,
}

/// The voice `area`'s speech is read with: its own setting, else its nearest ancestor's, else
/// the default voice; `speed` and `pitch` given by the request win.
pub async fn area_voice(
    state: &AppState,
    area: &str,
    speed: Option<u32>,
    pitch: Option<u32>,
) -> Result<Voice> {
    let a = effective_area_voice(state, area).await?;
    state
        .tts
        .get()
        .request(Some(&a.voice), speed.or(a.speed), pitch.or(a.pitch))
}

/// The setting in effect for `area` (see [`area_voice`]).
pub async fn effective_area_voice(state: &AppState, area: &str) -> Result<AreaVoice> {
    let own: HashMap<String, store::speech::AreaVoice> = store::speech::area_voices(&state.store)
        .await?
        .into_iter()
        .map(|v| (v.area.clone(), v))
        .collect();
    let tts = state.tts.get();
    for a in store::areas::ancestors(&state.store, area).await? {
        if let Some(v) = own.get(&a)
            && tts.voice(&v.voice).is_some()
        {
            return Ok(AreaVoice {
                area: area.to_string(),
                voice: v.voice.clone(),
                speed: Some(v.speed as u32),
                pitch: Some(v.pitch as u32),
                from_area: Some(a),
            });
        }
    }
    let d = tts.default_voice();
    Ok(AreaVoice {
        area: area.to_string(),
        voice: d.name.clone(),
        speed: Some(d.speed),
        pitch: Some(d.pitch),
        from_area: None,
    })
}

/// Set (`Some`) or clear (`None`) the voice of `area` (admin, or an editor whose scope holds the
/// area): checked against the voices in use, written with its audit entry (`tts.area_voice`).
pub async fn set_area_voice(
    state: &AppState,
    caller: &Caller,
    area: &str,
    v: Option<&AreaVoice>,
) -> Result<AreaVoice> {
    caller.require(Role::Editor)?;
    caller.check_area(area)?;
    if !store::areas::exists(&state.store, area).await? {
        return Err(Error::NotFound(format!("area {area}")));
    }
    let row = match v {
        Some(v) => {
            let voice = state.tts.get().request(Some(&v.voice), v.speed, v.pitch)?;
            Some(store::speech::AreaVoice {
                area: area.to_string(),
                voice: voice.name,
                speed: voice.speed as i64,
                pitch: voice.pitch as i64,
            })
        }
        None => None,
    };
    let mut tx = state.store.begin_write().await?;
    let before = store::speech::set_area_voice(&mut tx, area, row.as_ref(), now_ms()).await?;
    let json = |r: &Option<store::speech::AreaVoice>| {
        r.as_ref()
            .map(|r| serde_json::json!({"voice": r.voice, "speed": r.speed, "pitch": r.pitch}))
    };
    store::audit::record(
        &mut tx,
        &caller.username,
        "tts.area_voice",
        &format!("area:{area}"),
        json(&before),
        json(&row),
    )
    .await?;
    tx.commit().await?;
    effective_area_voice(state, area).await
}
