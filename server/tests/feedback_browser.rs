//! The public feedback form in a real headless Chromium at 390×844 (issue 15): a citizen picks
//! the area, writes, attaches a photo and sends; the form's script solves the server's
//! proof-of-work challenge (the default difficulty, 16 bits) before the form goes; the page
//! shows the tracking code; staff answer; the citizen opens the status page by the code and reads
//! the answer. The page does not scroll sideways, and the browser logs no error. Screenshots go to
//! `target/test-artifacts/feedback/*.png`.

use std::io::Cursor;
use std::time::Duration;

use serde_json::json;

use crate::common;
use crate::console_support::two_communes;
use crate::webdriver::Driver;

#[tokio::test]
async fn a_citizen_sends_feedback_with_a_photo_from_a_phone_and_later_reads_the_answer() {
    let app = common::spawn_app_with(|s| s.feedback.per_ip_per_minute = 100).await;
    assert_eq!(app.settings.feedback.pow_bits, 16, "the default difficulty");
    let t = two_communes(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("loa-hong.jpg");
    let img = image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Jpeg)
        .unwrap();
    std::fs::write(&photo, bytes).unwrap();

    let d = Driver::start(390, 844, "feedback").await;
    d.resize(390, 844).await;
    d.goto(&app.url("/feedback")).await;
    let dims = d
        .eval("return [document.documentElement.scrollWidth, window.innerWidth]")
        .await;
    assert!(
        dims[0].as_u64() <= dims[1].as_u64(),
        "the form fits a phone: {dims}"
    );
    d.eval(&format!(
        "document.getElementById('area').value = '{}'; return true",
        t.mine
    ))
    .await;
    d.type_into("#text", "Loa thôn 5 bị rè từ tuần trước, nghe không rõ.")
        .await;
    d.type_into("#photo", photo.to_str().unwrap()).await;
    d.screenshot("form").await;
    d.click("#feedback-form button[type=submit]").await;
    d.wait_for(
        "the tracking code",
        "return document.getElementById('tracking-code') !== null",
        Duration::from_secs(60),
    )
    .await;
    d.screenshot("received").await;
    let code = d
        .eval("return document.getElementById('tracking-code').textContent.trim()")
        .await;
    let code = code.as_str().unwrap().to_string();
    assert!(code.starts_with("PA-"), "{code}");

    // The Department answers.
    let (_, list) = common::json(app.get("/api/v1/feedback").await).await;
    let item = list
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code.as_str())
        .unwrap()
        .clone();
    assert_eq!(item["photos"], json!([1]), "the photo came with it");
    assert!(
        item["policy_id"].is_null() && item["name"].is_null(),
        "empty fields stay empty: {item}"
    );
    let id = item["id"].as_str().unwrap();
    let answer = "Xã đã thay loa thôn 5 ngày 02/12.";
    let (s, _) = common::json(
        app.post_json(
            &format!("/api/v1/feedback/{id}/answer"),
            &json!({"answer": answer}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200);

    // Later, the citizen looks the code up (typed in lower case).
    d.goto(&app.url("/feedback/track")).await;
    d.type_into("#code", &code.to_lowercase()).await;
    d.click("form button[type=submit]").await;
    d.wait_for(
        "the answer",
        "return document.getElementById('answer') !== null",
        Duration::from_secs(20),
    )
    .await;
    let shown = d
        .eval("return document.getElementById('answer').textContent")
        .await;
    assert_eq!(shown.as_str().unwrap().trim(), answer);
    assert_eq!(
        d.eval("return document.getElementById('status').dataset.status")
            .await,
        "answered"
    );
    d.screenshot("answered").await;
    let errors = d.browser_errors(&["favicon.ico"]).await;
    assert!(errors.is_empty(), "{errors:?}");
}
