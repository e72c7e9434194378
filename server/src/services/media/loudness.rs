//! Loudness of uploads (issue 18): an uploaded file is decoded (`services::speech::decode`,
//! symphonia), measured (EBU R128 integrated loudness and true peak, `ebur128`) and, unless it
//! is silent, already at the target or too long, a normalised rendition is made with the same
//! rules as speech (`domain::speech::loudness::normalize`: −16 LUFS, −1 dBTP): a 16-bit PCM WAV at
//! the original's sample rate, stored beside the original under its own content address. The
//! original's bytes are never altered; devices are sent the rendition
//! (`domain::media::MediaInfo::delivered`).
//!
//! Devices play at most two channels (issue 16): a layout of more (5.1, 7.1) is mixed down to
//! stereo while it is decoded (`nguon_protocol::downmix`, ITU-R BS.775) and the one rendition is
//! that mix, loudness-normalised; such a file always gets a rendition, even when silent or at the
//! target already.

use std::path::Path;

use sha2::{Digest, Sha256};

use nguon_protocol::downmix::MAX_OUTPUT_CHANNELS;

use crate::domain::media::{LoudnessRendition, MediaLoudness};
use crate::domain::speech::loudness::{self, PEAK_CEILING_DBFS, TARGET_LUFS};
use crate::error::{Error, Result};

/// The longest audio normalised, in samples (all channels, after a downmix to stereo): about 7.5
/// minutes of 44.1 kHz stereo, 15 of mono. Longer files are measured from their probe only and
/// played as uploaded (a device mixes more than two channels down itself).
pub const MAX_RENDER_SAMPLES: u64 = 40_000_000;
/// How close to the target (LU) and under the ceiling a file may be to be played as it is.
pub const CLOSE_ENOUGH_LU: f64 = 0.5;

