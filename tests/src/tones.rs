//! Tone bursts of known frequencies, for measuring a live path to the sample: a looping WAV of
//! bursts (what Chromium's fake microphone plays), the bursts found in a signal (the onset to the
//! sample, and which of the frequencies it carries, by a Goertzel filter: a click, noise or the
//! wrong tone is not taken for a burst), the bursts an agent's WAV sink played with their
//! wall-clock instants, and the pairing of bursts sent with bursts played (mouth → speaker).

use std::path::Path;
use std::time::Duration;

/// A burst found in a signal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burst {
    /// Its onset, unix ns.
    pub at_ns: i64,
    /// Which of the frequencies asked for it carries (index), or `None` when no one of them
    /// holds at least half of its energy.
    pub tone: Option<usize>,
}

/// Write a mono 16-bit WAV of `tones.len()` × `period`: at `period` × k + `period` / 2, a burst of
/// 200 ms of `tones[k]` (2 ms ramps) at `amplitude` (0–1); silence elsewhere. Played in a loop it
/// is a burst every `period`, each cycle of frequencies in the same order.
pub fn burst_loop_wav(
    path: &Path,
    rate: u32,
    tones: &[f32],
    period: Duration,
    amplitude: f32,
) -> anyhow::Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let per = (period.as_secs_f64() * rate as f64) as usize;
    let burst = rate as usize / 5;
    let ramp = (rate as usize / 500).max(1);
    anyhow::ensure!(
        burst < per / 2,
        "a period of {period:?} is too short for 200 ms bursts"
    );
    let mut w = hound::WavWriter::create(path, spec)?;
    for f in tones {
        for i in 0..per {
            let v = match i.checked_sub(per / 2) {
                Some(j) if j < burst => {
                    let env = (j.min(burst - 1 - j) as f32 / ramp as f32).min(1.0);
                    let t = j as f32 / rate as f32;
                    (t * f * std::f32::consts::TAU).sin() * amplitude * env
                }
                _ => 0.0,
            };
            w.write_sample((v * i16::MAX as f32) as i16)?;
        }
    }
    w.finalize()?;
    Ok(())
}

/// The power of `window` at frequency `f` (Goertzel), for [`share_at`] and [`amplitude_at`].
fn goertzel_power(window: &[f32], rate: u32, f: f64) -> f64 {
    let w = std::f64::consts::TAU * f / rate as f64;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for x in window {
        let s0 = *x as f64 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0)
}

/// The share of `window`'s energy at frequency `f` (Goertzel): 1 for a pure tone at `f`, near 0
/// for other tones or silence.
pub fn share_at(window: &[f32], rate: u32, f: f32) -> f32 {
    let energy: f64 = window.iter().map(|s| (*s as f64) * (*s as f64)).sum();
    if energy <= 0.0 || window.is_empty() {
        return 0.0;
    }
    (2.0 * goertzel_power(window, rate, f as f64) / (window.len() as f64 * energy)) as f32
}

/// The amplitude of the sine of `f` Hz in `window` (Goertzel; exact for whole cycles, e.g. whole
/// seconds of a tone of whole hertz).
pub fn amplitude_at(window: &[f32], rate: u32, f: f64) -> f64 {
    if window.is_empty() {
        return 0.0;
    }
    2.0 * goertzel_power(window, rate, f).sqrt() / window.len() as f64
}

