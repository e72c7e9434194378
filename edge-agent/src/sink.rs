//! Decoding (symphonia) and audio outputs: the speaker (rodio, cargo feature `playback`), the WAV
//! sink (exactly the samples that would reach the speaker, as 32-bit float WAV, plus a JSON file
//! with the wall-clock time of the first sample), and the null sink (waits the media duration).
//!
//! A decoded play runs on a blocking thread: it opens and pre-decodes the first packet before the
//! start instant, waits for that instant, then writes each packet at its due time, obeying
//! pause / resume / stop from the player. The null sink runs as a small async task instead.
//!
//! The decoder reads an [`Input`]: a verified file in the cache, or an HTTP audio stream (live
//! relay). A stream is fetched by a small async task on the runtime that feeds a bounded channel;
//! the blocking decoder reads that channel through [`ReadOnlySource`] (not seekable), so files and
//! streams share the decoder, the play loop and the outputs.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use chrono::{DateTime, SecondsFormat, Utc};
use nguon_protocol::{ManifestItem, PlayOutcome};
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream, ReadOnlySource};
use symphonia::core::meta::MetadataOptions;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::error::AgentError;

/// A streaming decoder of one file to interleaved `f32`.
pub struct Decoder {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    buf: Vec<f32>,
}

/// One decoded packet: sample rate, channels, interleaved samples.
pub type Chunk<'a> = (u32, u16, &'a [f32]);

/// A whole file decoded (tests and benchmarks).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// Sample rate.
    pub rate: u32,
    /// Channels.
    pub channels: u16,
    /// Interleaved samples.
    pub samples: Vec<f32>,
}

fn audio_err(name: &str, e: impl std::fmt::Display) -> AgentError {
    AgentError::Audio(format!("{name}: {e}"))
}

/// How long a live stream may take to answer with its headers.
pub const STREAM_OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a live stream may send nothing before the play fails.
pub const STREAM_STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Network chunks buffered between the fetching task and the decoder.
const STREAM_CHUNKS: usize = 16;

/// Where a play's audio comes from.
#[derive(Debug, Clone)]
pub enum Input {
    /// A verified file in the cache.
    File(PathBuf),
    /// An HTTP audio stream (live relay), fetched while it plays.
    Stream(StreamInput),
}

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
struct StreamReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    buf: Bytes,
    done: bool,
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
fn open_stream(
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

impl Decoder {
    /// Open a file (format found by probing its content).
    pub fn open(path: &Path) -> Result<Self, AgentError> {
        let file = std::fs::File::open(path).map_err(|e| AgentError::io(path, e))?;
        Self::from_source(Box::new(file), Hint::new(), &path.display().to_string())
    }

    /// Open an input: a file, or an HTTP stream (blocks until its headers arrive; `stop` turning
    /// true ends the stream's data early). Call from a blocking thread of a tokio runtime.
    pub fn open_input(input: &Input, stop: &watch::Receiver<bool>) -> Result<Self, AgentError> {
        match input {
            Input::File(path) => Self::open(path),
            Input::Stream(s) => {
                let (reader, mime) = open_stream(s, stop)?;
                let mut hint = Hint::new();
                if let Some(m) = &mime {
                    hint.mime_type(m);
                }
                Self::from_source(Box::new(ReadOnlySource::new(reader)), hint, &s.url)
            }
        }
    }

    /// Probe a source and set up the decoder of its default audio track.
    fn from_source(source: Box<dyn MediaSource>, hint: Hint, name: &str) -> Result<Self, AgentError> {
        let mss = MediaSourceStream::new(source, Default::default());
        let format = symphonia::default::get_probe()
            .probe(&hint, mss, FormatOptions::default(), MetadataOptions::default())
            .map_err(|e| audio_err(name, e))?;
        let track = format
            .default_track(TrackType::Audio)
            .ok_or_else(|| audio_err(name, "no audio track"))?;
        let track_id = track.id;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| audio_err(name, "no audio codec parameters"))?;
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(params, &AudioDecoderOptions::default())
            .map_err(|e| audio_err(name, e))?;
        Ok(Self {
            format,
            decoder,
            track_id,
            buf: Vec::new(),
        })
    }

    /// The next decoded packet: (rate, channels, interleaved samples); `None` at the end.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk<'_>>, AgentError> {
        loop {
            let packet = match self.format.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(None),
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Ok(None);
                }
                Err(e) => return Err(AgentError::Audio(e.to_string())),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            match self.decoder.decode(&packet) {
                Ok(buf) => {
                    if buf.frames() == 0 {
                        continue;
                    }
                    let rate = buf.spec().rate();
                    let channels = buf.spec().channels().count() as u16;
                    buf.copy_to_vec_interleaved(&mut self.buf);
                    return Ok(Some((rate, channels, &self.buf)));
                }
                Err(SymError::DecodeError(e)) => {
                    tracing::debug!(error = e, "skipping undecodable packet");
                }
                Err(e) => return Err(AgentError::Audio(e.to_string())),
            }
        }
    }
}

