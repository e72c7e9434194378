//! Decode audio bytes of any format symphonia reads (WAV, MP3, Ogg Vorbis, FLAC, AAC …) into
//! interleaved 16-bit PCM for loudness normalisation: a cloud service's MP3 or an upload. WAV
//! from espeak-ng (whose streaming header symphonia refuses) is read by
//! `loudness::Pcm::parse_wav` first. [`decode_for_devices`] also mixes a layout of more than two
//! channels down to stereo, packet by packet (`nguon_protocol::downmix`: ITU-R BS.775), so a
//! 5.1 upload is held in memory at its stereo size.

use std::io::Cursor;

use symphonia::core::errors::Error as SymError;

use nguon_protocol::downmix::{Downmix, MAX_OUTPUT_CHANNELS, speakers};
use symphonia::core::audio::Channels;

use crate::domain::speech::loudness::Pcm;
use crate::error::{Error, Result};
use crate::services::media::probe::{OpenError, Opened, open_audio};

/// The longest audio decoded, in samples (about three hours of 44.1 kHz stereo).
const MAX_SAMPLES: usize = 1_000_000_000;

/// Decode `bytes` to 16-bit PCM.
pub fn decode(bytes: &[u8]) -> Result<Pcm> {
    decode_inner(bytes, false).map(|(p, _)| p)
}

/// Decode `bytes` to 16-bit PCM of at most two channels, as devices play it: a layout of more is
/// mixed down to stereo (BS.775, scaled so it cannot clip). Returns the PCM and the channel count
/// of the source.
pub fn decode_for_devices(bytes: &[u8]) -> Result<(Pcm, u16)> {
    decode_inner(bytes, true)
}

/// `mix` applied to interleaved 16-bit samples.
fn mix_i16(mix: &Downmix, samples: &[i16]) -> Vec<i16> {
    let f: Vec<f32> = samples.iter().map(|&s| s as f32 / 32768.0).collect();
    let mut out = Vec::new();
    mix.mix(&f, &mut out);
    out.iter()
        .map(|v| (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

fn decode_inner(bytes: &[u8], downmix: bool) -> Result<(Pcm, u16)> {
    if bytes.starts_with(b"RIFF")
        && let Ok(mut p) = Pcm::parse_wav(bytes)
    {
        let source = p.channels;
        if downmix && let Some(m) = Downmix::new(&speakers(None, source), MAX_OUTPUT_CHANNELS) {
            p.samples = mix_i16(&m, &p.samples);
            p.channels = m.outputs();
        }
        return Ok((p, source));
    }
    let bad = |m: String| Error::bad("undecodable_audio", m);
    let Opened {
        mut format,
        track,
        params,
        mut decoder,
        ..
    } = open_audio(Box::new(Cursor::new(bytes.to_vec()))).map_err(|e| match e {
        OpenError::Probe(e) => bad(format!("not audio: {e}")),
        OpenError::NoTrack { .. } => bad("no audio track".into()),
        OpenError::NoParams { .. } => bad("no audio codec parameters".into()),
        OpenError::NoDecoder { codec, .. } => bad(format!("no decoder: {codec}")),
        OpenError::Decoder { error, .. } => bad(format!("no decoder: {error}")),
    })?;
    let mut samples: Vec<i16> = Vec::new();
    let mut chunk: Vec<i16> = Vec::new();
    let (mut rate, mut channels) = (params.sample_rate.unwrap_or(0), 0u16);
    let mut source = 0u16;
    let mut mix: Option<(Channels, Option<Downmix>)> = None;
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
                let layout = buf.spec().channels();
                source = layout.count() as u16;
                channels = source;
                chunk.clear();
                buf.copy_to_vec_interleaved(&mut chunk);
                if downmix && source > MAX_OUTPUT_CHANNELS {
                    if mix.as_ref().is_none_or(|(l, _)| l != layout) {
                        let mask = match layout {
                            Channels::Positioned(p) => Some(p.bits()),
                            _ => None,
                        };
                        mix = Some((
                            layout.clone(),
                            Downmix::new(&speakers(mask, source), MAX_OUTPUT_CHANNELS),
                        ));
                    }
                    if let Some((_, Some(m))) = &mix {
                        chunk = mix_i16(m, &chunk);
                        channels = m.outputs();
                    }
                }
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
    Ok((
        Pcm {
            sample_rate: rate,
            channels,
            samples,
        },
        source,
    ))
}
