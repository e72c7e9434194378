//! The cloud speech adapter: one HTTP request per synthesis, mapped from `[[tts.engines]]` with
//! `kind = "http"` (URL, method, headers and a JSON body template with placeholders, the API key
//! from the environment variable the configuration names), and the answer mapped back: the body
//! is the audio, or a JSON field holds it in base64, or a JSON field holds a URL to fetch it from.
//! Each try has the engine's timeout; a network error, a timeout, a 429 or a 5xx is tried again
//! (`retries`, backoff from 200 ms doubling), another 4xx is not. When every try failed, the
//! caller (`super::synthesize_audio`) falls back to espeak-ng.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use futures::future::BoxFuture;

use super::engines::{EngineVoice, TtsEngine, fill};
use crate::config::TtsEngineSettings;
use crate::error::{Error, Result};

/// A cloud TTS service.
#[derive(Debug, Clone)]
pub struct HttpEngine {
    settings: TtsEngineSettings,
    client: reqwest::Client,
    version: String,
}

/// Why one try failed, and whether another may succeed.
struct Failure {
    message: String,
    again: bool,
}

impl HttpEngine {
    /// The engine of one `[[tts.engines]]` entry of kind `http`.
    pub fn new(settings: TtsEngineSettings) -> Result<HttpEngine> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.timeout_ms))
            .connect_timeout(Duration::from_millis(settings.timeout_ms.min(10_000)))
            .build()
            .map_err(Error::context("tts http client"))?;
        let version = format!("{} {}", settings.url.as_deref().unwrap_or(""), settings.version);
        Ok(HttpEngine {
            settings,
            client,
            version,
        })
    }

    fn vars(&self, text: &str, voice: &EngineVoice) -> Vec<(&'static str, String)> {
        let mut v = voice.vars(text);
        if let Some(k) = &self.settings.api_key {
            v.push(("api_key", k.expose().to_string()));
        }
        v
    }

    /// The request body: the JSON template with its string leaves filled in, or the text.
    fn body(&self, text: &str, voice: &EngineVoice) -> (Vec<u8>, bool) {
        let vars = self.vars(text, voice);
        match &self.settings.body {
            Some(t) => (fill_json(t, &vars).to_string().into_bytes(), true),
            None => (text.as_bytes().to_vec(), false),
        }
    }

    async fn try_once(&self, text: &str, voice: &EngineVoice) -> std::result::Result<Vec<u8>, Failure> {
        let s = &self.settings;
        let url = s.url.as_deref().unwrap_or("");
        let vars = self.vars(text, voice);
        let mut req = match s.method.as_str() {
            "GET" => self.client.get(fill(url, &vars)),
            _ => {
                let (body, json) = self.body(text, voice);
                let r = self.client.post(url).body(body);
                if json {
                    r.header("content-type", "application/json")
                } else {
                    r
                }
            }
        };
        for (k, v) in &s.headers {
            req = req.header(k, fill(v, &vars));
        }
        let resp = req.send().await.map_err(|e| Failure {
            message: format!("{e}"),
            again: true,
        })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(Failure {
                message: format!("HTTP {status}"),
                again: status.as_u16() == 429 || status.is_server_error(),
            });
        }
        let bytes = resp.bytes().await.map_err(|e| Failure {
            message: format!("reading the answer: {e}"),
            again: true,
        })?;
        match s.response.as_str() {
            "audio" => Ok(bytes.to_vec()),
            kind => {
                let bad = |m: String| Failure {
                    message: m,
                    again: false,
                };
                let v: serde_json::Value = serde_json::from_slice(&bytes)
                    .map_err(|e| bad(format!("the answer is not JSON: {e}")))?;
                let pointer = s.response_pointer.as_deref().unwrap_or("");
                let field = v
                    .pointer(pointer)
                    .and_then(|f| f.as_str())
                    .ok_or_else(|| bad(format!("no string at {pointer} in the answer")))?;
                if kind == "json_base64" {
                    base64::engine::general_purpose::STANDARD
                        .decode(field.trim())
                        .map_err(|e| bad(format!("{pointer} is not base64: {e}")))
                } else {
                    self.fetch_audio(field).await
                }
            }
        }
    }

    /// `json_url`: the audio may not be ready yet (404 until it is), so fetch it a few times.
    async fn fetch_audio(&self, url: &str) -> std::result::Result<Vec<u8>, Failure> {
        let mut wait = Duration::from_millis(200);
        let mut last = String::new();
        for _ in 0..=self.settings.retries.max(3) {
            match self.client.get(url).send().await {
                Ok(r) if r.status().is_success() => {
                    if let Ok(b) = r.bytes().await {
                        return Ok(b.to_vec());
                    }
                }
                Ok(r) => last = format!("HTTP {} from the audio URL", r.status()),
                Err(e) => last = format!("{e}"),
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
        Err(Failure {
            message: last,
            again: true,
        })
    }
}

/// Fill the string leaves of a JSON template; a leaf that is exactly a numeric placeholder
/// becomes a number.
fn fill_json(t: &serde_json::Value, vars: &[(&str, String)]) -> serde_json::Value {
    use serde_json::Value;
    match t {
        Value::String(s) => {
            let numeric = ["speed", "rate", "length_scale", "pitch"];
            if let Some(name) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}'))
                && numeric.contains(&name)
                && let Some((_, v)) = vars.iter().find(|(k, _)| *k == name)
                && let Ok(n) = v.parse::<f64>()
            {
                return serde_json::json!(n);
            }
            Value::String(fill(s, vars))
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| fill_json(v, vars)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), fill_json(v, vars))).collect()),
        other => other.clone(),
    }
}

impl TtsEngine for HttpEngine {
    fn name(&self) -> &str {
        &self.settings.name
    }

    fn version(&self) -> &str {
        &self.version
    }

    fn falls_back(&self) -> bool {
        self.settings.fallback
    }

    fn synthesize<'a>(
        &'a self,
        text: &'a str,
        voice: &'a EngineVoice,
        _scratch: &'a Path,
    ) -> BoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(async move {
            let mut wait = Duration::from_millis(200);
            let mut tries = 0;
            loop {
                tries += 1;
                match self.try_once(text, voice).await {
                    Ok(audio) if !audio.is_empty() => return Ok(audio),
                    Ok(_) => {
                        return Err(Error::internal(format!("{}: empty audio", self.settings.name)));
                    }
                    Err(f) if f.again && tries <= self.settings.retries => {
                        tracing::warn!(engine = %self.settings.name, tries, error = %f.message, "tts request failed; trying again");
                        tokio::time::sleep(wait).await;
                        wait *= 2;
                    }
                    Err(f) => {
                        return Err(Error::internal(format!(
                            "{} failed after {tries} tries: {}",
                            self.settings.name, f.message
                        )));
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_template_is_filled_with_numbers_where_the_leaf_is_one_placeholder() {
        let t = serde_json::json!({"input": {"text": "{text}"}, "voice": "{voice}", "speed": "{rate}", "note": "v={voice}"});
        let v = EngineVoice {
            id: "banmai".into(),
            speed: 225,
            pitch: 50,
        };
        let got = fill_json(&t, &v.vars("Xin chào \"bà con\""));
        assert_eq!(
            got,
            serde_json::json!({"input": {"text": "Xin chào \"bà con\""}, "voice": "banmai", "speed": 1.5, "note": "v=banmai"})
        );
    }
}
