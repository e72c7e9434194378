//! What reaches the output is in the device's output format (`[audio] channels`, `sample_rate`):
//! a decoded packet of more channels than the output is mixed down (`nguon_protocol::downmix`,
//! ITU-R BS.775, the server's table), and where the output runs at one fixed rate every packet is
//! resampled to it with `rubato` (its synchronous FFT resampler: the ratio of a file is fixed).
//! The server already sends a stereo rendition of a multichannel upload; the mix here catches
//! what still has more channels (files stored before that, live streams, a mono device).
//!
//! Resampling is done here, on the device, and not at upload: the server does not know a
//! device's output rate, one rendition serves every device, and a device whose codec runs at one
//! rate (an I2S DAC fixed at 48 kHz) is the one that knows it.

use nguon_protocol::downmix::{Downmix, MAX_OUTPUT_CHANNELS, speakers};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

use super::Chunk;
use crate::error::AgentError;

/// The output's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// The one rate the output runs at (`None`: each file's own rate).
    pub rate: Option<u32>,
    /// Channels the output has (1 or 2); more are mixed down.
    pub channels: u16,
}

impl Default for Format {
    fn default() -> Self {
        Format {
            rate: None,
            channels: MAX_OUTPUT_CHANNELS,
        }
    }
}

/// Frames per resampler call.
const CHUNK: usize = 1024;

fn audio_err(e: impl std::fmt::Display) -> AgentError {
    AgentError::Audio(format!("resampling: {e}"))
}

/// A running resampler from one rate, with the input that does not fill a chunk yet.
struct Resampling {
    from: u32,
    to: u32,
    channels: usize,
    r: Fft<f32>,
    pending: Vec<f32>,
    block: Vec<f32>,
    /// Output frames of the resampler's delay still to drop.
    skip: usize,
    frames_in: u64,
    frames_out: u64,
}

impl Resampling {
    fn new(from: u32, to: u32, channels: usize) -> Result<Self, AgentError> {
        let r = Fft::<f32>::new(from as usize, to as usize, CHUNK, channels, FixedSync::Input)
            .map_err(audio_err)?;
        let block = vec![0.0; channels * r.output_frames_max()];
        Ok(Resampling {
            from,
            to,
            channels,
            skip: r.output_delay(),
            r,
            pending: Vec::new(),
            block,
            frames_in: 0,
            frames_out: 0,
        })
    }

    /// One resampler call on the first chunk of `pending` (`partial`: fewer valid frames, the
    /// rest silence), its output appended to `out`.
    fn run(&mut self, partial: Option<usize>, out: &mut Vec<f32>) -> Result<(), AgentError> {
        let need = self.r.input_frames_next();
        if self.pending.len() < need * self.channels {
            self.pending.resize(need * self.channels, 0.0);
        }
        let max = self.block.len() / self.channels;
        let input = InterleavedSlice::new(&self.pending[..need * self.channels], self.channels, need)
            .map_err(audio_err)?;
        let mut output = InterleavedSlice::new_mut(&mut self.block, self.channels, max).map_err(audio_err)?;
        let indexing = Indexing {
            partial_len: partial,
            ..Indexing::default()
        };
        let (_, written) = self
            .r
            .process_into_buffer(&input, &mut output, Some(&indexing))
            .map_err(audio_err)?;
        self.pending.drain(..need * self.channels);
        let drop = self.skip.min(written);
        self.skip -= drop;
        out.extend_from_slice(&self.block[drop * self.channels..written * self.channels]);
        self.frames_out += (written - drop) as u64;
        Ok(())
    }

    fn push(&mut self, samples: &[f32], out: &mut Vec<f32>) -> Result<(), AgentError> {
        self.pending.extend_from_slice(samples);
        self.frames_in += (samples.len() / self.channels) as u64;
        while self.pending.len() >= self.r.input_frames_next() * self.channels {
            self.run(None, out)?;
        }
        Ok(())
    }

    /// The rest: the input that did not fill a chunk, then silence until the output has as many
    /// frames as the input's duration at the new rate.
    fn finish(&mut self, out: &mut Vec<f32>) -> Result<(), AgentError> {
        let expected = (self.frames_in as u128 * self.to as u128 / self.from as u128) as u64;
        let start = out.len();
        let rest = self.pending.len() / self.channels;
        self.run(Some(rest), out)?;
        while self.frames_out < expected {
            self.pending.clear();
            self.run(Some(0), out)?;
        }
        let over = (self.frames_out - expected) as usize * self.channels;
        out.truncate((out.len() - over).max(start));
        Ok(())
    }
}

/// Mixes and resamples decoded packets for one play.
pub(super) struct Converter {
    format: Format,
    mix: Option<(u16, Option<u64>, Option<Downmix>)>,
    mixed: Vec<f32>,
    resampling: Option<Resampling>,
    out: Vec<f32>,
}

impl Converter {
    pub(super) fn new(format: Format) -> Self {
        Converter {
            format,
            mix: None,
            mixed: Vec::new(),
            resampling: None,
            out: Vec::new(),
        }
    }

