//! Loudness normalisation of synthesised speech, in process (no external tool): parse a 16-bit PCM
//! WAV, measure a gated RMS (50 ms blocks quieter than −50 dBFS are ignored, so pauses do not
//! count — a rough stand-in for LUFS gating), apply one gain that brings the RMS to
//! [`TARGET_RMS_DBFS`] but never pushes the sample peak above [`PEAK_CEILING_DBFS`], and write a
//! canonical 44-byte-header WAV.

use crate::error::{Error, Result};

/// Target gated RMS level, dBFS (≈ −16 LUFS for speech).
pub const TARGET_RMS_DBFS: f64 = -16.0;
/// Sample peak ceiling after gain, dBFS.
pub const PEAK_CEILING_DBFS: f64 = -1.0;

/// Interleaved 16-bit PCM.
#[derive(Debug, Clone)]
pub struct Pcm {
    /// Samples per second.
    pub sample_rate: u32,
    /// Channels.
    pub channels: u16,
    /// Interleaved samples.
    pub samples: Vec<i16>,
}

/// What [`normalize`] measured and did.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    /// Gated RMS before, dBFS.
    pub rms_before_dbfs: f64,
    /// Peak before, dBFS.
    pub peak_before_dbfs: f64,
    /// Gain applied, dB.
    pub gain_db: f64,
}

fn le16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}
fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

impl Pcm {
    /// Parse a RIFF/WAVE file with 16-bit PCM samples. espeak-ng writes a streaming header with
    /// data size 0 or 0x7fffffff; the data then runs to the end of the file.
    pub fn parse_wav(b: &[u8]) -> Result<Pcm> {
        let bad = |m: &str| Error::internal(format!("tts wav: {m}"));
        if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
            return Err(bad("not a RIFF/WAVE file"));
        }
        let mut pos = 12;
        let mut fmt: Option<(u16, u16, u32, u16)> = None;
        while pos + 8 <= b.len() {
            let id = &b[pos..pos + 4];
            let size = le32(&b[pos + 4..pos + 8]) as usize;
            let body = pos + 8;
            if id == b"fmt " {
                if body + 16 > b.len() {
                    return Err(bad("short fmt chunk"));
                }
                let c = &b[body..];
                fmt = Some((le16(c), le16(&c[2..]), le32(&c[4..]), le16(&c[14..])));
            } else if id == b"data" {
                let (format, channels, rate, bits) = fmt.ok_or_else(|| bad("data before fmt"))?;
                if format != 1 || bits != 16 || channels == 0 {
                    return Err(bad("only 16-bit PCM is supported"));
                }
                let end = if size == 0 || body + size > b.len() {
                    b.len()
                } else {
                    body + size
                };
                let data = &b[body..end];
                let samples = data
                    .chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]))
                    .collect();
                return Ok(Pcm {
                    sample_rate: rate,
                    channels,
                    samples,
                });
            }
            pos = body + size + (size & 1);
        }
        Err(bad("no data chunk"))
    }

    /// Duration in milliseconds.
    pub fn duration_ms(&self) -> i64 {
        let frames = self.samples.len() as i64 / self.channels.max(1) as i64;
        frames * 1000 / self.sample_rate.max(1) as i64
    }

    /// A canonical WAV file.
    pub fn to_wav(&self) -> Vec<u8> {
        let data_len = (self.samples.len() * 2) as u32;
        let mut out = Vec::with_capacity(44 + data_len as usize);
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data_len).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&self.channels.to_le_bytes());
        out.extend_from_slice(&self.sample_rate.to_le_bytes());
        let block = self.channels as u32 * 2;
        out.extend_from_slice(&(self.sample_rate * block).to_le_bytes());
        out.extend_from_slice(&(block as u16).to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data_len.to_le_bytes());
        for s in &self.samples {
            out.extend_from_slice(&s.to_le_bytes());
        }
        out
    }
}

fn dbfs(x: f64) -> f64 {
    if x <= 0.0 { -120.0 } else { 20.0 * x.log10() }
}

/// Gated RMS and peak, both as fractions of full scale.
pub fn measure(pcm: &Pcm) -> (f64, f64) {
    let block = ((pcm.sample_rate as usize * pcm.channels as usize) / 20).max(1);
    let gate = 10f64.powf(-50.0 / 20.0);
    let (mut sum, mut n) = (0.0f64, 0usize);
    let mut peak = 0.0f64;
    for chunk in pcm.samples.chunks(block) {
        let s: f64 = chunk.iter().map(|&x| (x as f64 / 32768.0).powi(2)).sum();
        for &x in chunk {
            peak = peak.max((x as f64 / 32768.0).abs());
        }
        if (s / chunk.len() as f64).sqrt() >= gate {
            sum += s;
            n += chunk.len();
        }
    }
    let rms = if n == 0 { 0.0 } else { (sum / n as f64).sqrt() };
    (rms, peak)
}

/// Scale `pcm` in place towards `target_rms_dbfs`, keeping peaks under `ceiling_dbfs`.
pub fn normalize(pcm: &mut Pcm, target_rms_dbfs: f64, ceiling_dbfs: f64) -> Report {
    let (rms, peak) = measure(pcm);
    let (rms_db, peak_db) = (dbfs(rms), dbfs(peak));
    if rms <= 0.0 {
        return Report {
            rms_before_dbfs: rms_db,
            peak_before_dbfs: peak_db,
            gain_db: 0.0,
        };
    }
    let gain_db = (target_rms_dbfs - rms_db).min(ceiling_dbfs - peak_db);
    let g = 10f64.powf(gain_db / 20.0);
    for s in pcm.samples.iter_mut() {
        *s = (*s as f64 * g).round().clamp(-32768.0, 32767.0) as i16;
    }
    Report {
        rms_before_dbfs: rms_db,
        peak_before_dbfs: peak_db,
        gain_db,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_tone_is_raised_to_the_target_without_clipping() {
        let rate = 22050;
        let samples: Vec<i16> = (0..rate)
            .map(|i| ((i as f64 * 440.0 * std::f64::consts::TAU / rate as f64).sin() * 1000.0) as i16)
            .collect();
        let mut pcm = Pcm {
            sample_rate: rate as u32,
            channels: 1,
            samples,
        };
        let back = Pcm::parse_wav(&pcm.to_wav()).unwrap();
        assert_eq!(back.samples.len(), pcm.samples.len());
        assert_eq!(back.duration_ms(), 1000);
        let r = normalize(&mut pcm, TARGET_RMS_DBFS, PEAK_CEILING_DBFS);
        assert!(r.gain_db > 10.0, "{r:?}");
        let (rms, peak) = measure(&pcm);
        assert!(dbfs(peak) <= PEAK_CEILING_DBFS + 0.01, "peak {}", dbfs(peak));
        // A sine's crest factor is 3 dB, so the RMS target is reachable.
        assert!((dbfs(rms) - TARGET_RMS_DBFS).abs() < 0.2, "rms {}", dbfs(rms));
    }
}
