//! What devices play: at most two channels. A layout of more (5.1, 7.1 …) is mixed down to stereo
//! with the coefficients of ITU-R BS.775 (Table 2, 3/2 → 2/0):
//!
//! ```text
//! L' = L + 0.7071·C + 0.7071·Ls        R' = R + 0.7071·C + 0.7071·Rs        (LFE dropped)
//! ```
//!
//! then scaled by one factor, the inverse of the largest output row sum (1 + 0.7071 + 0.7071 =
//! 2.414 for 5.1), so channels that are all at full scale and in phase still cannot clip. A mono
//! output takes the mean of that stereo mix. Both sides use this one table: the server for the
//! rendition of an upload (`services::media::loudness`), the agent for anything of more channels
//! than its output that still reaches it (files stored before the rendition existed, live streams).
//!
//! Channels are named by a WAVEFORMATEXTENSIBLE channel mask (symphonia's `Position` bits: the
//! first 18 are Microsoft's, the rest symphonia's own) in ascending bit order, or, without a
//! mask, by the default order of WAV/SMPTE for their count (L R C LFE Ls Rs …).

/// −3 dB: the BS.775 weight of the centre and of each surround into the front pair.
pub const K: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// The most channels a device plays.
pub const MAX_OUTPUT_CHANNELS: u16 = 2;

/// What one input channel is, for the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    /// Front left (and left-of-centre, wide left, the heights above them).
    Left,
    /// Front right (and right-of-centre, wide right, the heights above them).
    Right,
    /// Front centre (and the heights above it).
    Center,
    /// Low-frequency effects: dropped, as BS.775 does.
    Lfe,
    /// Left surround (side or rear left, and the heights above them).
    LeftSurround,
    /// Right surround (side or rear right, and the heights above them).
    RightSurround,
    /// A lone rear centre surround: into both sides at −3 dB.
    RearCenter,
}

impl Speaker {
    /// The weights of this channel into (L', R'), before the anti-clipping scale.
    pub fn gains(self) -> [f32; 2] {
        match self {
            Speaker::Left => [1.0, 0.0],
            Speaker::Right => [0.0, 1.0],
            Speaker::Center | Speaker::RearCenter => [K, K],
            Speaker::Lfe => [0.0, 0.0],
            Speaker::LeftSurround => [K, 0.0],
            Speaker::RightSurround => [0.0, K],
        }
    }

    /// The speaker of one channel-mask bit (0 = front left …); `None` for bits past the known.
    pub fn of_mask_bit(bit: u32) -> Option<Speaker> {
        use Speaker::*;
        Some(match bit {
            0 | 6 | 12 | 22 | 24 => Left, // FL, FLC, top front L, bottom front L, wide L
            1 | 7 | 14 | 23 | 25 => Right,
            2 | 11 | 13 | 21 => Center, // FC, top centre, top front C, bottom front C
            3 | 18 => Lfe,
            4 | 9 | 15 | 19 => LeftSurround, // rear L, side L, top rear L, top side L
            5 | 10 | 17 | 20 => RightSurround,
            8 | 16 => RearCenter,
            _ => return None,
        })
    }
}

/// The speakers of `count` channels: from a channel `mask` when the file has one with that many
/// bits, else WAV/SMPTE's default order for the count.
pub fn speakers(mask: Option<u64>, count: u16) -> Vec<Speaker> {
    use Speaker::*;
    if let Some(m) = mask.filter(|m| m.count_ones() == count as u32) {
        let named: Option<Vec<Speaker>> = (0..64)
            .filter(|b| m & (1u64 << b) != 0)
            .map(Speaker::of_mask_bit)
            .collect();
        if let Some(v) = named {
            return v;
        }
    }
    match count {
        0 => vec![],
        1 => vec![Center],
        2 => vec![Left, Right],
        3 => vec![Left, Right, Center],
        4 => vec![Left, Right, LeftSurround, RightSurround],
        5 => vec![Left, Right, Center, LeftSurround, RightSurround],
        6 => vec![Left, Right, Center, Lfe, LeftSurround, RightSurround],
        7 => vec![Left, Right, Center, Lfe, RearCenter, LeftSurround, RightSurround],
        n => {
            // 7.1 (L R C LFE Lrs Rrs Ls Rs); anything past eight alternates sides.
            let mut v = vec![Left, Right, Center, Lfe, LeftSurround, RightSurround];
            for i in 6..n {
                v.push(if i % 2 == 0 { LeftSurround } else { RightSurround });
            }
            v
        }
    }
}

/// A mix of `inputs` channels to `outputs` (1 or 2).
#[derive(Debug, Clone, PartialEq)]
pub struct Downmix {
    inputs: usize,
    outputs: usize,
    /// Per input channel, its weight into each output (scale included).
    weights: Vec<[f32; 2]>,
}

