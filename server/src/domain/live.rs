//! Live broadcast (issue 17), the pure part: what an operator asks for ([`LiveRequest`]), the
//! priority rule between live sessions ([`clash`]), the microphone frames the console sends over
//! the WebSocket ([`pcm_frame`], [`check_rate`]) and the splitting of the encoder's MP3 output into
//! whole frames ([`Mp3Framer`]), so a listener that joins late starts on a frame boundary.

use std::collections::BTreeSet;

use nguon_protocol::Priority;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, Result};

/// How long a dropped operator connection may come back before the broadcast is stopped.
pub const GRACE_SECS: u64 = 10;
/// How long a session may wait for its microphone WebSocket after it was opened.
pub const CONNECT_SECS: u64 = 30;
/// Sample rates the microphone may be sent at (16-bit mono PCM; the encoder resamples).
pub const RATES: [u32; 6] = [8_000, 16_000, 22_050, 24_000, 44_100, 48_000];
/// Largest microphone frame accepted (1 s at 48 kHz, 16-bit mono).
pub const MAX_FRAME_BYTES: usize = 96_000;
/// The stream's sample rate (MPEG-2 layer III: 576 samples, 24 ms a frame).
pub const STREAM_RATE: u32 = 24_000;
/// The stream's bitrate, kb/s (constant).
pub const STREAM_KBPS: u32 = 48;

/// A live broadcast as the operator asks for it.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct LiveRequest {
    /// Area codes (each with the areas below it).
    #[serde(default)]
    pub areas: Vec<String>,
    /// Device ids.
    #[serde(default)]
    pub devices: Vec<String>,
    /// `priority` (default) or `emergency`: a session at `emergency` takes overlapping devices
    /// from a `priority` one; live always preempts normal and priority items on the devices.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub priority: Option<Priority>,
    /// Shown to other operators and as the recording's title.
    #[serde(default)]
    pub title: Option<String>,
}

impl LiveRequest {
    /// The priority, checked: `normal` is refused (live always outranks normal items).
    pub fn priority(&self) -> Result<Priority> {
        match self.priority.unwrap_or(Priority::Priority) {
            Priority::Normal => Err(Error::unprocessable(
                "invalid_priority",
                "`priority`: a live broadcast is `priority` or `emergency`, not `normal`",
            )),
            p => Ok(p),
        }
    }

    /// 422 when nothing is targeted or a list is oversized.
    pub fn check(&self) -> Result<()> {
        if self.areas.is_empty() && self.devices.is_empty() {
            return Err(Error::unprocessable(
                "no_targets",
                "name at least one area (`areas`) or device (`devices`)",
            ));
        }
        if self.areas.len() + self.devices.len() > 1_000 {
            return Err(Error::unprocessable(
                "too_many_targets",
                "at most 1,000 areas and devices",
            ));
        }
        if self.title.as_ref().is_some_and(|t| t.chars().count() > 200) {
            return Err(Error::unprocessable(
                "invalid_title",
                "`title`: at most 200 characters",
            ));
        }
        self.priority().map(|_| ())
    }
}

/// A session already live, as the clash rule sees it.
#[derive(Debug, Clone)]
pub struct Live<'a> {
    /// Session id.
    pub id: &'a str,
    /// Who is speaking.
    pub username: &'a str,
    /// Its priority.
    pub priority: Priority,
    /// The loudspeakers it covers.
    pub devices: &'a BTreeSet<String>,
}

/// The session a new one at `priority` over `devices` may not start beside: one that shares a
/// device and has the same or a higher priority (a device plays one live stream at a time). A
/// new session at a higher priority takes the shared devices over instead.
pub fn clash<'a>(
    live: &'a [Live<'a>],
    priority: Priority,
    devices: &BTreeSet<String>,
) -> Option<&'a Live<'a>> {
    live.iter()
        .find(|l| l.priority.rank() >= priority.rank() && !l.devices.is_disjoint(devices))
}

/// The 409 naming who is live.
pub fn busy(l: &Live<'_>, shared: usize) -> Error {
    Error::Conflict(format!(
        "`{}` is already live at priority `{}` on {shared} of these loudspeakers (session {}); \
         wait until it ends or ask them to stop",
        l.username,
        l.priority.as_str(),
        l.id
    ))
}

/// 422 unless `rate` is one of [`RATES`].
pub fn check_rate(rate: u32) -> Result<u32> {
    if RATES.contains(&rate) {
        Ok(rate)
    } else {
        Err(Error::unprocessable(
            "invalid_rate",
            format!("`rate`: the microphone's sample rate must be one of {RATES:?}, not {rate}"),
        ))
    }
}