/// Decode a whole file.
pub fn decode_file(path: &Path) -> Result<Decoded, AgentError> {
    let mut d = Decoder::open(path)?;
    let mut out = Decoded {
        rate: 0,
        channels: 0,
        samples: Vec::new(),
    };
    while let Some((rate, ch, s)) = d.next_chunk()? {
        out.rate = rate;
        out.channels = ch;
        out.samples.extend_from_slice(s);
    }
    Ok(out)
}

/// Where samples go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// The speaker via rodio (`None`: default device).
    Speaker(Option<String>),
    /// WAV files in a directory.
    Wav(PathBuf),
    /// Nowhere; the player waits the media duration.
    Null,
}

/// One play to perform.
#[derive(Debug, Clone)]
pub struct PlayJob {
    /// Player token.
    pub token: u64,
    /// The item.
    pub item: ManifestItem,
    /// Inputs in play order: verified files (playlist × repeat), or one live stream.
    pub inputs: Vec<Input>,
    /// Total duration from the manifest (used by the null sink; `Duration::MAX` for a live
    /// stream, which the null sink then plays until stopped).
    pub duration: Duration,
    /// When the first sample is due.
    pub start: Instant,
    /// Linear gain (volume / 100).
    pub gain: f32,
}

/// Player → playback control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ctrl {
    /// Hold (preempted, will resume).
    Pause,
    /// Continue from where it was held.
    Resume,
    /// Stop for good.
    Stop,
    /// Stop for good, counting the play as complete if it had started (the end of a live
    /// relay by `live_stop`).
    Finish,
}

/// How a play ended.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayEnd {
    /// First sample time.
    pub first_sample: Option<DateTime<Utc>>,
    /// Last sample time.
    pub ended_at: DateTime<Utc>,
    /// Played to the end.
    pub completed: bool,
    /// Was held at least once.
    pub paused: bool,
    /// Failure.
    pub error: Option<String>,
}

/// Playback → player.
#[derive(Debug, Clone, PartialEq)]
pub enum PlayEvent {
    /// First sample written.
    FirstSample {
        /// Player token.
        token: u64,
        /// Wall time (device clock).
        at: DateTime<Utc>,
    },
    /// Done.
    Ended {
        /// Player token.
        token: u64,
        /// How.
        end: PlayEnd,
    },
}

/// A running play.
#[derive(Debug)]
pub enum PlayHandle {
    /// Decoded play on a blocking thread (controls; a flag that turns true on stop, so a
    /// stream being fetched ends at once instead of at its next data).
    Thread(std::sync::mpsc::Sender<Ctrl>, watch::Sender<bool>),
    /// Null play on an async task.
    Task(tokio::sync::mpsc::UnboundedSender<Ctrl>),
}

