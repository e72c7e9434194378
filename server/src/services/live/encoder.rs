//! The live session's encoder: a thread that takes the microphone's 16-bit PCM (any of
//! `domain::live::RATES`), encodes it with LAME to constant-bitrate MP3 at
//! `domain::live::STREAM_RATE` / `STREAM_KBPS` mono (LAME resamples), cuts the output into whole
//! frames (`domain::live::Mp3Framer`) and hands each batch of frames to every listener (one
//! `tokio::sync::broadcast` channel: one encoder for N listeners) and to the recording file. A
//! thread and not a task: LAME's state is not `Send`, and encoding is CPU work.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use mp3lame_encoder::{Bitrate, Builder, FlushNoGap, Mode, MonoPcm, Quality};
use tokio::sync::broadcast;

use crate::domain::live::{Mp3Framer, STREAM_KBPS, STREAM_RATE};
use crate::error::{Error, Result};

/// What the WebSocket task sends the encoder thread.
pub enum Pcm {
    /// Samples, mono.
    Samples(Vec<i16>),
}

/// A running encoder: send it samples; dropping the sender ends the thread (it flushes first).
pub struct Running {
    /// Where the samples go.
    pub tx: std::sync::mpsc::SyncSender<Pcm>,
    /// The thread.
    pub thread: std::thread::JoinHandle<()>,
}

/// Start an encoder for input at `rate` Hz, writing frames to `out` and appending them to
/// `record`; `bytes` counts what was produced.
pub fn start(
    rate: u32,
    out: broadcast::Sender<Bytes>,
    record: Arc<std::sync::Mutex<std::fs::File>>,
    bytes: Arc<AtomicU64>,
) -> Result<Running> {
    let lame = move || -> std::result::Result<mp3lame_encoder::Encoder, String> {
        let mut b = Builder::new().ok_or("LAME could not allocate an encoder")?;
        b.set_num_channels(1).map_err(|e| e.to_string())?;
        b.set_sample_rate(rate).map_err(|e| e.to_string())?;
        b.set_output_sample_rate(std::num::NonZeroU32::new(STREAM_RATE))
            .map_err(|e| e.to_string())?;
        b.set_brate(bitrate()).map_err(|e| e.to_string())?;
        b.set_mode(Mode::Mono).map_err(|e| e.to_string())?;
        // Speech over loudspeakers: LAME's "good" quality costs a fraction of a core per session.
        b.set_quality(Quality::Good).map_err(|e| e.to_string())?;
        b.set_to_write_vbr_tag(false).map_err(|e| e.to_string())?;
        b.build().map_err(|e| e.to_string())
    };
    // Check the settings before answering the WebSocket; the thread builds its own encoder.
    lame().map_err(|e| Error::internal(format!("mp3 encoder: {e}")))?;
    // About 2 s of 20 ms microphone frames: a stuck encoder ends the session rather than buffering.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Pcm>(100);
    let thread = std::thread::Builder::new()
        .name("live-encoder".into())
        .spawn(move || {
            let Ok(mut enc) = lame() else { return };
            let mut framer = Mp3Framer::default();
            let mut buf: Vec<u8> = Vec::new();
            let mut emit = |encoded: &[u8]| {
                let frames = framer.push(encoded);
                if frames.is_empty() {
                    return;
                }
                bytes.fetch_add(frames.len() as u64, Ordering::Relaxed);
                if let Ok(mut f) = record.lock()
                    && let Err(e) = f.write_all(&frames)
                {
                    tracing::warn!(error = %e, "live recording: write failed");
                }
                // No listener is not an error: the frames are recorded all the same.
                let _ = out.send(Bytes::from(frames));
            };
            let mut fed = false;
            while let Ok(Pcm::Samples(s)) = rx.recv() {
                fed = true;
                buf.clear();
                buf.reserve(mp3lame_encoder::max_required_buffer_size(s.len()));
                match enc.encode_to_vec(MonoPcm(&s[..]), &mut buf) {
                    Ok(_) => emit(&buf),
                    Err(e) => {
                        tracing::warn!(error = %e, "live encoder: encode failed");
                        return;
                    }
                }
            }
            // LAME complains on stderr when flushing an encoder that was never fed.
            if !fed {
                return;
            }
            buf.clear();
            buf.reserve(7200);
            if enc.flush_to_vec::<FlushNoGap>(&mut buf).is_ok() {
                emit(&buf);
            }
        })
        .map_err(|e| Error::internal(format!("live encoder thread: {e}")))?;
    Ok(Running { tx, thread })
}

fn bitrate() -> Bitrate {
    match STREAM_KBPS {
        32 => Bitrate::Kbps32,
        40 => Bitrate::Kbps40,
        64 => Bitrate::Kbps64,
        _ => Bitrate::Kbps48,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_of_tone_becomes_whole_frames_at_the_stream_bitrate() {
        let (out, mut rx) = broadcast::channel(1024);
        let file = tempfile::tempfile().unwrap();
        let bytes = Arc::new(AtomicU64::new(0));
        let r = start(48_000, out, Arc::new(std::sync::Mutex::new(file)), bytes.clone()).unwrap();
        for k in 0..50 {
            let s: Vec<i16> = (0..960)
                .map(|i| {
                    let t = (k * 960 + i) as f32 / 48_000.0;
                    ((t * 440.0 * std::f32::consts::TAU).sin() * 8_000.0) as i16
                })
                .collect();
            r.tx.send(Pcm::Samples(s)).unwrap();
        }
        drop(r.tx);
        r.thread.join().unwrap();
        let mut got = Vec::new();
        while let Ok(b) = rx.try_recv() {
            got.extend_from_slice(&b);
        }
        assert_eq!(got.len() as u64, bytes.load(Ordering::Relaxed));
        // 48 kb/s for about one second (plus the encoder's delay and flush).
        assert!((5_500..8_500).contains(&got.len()), "{} bytes", got.len());
        assert_eq!(
            crate::domain::live::mp3_frame_len([got[0], got[1], got[2], got[3]]),
            Some(144)
        );
    }
}
