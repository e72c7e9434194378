//! Benchmark of the upload's media check: makes a 10-minute MP3 (espeak-ng + sox + lame), then
//! times nguon's probe + sha256 (the same functions `POST /api/v1/media` uses) against `ffprobe`
//! + `sha256sum` on the same file, in the same run, and prints both and the ratio.
//!
//! `cargo run --release -p nguon-server --bin bench-probe [-- FILE...]`: with files, only probes
//! them and prints the result.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn make_mp3(dir: &Path) -> anyhow::Result<PathBuf> {
    let speech = dir.join("speech.wav");
    run(Command::new("espeak-ng")
        .args(["-v", "vi", "-w"])
        .arg(&speech)
        .arg(
            "Thông báo của Ủy ban nhân dân xã về lịch tiêm chủng, phòng chống mưa lũ và sạt lở đất. \
         Đề nghị bà con chú ý theo dõi và thực hiện đúng hướng dẫn của chính quyền địa phương.",
        ))?;
    // Repeat to at least 10 minutes, trim to exactly 10 minutes, 44.1 kHz stereo.
    let long = dir.join("long.wav");
    run(Command::new("sox")
        .arg(&speech)
        .args(["-r", "44100", "-c", "2"])
        .arg(&long)
        .args(["repeat", "120", "trim", "0", "600"]))?;
    let mp3 = dir.join("ten-minutes.mp3");
    run(Command::new("lame")
        .args(["--silent", "-b", "128"])
        .arg(&long)
        .arg(&mp3))?;
    Ok(mp3)
}

fn best_of<T>(n: usize, mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<(Duration, T)> {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..n {
        let t = Instant::now();
        let v = f()?;
        best = best.min(t.elapsed());
        last = Some(v);
    }
    Ok((best, last.expect("n > 0")))
}

fn main() -> anyhow::Result<()> {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if !files.is_empty() {
        for f in files {
            println!(
                "{f}: {:?}",
                nguon_server::services::media::probe_file(Path::new(&f))
            );
        }
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    eprintln!("making a 10-minute MP3 (espeak-ng, sox, lame)…");
    let mp3 = make_mp3(dir.path())?;
    let size = std::fs::metadata(&mp3)?.len();
    // Warm the page cache so both sides read from memory.
    let _ = std::fs::read(&mp3)?;
    let runs = 5;
    let (ours, (info, sha)) = best_of(runs, || {
        let info = nguon_server::services::media::probe_file(&mp3).map_err(|e| anyhow::anyhow!("{e}"))?;
        let (sha, _) = nguon_server::services::media::sha256_file(&mp3)?;
        Ok((info, sha))
    })?;
    let (theirs, (ff_ms, their_sha)) = best_of(runs, || {
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "format=duration",
                "-of",
                "csv=p=0",
            ])
            .arg(&mp3)
            .output()?;
        let secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse()?;
        let out = Command::new("sha256sum").arg(&mp3).output()?;
        let sha = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        Ok(((secs * 1000.0).round() as i64, sha))
    })?;
    if sha != their_sha {
        bail!("sha256 mismatch: {sha} vs {their_sha}");
    }
    let ratio = ours.as_secs_f64() / theirs.as_secs_f64();
    println!("file: 10-minute MP3, 128 kb/s CBR stereo 44.1 kHz, {size} bytes");
    println!(
        "nguon probe + sha256: {:.1} ms (duration {} ms, {} frames)",
        ours.as_secs_f64() * 1000.0,
        info.duration_ms,
        info.frames
    );
    println!(
        "ffprobe + sha256sum:  {:.1} ms (duration {} ms)",
        theirs.as_secs_f64() * 1000.0,
        ff_ms
    );
    println!("ratio: {ratio:.2}x (best of {runs} runs each; target <= 1.2x)");
    Ok(())
}
