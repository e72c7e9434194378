//! Benchmark of a bulletin's speech (issue 18): a 1,000-character Vietnamese bulletin (dates,
//! times, money, hotlines, phone numbers, Roman numerals, abbreviations) is normalised
//! (`domain::speech::normalize`), then synthesised end to end by `services::speech` (normalise,
//! espeak-ng, EBU R128 loudness normalisation to −16 LUFS / −1 dBTP, store as a media item with
//! its rendition record), then asked for again (a speech-cache hit). The baseline, measured in
//! the same run, is `espeak-ng` alone writing the same normalised text to a WAV file.
//!
//! Then the loudness of an upload (`services::media::loudness::render`: decode, EBU R128
//! measure, normalise to −16 LUFS / −1 dBTP, the rendition's WAV and sha256) on that speech made
//! 20 dB quieter, against the same-run baseline of decoding it alone.
//!
//! `cargo run --release -p nguon-server --bin bench-speech [-- ROUNDS]` (default 5 rounds; each
//! round's text differs in one number so the cache misses).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nguon_server::config::Secret;
use nguon_server::domain::speech::loudness::Pcm;
use nguon_server::domain::speech::{Lexicon, normalize};
use nguon_server::services::media::loudness;
use nguon_server::services::speech;
use nguon_server::{Application, Settings};

