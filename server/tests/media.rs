//! Black-box tests of the media library: uploads of real files, refusals that leave nothing
//! behind, dedupe, the approval workflow and `GET /media/{sha}` with Range/ETag.

use crate::common;

use common::{AudioSpec, TestApp, json, make_audio, spawn_app, spawn_app_with, spec};
use serde_json::json;

async fn assert_matches_ffprobe(app: &TestApp, s: AudioSpec, codec: &str) {
    let path = make_audio(s);
    let (status, body) = json(app.upload_media(&path).await).await;
    assert_eq!(status, 201, "{s:?}: {body}");
    let expected = common::ffprobe_duration_ms(&path);
    let got = body["duration_ms"].as_i64().unwrap();
    assert!(
        (got - expected).abs() <= 50,
        "{s:?}: duration {got} ms, ffprobe {expected} ms"
    );
    assert_eq!(body["sample_rate"], s.rate, "{s:?}: {body}");
    assert_eq!(body["channels"], s.channels, "{s:?}: {body}");
    assert_eq!(body["codec"], codec, "{s:?}: {body}");
    assert_eq!(body["status"], "draft");
    assert_eq!(body["size"], std::fs::metadata(&path).unwrap().len());
    let sha = body["sha256"].as_str().unwrap();
    assert!(app.data_dir.join("media").join(sha).exists());
}

#[tokio::test]
async fn mp3_uploads_of_every_kind_report_the_ffprobe_duration() {
    let app = spawn_app().await;
    for s in [
        spec("mp3", 44100, 2),
        spec("mp3", 8000, 1),
        spec("mp3", 22050, 1),
        spec("mp3-vbr", 48000, 2),
        spec("mp3-vbr", 16000, 1),
        spec("mp3-noxing", 32000, 2),
        spec("mp3-vbr-noxing", 44100, 1),
    ] {
        assert_matches_ffprobe(&app, s, "mp3").await;
    }
}

#[tokio::test]
async fn wav_uploads_report_the_ffprobe_duration() {
    let app = spawn_app().await;
    for s in [spec("wav", 8000, 1), spec("wav", 22050, 2), spec("wav", 48000, 2)] {
        assert_matches_ffprobe(&app, s, "pcm_s16le").await;
    }
}

#[tokio::test]
async fn ogg_vorbis_uploads_report_the_ffprobe_duration() {
    let app = spawn_app().await;
    for s in [spec("ogg", 8000, 1), spec("ogg", 44100, 2), spec("ogg", 48000, 1)] {
        assert_matches_ffprobe(&app, s, "vorbis").await;
    }
}

#[tokio::test]
async fn flac_uploads_report_the_ffprobe_duration() {
    let app = spawn_app().await;
    for s in [spec("flac", 16000, 1), spec("flac", 44100, 2)] {
        assert_matches_ffprobe(&app, s, "flac").await;
    }
}

#[tokio::test]
async fn m4a_aac_uploads_report_the_ffprobe_duration() {
    let app = spawn_app().await;
    for s in [spec("m4a", 8000, 1), spec("m4a", 44100, 2), spec("m4a", 24000, 1)] {
        assert_matches_ffprobe(&app, s, "aac").await;
    }
}

async fn assert_refused_leaving_nothing(app: &TestApp, bytes: Vec<u8>, name: &str, status: u16, code: &str) {
    let (s, body) = json(app.upload("/api/v1/media", bytes, name).await).await;
    assert_eq!(s, status, "{name}: {body}");
    assert_eq!(body["error"]["code"], code, "{name}: {body}");
    assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    assert!(app.files_in("media").is_empty(), "{name}: media dir not empty");
    assert!(app.files_in("tmp").is_empty(), "{name}: tmp dir not empty");
    let (_, list) = json(app.get("/api/v1/media").await).await;
    assert_eq!(list.as_array().unwrap().len(), 0, "{name}: a row was stored");
}

#[tokio::test]
async fn a_text_file_named_mp3_is_refused_as_not_audio_and_nothing_is_stored() {
    let app = spawn_app().await;
    let text = "Thông báo: họp thôn lúc 8 giờ sáng.\n".repeat(50).into_bytes();
    assert_refused_leaving_nothing(&app, text, "thong-bao.mp3", 415, "not_audio").await;
}

#[tokio::test]
async fn a_png_named_ogg_is_refused_as_not_audio() {
    let app = spawn_app().await;
    assert_refused_leaving_nothing(&app, common::tiny_png(), "picture.ogg", 415, "not_audio").await;
}

