//! Decode audio bytes of any format symphonia reads (WAV, MP3, Ogg Vorbis, FLAC, AAC …) into
//! interleaved 16-bit PCM for loudness normalisation: a cloud service's MP3 or an upload. WAV
//! from espeak-ng (whose streaming header symphonia refuses) is read by
//! `loudness::Pcm::parse_wav` first.

use std::io::Cursor;

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use crate::domain::speech::loudness::Pcm;
use crate::error::{Error, Result};

/// The longest audio decoded, in samples (about three hours of 44.1 kHz stereo).
const MAX_SAMPLES: usize = 1_000_000_000;

/// Decode `bytes` to 16-bit PCM.
pub fn decode(bytes: &[u8]) -> Result<Pcm> {
    if bytes.starts_with(b"RIFF")
        && let Ok(p) = Pcm::parse_wav(bytes)
    {
        return Ok(p);
    }
    let bad = |m: String| Error::bad("undecodable_audio", m);
    let mss = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let mut format = symphonia::default::get_probe()
        .probe(
            &Hint::new(),
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| bad(format!("not audio: {e}")))?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| bad("no audio track".into()))?
        .clone();
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| bad("no audio codec parameters".into()))?
        .clone();
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| bad(format!("no decoder: {e}")))?;
    let mut samples: Vec<i16> = Vec::new();
    let mut chunk: Vec<i16> = Vec::new();
    let (mut rate, mut channels) = (params.sample_rate.unwrap_or(0), 0u16);
    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(bad(format!("reading: {e}"))),
        };
        if packet.track_id != track.id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(buf) => {
                if buf.frames() == 0 {
                    continue;
                }
                rate = buf.spec().rate();
                channels = buf.spec().channels().count() as u16;
                chunk.clear();
                buf.copy_to_vec_interleaved(&mut chunk);
                samples.extend_from_slice(&chunk);
                if samples.len() > MAX_SAMPLES {
                    return Err(bad("audio too long to normalise".into()));
                }
            }
            Err(SymError::DecodeError(_)) => continue,
            Err(e) => return Err(bad(format!("decoding: {e}"))),
        }
    }
    if samples.is_empty() || rate == 0 || channels == 0 {
        return Err(bad("no audio frames".into()));
    }
    Ok(Pcm {
        sample_rate: rate,
        channels,
        samples,
    })
}
