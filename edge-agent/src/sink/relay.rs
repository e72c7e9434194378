//! Relays (tiếp sóng, issue 17): an external HTTP stream (Icecast/SHOUTcast MP3 or AAC, or the
//! server's proxy of one) played for a window. A task on the runtime connects (asking for ICY
//! metadata, `Icy-MetaData: 1`, whose blocks it strips and whose `StreamTitle` it logs), feeds
//! the audio into the same bounded channel a live stream uses, and when the stream breaks off,
//! fails to open or stalls it connects again with a growing wait (0.5 s doubling to 5 s) until
//! the window ends: the decoder sees one byte stream (the MP3/ADTS reader finds the next frame
//! after a splice). When no audio came for `fallback_after` the task ends the stream with an
//! error and the play turns to the fallback media (`sink::play`). At the window's end the stream
//! ends (the play is complete).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use nguon_protocol::RelayReport;
use nguon_protocol::icy::{IcyDemux, stream_title};
use tokio::sync::{mpsc, watch};

use super::stream::{STREAM_CHUNKS, STREAM_OPEN_TIMEOUT, StreamReader};
use crate::error::AgentError;

/// Longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A connection that sends nothing this long is dropped and made again.
const STALL: Duration = Duration::from_secs(5);

/// A relay item's stream.
#[derive(Debug, Clone)]
pub struct RelayInput {
    /// Absolute URL.
    pub url: String,
    /// The agent's HTTP client.
    pub http: reqwest::Client,
    /// End of the window.
    pub until: Instant,
    /// No audio this long (from the start, or since the last audio): the fallback plays.
    pub fallback_after: Duration,
    /// What the play reports (reconnections, stream time, failure), shared with the play.
    pub report: Arc<Mutex<RelayReport>>,
}

impl RelayInput {
    /// A relay of `url` until `until`.
    pub fn new(url: String, http: reqwest::Client, until: Instant, fallback_after: Duration) -> Self {
        Self {
            url,
            http,
            until,
            fallback_after,
            report: Arc::default(),
        }
    }

    pub(super) fn note(&self, f: impl FnOnce(&mut RelayReport)) {
        f(&mut self.report.lock().expect("relay report"));
    }
}

/// Start the relay task (on the current runtime) and return the reader of its audio and the
/// `Content-Type` of the first connection that answered (`None` until one did: the decoder
/// probes the content). Returns at once; the first read waits for audio.
pub(super) fn open_relay(r: &RelayInput, stop: &watch::Receiver<bool>) -> Result<StreamReader, AgentError> {
    let rt = tokio::runtime::Handle::try_current()
        .map_err(|e| AgentError::Stream(format!("{}: no runtime: {e}", r.url)))?;
    let (tx, rx) = mpsc::channel(STREAM_CHUNKS);
    rt.spawn(run(r.clone(), tx, stop.clone()));
    Ok(StreamReader::new(rx))
}

enum Next {
    Stop,
    Again(String),
}

async fn run(r: RelayInput, tx: mpsc::Sender<Result<Bytes, String>>, mut stop: watch::Receiver<bool>) {
    let deadline = tokio::time::Instant::from_std(r.until);
    let mut last_audio = Instant::now();
    let mut attempt: u32 = 0;
    let mut connected_once = false;
    loop {
        if tokio::time::Instant::now() >= deadline {
            return;
        }
        let why = tokio::select! {
            _ = stop.wait_for(|v| *v) => return,
            _ = tokio::time::sleep_until(deadline) => return,
            n = connection(&r, &tx, &mut last_audio, &mut connected_once, &mut attempt) => match n {
                Next::Stop => return,
                Next::Again(why) => why,
            },
        };
        r.note(|x| x.error = Some(why.clone()));
        let silent_for = last_audio.elapsed();
        if silent_for >= r.fallback_after {
            let why = format!("no audio for {} s: {why}", silent_for.as_secs());
            tracing::warn!(url = %r.url, "relay gives up: {why}");
            r.note(|x| x.failed = true);
            let _ = tx.send(Err(why)).await;
            return;
        }
        let wait = (Duration::from_millis(500) * 2u32.saturating_pow(attempt.min(4))).min(MAX_BACKOFF);
        attempt += 1;
        tracing::warn!(url = %r.url, wait_ms = wait.as_millis() as u64, "relay stream lost: {why}; connecting again");
        tokio::select! {
            _ = stop.wait_for(|v| *v) => return,
            _ = tokio::time::sleep_until(deadline) => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One connection: open, then feed its audio until it ends, fails or stalls.
async fn connection(
    r: &RelayInput,
    tx: &mpsc::Sender<Result<Bytes, String>>,
    last_audio: &mut Instant,
    connected_once: &mut bool,
    attempt: &mut u32,
) -> Next {
    let url = &r.url;
    let req = r.http.get(url).header("Icy-MetaData", "1");
    let mut resp = match tokio::time::timeout(STREAM_OPEN_TIMEOUT, req.send()).await {
        Err(_) => {
            return Next::Again(format!(
                "{url}: no answer within {} s",
                STREAM_OPEN_TIMEOUT.as_secs()
            ));
        }
        Ok(Err(e)) => return Next::Again(format!("{url}: {e}")),
        Ok(Ok(r)) if !r.status().is_success() => return Next::Again(format!("{url}: HTTP {}", r.status())),
        Ok(Ok(r)) => r,
    };
    if *connected_once {
        r.note(|x| x.reconnects += 1);
        tracing::info!(%url, "relay stream connected again");
    }
    *connected_once = true;
    let metaint = resp
        .headers()
        .get("icy-metaint")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut icy = IcyDemux::from_header(metaint.as_deref());
    loop {
        let chunk = match tokio::time::timeout(STALL.min(r.fallback_after), resp.chunk()).await {
            Err(_) => {
                return Next::Again(format!(
                    "{url}: no data for {} s",
                    STALL.min(r.fallback_after).as_secs()
                ));
            }
            Ok(Err(e)) => return Next::Again(format!("{url}: {e}")),
            Ok(Ok(None)) => return Next::Again(format!("{url}: the stream ended")),
            Ok(Ok(Some(b))) => b,
        };
        let audio = match icy.as_mut() {
            None => chunk,
            Some(d) => {
                let mut out = Vec::with_capacity(chunk.len());
                for block in d.push(&chunk, &mut out) {
                    if let Some(t) = stream_title(&block) {
                        tracing::info!(%url, title = t, "relay StreamTitle");
                    }
                }
                Bytes::from(out)
            }
        };
        if audio.is_empty() {
            continue;
        }
        *last_audio = Instant::now();
        *attempt = 0;
        if tx.send(Ok(audio)).await.is_err() {
            return Next::Stop;
        }
    }
}