#[tokio::test]
async fn an_empty_file_is_refused_as_empty() {
    let app = spawn_app().await;
    assert_refused_leaving_nothing(&app, Vec::new(), "empty.mp3", 400, "empty").await;
}

#[tokio::test]
async fn an_mp3_cut_in_half_mid_frame_is_refused_as_corrupt() {
    let app = spawn_app().await;
    for s in [
        spec("mp3", 44100, 2),
        spec("mp3-noxing", 22050, 1),
        spec("mp3-vbr", 48000, 2),
    ] {
        let bytes = std::fs::read(make_audio(s)).unwrap();
        let half = bytes[..bytes.len() / 2 + 7].to_vec();
        assert_refused_leaving_nothing(&app, half, "cut.mp3", 422, "corrupt").await;
    }
}

#[tokio::test]
async fn a_truncated_wav_and_flac_are_refused_as_corrupt() {
    let app = spawn_app().await;
    for s in [spec("wav", 22050, 1), spec("flac", 44100, 2)] {
        let bytes = std::fs::read(make_audio(s)).unwrap();
        let cut = bytes[..bytes.len() * 2 / 3].to_vec();
        assert_refused_leaving_nothing(&app, cut, &format!("cut.{}", s.format), 422, "corrupt").await;
    }
}

#[tokio::test]
async fn an_upload_over_the_limit_is_refused_with_413_and_nothing_is_stored() {
    let app = spawn_app_with(|s| s.max_upload_mb = 1).await;
    let big = vec![0x55u8; 1024 * 1024 + 10];
    assert_refused_leaving_nothing(&app, big, "big.wav", 413, "too_large").await;
}

