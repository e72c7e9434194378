//! The decoder: symphonia probes a file or a live stream by its content and decodes its default
//! audio track, packet by packet, to interleaved `f32`.

use std::path::{Path, PathBuf};

use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream, ReadOnlySource};
use symphonia::core::meta::MetadataOptions;
use tokio::sync::watch;

use super::relay::{RelayInput, open_relay};
use super::stream::{StreamInput, open_stream};
use crate::error::AgentError;

/// A streaming decoder of one file to interleaved `f32`.
pub struct Decoder {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    buf: Vec<f32>,
    mask: Option<u64>,
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

/// Where a play's audio comes from.
#[derive(Debug, Clone)]
pub enum Input {
    /// A verified file in the cache.
    File(PathBuf),
    /// An HTTP audio stream (live relay), fetched while it plays.
    Stream(StreamInput),
    /// A relay item's stream, connected again when it breaks off, until its window ends.
    Relay(RelayInput),
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
            Input::Relay(r) => {
                // Found by content: MP3 frames, or AAC in ADTS.
                let reader = open_relay(r, stop)?;
                Self::from_source(Box::new(ReadOnlySource::new(reader)), Hint::new(), &r.url)
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
            mask: None,
        })
    }

    /// The channel mask of the last packet, when its layout names positions (WAVEFORMATEXTENSIBLE
    /// bits, in the order of the interleaved samples).
    pub fn channel_mask(&self) -> Option<u64> {
        self.mask
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
                    let layout = buf.spec().channels();
                    let channels = layout.count() as u16;
                    self.mask = match layout {
                        symphonia::core::audio::Channels::Positioned(p) => Some(p.bits()),
                        _ => None,
                    };
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
