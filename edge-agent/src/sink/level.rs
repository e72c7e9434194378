//! The loudness meter of a decoded play: the RMS of what is handed to the output (after the
//! item's gain) in 1-second windows, and the loudest window. The player reports it with the
//! proof of play (`max_rms_dbfs`) and calls an item that played to its end with every window
//! below the silence threshold `silent` (issue 12 §6: silence alarm).

use std::time::Duration;

/// The floor of the dBFS scale: digital silence reads as this.
pub const FLOOR_DBFS: f32 = -120.0;

/// What a play measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// RMS of the loudest window, dBFS (a full-scale sine reads −3 dBFS), at least [`FLOOR_DBFS`].
    pub max_rms_dbfs: f32,
    /// How much audio was measured.
    pub measured: Duration,
}

/// RMS over 1-second windows; the last, partial window counts when it is at least 100 ms long
/// or the only one (a short item).
#[derive(Debug, Default)]
pub struct Meter {
    rate: u32,
    /// Sum of squares and sample count of the open window.
    sum: f64,
    samples: u64,
    /// Frames in the open window.
    frames: u64,
    /// Loudest closed window (mean square).
    max_ms: Option<f64>,
    /// Frames measured, and their rate-weighted duration in seconds.
    seconds: f64,
}

impl Meter {
    /// Measure `samples` (interleaved, `channels` per frame, at `rate`) as they are output with
    /// linear `gain`.
    pub fn push(&mut self, rate: u32, channels: u16, samples: &[f32], gain: f32) {
        let rate = rate.max(1);
        if rate != self.rate {
            self.close(true);
            self.rate = rate;
        }
        let ch = channels.max(1) as usize;
        for frame in samples.chunks(ch) {
            for s in frame {
                let v = (*s * gain) as f64;
                self.sum += v * v;
            }
            self.samples += frame.len() as u64;
            self.frames += 1;
            if self.frames >= rate as u64 {
                self.close(true);
            }
        }
    }

    /// Close the open window; `keep` counts it toward the maximum.
    fn close(&mut self, keep: bool) {
        if self.samples > 0 && keep {
            let ms = self.sum / self.samples as f64;
            self.max_ms = Some(self.max_ms.map_or(ms, |m| m.max(ms)));
        }
        if self.rate > 0 {
            self.seconds += self.frames as f64 / self.rate as f64;
        }
        self.sum = 0.0;
        self.samples = 0;
        self.frames = 0;
    }

    /// What was measured; `None` if nothing was.
    pub fn finish(mut self) -> Option<Level> {
        let partial = self.rate > 0 && self.frames as f64 / self.rate as f64 >= 0.1;
        self.close(partial || self.max_ms.is_none());
        let ms = self.max_ms?;
        let db = if ms > 0.0 {
            (10.0 * ms.log10()) as f32
        } else {
            FLOOR_DBFS
        };
        Some(Level {
            max_rms_dbfs: db.max(FLOOR_DBFS),
            measured: Duration::from_secs_f64(self.seconds),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, seconds: f32, amp: f32) -> Vec<f32> {
        (0..(rate as f32 * seconds) as usize)
            .map(|i| amp * (i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin())
            .collect()
    }

    #[test]
    fn a_full_scale_sine_reads_minus_3_dbfs_and_the_gain_counts() {
        let mut m = Meter::default();
        m.push(8000, 1, &sine(8000, 2.0, 1.0), 1.0);
        let l = m.finish().unwrap();
        assert!((l.max_rms_dbfs + 3.01).abs() < 0.05, "{l:?}");
        assert_eq!(l.measured, Duration::from_secs(2));
        let mut m = Meter::default();
        m.push(8000, 1, &sine(8000, 2.0, 1.0), 0.1);
        assert!((m.finish().unwrap().max_rms_dbfs + 23.01).abs() < 0.05);
    }

    #[test]
    fn the_loudest_window_wins_and_silence_reads_the_floor() {
        let mut m = Meter::default();
        m.push(8000, 2, &vec![0.0; 8000 * 2 * 3], 1.0);
        let quiet = sine(8000, 1.0, 0.01);
        let stereo: Vec<f32> = quiet.iter().flat_map(|s| [*s, *s]).collect();
        m.push(8000, 2, &stereo, 1.0);
        let l = m.finish().unwrap();
        assert!((l.max_rms_dbfs + 43.01).abs() < 0.05, "{l:?}");
        let mut m = Meter::default();
        m.push(22050, 1, &[0.0; 22050], 1.0);
        assert_eq!(m.finish().unwrap().max_rms_dbfs, FLOOR_DBFS);
        assert_eq!(Meter::default().finish(), None);
    }

    #[test]
    fn a_short_tail_does_not_count_but_a_short_item_does() {
        let mut m = Meter::default();
        m.push(1000, 1, &[0.0; 1000], 1.0);
        m.push(1000, 1, &[1.0; 50], 1.0);
        assert_eq!(
            m.finish().unwrap().max_rms_dbfs,
            FLOOR_DBFS,
            "a 50 ms click at the end"
        );
        let mut m = Meter::default();
        m.push(1000, 1, &[0.5; 300], 1.0);
        assert!((m.finish().unwrap().max_rms_dbfs + 6.02).abs() < 0.05);
    }
}
