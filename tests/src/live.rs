//! Live broadcast helpers (issue 17) shared by the system test and `bench live`: a microphone
//! that speaks over the server's WebSocket in real time (20 ms frames of 16-bit mono PCM, tone
//! bursts with the wall-clock instant each one started), and the detection of those bursts in an
//! agent's WAV sink, to the sample, with the instant each one played (the sidecar's first sample
//! plus the sample offset: the WAV sink paces its writes to the play clock).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

use crate::api::Api;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The microphone's sample rate.
pub const RATE: u32 = 16_000;
/// One frame: 20 ms.
pub const FRAME: usize = RATE as usize / 50;

/// Unix nanoseconds now.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Open a live session (`POST /api/v1/live`): its id.
pub async fn open(api: &Api, req: Value) -> anyhow::Result<String> {
    let v = api.post("/api/v1/live", &req).await?;
    v.get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no session id in {v}"))
}

/// A connected microphone.
pub struct Microphone {
    ws: Ws,
    /// Frames sent so far.
    pub frames: u64,
    start: tokio::time::Instant,
}

impl Microphone {
    /// Connect the microphone of session `id` with `api`'s token.
    pub async fn connect(api: &Api, id: &str) -> anyhow::Result<Microphone> {
        let base = api.base().trim_start_matches("http://");
        let mut req = format!("ws://{base}/api/v1/live/{id}/ws?rate={RATE}").into_client_request()?;
        req.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {}", api.token()))?,
        );
        let (ws, _) = tokio_tungstenite::connect_async(req).await?;
        Ok(Microphone {
            ws,
            frames: 0,
            start: tokio::time::Instant::now(),
        })
    }

    /// Send one 20 ms frame at its real-time instant (frame k at start + 20 ms × k); returns the
    /// wall-clock instant it was sent (unix ns).
    pub async fn frame(&mut self, tone_hz: Option<f32>) -> anyhow::Result<i64> {
        let due = self.start + Duration::from_millis(20 * self.frames);
        tokio::time::sleep_until(due).await;
        let mut b = Vec::with_capacity(FRAME * 2);
        for i in 0..FRAME {
            let v = match tone_hz {
                Some(f) => {
                    let t = (self.frames as usize * FRAME + i) as f32 / RATE as f32;
                    ((t * f * std::f32::consts::TAU).sin() * 16_000.0) as i16
                }
                None => 0,
            };
            b.extend_from_slice(&v.to_le_bytes());
        }
        let at = now_ns();
        self.ws.send(Message::Binary(b.into())).await?;
        self.frames += 1;
        Ok(at)
    }

    /// Speak for `secs`: silence with a 200 ms burst of 1 kHz every `every` (the first after
    /// `every`); the unix ns each burst started.
    pub async fn bursts(&mut self, secs: f32, every: Duration) -> anyhow::Result<Vec<i64>> {
        let n = (secs * 50.0) as u64;
        let period = (every.as_millis() / 20).max(15) as u64;
        let mut starts = Vec::new();
        for k in 1..=n {
            let phase = k % period;
            // Whole bursts only: one cut short by the end of the call is not sent.
            let tone = phase < 10 && k >= period && k - phase + 10 <= n;
            let at = self.frame(tone.then_some(1_000.0)).await?;
            if tone && phase == 0 {
                starts.push(at);
            }
        }
        Ok(starts)
    }

    /// End the session (text `stop`) and close.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.ws.send(Message::Text("stop".into())).await?;
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(m)) = self.ws.next().await {
                if m.is_close() {
                    break;
                }
            }
        })
        .await;
        Ok(())
    }
}

/// The onsets of the tone bursts in a WAV an agent wrote for session `id` in `wav_dir`, as unix
/// ns (the sidecar's `first_sample_unix_ns` + offset / rate): the first sample of each run over
/// `threshold` that follows at least 100 ms of quiet.
pub fn played_onsets(wav_dir: &Path, id: &str, threshold: f32) -> anyhow::Result<Vec<i64>> {
    let (pcm, first) = sink_wav(wav_dir, id)?;
    let ch = pcm.channels.max(1) as usize;
    let quiet_needed = pcm.rate as usize / 10;
    let mut quiet = quiet_needed;
    let mut out = Vec::new();
    for (k, frame) in pcm.samples.chunks(ch).enumerate() {
        let loud = frame.iter().any(|s| s.abs() > threshold);
        if loud {
            if quiet >= quiet_needed {
                out.push(first + (k as i64) * 1_000_000_000 / pcm.rate as i64);
            }
            quiet = 0;
        } else {
            quiet += 1;
        }
    }
    Ok(out)
}

/// What an agent's WAV sink in `wav_dir` wrote for item `id` (`<id>.wav`) and the unix ns of its
/// first sample (the sidecar `<id>.json`'s `first_sample_unix_ns`).
pub fn sink_wav(wav_dir: &Path, id: &str) -> anyhow::Result<(crate::audio::Pcm, i64)> {
    let pcm = crate::audio::read_wav(&wav_dir.join(format!("{id}.wav")))?;
    let side: Value = serde_json::from_slice(&std::fs::read(wav_dir.join(format!("{id}.json")))?)?;
    let first = side
        .get("first_sample_unix_ns")
        .and_then(Value::as_i64)
        .ok_or_else(|| anyhow::anyhow!("no first_sample_unix_ns in {side}"))?;
    Ok((pcm, first))
}

/// Pair each burst sent with the first onset played at or after it (within 5 s), in order:
/// mouth → speaker latencies.
pub fn latencies(sent: &[i64], played: &[i64]) -> Vec<Duration> {
    let mut out = Vec::new();
    let mut j = 0;
    for s in sent {
        while j < played.len() && played[j] < *s {
            j += 1;
        }
        if let Some(p) = played.get(j)
            && *p - *s < 5_000_000_000
        {
            out.push(Duration::from_nanos((*p - *s) as u64));
            j += 1;
        }
    }
    out
}

/// The request body of a session to `areas` at `priority`.
pub fn request(areas: &[&str], priority: &str) -> Value {
    json!({"areas": areas, "priority": priority})
}
