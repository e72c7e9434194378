//! Audio probing for uploads: sniff the content (never the extension), open it with symphonia,
//! walk every packet of the audio track to get the exact playable duration, decode the first
//! packets to prove the codec really decodes, and check the structure for truncation:
//! a header that promises more frames than are present (Xing/Info, WAV `data` size, FLAC
//! STREAMINFO, MP4 tables), and for MPEG audio a frame walk that finds a last frame cut short.
//!
//! Only packet headers are read for most of the file, so probing costs about as much as reading
//! it once (see `docs/benchmarks.md`, "Server: media probe").

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, Track, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioInfo {
    /// Container short name: `mp3`, `wav`, `ogg`, `flac`, `mp4`, ...
    pub container: String,
    /// Codec short name: `mp3`, `pcm_s16le`, `vorbis`, `flac`, `aac`, ...
    pub codec: String,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Channel count.
    pub channels: u16,
    /// Playable duration (encoder delay and padding excluded), milliseconds.
    pub duration_ms: i64,
    /// Playable frames (samples per channel).
    pub frames: u64,
}

/// Why a file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// Zero bytes.
    #[error("the file is empty")]
    Empty,
    /// Not a recognised audio container.
    #[error("not an audio file: {0}")]
    NotAudio(String),
    /// An audio container whose codec cannot be decoded.
    #[error("unsupported codec: {0}")]
    UnsupportedCodec(String),
    /// Truncated or damaged.
    #[error("truncated or corrupt audio: {0}")]
    Corrupt(String),
    /// A header value outside what the library accepts (`field` is `sample_rate` or
    /// `channels`).
    #[error("`{field}` {message}")]
    OutOfRange {
        /// The field named in the answer.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// Reading the file failed.
    #[error("i/o: {0}")]
    Io(String),
}

/// Sample rates the library accepts, Hz (anything outside is a damaged or hostile header).
pub const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 8_000..=192_000;
/// Channel counts the library accepts.
pub const CHANNELS: std::ops::RangeInclusive<u16> = 1..=8;

/// 422 unless the rate and channel count are in [`SAMPLE_RATES`] and [`CHANNELS`] (a missing
/// value, 0, is left to the decoder's own check).
fn check_format(rate: u32, channels: u16) -> Result<(), ProbeError> {
    if rate != 0 && !SAMPLE_RATES.contains(&rate) {
        return Err(ProbeError::OutOfRange {
            field: "sample_rate",
            message: format!(
                "{rate} Hz is outside {}–{} Hz",
                SAMPLE_RATES.start(),
                SAMPLE_RATES.end()
            ),
        });
    }
    if channels != 0 && !CHANNELS.contains(&channels) {
        return Err(ProbeError::OutOfRange {
            field: "channels",
            message: format!("{channels} is outside {}–{}", CHANNELS.start(), CHANNELS.end()),
        });
    }
    Ok(())
}

/// Packets decoded at the start of the stream to prove the codec works.
const DECODE_PACKETS: usize = 48;

/// A container recognised by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sniffed {
    Wav,
    Mpeg,
    Ogg,
    Flac,
    Mp4,
    Other,
}

fn sniff(head: &[u8]) -> Sniffed {
    if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WAVE" {
        Sniffed::Wav
    } else if head.starts_with(b"OggS") {
        Sniffed::Ogg
    } else if head.starts_with(b"fLaC") {
        Sniffed::Flac
    } else if head.len() >= 8 && &head[4..8] == b"ftyp" {
        Sniffed::Mp4
    } else if head.starts_with(b"ID3") || (head.len() >= 4 && mpeg_header(&head[0..4]).is_some()) {
        Sniffed::Mpeg
    } else {
        Sniffed::Other
    }
}

/// An audio source opened with symphonia as the devices decode it: its format reader, the default
/// audio track and its parameters, the codec's short name and a decoder for it. Uploads
/// ([`probe_file`]), speech and loudness decoding (`services::speech::decode`) and a relay's
/// save-time check (`services::relay`) open audio through it.
pub struct Opened {
    /// The format reader, positioned at the first packet.
    pub format: Box<dyn FormatReader>,
    /// The default audio track.
    pub track: Track,
    /// The track's audio codec parameters.
    pub params: AudioCodecParameters,
    /// The codec's short name (`mp3`, `vorbis`, …).
    pub codec: String,
    /// A decoder for the track.
    pub decoder: Box<dyn AudioDecoder>,
}

