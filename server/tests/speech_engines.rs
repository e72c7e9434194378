//! Black-box tests of the speech engines (issue 18): a command adapter run with a fake program
//! (what it was given, what it wrote, the fallback when it fails), the cloud HTTP adapter against
//! a mock service started in the test (request mapping, API key, retries, the espeak-ng fallback
//! marked on the rendition), the speech cache, the voice of an area with Southern number words,
//! the normalised text piece by piece and a correction added to the lexicon.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine as _;
use nguon_server::config::{Secret, TtsEngineSettings, TtsVoiceSettings};
use nguon_server::domain::speech::loudness::Pcm;
use serde_json::{Value, json};

use crate::common::{self, json, spawn_app_with};
use crate::dispatch_support::area;

/// A one-second 440 Hz tone at −20 dBFS as WAV bytes: what the fake engines "speak".
fn tone_wav() -> Vec<u8> {
    let rate = 22050u32;
    let samples = (0..rate)
        .map(|i| ((i as f64 * 440.0 * std::f64::consts::TAU / rate as f64).sin() * 0.1 * 32767.0) as i16)
        .collect();
    Pcm {
        sample_rate: rate,
        channels: 1,
        samples,
    }
    .to_wav()
}

/// Integrated loudness (LUFS) and true peak (dBTP) of a stored WAV, measured here.
fn measure(path: &std::path::Path) -> (f64, f64) {
    let pcm = Pcm::parse_wav(&std::fs::read(path).unwrap()).unwrap();
    let mut m = ebur128::EbuR128::new(
        pcm.channels as u32,
        pcm.sample_rate,
        ebur128::Mode::I | ebur128::Mode::TRUE_PEAK,
    )
    .unwrap();
    m.add_frames_i16(&pcm.samples).unwrap();
    (
        m.loudness_global().unwrap(),
        20.0 * m.true_peak(0).unwrap().log10(),
    )
}

fn engine(name: &str, kind: &str) -> TtsEngineSettings {
    TtsEngineSettings {
        name: name.into(),
        kind: kind.into(),
        version: "test-1".into(),
        timeout_ms: 20_000,
        ..TtsEngineSettings::default()
    }
}

fn voice(name: &str, engine: &str, accent: &str) -> TtsVoiceSettings {
    TtsVoiceSettings {
        name: name.into(),
        label: name.into(),
        engine: engine.into(),
        engine_voice: format!("{name}-model"),
        accent: accent.into(),
        ..TtsVoiceSettings::default()
    }
}