impl PlayHandle {
    /// Send a control (ignored if the play already ended).
    pub fn send(&self, c: Ctrl) {
        match self {
            PlayHandle::Thread(t, stop) => {
                let _ = t.send(c);
                if matches!(c, Ctrl::Stop | Ctrl::Finish) {
                    stop.send_replace(true);
                }
            }
            PlayHandle::Task(t) => {
                let _ = t.send(c);
            }
        }
    }
}

/// Start a play on the current runtime.
pub fn spawn(sink: &Sink, job: PlayJob, clock: Clock, events: UnboundedSender<PlayEvent>) -> PlayHandle {
    match sink {
        Sink::Null => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(run_null(job, clock, rx, events));
            PlayHandle::Task(tx)
        }
        other => {
            let (tx, rx) = std::sync::mpsc::channel();
            let (stop_tx, stop_rx) = watch::channel(false);
            let sink = other.clone();
            tokio::task::spawn_blocking(move || run_decoded(&sink, job, clock, rx, stop_rx, events));
            PlayHandle::Thread(tx, stop_tx)
        }
    }
}

async fn run_null(
    job: PlayJob,
    clock: Clock,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Ctrl>,
    events: UnboundedSender<PlayEvent>,
) {
    let token = job.token;
    let end = |first, completed, paused| PlayEnd {
        first_sample: first,
        ended_at: clock.now(),
        completed,
        paused,
        error: None,
    };
    let start = tokio::time::Instant::from_std(job.start);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(start) => break,
            c = rx.recv() => if matches!(c, Some(Ctrl::Stop | Ctrl::Finish) | None) {
                let _ = events.send(PlayEvent::Ended { token, end: end(None, false, false) });
                return;
            },
        }
    }
    let first = clock.now();
    let _ = events.send(PlayEvent::FirstSample { token, at: first });
    let mut remaining = job.duration;
    let mut paused = false;
    loop {
        let t = tokio::time::Instant::now();
        tokio::select! {
            _ = tokio::time::sleep(remaining) => {
                let _ = events.send(PlayEvent::Ended { token, end: end(Some(first), true, paused) });
                return;
            }
            c = rx.recv() => match c {
                Some(Ctrl::Pause) => {
                    remaining = remaining.saturating_sub(t.elapsed());
                    loop {
                        match rx.recv().await {
                            Some(Ctrl::Resume) => { paused = true; break; }
                            Some(Ctrl::Pause) => {}
                            Some(Ctrl::Finish) => {
                                let _ = events.send(PlayEvent::Ended { token, end: end(Some(first), true, true) });
                                return;
                            }
                            Some(Ctrl::Stop) | None => {
                                let _ = events.send(PlayEvent::Ended { token, end: end(Some(first), false, true) });
                                return;
                            }
                        }
                    }
                }
                Some(Ctrl::Resume) => { remaining = remaining.saturating_sub(t.elapsed()); }
                Some(Ctrl::Finish) => {
                    let _ = events.send(PlayEvent::Ended { token, end: end(Some(first), true, paused) });
                    return;
                }
                Some(Ctrl::Stop) | None => {
                    let _ = events.send(PlayEvent::Ended { token, end: end(Some(first), false, paused) });
                    return;
                }
            }
        }
    }
}

/// Somewhere decoded samples go.
trait Output {
    fn write(&mut self, rate: u32, channels: u16, samples: &[f32]) -> Result<(), AgentError>;
    fn pause(&mut self) {}
    fn resume(&mut self) {}
    /// How far ahead of their due time samples are handed over.
    fn write_ahead(&self) -> Duration {
        Duration::ZERO
    }
    fn finish(&mut self, completed: bool) -> Result<(), AgentError>;
}

struct WavOutput {
    dir: PathBuf,
    stem: String,
    gain: f32,
    part: u32,
    writer: Option<(u32, u16, hound::WavWriter<std::io::BufWriter<std::fs::File>>)>,
    scratch: Vec<f32>,
}