/// Why a source does not open as audio; each caller says it in its own words.
pub enum OpenError {
    /// No format reader recognises it.
    Probe(SymError),
    /// The format has no audio track.
    NoTrack {
        /// The format's short name.
        container: String,
    },
    /// The audio track carries no audio codec parameters.
    NoParams {
        /// The format's short name.
        container: String,
    },
    /// No decoder is registered for the codec.
    NoDecoder {
        /// The format's short name.
        container: String,
        /// The codec's id, as symphonia prints it.
        codec: String,
    },
    /// The codec's decoder refuses the track's parameters.
    Decoder {
        /// The codec's short name.
        codec: String,
        /// What the decoder said.
        error: SymError,
    },
}

/// Opens `source` ([`Opened`]): probe with no hint, the default audio track, its decoder.
pub fn open_audio(source: Box<dyn MediaSource>) -> Result<Opened, OpenError> {
    let mss = MediaSourceStream::new(source, Default::default());
    let format = symphonia::default::get_probe()
        .probe(
            &Hint::new(),
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(OpenError::Probe)?;
    let container = format.format_info().short_name.to_string();
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| OpenError::NoTrack {
            container: container.clone(),
        })?
        .clone();
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| OpenError::NoParams {
            container: container.clone(),
        })?
        .clone();
    let codecs = symphonia::default::get_codecs();
    let codec = codecs
        .get_audio_decoder(params.codec)
        .map(|r| r.codec.info.short_name.to_string())
        .ok_or_else(|| OpenError::NoDecoder {
            container,
            codec: format!("{:?}", params.codec),
        })?;
    let decoder = codecs
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|error| OpenError::Decoder {
            codec: codec.clone(),
            error,
        })?;
    Ok(Opened {
        format,
        track,
        params,
        codec,
        decoder,
    })
}

