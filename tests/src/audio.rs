//! Test audio and the sample comparator: spoken clips made with espeak-ng (Vietnamese voice),
//! sox and lame; an independent symphonia decoder; and [`compare`], which checks that what an
//! agent's WAV sink wrote is the decoded source times the item's gain.

use std::path::{Path, PathBuf};
use std::process::Command;

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run {:?}: {e}", cmd.get_program()))?;
    anyhow::ensure!(
        out.status.success(),
        "{:?} failed: {}",
        cmd.get_program(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A spoken clip: espeak-ng (voice `vi`) → WAV, padded/trimmed by sox to `seconds`, encoded to
/// MP3 by lame when `mp3`. Returns the file path inside `dir`.
pub fn spoken_clip(dir: &Path, name: &str, text: &str, seconds: f32, mp3: bool) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let raw = dir.join(format!("{name}.raw.wav"));
    run(Command::new("espeak-ng")
        .args(["-v", "vi", "-s", "160", "-w"])
        .arg(&raw)
        .arg(text))?;
    let wav = dir.join(format!("{name}.wav"));
    run(Command::new("sox")
        .arg(&raw)
        .args(["-r", "22050", "-c", "1", "-b", "16"])
        .arg(&wav)
        .args([
            "pad",
            "0",
            &format!("{seconds}"),
            "trim",
            "0",
            &format!("{seconds}"),
        ]))?;
    let _ = std::fs::remove_file(&raw);
    if !mp3 {
        return Ok(wav);
    }
    let out = dir.join(format!("{name}.mp3"));
    run(Command::new("lame")
        .args(["--quiet", "-b", "64"])
        .arg(&wav)
        .arg(&out))?;
    Ok(out)
}

/// A tone clip (sox synth), for the benchmarks: short and identical everywhere.
pub fn tone_clip(dir: &Path, name: &str, seconds: f32) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let out = dir.join(format!("{name}.wav"));
    run(Command::new("sox")
        .args(["-n", "-r", "16000", "-c", "1", "-b", "16"])
        .arg(&out)
        .args(["synth", &format!("{seconds}"), "sine", "440", "vol", "0.5"]))?;
    Ok(out)
}

/// A 16-bit 5.1 WAV (sox: WAVE_FORMAT_EXTENSIBLE, mask FL FR FC LFE BL BR) at `rate` with one
/// sine per channel, of `freqs` Hz in that order, each at `amplitude` of full scale.
pub fn surround_clip(
    dir: &Path,
    name: &str,
    seconds: f32,
    rate: u32,
    freqs: [u32; 6],
    amplitude: f32,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let out = dir.join(format!("{name}.wav"));
    let mut cmd = Command::new("sox");
    cmd.args(["-n", "-r", &rate.to_string(), "-c", "6", "-b", "16"])
        .arg(&out)
        .args(["synth", &format!("{seconds}")]);
    for f in freqs {
        cmd.args(["sine", &f.to_string()]);
    }
    run(cmd.args(["vol", &amplitude.to_string()]))?;
    Ok(out)
}

/// The amplitude of the sine of `freq` Hz in `channel` of `pcm` over `seconds` from `from`
/// seconds in ([`crate::tones::amplitude_at`]).
pub fn tone_amplitude(pcm: &Pcm, channel: u16, freq: f64, from: f64, seconds: f64) -> f64 {
    let ch = pcm.channels as usize;
    let start = (from * pcm.rate as f64) as usize;
    let n = (seconds * pcm.rate as f64) as usize;
    let one: Vec<f32> = (start..start + n)
        .map(|i| pcm.samples.get(i * ch + channel as usize).copied().unwrap_or(0.0))
        .collect();
    crate::tones::amplitude_at(&one, pcm.rate, freq)
}

/// A decoded file.
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm {
    /// Sample rate.
    pub rate: u32,
    /// Channels.
    pub channels: u16,
    /// Interleaved samples.
    pub samples: Vec<f32>,
}

/// Decode any format symphonia knows (probing the content) to interleaved f32.
pub fn decode(path: &Path) -> anyhow::Result<Pcm> {
    let file = std::fs::File::open(path)?;
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut format = symphonia::default::get_probe()
        .probe(
            &Hint::new(),
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| anyhow::anyhow!("{}: no audio track", path.display()))?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| anyhow::anyhow!("{}: no codec parameters", path.display()))?;
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut out = Pcm {
        rate: 0,
        channels: 0,
        samples: Vec::new(),
    };
    let mut chunk = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => anyhow::bail!("{}: {e}", path.display()),
        };
        if packet.track_id != track_id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(buf) => {
                if buf.frames() == 0 {
                    continue;
                }
                out.rate = buf.spec().rate();
                out.channels = buf.spec().channels().count() as u16;
                buf.copy_to_vec_interleaved(&mut chunk);
                out.samples.extend_from_slice(&chunk);
            }
            Err(SymError::DecodeError(_)) => continue,
            Err(e) => anyhow::bail!("{}: {e}", path.display()),
        }
    }
    Ok(out)
}

/// Read a WAV file as f32 (float or integer PCM).
pub fn read_wav(path: &Path) -> anyhow::Result<Pcm> {
    let mut r = hound::WavReader::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let spec = r.spec();
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => r.samples::<f32>().collect::<Result<_, _>>()?,
        hound::SampleFormat::Int => {
            let scale = (1i64 << (spec.bits_per_sample - 1)) as f32;
            r.samples::<i32>()
                .map(|s| s.map(|v| v as f32 / scale))
                .collect::<Result<_, _>>()?
        }
    };
    Ok(Pcm {
        rate: spec.sample_rate,
        channels: spec.channels,
        samples,
    })
}

/// Check that `played` is `source` scaled by `gain`: same rate, channels and length, and every
/// sample within `tolerance`. The error says where the first difference is.
pub fn compare(source: &Pcm, played: &Pcm, gain: f32, tolerance: f32) -> Result<(), String> {
    if source.rate != played.rate || source.channels != played.channels {
        return Err(format!(
            "format differs: source {} Hz × {} ch, played {} Hz × {} ch",
            source.rate, source.channels, played.rate, played.channels
        ));
    }
    if source.samples.len() != played.samples.len() {
        return Err(format!(
            "length differs: source {} samples, played {}",
            source.samples.len(),
            played.samples.len()
        ));
    }
    let mut worst = (0usize, 0f32);
    for (i, (a, b)) in source.samples.iter().zip(&played.samples).enumerate() {
        let d = (a * gain - b).abs();
        if d > worst.1 {
            worst = (i, d);
        }
    }
    if worst.1 > tolerance {
        return Err(format!(
            "sample {} differs by {} (source×gain {}, played {})",
            worst.0,
            worst.1,
            source.samples[worst.0] * gain,
            played.samples[worst.0]
        ));
    }
    Ok(())
}

/// Lowercase hex sha256 of a file.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    use sha2::Digest;
    Ok(hex::encode(sha2::Sha256::digest(std::fs::read(path)?)))
}