const BULLETIN: &str = "UBND xã Tân Lập thông báo: Theo tin của Đài KTTV tỉnh, từ 19h ngày 15/12/2025 đến \
ngày 17/12/2025, trên địa bàn có mưa to, lượng mưa phổ biến 150-250 mm, có nơi trên 300 mm; nhiệt độ \
thấp nhất 12-14°C, gió giật 40-60 km/h. Ban chỉ huy PCTT và TKCN xã đề nghị các thôn kiểm tra 04 điểm \
có nguy cơ sạt lở, sơ tán 1.250 hộ dân khỏi vùng nguy hiểm trước 17h30. Mức hỗ trợ 1.500.000 đồng/hộ, \
gạo 15 kg/người. Học sinh THCS và THPT nghỉ học ngày 16/12. Khi có sự cố, gọi ngay 114 hoặc 115, hoặc \
đường dây nóng của xã 0214 3820 000. Người dân mang theo CCCD và thẻ BHYT khi đến nơi sơ tán. Kỳ họp \
thứ IX HĐND xã khóa XV dời sang quý I/2026. Tỷ lệ hộ đã được thông báo đạt 98,5%. Trực ban 24/24 tại \
trụ sở UBND xã và TYT xã. MTTQ, Hội LHPN, Đoàn TN phối hợp hỗ trợ người cao tuổi, trẻ em và người \
khuyết tật. Các phương tiện không lưu thông trên QL 70 đoạn Km 15-Km 18 từ 20h. Lúc 7h30 ngày 2/9, \
UBND xã họp dân tại nhà văn hóa thôn 3; mỗi hộ cử 01 người tham dự, mang theo sổ BHXH và các giấy tờ có liên quan.";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    // As the server's binary does: the HTTP clients (cloud TTS, webhooks) use ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(5);
    let chars = BULLETIN.chars().count();
    let lexicon = Lexicon::builtin();

    // Normalisation alone.
    let n = 200;
    let t = Instant::now();
    let mut normalized = String::new();
    for _ in 0..n {
        normalized = normalize(std::hint::black_box(BULLETIN), &lexicon);
    }
    let norm_ms = ms(t.elapsed()) / n as f64;

    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let settings = Settings {
        http_addr: "127.0.0.1:0".parse()?,
        mqtt_addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        data_dir: dir.path().join("data"),
        admin_token: Some(Secret::new("bench-speech-admin-token-4f7a")),
        ..Settings::default()
    };
    let app = Application::build(settings).await.context("build app")?;
    let state = app.state().clone();
    let voice = speech::voice(&state, Some("vi"), None, None)?;

    let (mut baseline, mut cold, mut hit) = (Vec::new(), Vec::new(), Vec::new());
    let mut duration_ms = 0;
    let mut last_wav = None;
    for round in 0..rounds {
        let text = BULLETIN.replace("1.250 hộ", &format!("{} hộ", 1250 + round));
        // Baseline: espeak-ng alone on the normalised text.
        let wav = dir.path().join("baseline.wav");
        let norm = normalize(&text, &lexicon);
        let t = Instant::now();
        let out = std::process::Command::new("espeak-ng")
            .args(["-v", "vi", "-s", "150", "-w"])
            .arg(&wav)
            .arg(&norm)
            .output()
            .context("espeak-ng")?;
        anyhow::ensure!(out.status.success(), "espeak-ng failed");
        baseline.push(ms(t.elapsed()));
        // nguon: normalise, synthesise, loudness, store.
        let t = Instant::now();
        let (_, m) = speech::synthesize_to_media(&state, &text, &voice, "bench", false).await?;
        cold.push(ms(t.elapsed()));
        anyhow::ensure!(!m.cached, "round {round} hit the cache");
        duration_ms = m.duration_ms;
        last_wav = Some(m.sha256.clone());
        // Cache hit: the same text again.
        let t = Instant::now();
        let (_, again) = speech::synthesize_to_media(&state, &text, &voice, "bench", false).await?;
        hit.push(ms(t.elapsed()));
        anyhow::ensure!(again.cached && again.sha256 == m.sha256, "no cache hit");
    }
    println!(
        "bulletin: {chars} characters, {} words read, {duration_ms} ms of speech",
        normalized.split_whitespace().count()
    );
    println!("normalise:                       {norm_ms:.3} ms (mean of {n})");
    println!(
        "baseline espeak-ng alone:        {:.0} ms (median of {rounds})",
        median(baseline.clone())
    );
    println!(
        "nguon synthesise (cache miss):   {:.0} ms (median of {rounds})",
        median(cold.clone())
    );
    println!(
        "nguon synthesise (cache hit):    {:.2} ms (median of {rounds})",
        median(hit.clone())
    );
    println!(
        "overhead over espeak-ng: {:.0} ms; cache hit is {:.0}x faster than a miss",
        median(cold.clone()) - median(baseline),
        median(cold) / median(hit)
    );

    // Loudness of an upload: the last speech, 20 dB quieter, as a WAV file.
    let sha = last_wav.context("no rounds")?;
    let stored = std::fs::read(nguon_server::services::media::media_path(
        &state.settings.data_dir,
        &sha,
    ))?;
    let mut pcm = Pcm::parse_wav(&stored)?;
    pcm.samples.iter_mut().for_each(|s| *s /= 10);
    let quiet = dir.path().join("quiet.wav");
    std::fs::write(&quiet, pcm.to_wav())?;
    let frames = pcm.samples.len() as u64 / pcm.channels.max(1) as u64;
    let (mut decode_only, mut render) = (Vec::new(), Vec::new());
    let mut figures = String::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let bytes = std::fs::read(&quiet)?;
        std::hint::black_box(nguon_server::services::speech::decode::decode(&bytes)?);
        decode_only.push(ms(t.elapsed()));
        let t = Instant::now();
        let r = loudness::render(&quiet, "quiet.wav", "wav/pcm_s16le", frames, pcm.channels)?;
        render.push(ms(t.elapsed()));
        let l = &r.loudness;
        let out = l.rendition.as_ref().context("no rendition")?;
        figures = format!(
            "{:.1} LUFS / {:.1} dBTP -> {:.1} LUFS / {:.1} dBTP",
            l.loudness_lufs.unwrap_or(f64::NEG_INFINITY),
            l.true_peak_dbtp.unwrap_or(f64::NEG_INFINITY),
            out.loudness_lufs,
            out.true_peak_dbtp
        );
    }
    println!("upload loudness, {} ms of audio ({figures}):", pcm.duration_ms());
    println!(
        "baseline decode alone:           {:.1} ms (median of {rounds})",
        median(decode_only.clone())
    );
    println!(
        "nguon measure + normalise:       {:.1} ms (median of {rounds}; {:.0}x real time)",
        median(render.clone()),
        pcm.duration_ms() as f64 / median(render)
    );
    Ok(())
}
