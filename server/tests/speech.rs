//! Black-box tests of Vietnamese text-to-speech (issue 6): normalisation word for word, audio of a
//! plausible length stored as an ordinary media item, and the operators' lexicon.

use crate::common;

use common::{ffprobe_duration_ms, json, spawn_app};
use serde_json::json;

#[tokio::test]
async fn a_vietnamese_bulletin_with_a_date_a_number_and_an_abbreviation_becomes_stored_audio() {
    let app = spawn_app().await;
    let text = "UBND xã thông báo: từ ngày 15/6/2025, 1.250 hộ gia đình được cấp thẻ BHYT lúc 7h30.";
    let (s, r) = json(
        app.post_json(
            "/api/v1/tts/preview",
            &json!({"text": text, "voice": "vi", "speed": 150}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{r}");
    let normalized = r["normalized"].as_str().unwrap();
    assert_eq!(
        normalized,
        "Ủy ban nhân dân xã thông báo: từ ngày mười lăm tháng sáu năm hai nghìn không trăm hai mươi lăm, \
         một nghìn hai trăm năm mươi hộ gia đình được cấp thẻ bảo hiểm y tế lúc bảy giờ ba mươi phút."
    );
    let sha = r["media"]["sha256"].as_str().unwrap();
    let duration_ms = r["media"]["duration_ms"].as_i64().unwrap();
    let syllables = normalized.split_whitespace().count() as i64;
    assert!(
        duration_ms >= syllables * 200 && duration_ms <= syllables * 1000,
        "{duration_ms} ms for {syllables} syllables"
    );
    // Stored as an ordinary media item, probed like an upload, and servable.
    let (s, m) = json(app.get(&format!("/api/v1/media/{sha}")).await).await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["status"], "draft");
    let path = app.data_dir.join("media").join(sha);
    assert!(path.exists());
    let probed = ffprobe_duration_ms(&path);
    assert!(
        (probed - duration_ms).abs() < 100,
        "ffprobe {probed} vs {duration_ms}"
    );
    // Loudness normalised: the peak is close to, but not over, the ceiling.
    let bytes = std::fs::read(&path).unwrap();
    let peak = bytes[44..]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]).unsigned_abs())
        .max()
        .unwrap();
    assert!(peak > 8000 && peak <= 29300, "peak {peak}");
    // ... and the integrated loudness (EBU R128, measured on the decoded samples) is the target's.
    let samples: Vec<i16> = bytes[44..]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    let rate = u32::from_le_bytes(bytes[24..28].try_into().unwrap());
    let channels = u16::from_le_bytes(bytes[22..24].try_into().unwrap());
    let mut meter =
        ebur128::EbuR128::new(channels as u32, rate, ebur128::Mode::I | ebur128::Mode::TRUE_PEAK).unwrap();
    meter.add_frames_i16(&samples).unwrap();
    let lufs = meter.loudness_global().unwrap();
    let target = nguon_server::domain::speech::loudness::TARGET_LUFS;
    assert!((lufs - target).abs() <= 1.0, "{lufs} LUFS, target {target}");
    // ... and its true peak (4× oversampled) is at most −1 dBTP, as the answer says.
    let tp = 20.0 * meter.true_peak(0).unwrap().log10();
    assert!(tp <= -1.0 + 1e-6, "{tp} dBTP");
    assert!(
        (r["media"]["true_peak_dbtp"].as_f64().unwrap() - tp).abs() < 0.01,
        "{r}"
    );
    // Same text, same audio: from the speech cache, nothing synthesised.
    let (_, again) = json(app.post_json("/api/v1/tts/preview", &json!({"text": text})).await).await;
    assert_eq!(again["media"]["sha256"], sha);
    assert_eq!(again["media"]["cached"], true);
}

#[tokio::test]
async fn operators_extend_the_lexicon_and_bad_voice_settings_are_refused() {
    let app = spawn_app().await;
    let (s, l) = json(
        app.put_json(
            "/api/v1/tts/lexicon",
            &json!({"entries": [{"term": "HTX", "expansion": "hợp tác xã"},
                                                                {"term": "UBND", "expansion": "Ủy ban"}]}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{l}");
    let entries = l["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["term"] == "HTX" && e["source"] == "operator")
    );
    assert!(
        entries
            .iter()
            .any(|e| e["term"] == "BHXH" && e["source"] == "builtin")
    );
    let (_, r) = json(
        app.post_json(
            "/api/v1/tts/preview",
            &json!({"text": "HTX và UBND họp 45% số hộ"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        r["normalized"],
        "Hợp tác xã và Ủy ban họp bốn mươi lăm phần trăm số hộ"
    );

    let (s, e) = json(
        app.post_json("/api/v1/tts/preview", &json!({"text": "x", "voice": "en"}))
            .await,
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (400, Some("unknown_voice")),
        "{e}"
    );
    let (s, e) = json(
        app.post_json("/api/v1/tts/preview", &json!({"text": "x", "speed": 5}))
            .await,
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (400, Some("invalid_speed")),
        "{e}"
    );
    let (s, e) = json(
        app.put_json(
            "/api/v1/tts/lexicon",
            &json!({"entries": [{"term": "", "expansion": "x"}]}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (400, Some("invalid_term")),
        "{e}"
    );
    let (s, _) = json(
        app.client
            .post(app.url("/api/v1/tts/preview"))
            .json(&json!({"text": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn issue_18_the_misread_classes_are_read_right_through_the_api() {
    let app = spawn_app().await;
    let cases = [
        (
            "Khi có cháy gọi 114, cấp cứu 115, công an 113.",
            "Khi có cháy gọi một một bốn, cấp cứu một một năm, công an một một ba.",
        ),
        (
            "Liên hệ 0214 3820 000.",
            "Liên hệ không hai một bốn, ba tám hai không, không không không.",
        ),
        ("Phát hiện 04 trường hợp.", "Phát hiện bốn trường hợp."),
        (
            "Quý II, khóa XV, kỳ họp thứ IX, phần I, chương III, điều IV.",
            "Quý hai, khóa mười lăm, kỳ họp thứ chín, phần một, chương ba, điều bốn.",
        ),
        ("Mang CCCD.", "Mang căn cước công dân."),
        (
            "Trực 24/24, 50.000 đồng/người, 60 km/h.",
            "Trực hai mươi bốn trên hai mươi bốn, năm mươi nghìn đồng mỗi người, sáu mươi ki lô mét trên giờ.",
        ),
    ];
    for (text, want) in cases {
        let (s, r) = json(
            app.post_json("/api/v1/tts/normalize", &json!({"text": text}))
                .await,
        )
        .await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(r["normalized"], want, "{text}");
    }
}