/// A file-name-safe form of an item id.
pub fn file_stem(item_id: &str) -> String {
    item_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Output for WavOutput {
    fn write(&mut self, rate: u32, channels: u16, samples: &[f32]) -> Result<(), AgentError> {
        let reopen = !matches!(&self.writer, Some((r, c, _)) if *r == rate && *c == channels);
        if reopen {
            if let Some((_, _, w)) = self.writer.take() {
                w.finalize().map_err(|e| AgentError::Audio(e.to_string()))?;
            }
            let name = if self.part == 0 {
                format!("{}.wav", self.stem)
            } else {
                format!("{}.{}.wav", self.stem, self.part)
            };
            self.part += 1;
            let spec = hound::WavSpec {
                channels,
                sample_rate: rate,
                bits_per_sample: 32,
                sample_format: hound::SampleFormat::Float,
            };
            let path = self.dir.join(name);
            let w = hound::WavWriter::create(&path, spec)
                .map_err(|e| AgentError::Audio(format!("{}: {e}", path.display())))?;
            self.writer = Some((rate, channels, w));
        }
        let (_, _, w) = self.writer.as_mut().expect("writer opened");
        self.scratch.clear();
        self.scratch.extend(samples.iter().map(|s| s * self.gain));
        for s in &self.scratch {
            w.write_sample(*s).map_err(|e| AgentError::Audio(e.to_string()))?;
        }
        // Keep the file readable while it grows: hound rewrites the header on flush.
        w.flush().map_err(|e| AgentError::Audio(e.to_string()))
    }
    fn finish(&mut self, _completed: bool) -> Result<(), AgentError> {
        if let Some((_, _, w)) = self.writer.take() {
            w.finalize().map_err(|e| AgentError::Audio(e.to_string()))?;
        }
        Ok(())
    }
}

#[cfg(feature = "playback")]
struct SpeakerOutput {
    _device: rodio::MixerDeviceSink,
    player: rodio::Player,
    gain: f32,
}

#[cfg(feature = "playback")]
impl SpeakerOutput {
    fn open(device: &Option<String>, gain: f32) -> Result<Self, AgentError> {
        if let Some(d) = device {
            tracing::warn!(device = %d, "named ALSA devices are not selectable yet; using the default device");
        }
        let mut dev = rodio::DeviceSinkBuilder::open_default_sink()
            .map_err(|e| AgentError::Audio(format!("cannot open the audio device: {e}")))?;
        dev.log_on_drop(false);
        let player = rodio::Player::connect_new(dev.mixer());
        Ok(Self {
            _device: dev,
            player,
            gain,
        })
    }
}

#[cfg(feature = "playback")]
impl Output for SpeakerOutput {
    fn write(&mut self, rate: u32, channels: u16, samples: &[f32]) -> Result<(), AgentError> {
        let (Some(ch), Some(r)) = (std::num::NonZero::new(channels), std::num::NonZero::new(rate)) else {
            return Err(AgentError::Audio("zero channels or rate".into()));
        };
        let data: Vec<f32> = samples.iter().map(|s| s * self.gain).collect();
        self.player.append(rodio::buffer::SamplesBuffer::new(ch, r, data));
        Ok(())
    }
    fn pause(&mut self) {
        self.player.pause();
    }
    fn resume(&mut self) {
        self.player.play();
    }
    fn write_ahead(&self) -> Duration {
        Duration::from_millis(300)
    }
    fn finish(&mut self, completed: bool) -> Result<(), AgentError> {
        if completed {
            self.player.sleep_until_end();
        } else {
            self.player.stop();
        }
        Ok(())
    }
}

enum Flow {
    Go,
    /// Stop; `true`: counted as complete ([`Ctrl::Finish`]).
    Stop(bool),
}

/// Wait until `deadline`, obeying controls; a pause shifts `t0` and the deadline by its length.
fn wait_until(
    rx: &Receiver<Ctrl>,
    deadline: &mut Instant,
    t0: &mut Instant,
    out: &mut dyn Output,
    paused: &mut bool,
) -> Flow {
    loop {
        let now = Instant::now();
        let msg = if now >= *deadline {
            match rx.try_recv() {
                Ok(c) => Ok(c),
                Err(_) => return Flow::Go,
            }
        } else {
            rx.recv_timeout(*deadline - now)
        };
        match msg {
            Ok(Ctrl::Stop) => return Flow::Stop(false),
            Ok(Ctrl::Finish) => return Flow::Stop(true),
            Ok(Ctrl::Resume) => {}
            Ok(Ctrl::Pause) => {
                out.pause();
                let held = Instant::now();
                loop {
                    match rx.recv() {
                        Ok(Ctrl::Resume) => break,
                        Ok(Ctrl::Pause) => {}
                        Ok(Ctrl::Finish) => return Flow::Stop(true),
                        Ok(Ctrl::Stop) | Err(_) => return Flow::Stop(false),
                    }
                }
                out.resume();
                let d = held.elapsed();
                *t0 += d;
                *deadline += d;
                *paused = true;
            }
            Err(RecvTimeoutError::Timeout) => return Flow::Go,
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                return Flow::Go;
            }
        }
    }
}