#[tokio::test]
async fn a_command_engine_gets_the_normalised_text_and_its_wav_is_loudness_normalised_or_espeak_stands_in() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("tone.wav");
    std::fs::write(&wav, tone_wav()).unwrap();
    let seen = dir.path().join("seen.txt");
    // A Piper-like program: reads the text on stdin, writes a WAV to --output_file.
    let script = dir.path().join("fake-piper");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nout=\"\"\nwhile [ $# -gt 0 ]; do case \"$1\" in --output_file) out=\"$2\"; shift;; esac; \
             echo \"arg $1\" >> {seen}; shift; done\ncat >> {seen}\ncp {wav} \"$out\"\n",
            seen = seen.display(),
            wav = wav.display()
        ),
    )
    .unwrap();
    let broken = dir.path().join("broken-piper");
    std::fs::write(&broken, "#!/bin/sh\necho 'model file missing' >&2\nexit 3\n").unwrap();
    for p in [&script, &broken] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let (script, broken) = (script.clone(), broken.clone());
    let app = spawn_app_with(move |s| {
        let args = [
            "--model",
            "{voice}",
            "--length_scale",
            "{length_scale}",
            "--output_file",
            "{output}",
        ];
        let mut piper = engine("piper", "command");
        piper.program = Some(script);
        piper.args = args.iter().map(|a| a.to_string()).collect();
        let mut bad = engine("piper-broken", "command");
        bad.program = Some(broken);
        bad.args = piper.args.clone();
        s.tts.engines = vec![piper, bad];
        s.tts.voices = vec![
            voice("bac-piper", "piper", "north"),
            voice("nam-broken", "piper-broken", "south"),
        ];
    })
    .await;
    let text = "Khi có cháy gọi 114, có 105 hộ.";
    let (s, r) = json(
        app.post_json(
            "/api/v1/tts/preview",
            &json!({"text": text, "voice": "bac-piper", "speed": 300}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["engine"], "piper");
    assert_eq!(
        r["normalized"],
        "Khi có cháy gọi một một bốn, có một trăm linh năm hộ."
    );
    let seen = std::fs::read_to_string(&seen).unwrap();
    assert!(
        seen.contains("arg --model\narg bac-piper-model\narg --length_scale\narg 0.50\n"),
        "{seen}"
    );
    assert!(seen.ends_with("có một trăm linh năm hộ."), "{seen}");
    let path = app
        .data_dir
        .join("media")
        .join(r["media"]["sha256"].as_str().unwrap());
    let (lufs, tp) = measure(&path);
    assert!((lufs + 16.0).abs() <= 0.5, "{lufs} LUFS");
    assert!(tp <= -1.0 + 1e-6, "{tp} dBTP");

    // The broken program: espeak-ng's Southern voice stands in, and the rendition says so.
    let (s, r) = json(
        app.post_json(
            "/api/v1/tts/preview",
            &json!({"text": "Có 105 hộ.", "voice": "nam-broken"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (r["engine"].as_str(), r["media"]["fallback_from"].as_str()),
        (Some("espeak-ng"), Some("piper-broken"))
    );
    assert_eq!(r["normalized"], "Có một trăm lẻ năm hộ.");
    let sha = r["media"]["sha256"].as_str().unwrap();
    let (s, rs) = json(app.get(&format!("/api/v1/tts/renditions/{sha}")).await).await;
    assert_eq!(s, 200, "{rs}");
    assert_eq!(rs[0]["fallback_from"], "piper-broken");
    assert_eq!(rs[0]["engine"], "espeak-ng");
}

/// The mock cloud service: counts requests, answers 503 to the first `fail_first` and to every
/// request while `down`, checks the key, and returns the tone as base64 in JSON.
#[derive(Clone)]
struct Mock {
    hits: Arc<AtomicUsize>,
    fail_first: usize,
    down: Arc<std::sync::atomic::AtomicBool>,
    last: Arc<std::sync::Mutex<Value>>,
}

async fn mock_tts(
    State(m): State<Mock>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> axum::response::Response {
    let n = m.hits.fetch_add(1, Ordering::SeqCst);
    *m.last.lock().unwrap() = body;
    if headers.get("api-key").and_then(|v| v.to_str().ok()) != Some("k-secret-123") {
        return (StatusCode::UNAUTHORIZED, "bad key").into_response();
    }
    if n < m.fail_first || m.down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
    }
    Json(json!({"result": {"audio": base64::engine::general_purpose::STANDARD.encode(tone_wav())}}))
        .into_response()
}

#[tokio::test]
async fn the_cloud_adapter_maps_the_request_retries_caches_and_falls_back_to_espeak_when_the_service_is_down()
{
    let mock = Mock {
        hits: Arc::new(AtomicUsize::new(0)),
        fail_first: 1,
        down: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        last: Arc::new(std::sync::Mutex::new(Value::Null)),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = axum::Router::new()
        .route("/v1/tts", axum::routing::post(mock_tts))
        .with_state(mock.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let app = spawn_app_with(move |s| {
        let mut cloud = engine("cloud", "http");
        cloud.url = Some(format!("http://127.0.0.1:{port}/v1/tts"));
        cloud.headers.insert("api-key".into(), "{api_key}".into());
        cloud.api_key = Some(Secret::new("k-secret-123"));
        cloud.body = Some(json!({"input": "{text}", "voice": "{voice}", "speed": "{rate}"}));
        cloud.response = "json_base64".into();
        cloud.response_pointer = Some("/result/audio".into());
        cloud.retries = 2;
        cloud.timeout_ms = 5_000;
        s.tts.engines = vec![cloud];
        s.tts.voices = vec![voice("nu-mien-nam", "cloud", "south")];
    })
    .await;
    let ask = json!({"text": "Tổng đài 1900 1234, 2.500 người.", "voice": "nu-mien-nam", "speed": 180});
    let (s, r) = json(app.post_json("/api/v1/tts/preview", &ask).await).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["engine"], "cloud");
    assert_eq!(r["media"]["cached"], false);
    assert_eq!(mock.hits.load(Ordering::SeqCst), 2, "one 503, then the answer");
    assert_eq!(
        *mock.last.lock().unwrap(),
        json!({"input": "Tổng đài một chín không không, một hai ba bốn, hai ngàn năm trăm người.",
               "voice": "nu-mien-nam-model", "speed": 1.2})
    );
    let first = r["media"]["sha256"].clone();
    let (lufs, tp) = measure(&app.data_dir.join("media").join(first.as_str().unwrap()));
    assert!(
        (lufs + 16.0).abs() <= 0.5 && tp <= -1.0 + 1e-6,
        "{lufs} LUFS {tp} dBTP"
    );

    // Same text and voice: from the cache, nothing sent.
    let (_, again) = json(app.post_json("/api/v1/tts/preview", &ask).await).await;
    assert_eq!(
        (again["media"]["cached"].as_bool(), &again["media"]["sha256"]),
        (Some(true), &first)
    );
    assert_eq!(mock.hits.load(Ordering::SeqCst), 2);

    // The service goes down: three tries, then espeak-ng's Southern voice, marked as a fallback.
    mock.down.store(true, Ordering::SeqCst);
    let (s, fb) = json(
        app.post_json(
            "/api/v1/tts/preview",
            &json!({"text": "Có 105 hộ.", "voice": "nu-mien-nam"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{fb}");
    assert_eq!(mock.hits.load(Ordering::SeqCst), 5);
    assert_eq!(
        (fb["engine"].as_str(), fb["media"]["fallback_from"].as_str()),
        (Some("espeak-ng"), Some("cloud"))
    );
    let sha = fb["media"]["sha256"].as_str().unwrap();
    let (_, rs) = json(app.get(&format!("/api/v1/tts/renditions/{sha}")).await).await;
    assert_eq!(
        (rs[0]["engine"].as_str(), rs[0]["fallback_from"].as_str()),
        (Some("espeak-ng"), Some("cloud"))
    );
    // A fallback is not cached as the cloud voice: back up, the cloud is asked again.
    mock.down.store(false, Ordering::SeqCst);
    let (_, up) = json(
        app.post_json(
            "/api/v1/tts/preview",
            &json!({"text": "Có 105 hộ.", "voice": "nu-mien-nam"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (up["engine"].as_str(), up["media"]["cached"].as_bool()),
        (Some("cloud"), Some(false))
    );
    assert_eq!(mock.hits.load(Ordering::SeqCst), 6);
}

#[tokio::test]
async fn an_area_takes_its_parents_voice_and_an_editors_correction_goes_into_the_lexicon() {
    let app = common::spawn_app().await;
    area(&app, "p1", None).await;
    area(&app, "p1-c1", Some("p1")).await;
    let (s, v) = json(app.get("/api/v1/areas/p1-c1/voice").await).await;
    assert_eq!(
        (s, v["voice"].as_str(), &v["from_area"]),
        (200, Some("vi"), &Value::Null),
        "{v}"
    );
    let (s, v) = json(
        app.put_json(
            "/api/v1/areas/p1/voice",
            &json!({"voice": "vi-vn-x-south", "speed": 170}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = json(app.get("/api/v1/areas/p1-c1/voice").await).await;
    assert_eq!(
        (v["voice"].as_str(), v["speed"].as_u64(), v["from_area"].as_str()),
        (Some("vi-vn-x-south"), Some(170), Some("p1"))
    );
    let (s, e) = json(
        app.put_json("/api/v1/areas/p1/voice", &json!({"voice": "no-such"}))
            .await,
    )
    .await;
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("unknown_voice")));
    let (s, _) = json(app.delete("/api/v1/areas/p1/voice").await).await;
    assert_eq!(s, 200);
    let (_, v) = json(app.get("/api/v1/areas/p1-c1/voice").await).await;
    assert_eq!(v["voice"], "vi");

    let (s, n) = json(
        app.post_json(
            "/api/v1/tts/normalize",
            &json!({"text": "Mang CCCD và giấy HK01.", "voice": "vi-vn-x-south"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{n}");
    assert_eq!(
        n["pieces"][1],
        json!({"written": "CCCD", "term": "CCCD", "read": "căn cước công dân"})
    );
    assert_eq!(n["pieces"][4]["read"], "HK01.");
    let (s, l) = json(
        app.post_json(
            "/api/v1/tts/lexicon/entries",
            &json!({"term": "HK01", "expansion": "mẫu hát ca không một"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{l}");
    let (_, n) = json(
        app.post_json(
            "/api/v1/tts/normalize",
            &json!({"text": "Mang CCCD và giấy HK01."}),
        )
        .await,
    )
    .await;
    assert_eq!(
        n["normalized"],
        "Mang căn cước công dân và giấy mẫu hát ca không một."
    );
    let (_, voices) = json(app.get("/api/v1/tts/voices").await).await;
    assert_eq!(voices["details"][2]["accent"], "south");
}

#[test]
fn tts_configuration_reads_the_api_key_from_the_environment_and_names_a_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nguon.toml");
    let toml = r#"
[tts]
default_voice = "nu-bac"
[[tts.engines]]
name = "cloud"
kind = "http"
url = "https://tts.example.vn/v1/speak"
api_key_env = "NGUON_TTS_CLOUD_KEY"
headers = { "api-key" = "{api_key}" }
body = { text = "{text}", voice = "{voice}", speed = "{rate}" }
response = "json_url"
response_pointer = "/async"
[[tts.voices]]
name = "nu-bac"
label = "Nữ miền Bắc"
engine = "cloud"
engine_voice = "banmai"
"#;
    std::fs::write(&file, toml).unwrap();
    let key = ("NGUON_TTS_CLOUD_KEY".to_string(), "k-1".to_string());
    let s = nguon_server::Settings::load(Some(&file), [key.clone()]).unwrap();
    assert_eq!(s.tts.engines[0].api_key.as_ref().map(|k| k.expose()), Some("k-1"));
    assert!(!format!("{s:?}").contains("k-1"), "the key never prints");
    assert_eq!(s.tts.voices[0].accent, "north");
    let e = nguon_server::Settings::load(Some(&file), Vec::<(String, String)>::new()).unwrap_err();
    assert_eq!(e.key, "tts.engines[0].api_key_env");
    std::fs::write(&file, toml.replace("engine = \"cloud\"", "engine = \"nope\"")).unwrap();
    assert_eq!(
        nguon_server::Settings::load(Some(&file), [key.clone()])
            .unwrap_err()
            .key,
        "tts.voices[0].engine"
    );
    std::fs::write(&file, toml.replace("kind = \"http\"", "kind = \"ftp\"")).unwrap();
    assert_eq!(
        nguon_server::Settings::load(Some(&file), [key]).unwrap_err().key,
        "tts.engines[0].kind"
    );
}
