//! Live streams: a small task on the runtime sends the HTTP request and feeds the body into a
//! bounded channel; the blocking decoder reads that channel as a non-seekable source.

use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::sync::watch;

use crate::error::AgentError;

/// How long a live stream may take to answer with its headers.
pub const STREAM_OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a live stream may send nothing before the play fails.
pub const STREAM_STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Network chunks buffered between the fetching task and the decoder.
pub(super) const STREAM_CHUNKS: usize = 16;

/// An HTTP audio stream to decode while it arrives.
#[derive(Debug, Clone)]
pub struct StreamInput {
    /// Absolute URL.
    pub url: String,
    /// The agent's HTTP client.
    pub http: reqwest::Client,
    /// Limit for the response headers to arrive.
    pub open_timeout: Duration,
    /// Limit for a pause in the data.
    pub stall_timeout: Duration,
}

impl StreamInput {
    /// A stream with the default timeouts.
    pub fn new(url: String, http: reqwest::Client) -> Self {
        Self {
            url,
            http,
            open_timeout: STREAM_OPEN_TIMEOUT,
            stall_timeout: STREAM_STALL_TIMEOUT,
        }
    }
}

/// A blocking reader over the chunks a fetching task receives; end of data is end of stream.
pub(super) struct StreamReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    buf: Bytes,
    done: bool,
}

impl StreamReader {
    /// A reader of the chunks `rx` receives (an error ends the stream with that error).
    pub(super) fn new(rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>) -> Self {
        Self {
            rx,
            buf: Bytes::new(),
            done: false,
        }
    }
}

impl std::io::Read for StreamReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.buf = b,
                Some(Err(e)) => {
                    self.done = true;
                    return Err(std::io::Error::other(e));
                }
                None => self.done = true,
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf.advance(n);
        Ok(n)
    }
}

/// Open an HTTP stream: a task on the current runtime sends the request (answer within
/// `open_timeout`, status 2xx) and then feeds the body into a bounded channel until it ends,
/// fails, stalls, `stop` turns true or the reader is dropped. Blocks until the headers arrive.
/// Returns the reader and the `Content-Type`.
pub(super) fn open_stream(
    s: &StreamInput,
    stop: &watch::Receiver<bool>,
) -> Result<(StreamReader, Option<String>), AgentError> {
    let rt = tokio::runtime::Handle::try_current()
        .map_err(|e| AgentError::Stream(format!("{}: no runtime: {e}", s.url)))?;
    let (open_tx, open_rx) = tokio::sync::oneshot::channel::<Result<Option<String>, String>>();
    let (tx, rx) = tokio::sync::mpsc::channel(STREAM_CHUNKS);
    let name = s.url.clone();
    let s = s.clone();
    let mut stop = stop.clone();
    rt.spawn(async move {
        let url = &s.url;
        let sent = tokio::select! {
            _ = stop.wait_for(|v| *v) => return,
            r = tokio::time::timeout(s.open_timeout, s.http.get(url).send()) => r,
        };
        let mut resp = match sent {
            Err(_) => {
                let secs = s.open_timeout.as_secs_f32();
                let _ = open_tx.send(Err(format!("{url}: no answer within {secs} s")));
                return;
            }
            Ok(Err(e)) => {
                let _ = open_tx.send(Err(format!("{url}: {e}")));
                return;
            }
            Ok(Ok(r)) if !r.status().is_success() => {
                let _ = open_tx.send(Err(format!("{url}: HTTP {}", r.status())));
                return;
            }
            Ok(Ok(r)) => r,
        };
        let mime = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
        if open_tx.send(Ok(mime)).is_err() {
            return;
        }
        loop {
            let next = tokio::select! {
                _ = stop.wait_for(|v| *v) => return,
                r = tokio::time::timeout(s.stall_timeout, resp.chunk()) => r,
            };
            let item = match next {
                Err(_) => Err(format!("{url}: no data for {} s", s.stall_timeout.as_secs_f32())),
                Ok(Err(e)) => Err(format!("{url}: {e}")),
                Ok(Ok(None)) => return,
                Ok(Ok(Some(b))) => Ok(b),
            };
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    match open_rx.blocking_recv() {
        Ok(Ok(mime)) => Ok((
            StreamReader {
                rx,
                buf: Bytes::new(),
                done: false,
            },
            mime,
        )),
        Ok(Err(e)) => Err(AgentError::Stream(e)),
        Err(_) => Err(AgentError::Stream(format!("{name}: stopped before it opened"))),
    }
}
