//! Loudness normalisation of synthesised speech, in process (no external tool): parse a 16-bit PCM
//! WAV, measure its integrated loudness with the `ebur128` crate (EBU R128 / ITU-R BS.1770-4:
//! K-weighting, 400 ms blocks, an absolute gate at −70 LUFS and a relative gate at −10 LU, so
//! pauses do not count), apply the one gain that brings it to [`TARGET_LUFS`], hold the sample
//! peak at or under [`PEAK_CEILING_DBFS`] with a look-ahead peak limiter where that gain alone
//! would push a peak over it (at most [`MAX_LIMITING_DB`] of gain reduction), then measure the
//! true peak (4× oversampled, BS.1770) and lower the whole signal by what an inter-sample peak
//! still stands over the ceiling, so the result is at most −1 dBTP; write a canonical
//! 44-byte-header WAV.

use std::collections::VecDeque;

use ebur128::{EbuR128, Mode};

use crate::error::{Error, Result};

/// Target integrated loudness, LUFS (speech on public loudspeakers).
pub const TARGET_LUFS: f64 = -16.0;
/// Peak ceiling after gain: sample peak dBFS and true peak dBTP.
pub const PEAK_CEILING_DBFS: f64 = -1.0;
/// Most gain reduction the limiter may apply to reach the target; a signal whose peaks stand
/// further above its loudness stays quieter than the target instead of being squashed.
pub const MAX_LIMITING_DB: f64 = 6.0;
/// The limiter's look-ahead (and attack), seconds.
const LOOKAHEAD_S: f64 = 0.005;
/// The limiter's release time constant, seconds.
const RELEASE_S: f64 = 0.050;

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
    /// Integrated loudness before, LUFS (−∞ for silence).
    pub loudness_before_lufs: f64,
    /// Sample peak before, dBFS.
    pub peak_before_dbfs: f64,
    /// Gain applied, dB (before the limiter).
    pub gain_db: f64,
    /// Largest gain reduction of the limiter, dB (0 when no peak needed it).
    pub limited_db: f64,
    /// Integrated loudness of the result, LUFS.
    pub loudness_after_lufs: f64,
    /// True peak of the result, dBTP.
    pub true_peak_after_dbtp: f64,
}

/// Integrated loudness and sample peak of a signal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Loudness {
    /// Integrated loudness, LUFS (−∞ when every block is under the absolute gate).
    pub integrated_lufs: f64,
    /// Largest absolute sample of any channel, as a fraction of full scale.
    pub peak: f64,
    /// Largest true (inter-sample) peak of any channel, as a fraction of full scale.
    pub true_peak: f64,
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

    /// The samples as fractions of full scale.
    fn to_f64(&self) -> Vec<f64> {
        self.samples.iter().map(|&s| s as f64 / 32768.0).collect()
    }
}

/// Decibels of a fraction of full scale (−∞ for 0).
pub fn dbfs(x: f64) -> f64 {
    20.0 * x.log10()
}

/// A meter of `mode` fed with interleaved samples (fractions of full scale).
fn meter(samples: &[f64], channels: u16, sample_rate: u32, mode: Mode) -> Result<EbuR128> {
    let mut m = EbuR128::new(channels as u32, sample_rate, mode).map_err(Error::context("loudness meter"))?;
    m.add_frames_f64(samples)
        .map_err(Error::context("loudness meter"))?;
    Ok(m)
}

/// The largest per-channel figure `f` of a meter (sample or true peak).
fn max_over_channels(
    m: &EbuR128,
    channels: u16,
    f: fn(&EbuR128, u32) -> std::result::Result<f64, ebur128::Error>,
) -> Result<f64> {
    let mut most = 0.0f64;
    for c in 0..channels as u32 {
        most = most.max(f(m, c).map_err(Error::context("loudness meter"))?);
    }
    Ok(most)
}

/// Integrated loudness (EBU R128) and sample peak of interleaved samples (fractions of full
/// scale). One channel is measured as the left channel of BS.1770, so a full-scale 997 Hz sine
/// reads −3.01 LUFS.
pub fn measure(samples: &[f64], channels: u16, sample_rate: u32) -> Result<Loudness> {
    let m = meter(
        samples,
        channels,
        sample_rate,
        Mode::I | Mode::SAMPLE_PEAK | Mode::TRUE_PEAK,
    )?;
    Ok(Loudness {
        integrated_lufs: m.loudness_global().map_err(Error::context("loudness meter"))?,
        peak: max_over_channels(&m, channels, EbuR128::sample_peak)?,
        true_peak: max_over_channels(&m, channels, EbuR128::true_peak)?,
    })
}

