//! Live broadcast from the console page in a real browser (issue 17): headless Chromium with a
//! fake microphone playing a 440 Hz tone (`--use-file-for-fake-audio-capture`), an operator on
//! `/console/live` ticks their commune and presses talk; the page's AudioWorklet and WebSocket
//! bring the tone to the server, whose stream a listener reads as MP3 and whose recording holds
//! audio (not silence); stop ends the session. (The agents' side of a session is the system test
//! `cargo test -p nguon-tests --test live`.)

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::common::{self, json as body};
use crate::console_support::{ConsoleDriver, Driver, two_communes, user, wav};
use crate::dispatch_support::device;

async fn live_sessions(app: &common::TestApp) -> Vec<Value> {
    let (_, b) = body(app.get("/api/v1/live").await).await;
    b.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn an_operator_goes_live_from_the_console_with_the_browsers_microphone() {
    let app = common::spawn_app().await;
    let areas = two_communes(&app).await;
    device(&app, &app.unique("lc"), &areas.mine, "live-password-1", None).await;
    let name = app.unique("vanhanh");
    user(&app, &name, "operator", &[&areas.mine], "mat-khau-van-hanh").await;
    let tone = app.data_dir.join("tone.wav");
    std::fs::write(&tone, wav(10)).unwrap();
    let d = Driver::start_with(
        390,
        844,
        "live_browser",
        &[
            "--use-fake-ui-for-media-stream".into(),
            "--use-fake-device-for-media-stream".into(),
            format!("--use-file-for-fake-audio-capture={}", tone.display()),
            "--autoplay-policy=no-user-gesture-required".into(),
        ],
    )
    .await;
    d.login(&app.base, &name, "mat-khau-van-hanh").await;
    d.goto(&format!("{}/console/live", app.base)).await;
    d.click(&format!("input[name=area][value=\"{}\"]", areas.mine))
        .await;
    d.click("#live-talk").await;
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    let id = loop {
        if let Some(s) = live_sessions(&app).await.first() {
            break s["id"].as_str().unwrap().to_string();
        }
        if tokio::time::Instant::now() > until {
            d.screenshot("no-session").await;
            panic!("no session opened; page says: {}", d.text().await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // A listener gets MP3 frames of the browser's microphone.
    let r = app
        .client
        .get(app.url(&format!("/live/{id}")))
        .send()
        .await
        .unwrap();
    let mut stream = r.bytes_stream();
    let mut got = 0;
    while got < 6_000 {
        let chunk = tokio::time::timeout(Duration::from_secs(15), stream.next())
            .await
            .expect("stream data from the browser")
            .expect("stream open")
            .expect("chunk");
        got += chunk.len();
    }
    d.wait_for(
        "the page to say it is on air",
        "return !document.getElementById('live-stop').hidden",
        Duration::from_secs(10),
    )
    .await;
    d.screenshot("on-air").await;
    d.click("#live-stop").await;
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    let st = loop {
        let (_, st) = body(app.get(&format!("/api/v1/live/{id}")).await).await;
        if st["session"]["media_sha256"].is_string() {
            break st;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "not ended and recorded: {st}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(st["live"], json!(false), "{st}");
    assert!(
        st["session"]["end_reason"].as_str().unwrap().starts_with("stop"),
        "{st}"
    );
    let sha = st["session"]["media_sha256"].as_str().unwrap();
    let (_, m) = body(app.get(&format!("/api/v1/media/{sha}")).await).await;
    // The tone, not silence: a measured loudness (silence has none).
    assert!(m["loudness"]["loudness_lufs"].is_number(), "{m}");
}
