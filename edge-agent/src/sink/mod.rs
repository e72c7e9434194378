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
//! the blocking decoder reads that channel through symphonia's `ReadOnlySource` (not seekable), so files and
//! streams share the decoder, the play loop and the outputs. A relay item's stream ([`RelayInput`],
//! `relay`) is connected again when it breaks off, and gives way to the item's fallback media
//! when it brings no audio for a while.

mod convert;
mod decode;
pub mod level;
mod null;
mod output;
mod play;
mod relay;
mod stream;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::chan::BoxSender;
use chrono::{DateTime, Utc};
use nguon_protocol::ManifestItem;
use tokio::sync::watch;

use crate::clock::Clock;

pub use convert::Format;
pub use decode::{Chunk, Decoded, Decoder, Input, decode_file};
pub use output::file_stem;
pub use play::WavSidecar;
pub use relay::RelayInput;
pub use stream::{STREAM_OPEN_TIMEOUT, STREAM_STALL_TIMEOUT, StreamInput};

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
    /// A relay item's window end: nothing is written after it (the fallback is cut there).
    pub until: Option<Instant>,
    /// The output's channels and fixed rate (`[audio] channels`, `sample_rate`).
    pub format: Format,
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
    /// Loudness of what was output (`None`: nothing decoded, or the null sink).
    pub level: Option<level::Level>,
    /// A relay item's stream: what of it played, whether it failed (`None` for other plays).
    pub relay: Option<nguon_protocol::RelayReport>,
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
pub fn spawn(sink: &Sink, job: PlayJob, clock: Clock, events: BoxSender<PlayEvent>) -> PlayHandle {
    match sink {
        Sink::Null => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(null::run_null(job, clock, rx, events));
            PlayHandle::Task(tx)
        }
        other => {
            let (tx, rx) = std::sync::mpsc::channel();
            let (stop_tx, stop_rx) = watch::channel(false);
            let sink = other.clone();
            tokio::task::spawn_blocking(move || play::run_decoded(&sink, job, clock, rx, stop_rx, events));
            PlayHandle::Thread(tx, stop_tx)
        }
    }
}