/// Integrated loudness alone: the 4× oversampling of the true peak is most of a full
/// [`measure`]'s time, and the limiter's make-up passes need only this.
fn integrated(samples: &[f64], channels: u16, sample_rate: u32) -> Result<f64> {
    meter(samples, channels, sample_rate, Mode::I)?
        .loudness_global()
        .map_err(Error::context("loudness meter"))
}

/// True peak alone (fraction of full scale).
fn true_peak(samples: &[f64], channels: u16, sample_rate: u32) -> Result<f64> {
    max_over_channels(
        &meter(samples, channels, sample_rate, Mode::TRUE_PEAK)?,
        channels,
        EbuR128::true_peak,
    )
}

/// Integrated loudness and sample peak, without the true peak.
fn loudness_and_peak(samples: &[f64], channels: u16, sample_rate: u32) -> Result<(f64, f64)> {
    let m = meter(samples, channels, sample_rate, Mode::I | Mode::SAMPLE_PEAK)?;
    Ok((
        m.loudness_global().map_err(Error::context("loudness meter"))?,
        max_over_channels(&m, channels, EbuR128::sample_peak)?,
    ))
}

/// [`measure`] of 16-bit PCM.
pub fn measure_pcm(pcm: &Pcm) -> Result<Loudness> {
    measure(&pcm.to_f64(), pcm.channels, pcm.sample_rate)
}

/// Bring `pcm` in place to `target_lufs` integrated loudness, keeping every sample at or under
/// `ceiling_dbfs` (the limiter takes at most [`MAX_LIMITING_DB`] off the peaks; past that the
/// gain is lowered instead). Silence is left as it is.
pub fn normalize(pcm: &mut Pcm, target_lufs: f64, ceiling_dbfs: f64) -> Result<Report> {
    let channels = pcm.channels.max(1);
    let rate = pcm.sample_rate;
    let x = pcm.to_f64();
    let (loudness_before, peak_before) = loudness_and_peak(&x, channels, rate)?;
    let mut report = Report {
        loudness_before_lufs: loudness_before,
        peak_before_dbfs: dbfs(peak_before),
        gain_db: 0.0,
        limited_db: 0.0,
        loudness_after_lufs: loudness_before,
        true_peak_after_dbtp: dbfs(peak_before),
    };
    if !loudness_before.is_finite() || peak_before <= 0.0 {
        // Left as it is: the true peak is measured only for the report.
        if peak_before > 0.0 {
            report.true_peak_after_dbtp = dbfs(true_peak(&x, channels, rate)?);
        }
        return Ok(report);
    }
    let most = ceiling_dbfs - report.peak_before_dbfs + MAX_LIMITING_DB;
    let mut gain_db = (target_lufs - loudness_before).min(most);
    let mut out;
    let mut limited_db;
    // The limiter holds sample peaks; where the true peak still stands over the ceiling, the
    // limiter's own ceiling comes down by that much and the pass runs again.
    let mut ceiling = 10f64.powf(ceiling_dbfs / 20.0);
    let mut round = 0;
    loop {
        // The limiter lowers the loudness a little; a make-up pass or two closes the gap.
        let mut pass = 0;
        loop {
            let g = 10f64.powf(gain_db / 20.0);
            out = x.iter().map(|s| s * g).collect::<Vec<f64>>();
            limited_db = limit(&mut out, channels as usize, rate, ceiling);
            pass += 1;
            if limited_db == 0.0 || pass == 4 {
                break;
            }
            let miss = target_lufs - integrated(&out, channels, rate)?;
            if miss.abs() < 0.05 || gain_db >= most {
                break;
            }
            gain_db = (gain_db + miss).min(most);
        }
        round += 1;
        let over = dbfs(true_peak(&out, channels, rate)?) - ceiling_dbfs;
        if over <= 0.0 || round == 3 {
            break;
        }
        ceiling *= 10f64.powf(-(over + 0.05) / 20.0);
    }
    // Inter-sample peaks: lower everything by what the true peak of the 16-bit result (whose
    // rounding can add a little) still stands over the ceiling.
    quantize(pcm, &out);
    let mut after = measure_pcm(pcm)?;
    for _ in 0..3 {
        let over = dbfs(after.true_peak) - ceiling_dbfs;
        if over <= 0.0 {
            break;
        }
        let g = 10f64.powf(-(over + 0.05) / 20.0);
        out.iter_mut().for_each(|v| *v *= g);
        gain_db -= over + 0.05;
        quantize(pcm, &out);
        after = measure_pcm(pcm)?;
    }
    report.gain_db = gain_db;
    report.limited_db = limited_db;
    report.loudness_after_lufs = after.integrated_lufs;
    report.true_peak_after_dbtp = dbfs(after.true_peak);
    Ok(report)
}