/// The bursts in mono `samples` at `rate` whose sample 0 is at `first_ns` (unix ns): each run
/// over `threshold` that follows at least 100 ms of quiet is an onset; the 60 ms from 10 ms after
/// it name its tone (the one of `tones` with the largest share, if at least half).
pub fn find(samples: &[f32], rate: u32, first_ns: i64, tones: &[f32], threshold: f32) -> Vec<Burst> {
    let quiet_needed = rate as usize / 10;
    let (skip, len) = (rate as usize / 100, rate as usize * 6 / 100);
    let mut quiet = quiet_needed;
    let mut out = Vec::new();
    for (k, s) in samples.iter().enumerate() {
        if s.abs() <= threshold {
            quiet += 1;
            continue;
        }
        if quiet >= quiet_needed {
            let window = samples
                .get(k + skip..(k + skip + len).min(samples.len()))
                .unwrap_or(&[]);
            let tone = tones
                .iter()
                .enumerate()
                .map(|(i, f)| (i, share_at(window, rate, *f)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .filter(|(_, share)| *share >= 0.5)
                .map(|(i, _)| i);
            out.push(Burst {
                at_ns: first_ns + (k as i64) * 1_000_000_000 / rate as i64,
                tone,
            });
        }
        quiet = 0;
    }
    out
}

/// The bursts an agent's WAV sink played for item `id` in `wav_dir` (`<id>.wav`, first channel),
/// timed by its sidecar's `first_sample_unix_ns` (the sink paces its writes to the play clock).
pub fn played(wav_dir: &Path, id: &str, tones: &[f32], threshold: f32) -> anyhow::Result<Vec<Burst>> {
    let (pcm, first) = crate::live::sink_wav(wav_dir, id)?;
    let ch = pcm.channels.max(1) as usize;
    let mono: Vec<f32> = pcm.samples.iter().step_by(ch).copied().collect();
    Ok(find(&mono, pcm.rate, first, tones, threshold))
}

/// For each burst `sent`, the latency to the first burst `played` with the same tone at or after
/// it and within `within` (`None`: not heard). With a distinct tone per burst in a cycle longer
/// than `within`, a missing burst cannot be paired with the next one.
pub fn latencies(sent: &[Burst], played: &[Burst], within: Duration) -> Vec<Option<Duration>> {
    let within = within.as_nanos() as i64;
    sent.iter()
        .map(|s| {
            played
                .iter()
                .filter(|p| p.tone.is_some() && p.tone == s.tone)
                .map(|p| p.at_ns - s.at_ns)
                .find(|d| (0..within).contains(d))
                .map(|d| Duration::from_nanos(d as u64))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(f: f32, rate: u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (i as f32 / rate as f32 * f * std::f32::consts::TAU).sin() * 0.5)
            .collect()
    }

    #[test]
    fn a_burst_is_found_to_the_sample_and_named_by_its_frequency() {
        let rate = 16_000;
        let mut s = vec![0.0; 3_000];
        s.extend(tone(800.0, rate, 3_200));
        s.extend(vec![0.0; 3_000]);
        s.extend(tone(1_400.0, rate, 3_200));
        let got = find(&s, rate, 0, &[500.0, 800.0, 1_100.0, 1_400.0], 0.05);
        assert_eq!(got.len(), 2, "{got:?}");
        // The first sample over the threshold: sin(2π·800/16000) · 0.5 = 0.155.
        assert_eq!(got[0].at_ns, 3_001 * 1_000_000_000 / rate as i64);
        assert_eq!(got[0].tone, Some(1));
        assert_eq!(got[1].tone, Some(3));
        // A tone that is none of those asked for has no name.
        let other = find(&s, rate, 0, &[500.0, 1_100.0], 0.05);
        assert_eq!(other.iter().filter(|b| b.tone.is_some()).count(), 0, "{other:?}");
    }

    #[test]
    fn a_burst_not_heard_is_not_paired_with_the_next_one() {
        let b = |at_ns, tone| Burst {
            at_ns,
            tone: Some(tone),
        };
        let sent = [b(0, 0), b(1_000_000_000, 1), b(2_000_000_000, 2)];
        let played = [b(300_000_000, 0), b(2_400_000_000, 2)];
        let l = latencies(&sent, &played, Duration::from_secs(3));
        assert_eq!(
            l,
            vec![
                Some(Duration::from_millis(300)),
                None,
                Some(Duration::from_millis(400))
            ]
        );
    }
}