/// Probe an audio file completely.
pub fn probe_file(path: &Path) -> Result<AudioInfo, ProbeError> {
    let mut file = File::open(path).map_err(|e| ProbeError::Io(e.to_string()))?;
    let len = file.metadata().map_err(|e| ProbeError::Io(e.to_string()))?.len();
    if len == 0 {
        return Err(ProbeError::Empty);
    }
    let mut head = [0u8; 16];
    let n = read_up_to(&mut file, &mut head).map_err(|e| ProbeError::Io(e.to_string()))?;
    let sniffed = sniff(&head[..n]);
    if sniffed == Sniffed::Other {
        return Err(ProbeError::NotAudio(describe_magic(&head[..n])));
    }
    file.seek(SeekFrom::Start(0))
        .map_err(|e| ProbeError::Io(e.to_string()))?;
    let Opened {
        mut format,
        track,
        params,
        codec,
        mut decoder,
    } = open_audio(Box::new(file)).map_err(|e| match e {
        OpenError::Probe(SymError::Unsupported(what)) => {
            ProbeError::UnsupportedCodec(format!("{sniffed:?} container: {what}"))
        }
        OpenError::Probe(SymError::IoError(e)) => {
            ProbeError::Corrupt(format!("{sniffed:?} container ends early: {e}"))
        }
        OpenError::Probe(other) => ProbeError::Corrupt(format!("{sniffed:?} container: {other}")),
        OpenError::NoTrack { container } => {
            ProbeError::NotAudio(format!("{container} file without an audio track"))
        }
        OpenError::NoParams { container } => {
            ProbeError::UnsupportedCodec(format!("{container}: no audio codec parameters"))
        }
        OpenError::NoDecoder { container, codec } => {
            ProbeError::UnsupportedCodec(format!("{container}: codec {codec} has no decoder"))
        }
        OpenError::Decoder { codec, error } => ProbeError::UnsupportedCodec(format!("{codec}: {error}")),
    })?;
    let container = format.format_info().short_name.to_string();

    let mut frames: u64 = 0;
    let mut untrimmed: u64 = 0;
    let mut packets: usize = 0;
    let mut decoded_rate = params.sample_rate.unwrap_or(0);
    let mut decoded_channels = params.channels.as_ref().map(|c| c.count() as u16).unwrap_or(0);
    // The header's claims are checked before any packet is read or decoded.
    check_format(decoded_rate, decoded_channels)?;
    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(ProbeError::Corrupt(format!(
                    "stream ends in the middle of a packet after {packets} packets"
                )));
            }
            Err(e) => return Err(ProbeError::Corrupt(format!("after {packets} packets: {e}"))),
        };
        if packet.track_id != track.id {
            continue;
        }
        let dur = packet.dur.get();
        let trim = packet.trim_start.get() + packet.trim_end.get();
        frames += dur.saturating_sub(trim);
        untrimmed += dur;
        if packets < DECODE_PACKETS {
            match decoder.decode(&packet) {
                Ok(buf) => {
                    if buf.frames() > 0 {
                        decoded_rate = buf.spec().rate();
                        decoded_channels = buf.spec().channels().count() as u16;
                    }
                }
                Err(SymError::DecodeError(e)) => {
                    return Err(ProbeError::Corrupt(format!(
                        "packet {packets} does not decode: {e}"
                    )));
                }
                Err(SymError::Unsupported(e)) => {
                    return Err(ProbeError::UnsupportedCodec(format!("{codec}: {e}")));
                }
                Err(e) => return Err(ProbeError::Corrupt(format!("packet {packets}: {e}"))),
            }
        }
        packets += 1;
    }
    tracing::debug!(frames, untrimmed, delay = ?track.delay, padding = ?track.padding, num_frames = ?track.num_frames, "probe counts");
    if packets == 0 || frames == 0 {
        return Err(ProbeError::Corrupt(format!(
            "{container} file without any audio frames"
        )));
    }
    if let Some(promised) = track.num_frames {
        // The container promised this many playable frames; fewer means the file was cut.
        let slack = params.max_frames_per_packet.unwrap_or(4608).max(4608);
        if frames + slack < promised {
            return Err(ProbeError::Corrupt(format!(
                "the header promises {promised} frames but only {frames} are present"
            )));
        }
    }
    if sniffed == Sniffed::Mpeg {
        check_mpeg_tail(path)?;
    }
    check_format(decoded_rate, decoded_channels)?;
    if decoded_rate == 0 || decoded_channels == 0 {
        return Err(ProbeError::Corrupt(format!(
            "{codec}: no sample rate or channel layout"
        )));
    }
    // Duration follows ffprobe's convention: every coded frame counts (MP3 and Vorbis encoder
    // delay and padding included, a few tens of ms), except MP4, whose movie header (edit list
    // applied by the muxer) gives the presentation duration without the AAC priming.
    let mut duration_ms =
        ((untrimmed as u128 * 1000 + decoded_rate as u128 / 2) / decoded_rate as u128) as i64;
    if sniffed == Sniffed::Mp4
        && let Some(ms) = mp4_movie_duration_ms(path)
        && ms > 0
        && ms <= duration_ms + 100
    {
        duration_ms = ms;
    }
    Ok(AudioInfo {
        container,
        codec,
        sample_rate: decoded_rate,
        channels: decoded_channels,
        duration_ms,
        frames,
    })
}

