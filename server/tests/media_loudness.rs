//! Loudness of uploads (issue 18): real MP3 files made with espeak-ng, sox and lame — a quiet
//! one (about −36 LUFS) and a loud, clipped one (about −11 LUFS, true peak over 0 dBTP) — are
//! measured on upload, the original's bytes are kept exactly, and the normalised rendition stored
//! beside it measures −16 LUFS ±1 LU and at most −1 dBTP by ffmpeg's own EBU R128 meter (an
//! independent implementation). The rendition is served on its original's terms, and the
//! library (API and console) shows both figures.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::common::{self, TestApp, json as body, spawn_app};
use crate::console_admin::get_page;
use crate::console_support::{client, login, user};

/// Integrated loudness (LUFS) and true peak (dBTP) as ffmpeg's `ebur128` filter measures them.
pub fn ffmpeg_r128(path: &Path) -> (f64, f64) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(path)
        .args(["-af", "ebur128=peak=true", "-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    let log = String::from_utf8_lossy(&out.stderr);
    let summary = log.rsplit("Summary:").next().expect("ebur128 summary");
    let figure = |key: &str| -> f64 {
        let line = summary
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap_or_else(|| panic!("{key} in {summary}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (figure("I:"), figure("Peak:"))
}

fn sox(args: &[&str]) {
    let st = Command::new("sox").args(args).status().expect("run sox");
    assert!(st.success(), "sox {args:?}");
}

/// A quiet stereo MP3 (speech 20 dB down) and a loud, clipped mono MP3 (speech 10 dB up). Made
/// anew each call (sox dithers: the bytes differ from one call to the next).
pub fn clips(dir: &Path) -> [(PathBuf, &'static str); 2] {
    let speech = common::base_speech();
    let s = speech.to_str().unwrap();
    let (qw, lw) = (dir.join("quiet.wav"), dir.join("loud.wav"));
    sox(&[s, "-r", "44100", "-c", "2", qw.to_str().unwrap(), "vol", "-20dB"]);
    sox(&[
        "-V1",
        s,
        "-r",
        "44100",
        "-c",
        "1",
        lw.to_str().unwrap(),
        "gain",
        "10",
    ]);
    let mut out = Vec::new();
    for (wav, name) in [(qw, "quiet.mp3"), (lw, "loud.mp3")] {
        let mp3 = dir.join(name);
        let st = Command::new("lame")
            .args(["--silent", "-b", "128"])
            .arg(&wav)
            .arg(&mp3)
            .status()
            .unwrap();
        assert!(st.success());
        out.push((mp3, name));
    }
    out.try_into().unwrap()
}

fn sha_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

async fn bytes(app: &TestApp, path: &str, auth: bool) -> (u16, Vec<u8>) {
    let r = if auth {
        app.get(path).await
    } else {
        app.get_anon(path).await
    };
    let s = r.status().as_u16();
    (s, r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn an_upload_is_measured_and_a_normalised_rendition_is_stored_beside_the_untouched_original() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let mut renditions = Vec::new();
    let files = clips(dir.path());
    for (file, name) in files.clone() {
        let original = std::fs::read(&file).unwrap();
        let (in_lufs, in_tp) = ffmpeg_r128(&file);
        let (s, m) = body(app.upload_media(&file).await).await;
        assert_eq!(s, 201, "{name}: {m}");
        let sha = m["sha256"].as_str().unwrap().to_string();
        assert_eq!(sha, sha_hex(&original), "{name}");
        let l = &m["loudness"];
        let lufs = l["loudness_lufs"]
            .as_f64()
            .unwrap_or_else(|| panic!("{name}: {m}"));
        // The original's figures agree with ffmpeg's meter.
        assert!(
            (lufs - in_lufs).abs() < 1.0,
            "{name}: {lufs} LUFS, ffmpeg {in_lufs}"
        );
        assert!(
            (l["true_peak_dbtp"].as_f64().unwrap() - in_tp).abs() < 1.0,
            "{name}: {l} vs {in_tp}"
        );
        assert_eq!(l["target_lufs"], -16.0);
        let r = &l["rendition"];
        let rsha = r["sha256"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no rendition: {l}"))
            .to_string();
        assert_ne!(rsha, sha);
        assert!(
            (r["loudness_lufs"].as_f64().unwrap() + 16.0).abs() <= 1.0,
            "{name}: {r}"
        );
        assert!(
            r["true_peak_dbtp"].as_f64().unwrap() <= -1.0 + 1e-6,
            "{name}: {r}"
        );
        // The original is kept byte for byte, on disk and at its address.
        let on_disk = std::fs::read(app.data_dir.join("media").join(&sha)).unwrap();
        assert_eq!(sha_hex(&on_disk), sha, "{name}: stored original altered");
        let (s, served) = bytes(&app, &format!("/media/{sha}"), true).await;
        assert_eq!((s, sha_hex(&served)), (200, sha.clone()), "{name}");
        // The rendition: a WAV under its own content address, −16 LUFS ±1 by ffmpeg too.
        let (s, wav) = bytes(&app, &format!("/media/{rsha}"), true).await;
        assert_eq!(s, 200, "{name}: rendition served to who sees the original");
        assert_eq!(sha_hex(&wav), rsha);
        assert_eq!(wav.len() as i64, r["size"].as_i64().unwrap());
        assert!(wav.starts_with(b"RIFF"));
        let path = dir.path().join(format!("{name}.rendition.wav"));
        std::fs::write(&path, &wav).unwrap();
        let (out_lufs, out_tp) = ffmpeg_r128(&path);
        assert!(
            (out_lufs + 16.0).abs() <= 1.0,
            "{name}: rendition {out_lufs} LUFS by ffmpeg"
        );
        assert!(
            out_tp <= -0.8,
            "{name}: rendition true peak {out_tp} dBTP by ffmpeg"
        );
        let dur = r["duration_ms"].as_i64().unwrap();
        assert!(
            (dur - m["duration_ms"].as_i64().unwrap()).abs() < 100,
            "{name}: {dur} vs {m}"
        );
        eprintln!(
            "{name}: original {in_lufs} LUFS / {in_tp} dBTP (nguon {lufs:.2}) -> rendition {out_lufs} LUFS / {out_tp} dBTP by ffmpeg (nguon {} / {}), gain {} dB",
            r["loudness_lufs"], r["true_peak_dbtp"], r["gain_db"]
        );
        // Not approved yet: nobody without credentials gets the original or its rendition.
        assert_eq!(bytes(&app, &format!("/media/{rsha}"), false).await.0, 404);
        renditions.push((sha, rsha, name));
    }
    assert_eq!(app.files_in("media").len(), 4, "two originals, two renditions");
    assert!(app.files_in("tmp").is_empty());
    // The same upload again is a duplicate: nothing more is stored.
    let (file, _) = &files[0];
    let (s, dup) = body(app.upload_media(file).await).await;
    assert_eq!((s, dup["duplicate"].as_bool()), (200, Some(true)), "{dup}");
    assert_eq!(
        dup["loudness"]["rendition"]["sha256"].as_str(),
        Some(renditions[0].1.as_str())
    );
    assert_eq!(app.files_in("media").len(), 4);
    // The library lists both figures.
    let (_, list) = body(app.get("/api/v1/media").await).await;
    for (sha, rsha, name) in &renditions {
        let row = list
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["sha256"] == sha.as_str())
            .unwrap();
        assert_eq!(
            row["loudness"]["rendition"]["sha256"].as_str(),
            Some(rsha.as_str()),
            "{name}: {row}"
        );
    }
    // Approved: the rendition is public like its original (devices fetch it by its hash).
    let (sha, rsha, _) = &renditions[0];
    let (s, a) = body(
        app.post_json(&format!("/api/v1/media/{sha}/approve"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(s, 200, "{a}");
    assert!(a["loudness"]["rendition"].is_object(), "{a}");
    assert_eq!(bytes(&app, &format!("/media/{rsha}"), false).await.0, 200);
    // The console's detail page shows the original's figures and the rendition's.
    user(&app, "loud-admin", "admin", &[], "mật-khẩu-đủ-dài-42").await;
    let c = client();
    let session = login(&app, &c, "loud-admin", "mật-khẩu-đủ-dài-42").await;
    let (s, html) = get_page(&app, &session.cookie, &format!("/console/media/{sha}")).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("id=\"media-loudness\"") && html.contains("id=\"media-rendition\""),
        "{html}"
    );
    assert!(
        html.contains("LUFS") && html.contains("dBTP") && html.contains(rsha.as_str()),
        "{html}"
    );
    let (_, lib) = get_page(&app, &session.cookie, "/console/media").await;
    assert!(lib.contains("→ −16"), "the library shows before → after: {lib}");
}

#[tokio::test]
async fn an_upload_already_at_the_target_is_played_as_it_is() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    // A file at −16 LUFS: an already-normalised rendition uploaded again.
    let (file, _) = &clips(dir.path())[1];
    let (_, m) = body(app.upload_media(file).await).await;
    let rsha = m["loudness"]["rendition"]["sha256"].as_str().unwrap().to_string();
    let (_, wav) = bytes(&app, &format!("/media/{rsha}"), true).await;
    let (s, again) = body(app.upload("/api/v1/media", wav, "normalised.wav").await).await;
    assert_eq!(s, 201, "{again}");
    assert!(again["loudness"]["rendition"].is_null(), "{again}");
    let note = again["loudness"]["note"].as_str().unwrap_or_default();
    assert!(note.contains("already at the target"), "{again}");
}