impl Downmix {
    /// The mix of a layout to stereo (`outputs` 2) or mono (1): BS.775's weights, all scaled by
    /// the inverse of the largest output row sum (at most 1: a layout that cannot clip is not
    /// raised). `None` when there is nothing to do: as many channels in as out, or fewer.
    pub fn new(layout: &[Speaker], outputs: u16) -> Option<Downmix> {
        let outputs = outputs.clamp(1, MAX_OUTPUT_CHANNELS) as usize;
        if layout.len() <= outputs {
            return None;
        }
        let mut weights: Vec<[f32; 2]> = if layout.len() == 2 {
            // Stereo to mono: the sides' mean.
            vec![[0.5, 0.0], [0.5, 0.0]]
        } else {
            layout.iter().map(|s| s.gains()).collect()
        };
        let rows = [0, 1].map(|o| weights.iter().map(|w| w[o].abs()).sum::<f32>());
        let scale = 1.0 / rows[0].max(rows[1]).max(1.0);
        for w in &mut weights {
            w[0] *= scale;
            w[1] *= scale;
            if outputs == 1 && layout.len() > 2 {
                *w = [(w[0] + w[1]) / 2.0, 0.0];
            }
        }
        Some(Downmix {
            inputs: layout.len(),
            outputs,
            weights,
        })
    }

    /// Output channels.
    pub fn outputs(&self) -> u16 {
        self.outputs as u16
    }

    /// The weight of input channel `input` into output `output`.
    pub fn weight(&self, input: usize, output: usize) -> f32 {
        self.weights[input][output]
    }

    /// Mix interleaved `input` (whole frames of the layout) into `out` (cleared first).
    pub fn mix(&self, input: &[f32], out: &mut Vec<f32>) {
        out.clear();
        out.reserve(input.len() / self.inputs * self.outputs);
        for frame in input.chunks_exact(self.inputs) {
            for o in 0..self.outputs {
                out.push(frame.iter().zip(&self.weights).map(|(s, w)| s * w[o]).sum());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn five_one_mixes_with_the_bs775_weights_scaled_so_nothing_clips() {
        let layout = speakers(None, 6);
        use Speaker::*;
        assert_eq!(layout, [Left, Right, Center, Lfe, LeftSurround, RightSurround]);
        let m = Downmix::new(&layout, 2).unwrap();
        let s = 1.0 / (1.0 + 2.0 * K);
        assert!(close(s, 0.414_213_57), "{s}");
        // L' = s·(L + 0.7071 C + 0.7071 Ls), R' = s·(R + 0.7071 C + 0.7071 Rs), no LFE.
        let expect = [
            [s, 0.0],
            [0.0, s],
            [K * s, K * s],
            [0.0, 0.0],
            [K * s, 0.0],
            [0.0, K * s],
        ];
        for (i, e) in expect.iter().enumerate() {
            assert!(
                close(m.weight(i, 0), e[0]) && close(m.weight(i, 1), e[1]),
                "channel {i}"
            );
        }
        // Every channel at full scale and in phase reaches exactly full scale, never over.
        let mut out = Vec::new();
        m.mix(&[1.0; 12], &mut out);
        assert_eq!(out.len(), 4);
        assert!(out.iter().all(|v| close(*v, 1.0)), "{out:?}");
        // One frame of distinct values.
        m.mix(&[0.1, 0.2, 0.3, 0.9, 0.4, 0.5], &mut out);
        assert!(close(out[0], s * (0.1 + K * 0.3 + K * 0.4)), "{out:?}");
        assert!(close(out[1], s * (0.2 + K * 0.3 + K * 0.5)), "{out:?}");
    }

    #[test]
    fn a_channel_mask_names_the_channels_in_bit_order() {
        use Speaker::*;
        // 5.1 with side surrounds: FL FR FC LFE SL SR (bits 0 1 2 3 9 10).
        let mask = 0b110_0000_1111u64;
        assert_eq!(
            speakers(Some(mask), 6),
            [Left, Right, Center, Lfe, LeftSurround, RightSurround]
        );
        // 7.1: rear and side pairs both feed the surrounds.
        let mask = 0b110_0011_1111u64;
        assert_eq!(
            speakers(Some(mask), 8),
            [
                Left,
                Right,
                Center,
                Lfe,
                LeftSurround,
                RightSurround,
                LeftSurround,
                RightSurround
            ]
        );
        // A mask that disagrees with the count is ignored.
        assert_eq!(speakers(Some(0b111), 6).len(), 6);
        // 7.1 mixes with the largest row 1 + K + 2K.
        let m = Downmix::new(&speakers(Some(mask), 8), 2).unwrap();
        assert!(close(m.weight(0, 0), 1.0 / (1.0 + 3.0 * K)));
    }

    #[test]
    fn mono_takes_the_mean_of_the_stereo_mix_and_stereo_is_left_alone() {
        assert_eq!(Downmix::new(&speakers(None, 2), 2), None);
        assert_eq!(Downmix::new(&speakers(None, 1), 2), None);
        assert_eq!(Downmix::new(&speakers(None, 1), 1), None);
        let m = Downmix::new(&speakers(None, 2), 1).unwrap();
        let mut out = Vec::new();
        m.mix(&[1.0, 0.5, -1.0, -1.0], &mut out);
        assert_eq!(out, vec![0.75, -1.0]);
        let m = Downmix::new(&speakers(None, 6), 1).unwrap();
        assert_eq!(m.outputs(), 1);
        m.mix(&[1.0; 6], &mut out);
        assert!(close(out[0], 1.0), "{out:?}");
        // The centre reaches mono at K·s (its two halves of K·s/2).
        let s = 1.0 / (1.0 + 2.0 * K);
        assert!(close(m.weight(2, 0), K * s));
        assert!(close(m.weight(0, 0), s / 2.0));
    }
}