/// The samples of one binary WebSocket frame: 16-bit little-endian mono PCM, non-empty, an even
/// number of bytes, at most [`MAX_FRAME_BYTES`]. Anything else is garbage and ends the session.
pub fn pcm_frame(bytes: &[u8]) -> std::result::Result<Vec<i16>, String> {
    if bytes.is_empty() {
        return Err("an empty audio frame".into());
    }
    if !bytes.len().is_multiple_of(2) {
        return Err(format!(
            "an audio frame of {} bytes (16-bit samples need an even count)",
            bytes.len()
        ));
    }
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(format!(
            "an audio frame of {} bytes (at most {MAX_FRAME_BYTES})",
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect())
}

/// The length of the MPEG audio layer III frame whose 4-byte header is `h`, or `None` when `h` is
/// not one (no sync, reserved version, bitrate or rate).
pub fn mp3_frame_len(h: [u8; 4]) -> Option<usize> {
    if h[0] != 0xFF || h[1] & 0xE0 != 0xE0 {
        return None;
    }
    let version = (h[1] >> 3) & 0x3; // 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5
    let layer = (h[1] >> 1) & 0x3; // 1 = layer III
    if version == 1 || layer != 1 {
        return None;
    }
    let bitrate_idx = (h[2] >> 4) as usize;
    let rate_idx = ((h[2] >> 2) & 0x3) as usize;
    let padding = ((h[2] >> 1) & 0x1) as usize;
    if bitrate_idx == 0 || bitrate_idx == 15 || rate_idx == 3 {
        return None;
    }
    const V1: [usize; 15] = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
    const V2: [usize; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    let (kbps, rate, coef) = match version {
        3 => (V1[bitrate_idx], [44_100, 48_000, 32_000][rate_idx], 144),
        2 => (V2[bitrate_idx], [22_050, 24_000, 16_000][rate_idx], 72),
        _ => (V2[bitrate_idx], [11_025, 12_000, 8_000][rate_idx], 72),
    };
    Some(coef * kbps * 1000 / rate + padding)
}

/// Cuts an MP3 byte stream (as an encoder hands it out, in pieces of any size) into whole frames.
/// Bytes before the first frame header (and between frames that do not follow each other) are
/// dropped.
#[derive(Debug, Default)]
pub struct Mp3Framer {
    buf: Vec<u8>,
}

impl Mp3Framer {
    /// Add `bytes`; returns the frames now complete, concatenated (empty if none).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.buf.extend_from_slice(bytes);
        let mut at = 0;
        let mut out = Vec::new();
        while at + 4 <= self.buf.len() {
            let h = [self.buf[at], self.buf[at + 1], self.buf[at + 2], self.buf[at + 3]];
            match mp3_frame_len(h) {
                Some(n) if at + n <= self.buf.len() => {
                    out.extend_from_slice(&self.buf[at..at + n]);
                    at += n;
                }
                Some(_) => break,
                // Not a frame header: skip the byte (resynchronise).
                None => at += 1,
            }
        }
        self.buf.drain(..at);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_second_session_at_the_same_priority_on_a_shared_device_clashes() {
        let a = set(&["lc-1", "lc-2"]);
        let live = [Live {
            id: "s1",
            username: "vanhanh",
            priority: Priority::Priority,
            devices: &a,
        }];
        let hit = clash(&live, Priority::Priority, &set(&["lc-2", "lc-3"])).expect("clash");
        assert_eq!(hit.username, "vanhanh");
        assert!(clash(&live, Priority::Priority, &set(&["lc-3"])).is_none());
        // An emergency session takes shared devices over; a lower one never does.
        assert!(clash(&live, Priority::Emergency, &a).is_none());
        let e = [Live {
            priority: Priority::Emergency,
            ..live[0].clone()
        }];
        assert!(clash(&e, Priority::Priority, &a).is_some());
        let msg = busy(hit, 1).to_string();
        assert!(msg.contains("vanhanh") && msg.contains("s1"), "{msg}");
    }

    #[test]
    fn garbage_frames_are_named() {
        assert!(pcm_frame(&[]).is_err());
        assert!(pcm_frame(&[1, 2, 3]).unwrap_err().contains("even"));
        assert!(pcm_frame(&vec![0; MAX_FRAME_BYTES + 2]).is_err());
        assert_eq!(
            pcm_frame(&[0x01, 0x80, 0xff, 0x7f]).unwrap(),
            vec![i16::MIN + 1, i16::MAX]
        );
        assert!(check_rate(48_000).is_ok());
        assert!(check_rate(12_345).is_err());
    }

    #[test]
    fn the_framer_hands_out_whole_frames_only() {
        // MPEG-2 layer III, 48 kb/s, 24 kHz, no padding: 72 * 48000 / 24000 = 144 bytes.
        let mut frame = vec![0xFF, 0xF3, 0x64, 0xC4];
        assert_eq!(mp3_frame_len([0xFF, 0xF3, 0x64, 0xC4]), Some(144));
        frame.resize(144, 0x55);
        let mut stream = vec![0x00, 0x12];
        for _ in 0..3 {
            stream.extend_from_slice(&frame);
        }
        let mut f = Mp3Framer::default();
        let mut got = Vec::new();
        for piece in stream.chunks(50) {
            let out = f.push(piece);
            assert_eq!(out.len() % 144, 0, "whole frames only");
            got.extend(out);
        }
        assert_eq!(got.len(), 3 * 144);
        assert_eq!(&got[..144], &frame[..]);
    }
}