/// The JSON written beside each WAV file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct WavSidecar {
    /// Occurrence id.
    pub item_id: String,
    /// First media file.
    pub sha256: String,
    /// Priority.
    pub priority: nguon_protocol::Priority,
    /// Scheduled instant, RFC 3339 with ns.
    pub scheduled_at: String,
    /// Scheduled instant, unix ns.
    pub scheduled_unix_ns: i64,
    /// First sample, RFC 3339 with ns.
    pub first_sample_at: Option<String>,
    /// First sample, unix ns.
    pub first_sample_unix_ns: Option<i64>,
    /// Last sample, RFC 3339 with ns.
    pub ended_at: String,
    /// Outcome as far as the output knows.
    pub outcome: PlayOutcome,
    /// Error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn run_decoded(
    sink: &Sink,
    job: PlayJob,
    clock: Clock,
    rx: Receiver<Ctrl>,
    stop: watch::Receiver<bool>,
    events: UnboundedSender<PlayEvent>,
) {
    let token = job.token;
    let mut first: Option<DateTime<Utc>> = None;
    let mut paused = false;
    let result = play_decoded(sink, &job, &clock, &rx, &stop, &events, &mut first, &mut paused);
    let ended_at = clock.now();
    let (completed, error) = match result {
        Ok(c) => (c, None),
        // A stream cut short by a stop fails to read: that is the stop, not an error.
        Err(_) if *stop.borrow() => {
            let finish = rx.try_iter().any(|c| c == Ctrl::Finish);
            (finish && first.is_some(), None)
        }
        Err(e) => (false, Some(e.to_string())),
    };
    if let Sink::Wav(dir) = sink {
        let outcome = match (&error, completed, paused) {
            (Some(_), _, _) => PlayOutcome::Failed,
            (None, true, true) => PlayOutcome::Resumed,
            (None, true, false) => PlayOutcome::Played,
            (None, false, _) => PlayOutcome::Interrupted,
        };
        let side = WavSidecar {
            item_id: job.item.id.clone(),
            sha256: job.item.media.first().cloned().unwrap_or_default(),
            priority: job.item.priority,
            scheduled_at: rfc(job.item.starts_at),
            scheduled_unix_ns: job.item.starts_at.timestamp_nanos_opt().unwrap_or(0),
            first_sample_at: first.map(rfc),
            first_sample_unix_ns: first.and_then(|t| t.timestamp_nanos_opt()),
            ended_at: rfc(ended_at),
            outcome,
            error: error.clone(),
        };
        let path = dir.join(format!("{}.json", file_stem(&job.item.id)));
        let bytes = serde_json::to_vec_pretty(&side).expect("sidecar serialises");
        if let Err(e) = crate::store::write_atomic(&path, &bytes) {
            tracing::error!(error = %e, "cannot write WAV sidecar");
        }
    }
    let _ = events.send(PlayEvent::Ended {
        token,
        end: PlayEnd {
            first_sample: first,
            ended_at,
            completed,
            paused,
            error,
        },
    });
}