/// Write `out` (fractions of full scale) into `pcm`'s 16-bit samples.
fn quantize(pcm: &mut Pcm, out: &[f64]) {
    for (s, v) in pcm.samples.iter_mut().zip(out) {
        *s = (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
    }
}

/// Hold every sample of `x` (interleaved, `channels` per frame) at or under `ceiling` with a
/// look-ahead limiter: the gain each frame needs (`ceiling / peak`, or 1) goes through a trailing
/// minimum and a forward moving average of the look-ahead's length, so the gain is already down
/// when a peak arrives and never above what any frame needs; it recovers with an exponential
/// release. Returns the largest gain reduction, dB (0 when nothing was over).
fn limit(x: &mut [f64], channels: usize, sample_rate: u32, ceiling: f64) -> f64 {
    let frames = x.len() / channels;
    let need: Vec<f64> = (0..frames)
        .map(|i| {
            let p = x[i * channels..(i + 1) * channels]
                .iter()
                .fold(0.0f64, |m, s| m.max(s.abs()));
            if p > ceiling { ceiling / p } else { 1.0 }
        })
        .collect();
    let deepest = need.iter().copied().fold(1.0f64, f64::min);
    if deepest >= 1.0 {
        return 0.0;
    }
    let len = ((sample_rate as f64 * LOOKAHEAD_S).round() as usize).max(1);
    // m[k] = min(need[k-len+1..=k]) (monotonic deque of indices).
    let mut m = vec![1.0; frames];
    let mut window: VecDeque<usize> = VecDeque::new();
    for k in 0..frames {
        while window.back().is_some_and(|&j| need[j] >= need[k]) {
            window.pop_back();
        }
        window.push_back(k);
        if window.front().is_some_and(|&j| j + len <= k) {
            window.pop_front();
        }
        m[k] = need[window[0]];
    }
    // s[i] = mean(m[i..i+len]), with m = 1 past the end; then the release.
    let mut prefix = Vec::with_capacity(frames + len + 1);
    prefix.push(0.0);
    for k in 0..frames + len {
        let v = if k < frames { m[k] } else { 1.0 };
        prefix.push(prefix[k] + v);
    }
    let alpha = 1.0 - (-1.0 / (sample_rate as f64 * RELEASE_S)).exp();
    let mut g = 1.0f64;
    for i in 0..frames {
        let s = (prefix[i + len] - prefix[i]) / len as f64;
        g = s.min(g + (1.0 - g) * alpha);
        for v in &mut x[i * channels..(i + 1) * channels] {
            // The clamp only catches rounding of the average.
            *v = (*v * g).clamp(-ceiling, ceiling);
        }
    }
    -dbfs(deepest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, dbfs_peak: f64, rate: u32, secs: f64, channels: u16) -> Vec<f64> {
        let a = 10f64.powf(dbfs_peak / 20.0);
        let frames = (rate as f64 * secs) as usize;
        (0..frames)
            .flat_map(|i| {
                let v = (i as f64 * freq * std::f64::consts::TAU / rate as f64).sin() * a;
                std::iter::repeat_n(v, channels as usize)
            })
            .collect()
    }

    fn pcm_of(x: &[f64], rate: u32, channels: u16) -> Pcm {
        Pcm {
            sample_rate: rate,
            channels,
            samples: x
                .iter()
                .map(|v| (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
                .collect(),
        }
    }

    #[test]
    fn a_997_hz_sine_measures_as_the_standard_says() {
        // BS.1770: a full-scale 997 Hz sine in one channel reads −3.01 LUFS; −20 dBFS → −23.01.
        let full = measure(&sine(997.0, 0.0, 48_000, 10.0, 1), 1, 48_000).unwrap();
        assert!((full.integrated_lufs + 3.01).abs() < 0.05, "{full:?}");
        let quiet = measure(&sine(997.0, -20.0, 48_000, 10.0, 1), 1, 48_000).unwrap();
        assert!((quiet.integrated_lufs + 23.01).abs() < 0.05, "{quiet:?}");
        assert!((dbfs(quiet.peak) + 20.0).abs() < 0.01, "{quiet:?}");
        // The same sine in both channels of a stereo signal adds 3.01 dB: −20.0 LUFS.
        let stereo = measure(&sine(997.0, -20.0, 48_000, 10.0, 2), 2, 48_000).unwrap();
        assert!((stereo.integrated_lufs + 20.0).abs() < 0.05, "{stereo:?}");
        // At espeak-ng's 22.05 kHz the K-weighting is the same at 1 kHz.
        let espeak_rate = measure(&sine(997.0, -20.0, 22_050, 10.0, 1), 1, 22_050).unwrap();
        assert!(
            (espeak_rate.integrated_lufs + 23.01).abs() < 0.1,
            "{espeak_rate:?}"
        );
        // Silence is below the absolute gate.
        let silent = measure(&vec![0.0; 48_000], 1, 48_000).unwrap();
        assert_eq!(silent.integrated_lufs, f64::NEG_INFINITY);
    }

    #[test]
    fn a_quiet_tone_is_raised_to_the_target_without_clipping() {
        let rate = 22_050;
        let mut pcm = pcm_of(&sine(440.0, -30.3, rate, 3.0, 1), rate, 1);
        let back = Pcm::parse_wav(&pcm.to_wav()).unwrap();
        assert_eq!(back.samples.len(), pcm.samples.len());
        assert_eq!(back.duration_ms(), 3000);
        let r = normalize(&mut pcm, TARGET_LUFS, PEAK_CEILING_DBFS).unwrap();
        assert!(r.gain_db > 10.0, "{r:?}");
        // A sine's peak is 3 dB over its loudness: no limiting needed.
        assert_eq!(r.limited_db, 0.0, "{r:?}");
        let after = measure_pcm(&pcm).unwrap();
        assert!(dbfs(after.peak) <= PEAK_CEILING_DBFS + 0.01, "{after:?}");
        assert!((after.integrated_lufs - TARGET_LUFS).abs() < 0.2, "{after:?}");
    }

    #[test]
    fn peaks_over_the_ceiling_are_limited_and_the_target_is_still_reached() {
        // A tone with short bursts 15.6 dB over it: the gain to −16 LUFS would clip the bursts.
        let rate = 22_050;
        let mut x = sine(300.0, -30.0, rate, 8.0, 1);
        for burst in 0..16 {
            let start = burst * rate as usize / 2;
            for v in &mut x[start..start + 200] {
                *v *= 6.0;
            }
        }
        let mut pcm = pcm_of(&x, rate, 1);
        let r = normalize(&mut pcm, TARGET_LUFS, PEAK_CEILING_DBFS).unwrap();
        assert!(r.limited_db > 1.0, "{r:?}");
        let after = measure_pcm(&pcm).unwrap();
        assert!(
            dbfs(after.peak) <= PEAK_CEILING_DBFS + 0.01,
            "peak {}",
            dbfs(after.peak)
        );
        assert!((after.integrated_lufs - TARGET_LUFS).abs() < 0.5, "{after:?}");
    }

    #[test]
    fn a_click_in_silence_is_not_raised_by_more_than_the_limiter_allows() {
        let rate = 22_050;
        let mut x = sine(1000.0, -60.0, rate, 4.0, 1);
        for v in &mut x[rate as usize..rate as usize + 50] {
            *v = 0.5;
        }
        let mut pcm = pcm_of(&x, rate, 1);
        let r = normalize(&mut pcm, TARGET_LUFS, PEAK_CEILING_DBFS).unwrap();
        assert!(
            r.gain_db <= PEAK_CEILING_DBFS - r.peak_before_dbfs + MAX_LIMITING_DB + 1e-9,
            "{r:?}"
        );
        assert!(dbfs(measure_pcm(&pcm).unwrap().peak) <= PEAK_CEILING_DBFS + 0.01);
    }

    #[test]
    fn inter_sample_peaks_are_held_under_one_dbtp() {
        // A sine at a quarter of the sample rate sampled 45° off its crests: every sample is
        // 3 dB under the waveform's real (true) peak, so a sample-peak limiter alone lets the
        // true peak through at about +2 dBTP.
        let rate = 48_000;
        let x: Vec<f64> = (0..rate as usize * 4)
            .map(|i| (i as f64 * std::f64::consts::FRAC_PI_2 + std::f64::consts::FRAC_PI_4).sin() * 0.2)
            .collect();
        let mut pcm = pcm_of(&x, rate, 1);
        let before = measure_pcm(&pcm).unwrap();
        assert!(dbfs(before.true_peak) - dbfs(before.peak) > 2.5, "{before:?}");
        let r = normalize(&mut pcm, -6.0, PEAK_CEILING_DBFS).unwrap();
        let after = measure_pcm(&pcm).unwrap();
        assert!(
            dbfs(after.true_peak) <= PEAK_CEILING_DBFS + 1e-6,
            "{after:?} {r:?}"
        );
        assert!(
            (r.true_peak_after_dbtp - dbfs(after.true_peak)).abs() < 1e-9,
            "{r:?}"
        );
        assert!(
            (r.loudness_after_lufs - after.integrated_lufs).abs() < 1e-9,
            "{r:?}"
        );
    }

    #[test]
    fn silence_is_left_as_it_is() {
        let mut pcm = Pcm {
            sample_rate: 22_050,
            channels: 1,
            samples: vec![0; 22_050],
        };
        let r = normalize(&mut pcm, TARGET_LUFS, PEAK_CEILING_DBFS).unwrap();
        assert_eq!(r.gain_db, 0.0);
        assert!(pcm.samples.iter().all(|&s| s == 0));
    }
}