/// The movie duration from an MP4 file's `moov/mvhd` box, in ms.
fn mp4_movie_duration_ms(path: &Path) -> Option<i64> {
    let mut f = File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let mut pos = 0u64;
    let mut hdr = [0u8; 16];
    // Top level: find `moov`.
    let (moov_start, moov_end) = loop {
        if pos + 8 > len {
            return None;
        }
        f.seek(SeekFrom::Start(pos)).ok()?;
        f.read_exact(&mut hdr[..8]).ok()?;
        let mut size = u32::from_be_bytes(hdr[0..4].try_into().ok()?) as u64;
        let mut body = pos + 8;
        if size == 1 {
            f.read_exact(&mut hdr[8..16]).ok()?;
            size = u64::from_be_bytes(hdr[8..16].try_into().ok()?);
            body += 8;
        } else if size == 0 {
            size = len - pos;
        }
        if size < 8 {
            return None;
        }
        if &hdr[4..8] == b"moov" {
            break (body, (pos + size).min(len));
        }
        pos += size;
    };
    pos = moov_start;
    while pos + 8 <= moov_end {
        f.seek(SeekFrom::Start(pos)).ok()?;
        f.read_exact(&mut hdr[..8]).ok()?;
        let size = u32::from_be_bytes(hdr[0..4].try_into().ok()?) as u64;
        if size < 8 {
            return None;
        }
        if &hdr[4..8] == b"mvhd" {
            let mut b = [0u8; 32];
            f.read_exact(&mut b).ok()?;
            let (timescale, duration) = if b[0] == 1 {
                (
                    u32::from_be_bytes(b[20..24].try_into().ok()?) as u64,
                    u64::from_be_bytes(b[24..32].try_into().ok()?),
                )
            } else {
                (
                    u32::from_be_bytes(b[12..16].try_into().ok()?) as u64,
                    u32::from_be_bytes(b[16..20].try_into().ok()?) as u64,
                )
            };
            if timescale == 0 {
                return None;
            }
            return Some(((duration as u128 * 1000 + timescale as u128 / 2) / timescale as u128) as i64);
        }
        pos += size;
    }
    None
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn describe_magic(head: &[u8]) -> String {
    if head.starts_with(b"\x89PNG") {
        "the content is a PNG image".into()
    } else if head.starts_with(b"\xFF\xD8\xFF") {
        "the content is a JPEG image".into()
    } else if head.starts_with(b"%PDF") {
        "the content is a PDF document".into()
    } else if head.starts_with(b"PK\x03\x04") {
        "the content is a ZIP archive".into()
    } else if head
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
        || std::str::from_utf8(head).is_ok()
    {
        "the content is text".into()
    } else {
        "no known audio signature (WAV, MP3, OGG, FLAC, M4A)".into()
    }
}

/// Parse an MPEG audio frame header; returns the frame length in bytes.
fn mpeg_header(h: &[u8]) -> Option<usize> {
    if h.len() < 4 || h[0] != 0xFF || h[1] & 0xE0 != 0xE0 {
        return None;
    }
    let version = (h[1] >> 3) & 0x3; // 0: 2.5, 2: 2, 3: 1
    let layer = (h[1] >> 1) & 0x3; // 1: III, 2: II, 3: I
    let bitrate_idx = (h[2] >> 4) as usize;
    let rate_idx = ((h[2] >> 2) & 0x3) as usize;
    let padding = ((h[2] >> 1) & 0x1) as usize;
    if version == 1 || layer == 0 || bitrate_idx == 0 || bitrate_idx == 15 || rate_idx == 3 {
        return None;
    }
    const RATES: [[u32; 3]; 4] = [
        [11025, 12000, 8000],
        [0, 0, 0],
        [22050, 24000, 16000],
        [44100, 48000, 32000],
    ];
    const V1_L1: [u32; 15] = [
        0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
    ];
    const V1_L2: [u32; 15] = [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384];
    const V1_L3: [u32; 15] = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
    const V2_L1: [u32; 15] = [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256];
    const V2_L23: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    let sample_rate = RATES[version as usize][rate_idx] as usize;
    let v1 = version == 3;
    let kbps = match (v1, layer) {
        (true, 3) => V1_L1[bitrate_idx],
        (true, 2) => V1_L2[bitrate_idx],
        (true, _) => V1_L3[bitrate_idx],
        (false, 3) => V2_L1[bitrate_idx],
        (false, _) => V2_L23[bitrate_idx],
    } as usize;
    let bps = kbps * 1000;
    Some(match layer {
        3 => (12 * bps / sample_rate + padding) * 4,
        2 => 144 * bps / sample_rate + padding,
        _ => {
            if v1 {
                144 * bps / sample_rate + padding
            } else {
                72 * bps / sample_rate + padding
            }
        }
    })
}

/// Walk the MPEG frames of a file (after any ID3v2 tag): the last frame must end within the
/// file; what follows the frames may only be tags (ID3v1, APE, Lyrics3) or padding.
fn check_mpeg_tail(path: &Path) -> Result<(), ProbeError> {
    use std::io::BufReader;
    let io = |e: std::io::Error| ProbeError::Io(e.to_string());
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut r = BufReader::with_capacity(64 * 1024, file);
    let mut pos: u64 = 0;
    let mut head = [0u8; 10];
    // Skip ID3v2 tags (there may be several).
    loop {
        if pos + 10 > len {
            break;
        }
        r.seek(SeekFrom::Start(pos)).map_err(io)?;
        r.read_exact(&mut head).map_err(io)?;
        if &head[0..3] != b"ID3" {
            break;
        }
        let size = ((head[6] as u64 & 0x7F) << 21)
            | ((head[7] as u64 & 0x7F) << 14)
            | ((head[8] as u64 & 0x7F) << 7)
            | (head[9] as u64 & 0x7F);
        let footer = if head[5] & 0x10 != 0 { 10 } else { 0 };
        pos += 10 + size + footer;
    }
    // Find the first frame (allow some padding after the tag).
    let mut frames = 0u64;
    let mut hdr = [0u8; 4];
    let scan_limit = pos + 64 * 1024;
    r.seek(SeekFrom::Start(pos)).map_err(io)?;
    while pos + 4 <= len && pos < scan_limit {
        r.read_exact(&mut hdr).map_err(io)?;
        if let Some(flen) = mpeg_header(&hdr) {
            // Confirm with the next header unless this frame reaches the end.
            let next = pos + flen as u64;
            if next + 4 <= len {
                let mut h2 = [0u8; 4];
                r.seek(SeekFrom::Start(next)).map_err(io)?;
                r.read_exact(&mut h2).map_err(io)?;
                if mpeg_header(&h2).is_some() && (h2[1] & 0xFE) == (hdr[1] & 0xFE) {
                    break;
                }
            } else {
                break;
            }
        }
        pos += 1;
        r.seek(SeekFrom::Start(pos)).map_err(io)?;
    }
    // Walk frame by frame (relative seeks keep the read buffer).
    r.seek(SeekFrom::Start(pos)).map_err(io)?;
    loop {
        if pos + 4 > len {
            break;
        }
        r.read_exact(&mut hdr).map_err(io)?;
        let Some(flen) = mpeg_header(&hdr) else { break };
        if pos + flen as u64 > len {
            return Err(ProbeError::Corrupt(format!(
                "the last MPEG frame (#{frames}, at byte {pos}) needs {flen} bytes but the file ends after {}",
                len - pos
            )));
        }
        r.seek_relative(flen as i64 - 4).map_err(io)?;
        pos += flen as u64;
        frames += 1;
    }
    // What remains must be tags or zero padding.
    let rest = len - pos;
    if rest == 0 {
        return Ok(());
    }
    let mut tail = vec![0u8; rest.min(1 << 20) as usize];
    r.seek(SeekFrom::Start(pos)).map_err(io)?;
    r.read_exact(&mut tail).map_err(io)?;
    let is_tag = tail.starts_with(b"TAG")
        || tail.starts_with(b"APETAGEX")
        || tail.starts_with(b"LYRICS")
        || tail.starts_with(b"ID3");
    let tail_has_tag_at_end =
        rest >= 128 && tail.len() as u64 == rest && &tail[tail.len() - 128..tail.len() - 125] == b"TAG";
    if is_tag || tail.iter().all(|&b| b == 0) || (tail_has_tag_at_end && rest <= 128 + 4096) {
        return Ok(());
    }
    if tail.len() >= 2 && tail[0] == 0xFF && tail[1] & 0xE0 == 0xE0 {
        return Err(ProbeError::Corrupt(format!(
            "an MPEG frame at byte {pos} is damaged or cut short"
        )));
    }
    if rest > 4096 {
        return Err(ProbeError::Corrupt(format!(
            "{rest} bytes of unknown data after the last MPEG frame at byte {pos}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpeg_frame_lengths_match_the_standard_formula() {
        // MPEG-1 layer III, 128 kb/s, 44.1 kHz, no padding: 417 bytes.
        assert_eq!(mpeg_header(&[0xFF, 0xFB, 0x90, 0x00]), Some(417));
        // MPEG-2 layer III, 64 kb/s, 22.05 kHz, padding: 72*64000/22050 + 1 = 209.
        assert_eq!(mpeg_header(&[0xFF, 0xF3, 0x82, 0x00]), Some(209));
        assert_eq!(mpeg_header(b"text"), None);
    }

    #[test]
    fn text_and_images_are_not_audio() {
        assert_eq!(sniff(b"hello world, this is text"), Sniffed::Other);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Sniffed::Other);
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt "), Sniffed::Wav);
    }
}
