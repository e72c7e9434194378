//! A small Icecast-like stream server for relay tests (issue 17), on tokio: `GET /stream`
//! answers `audio/mpeg` and sends an MP3 file's bytes in real time (a 2 s burst first, as
//! Icecast's burst-on-connect does), looping; to a client that sent `Icy-MetaData: 1` it says
//! `icy-metaint` and interleaves metadata blocks with a `StreamTitle`. The first such connection
//! is dropped after `drop_after` (once); later connections play `after` instead of `before`, so
//! a sink can tell audio from before the drop from audio after it. `GET /html` is a web page,
//! `GET /missing` a 404. It counts the connections of each kind.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bytes of audio between two metadata blocks.
pub const METAINT: usize = 4000;

/// The stream server.
pub struct Icecast {
    /// Where it listens.
    pub addr: SocketAddr,
    counts: Arc<Counts>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Counts {
    /// `/stream` requests that asked for ICY metadata (a relay's connections).
    icy: AtomicUsize,
    /// `/stream` requests without it (the server's save-time check).
    plain: AtomicUsize,
    /// Every request.
    all: AtomicUsize,
}

struct Config {
    before: Vec<u8>,
    after: Vec<u8>,
    bytes_per_s: usize,
    drop_after: Option<Duration>,
}

impl Icecast {
    /// Serve `before` (then, after the one drop, `after`), both CBR MP3 at `kbps`.
    pub async fn start(
        before: Vec<u8>,
        after: Vec<u8>,
        kbps: usize,
        drop_after: Option<Duration>,
    ) -> Icecast {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let counts = Arc::new(Counts::default());
        let cfg = Arc::new(Config {
            before,
            after,
            bytes_per_s: kbps * 1000 / 8,
            drop_after,
        });
        let c = counts.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve(sock, cfg.clone(), c.clone()));
            }
        });
        Icecast { addr, counts, task }
    }

    /// The URL of `path` (`/stream`, `/html`, `/missing`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stream connections that asked for ICY metadata (relays: the proxy or the agents).
    pub fn icy_connections(&self) -> usize {
        self.counts.icy.load(Ordering::SeqCst)
    }

    /// Stream connections without ICY metadata (the save-time check).
    pub fn plain_connections(&self) -> usize {
        self.counts.plain.load(Ordering::SeqCst)
    }

    /// Every request.
    pub fn requests(&self) -> usize {
        self.counts.all.load(Ordering::SeqCst)
    }
}

impl Drop for Icecast {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut sock: TcpStream, cfg: Arc<Config>, counts: Arc<Counts>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 16 * 1024 {
            return;
        }
    }
    counts.all.fetch_add(1, Ordering::SeqCst);
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
    let icy = text
        .lines()
        .any(|l| l.starts_with("icy-metadata:") && l.trim().ends_with('1'));
    match path.as_str() {
        "/html" => {
            let body = "<!doctype html><html><body>Trang tin tức</body></html>";
            let _ = sock
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await;
        }
        "/stream" => {
            let n = if icy {
                counts.icy.fetch_add(1, Ordering::SeqCst)
            } else {
                counts.plain.fetch_add(1, Ordering::SeqCst);
                usize::MAX
            };
            // The first relay connection plays `before` and is dropped; the others play `after`.
            let (audio, drop_after) = if n == 0 {
                (&cfg.before, cfg.drop_after)
            } else {
                (&cfg.after, None)
            };
            let mut h =
                String::from("HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\nicy-name: VOV1 (test)\r\n");
            if icy {
                h.push_str(&format!("icy-metaint: {METAINT}\r\n"));
            }
            h.push_str("\r\n");
            if sock.write_all(h.as_bytes()).await.is_err() {
                return;
            }
            let _ = stream(&mut sock, audio, cfg.bytes_per_s, icy, drop_after).await;
        }
        _ => {
            let _ = sock
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nnot found")
                .await;
        }
    }
    let _ = sock.shutdown().await;
}

/// Send `audio` in a loop at `bytes_per_s` (2 s at once first), with ICY blocks when `icy`,
/// until the client goes or `drop_after` passes.
async fn stream(
    sock: &mut TcpStream,
    audio: &[u8],
    bytes_per_s: usize,
    icy: bool,
    drop_after: Option<Duration>,
) -> std::io::Result<()> {
    let started = tokio::time::Instant::now();
    let tick = Duration::from_millis(100);
    let per_tick = bytes_per_s / 10;
    let mut pos = 0usize;
    let mut since_meta = 0usize;
    let mut titles = 0usize;
    let mut budget = bytes_per_s * 2;
    loop {
        if drop_after.is_some_and(|d| started.elapsed() >= d) {
            return Ok(());
        }
        let mut out = Vec::with_capacity(budget + 64);
        while budget > 0 {
            let n = budget.min(audio.len() - pos);
            let n = if icy { n.min(METAINT - since_meta) } else { n };
            out.extend_from_slice(&audio[pos..pos + n]);
            pos = (pos + n) % audio.len();
            budget -= n;
            since_meta += n;
            if icy && since_meta == METAINT {
                titles += 1;
                out.extend(nguon_protocol::icy::encode_block(&format!(
                    "StreamTitle='Thời sự {titles}';StreamUrl='';"
                )));
                since_meta = 0;
            }
        }
        sock.write_all(&out).await?;
        tokio::time::sleep(tick).await;
        budget = per_tick;
    }
}

/// A CBR MP3 of a sine tone at `hz` for `seconds` (sox, then lame without the Xing/Info frame,
/// so a stream made of it loops cleanly).
pub fn tone_mp3(
    dir: &std::path::Path,
    name: &str,
    hz: u32,
    seconds: f32,
    kbps: usize,
) -> anyhow::Result<Vec<u8>> {
    std::fs::create_dir_all(dir)?;
    let wav = dir.join(format!("{name}.wav"));
    let mp3 = dir.join(format!("{name}.mp3"));
    let ok = std::process::Command::new("sox")
        .args(["-n", "-r", "22050", "-c", "1", "-b", "16"])
        .arg(&wav)
        .args([
            "synth",
            &seconds.to_string(),
            "sine",
            &hz.to_string(),
            "vol",
            "0.5",
        ])
        .status()?
        .success();
    anyhow::ensure!(ok, "sox failed");
    let ok = std::process::Command::new("lame")
        .args(["--quiet", "-t", "--cbr", "-b", &kbps.to_string()])
        .arg(&wav)
        .arg(&mp3)
        .status()?
        .success();
    anyhow::ensure!(ok, "lame failed");
    Ok(std::fs::read(&mp3)?)
}

/// The dominant frequency of each whole second of `samples` (mono or the first channel), by
/// counting zero crossings: a tone of f Hz crosses zero 2f times a second; silence gives 0.
pub fn tones_per_second(samples: &[f32], rate: u32, channels: u16) -> Vec<u32> {
    let ch = channels.max(1) as usize;
    let mono: Vec<f32> = samples.iter().step_by(ch).copied().collect();
    mono.chunks(rate as usize)
        .filter(|c| c.len() == rate as usize)
        .map(|c| {
            let loud = c.iter().map(|s| s * s).sum::<f32>() / c.len() as f32 > 1e-4;
            if !loud {
                return 0;
            }
            let crossings = c.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
            (crossings / 2) as u32
        })
        .collect()
}