/// The measured loudness of an upload and its normalised rendition's bytes (`None`: the
/// original is played as it is, `loudness.note` says why).
#[derive(Debug)]
pub struct Rendered {
    /// Figures of the original and of the rendition.
    pub loudness: MediaLoudness,
    /// The rendition (WAV) and its sha256.
    pub wav: Option<(Vec<u8>, String)>,
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// Measure and normalise the audio file at `path` (named `filename`, probed as `format`, of
/// `frames` frames of `channels` channels). A file symphonia cannot decode is a 422
/// `undecodable_audio` naming the file and its format.
pub fn render(path: &Path, filename: &str, format: &str, frames: u64, channels: u16) -> Result<Rendered> {
    let samples = frames.saturating_mul(channels.min(MAX_OUTPUT_CHANNELS) as u64);
    let mut out = Rendered {
        loudness: MediaLoudness {
            loudness_lufs: None,
            true_peak_dbtp: None,
            target_lufs: TARGET_LUFS,
            rendition: None,
            note: None,
        },
        wav: None,
    };
    if samples > MAX_RENDER_SAMPLES {
        out.loudness.note = Some(format!(
            "longer than {MAX_RENDER_SAMPLES} samples: not normalised, played as uploaded"
        ));
        return Ok(out);
    }
    let bytes = std::fs::read(path)?;
    let (mut pcm, source) = crate::services::speech::decode::decode_for_devices(&bytes).map_err(|e| {
        Error::unprocessable(
            "undecodable_audio",
            format!("`{filename}` ({format}) cannot be decoded to measure its loudness: {e}"),
        )
    })?;
    drop(bytes);
    let downmixed_from = (source != pcm.channels).then_some(source as i64);
    let before = loudness::measure_pcm(&pcm)?;
    let lufs = finite(before.integrated_lufs);
    let tp = finite(loudness::dbfs(before.true_peak));
    out.loudness.loudness_lufs = lufs;
    out.loudness.true_peak_dbtp = tp;
    let as_it_is = match lufs {
        None => Some("silent (under the −70 LUFS gate)"),
        Some(lufs)
            if (lufs - TARGET_LUFS).abs() <= CLOSE_ENOUGH_LU
                && tp.is_some_and(|t| t <= PEAK_CEILING_DBFS) =>
        {
            Some("already at the target")
        }
        Some(_) => None,
    };
    let report = match (as_it_is, downmixed_from) {
        (Some(why), None) => {
            out.loudness.note = Some(format!("{why}: played as uploaded"));
            return Ok(out);
        }
        (Some(why), Some(n)) => {
            out.loudness.note = Some(format!("{why}: downmixed from {n} channels, gain 0 dB"));
            None
        }
        (None, _) => Some(loudness::normalize(&mut pcm, TARGET_LUFS, PEAK_CEILING_DBFS)?),
    };
    let wav = pcm.to_wav();
    let sha = hex::encode(Sha256::digest(&wav));
    out.loudness.rendition = Some(LoudnessRendition {
        sha256: sha.clone(),
        size: wav.len() as i64,
        duration_ms: pcm.duration_ms(),
        loudness_lufs: report.map_or(before.integrated_lufs, |r| r.loudness_after_lufs),
        true_peak_dbtp: report.map_or(loudness::dbfs(before.true_peak), |r| r.true_peak_after_dbtp),
        gain_db: report.map_or(0.0, |r| r.gain_db),
        downmixed_from,
    });
    out.wav = Some((wav, sha));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::speech::loudness::Pcm;

    fn tone(amplitude: f64, secs: u32) -> Pcm {
        let rate = 16_000u32;
        Pcm {
            sample_rate: rate,
            channels: 1,
            samples: (0..rate * secs)
                .map(|i| {
                    ((i as f64 * 440.0 * std::f64::consts::TAU / rate as f64).sin() * amplitude * 32767.0)
                        as i16
                })
                .collect(),
        }
    }

    #[test]
    fn a_quiet_file_gets_a_rendition_at_the_target_and_stays_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("quiet.wav");
        let wav = tone(0.02, 3).to_wav();
        std::fs::write(&path, &wav).unwrap();
        let r = render(&path, "quiet.wav", "wav/pcm_s16le", 48_000, 1).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), wav, "the original is not altered");
        let before = r.loudness.loudness_lufs.unwrap();
        assert!(before < -30.0, "{r:?}");
        let rendition = r.loudness.rendition.as_ref().unwrap();
        assert!((rendition.loudness_lufs - TARGET_LUFS).abs() <= 1.0, "{r:?}");
        assert!(rendition.true_peak_dbtp <= PEAK_CEILING_DBFS + 1e-6, "{r:?}");
        let (bytes, sha) = r.wav.as_ref().unwrap();
        assert_eq!(*sha, hex::encode(Sha256::digest(bytes)));
        assert_eq!(rendition.sha256, *sha);
        let again = loudness::measure_pcm(&Pcm::parse_wav(bytes).unwrap()).unwrap();
        assert!((again.integrated_lufs - rendition.loudness_lufs).abs() < 0.01);
    }

    #[test]
    fn silence_and_files_at_the_target_or_too_long_are_played_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silence.wav");
        std::fs::write(&path, tone(0.0, 2).to_wav()).unwrap();
        let r = render(&path, "silence.wav", "wav/pcm_s16le", 32_000, 1).unwrap();
        assert!(r.wav.is_none() && r.loudness.loudness_lufs.is_none(), "{r:?}");
        assert!(r.loudness.note.as_deref().unwrap().contains("silent"));
        let long = render(&path, "long.wav", "wav/pcm_s16le", MAX_RENDER_SAMPLES + 1, 1).unwrap();
        assert!(long.wav.is_none() && long.loudness.note.as_deref().unwrap().contains("longer"));
        // A rendition uploaded again is at the target already.
        let quiet = dir.path().join("q.wav");
        std::fs::write(&quiet, tone(0.02, 3).to_wav()).unwrap();
        let first = render(&quiet, "q.wav", "wav", 48_000, 1).unwrap();
        std::fs::write(&quiet, &first.wav.unwrap().0).unwrap();
        let second = render(&quiet, "q.wav", "wav", 48_000, 1).unwrap();
        assert!(second.wav.is_none(), "{second:?}");
        assert!(
            second
                .loudness
                .note
                .as_deref()
                .unwrap()
                .contains("already at the target")
        );
    }

    #[test]
    fn a_file_that_cannot_be_decoded_is_refused_naming_it_and_its_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.mp3");
        std::fs::write(&path, b"ID3\x03\0\0\0\0\0\0 not really an mp3 at all").unwrap();
        let e = render(&path, "bản tin.mp3", "mp3/mp3", 1000, 1).unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(
                e,
                Error::Unprocessable {
                    code: "undecodable_audio",
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            text.contains("`bản tin.mp3` (mp3/mp3) cannot be decoded"),
            "{text}"
        );
    }
}