#[tokio::test]
async fn the_same_content_uploaded_twice_is_stored_once() {
    let app = spawn_app().await;
    let path = make_audio(spec("mp3", 22050, 1));
    let bytes = std::fs::read(&path).unwrap();
    let (s1, first) = json(
        app.upload_with_title("/api/v1/media", bytes.clone(), "a.mp3", Some("Bản tin sáng"))
            .await,
    )
    .await;
    assert_eq!(s1, 201, "{first}");
    assert_eq!(first["duplicate"], false);
    assert_eq!(first["title"], "Bản tin sáng");
    let (s2, second) = json(app.upload("/api/v1/media", bytes, "b.mp3").await).await;
    assert_eq!(s2, 200, "{second}");
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["sha256"], first["sha256"]);
    assert_eq!(second["title"], "Bản tin sáng");
    // The original and its loudness-normalised rendition (issue 18), once.
    assert_eq!(app.files_in("media").len(), 2);
    assert!(app.files_in("tmp").is_empty());
    let (_, list) = json(app.get("/api/v1/media").await).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn media_files_are_served_with_range_etag_and_not_modified() {
    let app = spawn_app().await;
    let bytes = std::fs::read(make_audio(spec("wav", 8000, 1))).unwrap();
    let (_, m) = json(app.upload("/api/v1/media", bytes.clone(), "x.wav").await).await;
    let sha = m["sha256"].as_str().unwrap().to_string();
    let url = app.url(&format!("/media/{sha}"));
    // A draft is not served without a caller; approved media is public by hash (devices).
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 404);
    let (s, a) = json(
        app.post_json(&format!("/api/v1/media/{sha}/approve"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(s, 200, "{a}");
    let full = app.client.get(&url).send().await.unwrap();
    assert_eq!(full.status(), 200);
    assert_eq!(full.headers()["etag"], format!("\"{sha}\"").as_str());
    assert_eq!(full.headers()["accept-ranges"], "bytes");
    assert_eq!(
        full.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(full.headers()["content-length"], bytes.len().to_string().as_str());
    assert_eq!(full.bytes().await.unwrap().as_ref(), bytes.as_slice());

    let part = app
        .client
        .get(&url)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 100-199/{}", bytes.len()).as_str()
    );
    assert_eq!(part.bytes().await.unwrap().as_ref(), &bytes[100..200]);

    let tail = app
        .client
        .get(&url)
        .header("range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status(), 206);
    assert_eq!(tail.bytes().await.unwrap().as_ref(), &bytes[bytes.len() - 10..]);

    let bad = app
        .client
        .get(&url)
        .header("range", format!("bytes={}-", bytes.len() + 5))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 416);
    assert_eq!(
        bad.headers()["content-range"],
        format!("bytes */{}", bytes.len()).as_str()
    );

    let cached = app
        .client
        .get(&url)
        .header("if-none-match", format!("\"{sha}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);

    let missing = app
        .client
        .get(app.url(&format!("/media/{}", "0".repeat(64))))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn approval_goes_from_draft_through_pending_to_approved_and_refuses_wrong_moves() {
    let app = spawn_app().await;
    let (_, m) = json(app.upload_media(&make_audio(spec("flac", 16000, 1))).await).await;
    let sha = m["sha256"].as_str().unwrap().to_string();
    let p = |a: &str| format!("/api/v1/media/{sha}/{a}");
    assert!(
        !nguon_server::store::media::is_approved(&app.state().store, &sha)
            .await
            .unwrap()
    );

    let (s, b) = json(app.post_json(&p("submit"), &json!({})).await).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("pending")), "{b}");
    let (s, b) = json(app.post_json(&p("submit"), &json!({})).await).await;
    assert_eq!(s, 409, "{b}");
    let (s, b) = json(app.post_json(&p("approve"), &json!({ "note": "ok" })).await).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("approved")), "{b}");
    assert_eq!(b["status_note"], "ok");
    let (s, b) = json(app.post_json(&p("approve"), &json!({})).await).await;
    assert_eq!(s, 409, "approved twice: {b}");
    let (s, _) = json(app.post_json(&p("reject"), &json!({ "note": "late" })).await).await;
    assert_eq!(s, 409);
    assert!(
        nguon_server::store::media::is_approved(&app.state().store, &sha)
            .await
            .unwrap()
    );

    // Another file: rejected from pending, then resubmitted.
    let (_, m2) = json(app.upload_media(&make_audio(spec("wav", 16000, 1))).await).await;
    let sha2 = m2["sha256"].as_str().unwrap().to_string();
    let (s, _) = json(
        app.post_json(&format!("/api/v1/media/{sha2}/submit"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = json(
        app.post_json(
            &format!("/api/v1/media/{sha2}/reject"),
            &json!({ "note": "sai chính tả" }),
        )
        .await,
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("rejected")), "{b}");
    let (s, _) = json(
        app.post_json(&format!("/api/v1/media/{sha2}/approve"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(s, 409, "rejected media cannot be approved without resubmission");
    let (s, _) = json(
        app.post_json(&format!("/api/v1/media/{}/approve", "a".repeat(64)), &json!({}))
            .await,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = json(app.get_anon(&format!("/api/v1/media/{sha2}")).await).await;
    assert_eq!(s, 401);
}

/// A one-second 16-bit mono WAV whose content depends on `seed` (distinct files, no tools).
fn tone_wav(seed: u32) -> Vec<u8> {
    let rate = 8000u32;
    let freq = 200.0 + seed as f64 * 37.0;
    let pcm = nguon_server::domain::speech::loudness::Pcm {
        sample_rate: rate,
        channels: 1,
        samples: (0..rate)
            .map(|i| ((i as f64 * freq * std::f64::consts::TAU / rate as f64).sin() * 8000.0) as i16)
            .collect(),
    };
    pcm.to_wav()
}

#[tokio::test]
async fn two_concurrent_reviews_of_one_pending_file_give_one_success_and_one_409_naming_the_status() {
    let app = spawn_app().await;
    for round in 0..6u32 {
        let (s, m) = json(app.upload("/api/v1/media", tone_wav(round), "tone.wav").await).await;
        assert_eq!(s, 201, "{m}");
        let sha = m["sha256"].as_str().unwrap().to_string();
        let (s, _) = json(
            app.post_json(&format!("/api/v1/media/{sha}/submit"), &json!({}))
                .await,
        )
        .await;
        assert_eq!(s, 200);
        // Two approvers at once: twice `approve`, or `approve` against `reject`.
        let second = if round % 2 == 0 { "approve" } else { "reject" };
        let (path_a, path_b) = (
            format!("/api/v1/media/{sha}/approve"),
            format!("/api/v1/media/{sha}/{second}"),
        );
        let (note_a, note_b) = (json!({"note": "a"}), json!({"note": "b"}));
        let (a, b) = tokio::join!(app.post_json(&path_a, &note_a), app.post_json(&path_b, &note_b));
        let (a, b) = (json(a).await, json(b).await);
        let (won, lost) = match (a.0, b.0) {
            (200, 409) => (a.1, b.1),
            (409, 200) => (b.1, a.1),
            other => panic!(
                "round {round}: want one 200 and one 409, got {other:?}: {} / {}",
                a.1, b.1
            ),
        };
        let status = won["status"].as_str().unwrap();
        let message = lost["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("is `{status}`")),
            "round {round}: the 409 names the status the winner left: {message}"
        );
        let (_, stored) = json(app.get(&format!("/api/v1/media/{sha}")).await).await;
        assert_eq!(stored["status"], status);
        assert_eq!(stored["status_note"], won["status_note"]);
        let reviews = nguon_server::store::audit::recent(&app.state().store, 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.entity == format!("media:{sha}"))
            .filter(|e| e.action == "media.approve" || e.action == "media.reject")
            .count();
        assert_eq!(reviews, 1, "round {round}: one audit entry for one review");
    }
}

#[tokio::test]
async fn an_upload_and_each_review_step_are_audited_with_the_record_before_and_after() {
    let app = spawn_app().await;
    let (_, m) = json(app.upload("/api/v1/media", tone_wav(99), "tone.wav").await).await;
    let sha = m["sha256"].as_str().unwrap().to_string();
    for step in ["submit", "approve"] {
        let (s, _) = json(
            app.post_json(&format!("/api/v1/media/{sha}/{step}"), &json!({}))
                .await,
        )
        .await;
        assert_eq!(s, 200);
    }
    // A duplicate upload stores nothing and audits nothing.
    let (s, _) = json(app.upload("/api/v1/media", tone_wav(99), "again.wav").await).await;
    assert_eq!(s, 200);
    let mut entries: Vec<_> = nguon_server::store::audit::recent(&app.state().store, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.entity == format!("media:{sha}"))
        .collect();
    entries.reverse();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["media.upload", "media.submit", "media.approve"]);
    let status = |j: &Option<String>| {
        j.as_deref()
            .map(|s| serde_json::from_str::<serde_json::Value>(s).unwrap()["status"].clone())
    };
    assert_eq!(entries[0].before, None);
    assert_eq!(status(&entries[0].after), Some(json!("draft")));
    assert_eq!(status(&entries[2].before), Some(json!("pending")));
    assert_eq!(status(&entries[2].after), Some(json!("approved")));
}

/// Approval as another instance sharing the database records it: straight in the database,
/// without this instance's use case.
async fn approve_elsewhere(app: &TestApp, sha: &str) {
    use nguon_server::domain::review::ReviewStatus;
    use nguon_server::store::review::{Reviewed, set_status};
    let mut tx = app.state().store.begin_write().await.unwrap();
    let from = [ReviewStatus::Draft, ReviewStatus::Pending];
    let moved = set_status(
        &mut tx,
        Reviewed::Media,
        sha,
        &from,
        ReviewStatus::Approved,
        None,
        1,
    )
    .await
    .unwrap();
    assert!(moved);
    tx.commit().await.unwrap();
}

/// Issue 14, "the storm": an emergency makes every device fetch one clip at once. Once a file is
/// known approved (final: no step leaves it) its bytes are served without the database, with
/// the headers a caching proxy or CDN needs; a file not yet approved is looked up every time, so
/// an approval recorded by another instance is seen at once.
#[tokio::test]
async fn approved_media_is_served_without_the_database_and_a_refusal_is_never_remembered() {
    let app = spawn_app().await;
    let bytes = std::fs::read(make_audio(spec("wav", 8000, 1))).unwrap();
    let (_, m) = json(app.upload("/api/v1/media", bytes.clone(), "x.wav").await).await;
    let sha = m["sha256"].as_str().unwrap().to_string();
    let rendition = m["loudness"]["rendition"]["sha256"].as_str().unwrap().to_string();
    let (_, other) = json(app.upload_media(&make_audio(spec("flac", 16000, 1))).await).await;
    let draft = other["sha256"].as_str().unwrap().to_string();
    let get = |sha: &str, etag: Option<&str>| {
        let mut r = app.client.get(app.url(&format!("/media/{sha}")));
        if let Some(e) = etag {
            r = r.header("if-none-match", e);
        }
        r.send()
    };
    // A draft: 404 to a device, asked twice (the refusal is not remembered)...
    for _ in 0..2 {
        assert_eq!(get(&sha, None).await.unwrap().status(), 404);
        assert_eq!(get(&rendition, None).await.unwrap().status(), 404);
    }
    // ... so its approval by another instance is served at once, original and rendition.
    approve_elsewhere(&app, &sha).await;
    for s in [&sha, &rendition] {
        let r = get(s, None).await.unwrap();
        assert_eq!(r.status(), 200, "{s}");
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
    }
    // The database goes away: the known approved file is still served, whole, with its
    // validators, and a conditional request is 304; the draft is not served.
    app.state().store.pool.close().await;
    let r = get(&sha, None).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], format!("\"{sha}\"").as_str());
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let r = get(&sha, Some(&format!("\"{sha}\""))).await.unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(get(&rendition, None).await.unwrap().status(), 200);
    let r = get(&draft, None).await.unwrap();
    assert!(r.status().is_server_error(), "{}", r.status());
}
