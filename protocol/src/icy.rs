//! ICY (SHOUTcast/Icecast) in-stream metadata: a client that sends `Icy-MetaData: 1` gets, from
//! a server that supports it, an `icy-metaint: N` header and then, after every N bytes of audio,
//! one length byte L followed by L × 16 bytes of metadata (`StreamTitle='…';StreamUrl='…';`,
//! zero-padded). [`IcyDemux`] takes the body as it arrives, in chunks of any size, and gives back
//! the audio alone and each metadata block's `StreamTitle`. Both the server's relay proxy and the
//! agent read relays this way; it is wire format, no I/O.

/// Strips ICY metadata blocks out of a stream body.
#[derive(Debug, Clone)]
pub struct IcyDemux {
    metaint: usize,
    /// Audio bytes left before the next length byte.
    audio_left: usize,
    /// Metadata bytes still to read in the current block.
    meta_left: usize,
    meta: Vec<u8>,
}

impl IcyDemux {
    /// A demuxer for `icy-metaint: metaint` (must be > 0).
    pub fn new(metaint: usize) -> Self {
        let metaint = metaint.max(1);
        Self {
            metaint,
            audio_left: metaint,
            meta_left: 0,
            meta: Vec::new(),
        }
    }

    /// From the `icy-metaint` header's value: `None` when absent, not a number or 0 (the body
    /// is audio only).
    pub fn from_header(value: Option<&str>) -> Option<Self> {
        let n: usize = value?.trim().parse().ok()?;
        (n > 0).then(|| Self::new(n))
    }

    /// Feed one chunk: the audio bytes of it are appended to `audio`; each metadata block that
    /// ends in it is returned (its text, padding removed).
    pub fn push(&mut self, mut chunk: &[u8], audio: &mut Vec<u8>) -> Vec<String> {
        let mut blocks = Vec::new();
        while !chunk.is_empty() {
            if self.meta_left > 0 {
                let n = self.meta_left.min(chunk.len());
                self.meta.extend_from_slice(&chunk[..n]);
                self.meta_left -= n;
                chunk = &chunk[n..];
                if self.meta_left == 0 {
                    let text = String::from_utf8_lossy(&self.meta);
                    blocks.push(text.trim_end_matches('\0').to_string());
                    self.meta.clear();
                    self.audio_left = self.metaint;
                }
            } else if self.audio_left > 0 {
                let n = self.audio_left.min(chunk.len());
                audio.extend_from_slice(&chunk[..n]);
                self.audio_left -= n;
                chunk = &chunk[n..];
            } else {
                // The length byte.
                self.meta_left = usize::from(chunk[0]) * 16;
                chunk = &chunk[1..];
                if self.meta_left == 0 {
                    self.audio_left = self.metaint;
                }
            }
        }
        blocks
    }
}

/// The `StreamTitle` of a metadata block, if it has one.
pub fn stream_title(block: &str) -> Option<&str> {
    let start = block.find("StreamTitle='")? + "StreamTitle='".len();
    let rest = &block[start..];
    let end = rest.find("';").unwrap_or(rest.len());
    Some(&rest[..end])
}

/// One metadata block as a server writes it: the length byte and the text padded to a multiple
/// of 16 (tests and test servers).
pub fn encode_block(text: &str) -> Vec<u8> {
    let len = text.len().div_ceil(16).min(255);
    let mut out = vec![len as u8];
    out.extend_from_slice(&text.as_bytes()[..text.len().min(len * 16)]);
    out.resize(1 + len * 16, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_removed_whatever_the_chunking_and_titles_come_out() {
        let audio: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut wire = Vec::new();
        for (k, part) in audio.chunks(1000).enumerate() {
            wire.extend_from_slice(part);
            if part.len() == 1000 {
                if k % 2 == 0 {
                    wire.extend(encode_block(&format!("StreamTitle='Bản tin {k}';")));
                } else {
                    wire.push(0);
                }
            }
        }
        for size in [1, 7, 16, 999, 1000, 1001, 4096, wire.len()] {
            let mut d = IcyDemux::new(1000);
            let mut out = Vec::new();
            let mut titles = Vec::new();
            for c in wire.chunks(size) {
                titles.extend(d.push(c, &mut out));
            }
            assert_eq!(out, audio, "chunks of {size}");
            let titles: Vec<&str> = titles.iter().filter_map(|b| stream_title(b)).collect();
            assert_eq!(
                titles,
                ["Bản tin 0", "Bản tin 2", "Bản tin 4", "Bản tin 6", "Bản tin 8"]
            );
        }
        assert!(IcyDemux::from_header(Some("0")).is_none());
        assert!(IcyDemux::from_header(Some("x")).is_none());
        assert!(IcyDemux::from_header(Some(" 8192")).is_some());
    }
}