    /// Convert one packet (`mask`: its channel mask, when the decoder knows one). The result may
    /// be empty while the resampler fills a chunk.
    pub(super) fn push<'a>(
        &'a mut self,
        rate: u32,
        channels: u16,
        mask: Option<u64>,
        samples: &'a [f32],
    ) -> Result<Chunk<'a>, AgentError> {
        let wanted = self.format.channels.clamp(1, MAX_OUTPUT_CHANNELS);
        let (channels, samples): (u16, &[f32]) = if channels > wanted {
            if !matches!(&self.mix, Some((c, m, _)) if *c == channels && *m == mask) {
                self.mix = Some((channels, mask, Downmix::new(&speakers(mask, channels), wanted)));
            }
            match &self.mix {
                Some((_, _, Some(m))) => {
                    m.mix(samples, &mut self.mixed);
                    (m.outputs(), &self.mixed)
                }
                _ => (channels, samples),
            }
        } else {
            (channels, samples)
        };
        let Some(to) = self.format.rate.filter(|&to| to != rate) else {
            // A rate the output takes as it is: what the resampler still holds of a file before
            // goes first (a playlist of files of different rates).
            if self.resampling.is_some() {
                self.out.clear();
                if let Some(mut r) = self.resampling.take() {
                    r.finish(&mut self.out)?;
                }
                self.out.extend_from_slice(samples);
                return Ok((rate, channels, &self.out));
            }
            return Ok((rate, channels, samples));
        };
        self.out.clear();
        if self
            .resampling
            .as_ref()
            .is_some_and(|r| r.from != rate || r.channels != channels as usize)
            && let Some(mut old) = self.resampling.take()
        {
            old.finish(&mut self.out)?;
        }
        if self.resampling.is_none() {
            self.resampling = Some(Resampling::new(rate, to, channels as usize)?);
        }
        if let Some(r) = self.resampling.as_mut() {
            r.push(samples, &mut self.out)?;
        }
        Ok((to, channels, &self.out))
    }

    /// What the resampler still holds at the end of the play (empty when nothing).
    pub(super) fn finish(&mut self) -> Result<Option<Chunk<'_>>, AgentError> {
        let Some(mut r) = self.resampling.take() else {
            return Ok(None);
        };
        self.out.clear();
        r.finish(&mut self.out)?;
        Ok(Some((r.to, r.channels as u16, &self.out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, frames: usize, channels: usize, amp: f32) -> Vec<f32> {
        (0..frames)
            .flat_map(|i| {
                let v = ((i as f64 * freq * std::f64::consts::TAU / rate as f64).sin() as f32) * amp;
                std::iter::repeat_n(v, channels)
            })
            .collect()
    }

    /// Amplitude of `freq` in one channel (Goertzel over the whole signal).
    fn amplitude(x: &[f32], channels: usize, ch: usize, freq: f64, rate: u32) -> f64 {
        let n = x.len() / channels;
        let w = std::f64::consts::TAU * freq / rate as f64;
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for i in 0..n {
            let s = x[i * channels + ch] as f64 + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
        2.0 * power.sqrt() / n as f64
    }

    #[test]
    fn a_44k1_file_played_at_48k_keeps_its_length_and_tone() {
        let mut c = Converter::new(Format {
            rate: Some(48_000),
            channels: 2,
        });
        let input = sine(1000.0, 44_100, 44_100, 2, 0.5);
        let mut out = Vec::new();
        // Packets of an MP3's size.
        for p in input.chunks(1152 * 2) {
            let (rate, ch, s) = c.push(44_100, 2, None, p).unwrap();
            assert_eq!((rate, ch), (48_000, 2));
            out.extend_from_slice(s);
        }
        let (rate, _, s) = c.finish().unwrap().unwrap();
        assert_eq!(rate, 48_000);
        out.extend_from_slice(s);
        assert_eq!(out.len(), 48_000 * 2, "one second at 48 kHz");
        // The tone is there at its level, in the middle (away from the edges).
        let mid = &out[8_000 * 2..40_000 * 2];
        let a = amplitude(mid, 2, 0, 1000.0, 48_000);
        assert!((a - 0.5).abs() < 0.01, "{a}");
    }

    #[test]
    fn six_channels_reach_a_stereo_output_mixed_and_a_mono_one_as_their_mean() {
        let mut c = Converter::new(Format::default());
        let frame = [0.1f32, 0.2, 0.3, 0.9, 0.4, 0.5];
        let (rate, ch, s) = c.push(48_000, 6, None, &frame).unwrap();
        let k = std::f32::consts::FRAC_1_SQRT_2;
        let s_ = 1.0 / (1.0 + 2.0 * k);
        assert_eq!((rate, ch, s.len()), (48_000, 2, 2));
        assert!((s[0] - s_ * (0.1 + k * 0.3 + k * 0.4)).abs() < 1e-6, "{s:?}");
        // Stereo passes untouched.
        let (_, ch, s) = c.push(48_000, 2, None, &[0.25, -0.25]).unwrap();
        assert_eq!((ch, s), (2, &[0.25f32, -0.25][..]));
        assert!(c.finish().unwrap().is_none());
        let mut mono = Converter::new(Format {
            rate: None,
            channels: 1,
        });
        let (_, ch, s) = mono.push(48_000, 2, None, &[0.25, -0.75]).unwrap();
        assert_eq!((ch, s), (1, &[-0.25f32][..]));
    }
}
