//! The console's live page (`/console/live`) as a system test hears it: [`MOUTH_HOOK`], run in the
//! page before talk is pressed, keeps a copy of every PCM frame the page sends over its
//! WebSocket with the wall-clock instant it went; [`mouth`] reads them back as one signal with
//! the unix instant of its first sample. That is the "mouth" of the mouth → speaker latency: the
//! samples the browser captured, timed when the page hands them to the network (the fake
//! device's own capture buffer, a few ms, is not counted).

use nguon_webdriver::Driver;
use serde_json::Value;

/// Wraps `WebSocket.prototype.send`: each binary frame (16-bit mono PCM) is kept with
/// `performance.timeOrigin + performance.now()` (ms) in `window.__mouth.frames`, and the
/// socket's `?rate=` in `window.__mouth.rate`. The page's own sending is unchanged.
pub const MOUTH_HOOK: &str = r#"
if (!window.__mouth) {
  var m = window.__mouth = { rate: 0, frames: [] };
  var send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (d) {
    if (d instanceof ArrayBuffer) {
      m.rate = +new URL(this.url).searchParams.get("rate");
      m.frames.push([performance.timeOrigin + performance.now(), Array.from(new Int16Array(d))]);
    }
    return send.apply(this, arguments);
  };
}
"#;

/// What the page sent.
#[derive(Debug, Clone)]
pub struct Mouth {
    /// Sample rate of the frames.
    pub rate: u32,
    /// The frames' samples, in order, as f32.
    pub samples: Vec<f32>,
    /// Unix ns of sample 0: frames are contiguous, so sample j is at `first_ns + j / rate`; the
    /// anchor is the earliest one the send instants allow (the frame sent with the least delay
    /// after its last sample).
    pub first_ns: i64,
    /// Frames sent.
    pub frames: usize,
}

/// Read back what the page sent since [`MOUTH_HOOK`] ran.
pub async fn mouth(d: &Driver) -> anyhow::Result<Mouth> {
    let v = d.eval("return window.__mouth || null").await;
    let rate = v
        .get("rate")
        .and_then(Value::as_u64)
        .filter(|r| *r > 0)
        .ok_or_else(|| anyhow::anyhow!("the page sent no frame (hook: {v})"))? as u32;
    let frames = v
        .get("frames")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut samples = Vec::new();
    let mut first_ns = i64::MAX;
    for f in &frames {
        let at_ms = f.get(0).and_then(Value::as_f64).unwrap_or_default();
        let pcm = f.get(1).and_then(Value::as_array).cloned().unwrap_or_default();
        samples.extend(
            pcm.iter()
                .map(|s| s.as_i64().unwrap_or_default() as f32 / 32_768.0),
        );
        // This frame's last sample is samples.len() - 1: sample 0 was at most this long before.
        let anchor = (at_ms * 1e6) as i64 - (samples.len() as i64) * 1_000_000_000 / rate as i64;
        first_ns = first_ns.min(anchor);
    }
    anyhow::ensure!(!samples.is_empty(), "the page sent no samples");
    Ok(Mouth {
        rate,
        samples,
        first_ns,
        frames: frames.len(),
    })
}