#[allow(clippy::too_many_arguments)]
fn play_decoded(
    sink: &Sink,
    job: &PlayJob,
    clock: &Clock,
    rx: &Receiver<Ctrl>,
    stop: &watch::Receiver<bool>,
    events: &UnboundedSender<PlayEvent>,
    first: &mut Option<DateTime<Utc>>,
    paused: &mut bool,
) -> Result<bool, AgentError> {
    let mut out: Box<dyn Output> = match sink {
        Sink::Wav(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| AgentError::io(dir, e))?;
            Box::new(WavOutput {
                dir: dir.clone(),
                stem: file_stem(&job.item.id),
                gain: job.gain,
                part: 0,
                writer: None,
                scratch: Vec::new(),
            })
        }
        #[cfg(feature = "playback")]
        Sink::Speaker(dev) => Box::new(SpeakerOutput::open(dev, job.gain)?),
        #[cfg(not(feature = "playback"))]
        Sink::Speaker(_) => {
            return Err(AgentError::Audio(
                "this agent was built without the `playback` feature; use wav:<dir> or null".into(),
            ));
        }
        Sink::Null => unreachable!("the null sink does not decode"),
    };
    let mut inputs = job.inputs.iter();
    let Some(f0) = inputs.next() else {
        return Ok(true);
    };
    // Prepare before the start: open and decode the first packet.
    let mut dec = Decoder::open_input(f0, stop)?;
    let mut pending: Option<(u32, u16, Vec<f32>)> = dec.next_chunk()?.map(|(r, c, s)| (r, c, s.to_vec()));
    let mut t0 = job.start;
    let mut deadline = job.start;
    if let Flow::Stop(_) = wait_until(rx, &mut deadline, &mut t0, out.as_mut(), paused) {
        out.finish(false)?;
        return Ok(false);
    }
    t0 = deadline;
    let mut pos = Duration::ZERO;
    loop {
        let (rate, ch, owned);
        let samples: &[f32] = if let Some((r, c, s)) = pending.take() {
            rate = r;
            ch = c;
            owned = s;
            &owned
        } else {
            match dec.next_chunk()? {
                Some((r, c, s)) => {
                    rate = r;
                    ch = c;
                    owned = s.to_vec();
                    &owned
                }
                None => match inputs.next() {
                    Some(f) => {
                        dec = Decoder::open_input(f, stop)?;
                        continue;
                    }
                    None => break,
                },
            }
        };
        let mut due = (t0 + pos).checked_sub(out.write_ahead()).unwrap_or(t0);
        if first.is_some()
            && let Flow::Stop(done) = wait_until(rx, &mut due, &mut t0, out.as_mut(), paused)
        {
            out.finish(false)?;
            return Ok(done);
        }
        if first.is_none() {
            let at = clock.now();
            *first = Some(at);
            let _ = events.send(PlayEvent::FirstSample { token: job.token, at });
        }
        out.write(rate, ch, samples)?;
        let frames = samples.len() / ch.max(1) as usize;
        pos += Duration::from_secs_f64(frames as f64 / rate.max(1) as f64);
    }
    // Let the last packet's time pass, so "ended" is when the last sample went out.
    let mut due = t0 + pos;
    if let Flow::Stop(done) = wait_until(rx, &mut due, &mut t0, out.as_mut(), paused) {
        out.finish(false)?;
        return Ok(done && first.is_some());
    }
    out.finish(true)?;
    Ok(true)
}
