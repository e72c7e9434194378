//! The public site in a real headless Chromium at a phone's size (390×844, issue 15): a citizen
//! opens a bulletin from its short link (what its QR code holds), lands on the bulletin's page,
//! which fits the screen without sideways scrolling, and listens to it with the page's audio
//! player. Screenshots go to `target/test-artifacts/public/*.png`.

use crate::common;
use crate::dispatch_support;
use crate::webdriver;

use std::time::Duration;

use common::{json, spawn_app};
use dispatch_support::{area, uid};
use serde_json::json;
use webdriver::Driver;

#[tokio::test]
async fn a_citizen_opens_a_bulletin_from_its_short_link_on_a_phone_and_listens_to_it() {
    let app = spawn_app().await;
    let xa = uid("xa");
    area(&app, &xa, None).await;
    let (s, b) = json(
        app.post_json(
            "/api/v1/bulletins",
            &json!({"title": "Lịch cấp nước sinh hoạt", "body": "Thôn Nà Lốc được cấp nước từ 6 giờ đến 9 giờ sáng thứ Hai.", "areas": [xa]}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    for step in ["submit", "approve", "publish"] {
        let (s, b) = json(
            app.post_json(&format!("/api/v1/bulletins/{id}/{step}"), &json!({}))
                .await,
        )
        .await;
        assert_eq!(s, 200, "{step}: {b}");
    }
    let short = app.url(&format!("/b/{}", nguon_server::domain::shortlink::code(&id)));

    let d = Driver::start(390, 844, "public").await;
    d.goto(&short).await;
    assert_eq!(d.path().await, format!("/ban-tin/{id}"));
    assert!(d.text().await.contains("Lịch cấp nước sinh hoạt"));
    let fits = d
        .eval("return document.documentElement.scrollWidth <= window.innerWidth")
        .await;
    assert_eq!(fits, json!(true), "the page scrolls sideways at 390 px");
    let label = d
        .eval("return document.querySelector('audio').getAttribute('aria-label')")
        .await;
    assert!(label.as_str().unwrap_or_default().contains("Nghe lại"), "{label}");
    d.screenshot("bulletin").await;
    // The citizen touches the page (a user gesture: browsers start sound only after one), then
    // plays; muted, as the test machine has no sound card.
    d.click("h1").await;
    let started = d
        .eval("const a = document.querySelector('audio'); a.muted = true; return a.play().then(() => 'playing', e => String(e));")
        .await;
    assert_eq!(started, json!("playing"), "the audio does not play");
    d.wait_for(
        "the audio to advance",
        "const a = document.querySelector('audio'); return a.currentTime > 0.2 && a.error === null;",
        Duration::from_secs(20),
    )
    .await;
    d.screenshot("playing").await;
    assert!(
        d.browser_errors(&[]).await.is_empty(),
        "{:?}",
        d.browser_errors(&[]).await
    );
}
