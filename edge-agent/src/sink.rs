//! Decoding (symphonia) and audio outputs: the speaker (rodio, cargo feature `playback`), the WAV
//! sink (exactly the samples that would reach the speaker, as 32-bit float WAV, plus a JSON file
//! with the wall-clock time of the first sample), and the null sink (waits the media duration).
//!
//! A decoded play runs on a blocking thread: it opens and pre-decodes the first packet before the
//! start instant, waits for that instant, then writes each packet at its due time, obeying
//! pause / resume / stop from the player. The null sink runs as a small async task instead.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use nguon_protocol::{ManifestItem, PlayOutcome};
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use tokio::sync::mpsc::UnboundedSender;

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

fn audio_err(path: &Path, e: impl std::fmt::Display) -> AgentError {
    AgentError::Audio(format!("{}: {e}", path.display()))
}

impl Decoder {
    /// Open a file (format found by probing its content).
    pub fn open(path: &Path) -> Result<Self, AgentError> {
        let file = std::fs::File::open(path).map_err(|e| AgentError::io(path, e))?;
        let mss = MediaSourceStream::new(Box::new(file), Default::default());
        let format = symphonia::default::get_probe()
            .probe(
                &Hint::new(),
                mss,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
            .map_err(|e| audio_err(path, e))?;
        let track = format
            .default_track(TrackType::Audio)
            .ok_or_else(|| audio_err(path, "no audio track"))?;
        let track_id = track.id;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| audio_err(path, "no audio codec parameters"))?;
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(params, &AudioDecoderOptions::default())
            .map_err(|e| audio_err(path, e))?;
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
    /// Verified files in play order (playlist × repeat).
    pub files: Vec<PathBuf>,
    /// Total duration from the manifest (used by the null sink).
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
    /// Decoded play on a blocking thread.
    Thread(std::sync::mpsc::Sender<Ctrl>),
    /// Null play on an async task.
    Task(tokio::sync::mpsc::UnboundedSender<Ctrl>),
}

impl PlayHandle {
    /// Send a control (ignored if the play already ended).
    pub fn send(&self, c: Ctrl) {
        match self {
            PlayHandle::Thread(t) => {
                let _ = t.send(c);
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
            let sink = other.clone();
            tokio::task::spawn_blocking(move || run_decoded(&sink, job, clock, rx, events));
            PlayHandle::Thread(tx)
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
            c = rx.recv() => if matches!(c, Some(Ctrl::Stop) | None) {
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
                            Some(Ctrl::Stop) | None => {
                                let _ = events.send(PlayEvent::Ended { token, end: end(Some(first), false, true) });
                                return;
                            }
                        }
                    }
                }
                Some(Ctrl::Resume) => { remaining = remaining.saturating_sub(t.elapsed()); }
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
    Stop,
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
            Ok(Ctrl::Stop) => return Flow::Stop,
            Ok(Ctrl::Resume) => {}
            Ok(Ctrl::Pause) => {
                out.pause();
                let held = Instant::now();
                loop {
                    match rx.recv() {
                        Ok(Ctrl::Resume) => break,
                        Ok(Ctrl::Pause) => {}
                        Ok(Ctrl::Stop) | Err(_) => return Flow::Stop,
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
    events: UnboundedSender<PlayEvent>,
) {
    let token = job.token;
    let mut first: Option<DateTime<Utc>> = None;
    let mut paused = false;
    let result = play_decoded(sink, &job, &clock, &rx, &events, &mut first, &mut paused);
    let ended_at = clock.now();
    let (completed, error) = match result {
        Ok(c) => (c, None),
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

fn play_decoded(
    sink: &Sink,
    job: &PlayJob,
    clock: &Clock,
    rx: &Receiver<Ctrl>,
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
    let mut files = job.files.iter();
    let Some(f0) = files.next() else {
        return Ok(true);
    };
    // Prepare before the start: open and decode the first packet.
    let mut dec = Decoder::open(f0)?;
    let mut pending: Option<(u32, u16, Vec<f32>)> = dec.next_chunk()?.map(|(r, c, s)| (r, c, s.to_vec()));
    let mut t0 = job.start;
    let mut deadline = job.start;
    if let Flow::Stop = wait_until(rx, &mut deadline, &mut t0, out.as_mut(), paused) {
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
                None => match files.next() {
                    Some(f) => {
                        dec = Decoder::open(f)?;
                        continue;
                    }
                    None => break,
                },
            }
        };
        let mut due = (t0 + pos).checked_sub(out.write_ahead()).unwrap_or(t0);
        if first.is_some()
            && let Flow::Stop = wait_until(rx, &mut due, &mut t0, out.as_mut(), paused)
        {
            out.finish(false)?;
            return Ok(false);
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
    if let Flow::Stop = wait_until(rx, &mut due, &mut t0, out.as_mut(), paused) {
        out.finish(false)?;
        return Ok(false);
    }
    out.finish(true)?;
    Ok(true)
}
