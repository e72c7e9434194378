//! Outputs of decoded samples: the WAV file writer (exactly the samples that would reach the
//! speaker) and the speaker through rodio (cargo feature `playback`).

use std::path::PathBuf;
use std::time::Duration;

use crate::error::AgentError;

/// Somewhere decoded samples go.
pub(super) trait Output {
    fn write(&mut self, rate: u32, channels: u16, samples: &[f32]) -> Result<(), AgentError>;
    fn pause(&mut self) {}
    fn resume(&mut self) {}
    /// How far ahead of their due time samples are handed over.
    fn write_ahead(&self) -> Duration {
        Duration::ZERO
    }
    fn finish(&mut self, completed: bool) -> Result<(), AgentError>;
}

pub(super) struct WavOutput {
    pub(super) dir: PathBuf,
    pub(super) stem: String,
    pub(super) gain: f32,
    pub(super) part: u32,
    pub(super) writer: Option<(u32, u16, hound::WavWriter<std::io::BufWriter<std::fs::File>>)>,
    pub(super) scratch: Vec<f32>,
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
pub(super) struct SpeakerOutput {
    _device: rodio::MixerDeviceSink,
    player: rodio::Player,
    gain: f32,
}

#[cfg(feature = "playback")]
impl SpeakerOutput {
    pub(super) fn open(device: &Option<String>, gain: f32) -> Result<Self, AgentError> {
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
