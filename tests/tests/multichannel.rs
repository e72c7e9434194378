//! Multichannel uploads (issue 16): a 5.1 WAV (sox, one sine of its own per channel) is uploaded
//! to the real server and played by two real agents with WAV sinks. The server stores one
//! rendition, the stereo mix (ITU-R BS.775: L' = L + 0.707 C + 0.707 Ls, R' = R + 0.707 C +
//! 0.707 Rs, LFE dropped, scaled by 1/2.414 so nothing clips) loudness-normalised; one agent
//! writes it as it is (2 channels, 44.1 kHz); the other is a mono device whose output runs at
//! 48 kHz (`[audio] channels = 1`, `sample_rate = 48000`) and writes the mean of the pair,
//! resampled with rubato. Each tone's amplitude in each written channel (Goertzel) is the BS.775
//! weight × the anti-clipping scale × the rendition's reported gain × the source amplitude.

use std::time::Duration;

use nguon_tests::audio::{read_wav, surround_clip, tone_amplitude};
use nguon_tests::province::{Province, per_device};
use serde_json::Value;

/// The tone of each channel, in WAV order: FL FR FC LFE BL BR.
const FREQS: [u32; 6] = [500, 700, 900, 60, 1100, 1300];
/// Each tone's amplitude in the source.
const AMPLITUDE: f64 = 0.25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5_1_upload_reaches_the_sinks_as_its_bs775_stereo_mix_and_a_mono_48k_device_as_its_mean() {
    let mut p = Province::new(None, 1, 2).await;
    p.start_agents(|_| None).await;
    p.agents[1]
        .reconfigure_audio("channels = 1\nsample_rate = 48000")
        .expect("reconfigure the second agent");
    p.wait_online().await;

    let source = surround_clip(
        &p.dir.path().join("media"),
        "surround",
        4.0,
        44_100,
        FREQS,
        AMPLITUDE as f32,
    )
    .expect("sox makes the 5.1 clip");
    let sha = p.api().upload_approved(&source, "5.1").await.expect("upload");
    let record = p
        .api()
        .get(&format!("/api/v1/media/{sha}"))
        .await
        .expect("record");
    // The original is kept as uploaded; the rendition says it is the mix of 6 channels.
    assert_eq!(
        record.get("channels").and_then(Value::as_i64),
        Some(6),
        "{record}"
    );
    let rendition = record
        .pointer("/loudness/rendition")
        .unwrap_or_else(|| panic!("no rendition: {record}"));
    assert_eq!(
        rendition.get("downmixed_from").and_then(Value::as_i64),
        Some(6),
        "{record}"
    );
    let gain_db = rendition.get("gain_db").and_then(Value::as_f64).expect("gain_db");
    let delivered = p.delivered(&sha).await;
    assert_ne!(delivered, sha);

    let commune = p.commune(1);
    let (schedule, _) = p.schedule_in(&sha, &[commune.as_str()], 8).await;
    let everyone = p.ids(|_| true);
    let plays = p.wait_plays(&schedule, &everyone, Duration::from_secs(60)).await;
    assert!(per_device(&plays).values().all(|&n| n == 1), "{plays:?}");
    for play in &plays {
        assert_eq!(
            play.get("sha256").and_then(Value::as_str),
            Some(delivered.as_str())
        );
    }

    let k = std::f64::consts::FRAC_1_SQRT_2;
    let g = 10f64.powf(gain_db / 20.0) / (1.0 + 2.0 * k) * AMPLITUDE;
    // Expected amplitude of each tone (FREQS order) in L and in R.
    let left = [g, 0.0, k * g, 0.0, k * g, 0.0];
    let right = [0.0, g, k * g, 0.0, 0.0, k * g];
    let check = |what: &str, pcm: &nguon_tests::audio::Pcm, ch: u16, expect: [f64; 6]| {
        for (f, e) in FREQS.iter().zip(expect) {
            // Two whole seconds from 1 s in.
            let a = tone_amplitude(pcm, ch, *f as f64, 1.0, 2.0);
            assert!(
                (a - e).abs() <= 0.01 * g,
                "{what}: {f} Hz has amplitude {a:.5}, expected {e:.5} (gain {gain_db} dB)"
            );
        }
    };

    let stereo = &p.agents[0];
    let wavs = stereo.wav_files();
    assert_eq!(wavs.len(), 1, "{wavs:?}");
    let played = read_wav(&wavs[0]).expect("read the sink");
    assert_eq!(
        (played.channels, played.rate),
        (2, 44_100),
        "{}",
        wavs[0].display()
    );
    check("stereo L", &played, 0, left);
    check("stereo R", &played, 1, right);

    let mono = &p.agents[1];
    let wavs = mono.wav_files();
    assert_eq!(wavs.len(), 1, "{wavs:?}");
    let played = read_wav(&wavs[0]).expect("read the sink");
    assert_eq!(
        (played.channels, played.rate),
        (1, 48_000),
        "{}",
        wavs[0].display()
    );
    // 4 s of the source at 48 kHz, to the frame.
    assert_eq!(played.samples.len(), 4 * 48_000, "{}", wavs[0].display());
    let mean: Vec<f64> = left.iter().zip(right).map(|(l, r)| (l + r) / 2.0).collect();
    check("mono 48 kHz", &played, 0, mean.try_into().expect("six"));
}
