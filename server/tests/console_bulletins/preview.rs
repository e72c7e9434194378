//! The text-to-speech preview of the bulletin editor, with and without a browser.

use super::*;

#[tokio::test]
async fn the_preview_button_returns_playable_speech_as_a_media_item() {
    let app = spawn_app().await;
    user(&app, "bientap", "editor", &[], "mat-khau-bien-tap").await;
    user(&app, "xem", "viewer", &[], "mat-khau-nguoi-xem").await;
    let c = client();
    let s = login(&app, &c, "bientap", "mat-khau-bien-tap").await;
    let fields = [
        ("title", "Thông báo"),
        ("body", "UBND xã họp dân lúc 7h30 ngày 15/6."),
        ("voice", "vi-vn-x-south"),
        ("speed", "160"),
    ];
    let r = c
        .post(app.url("/console/tts/preview"))
        .header("cookie", &s.cookie)
        .header("x-csrf-token", &s.csrf)
        .header("accept", "application/json")
        .form_pairs(&fields)
        .send()
        .await
        .unwrap();
    let (st, p) = json(r).await;
    assert_eq!(st, 200, "{p}");
    let sha = p["sha256"].as_str().unwrap().to_string();
    assert_eq!(p["url"], format!("/media/{sha}"));
    let audio = app.get(&format!("/media/{sha}")).await.bytes().await.unwrap();
    assert_eq!(hex::encode(Sha256::digest(&audio)), sha);
    let secs = wav_seconds(&audio);
    assert!(secs > 1.0, "speech of {secs} s");
    assert!(
        (p["duration_ms"].as_i64().unwrap() as f64 / 1000.0 - secs).abs() < 0.1,
        "duration {} ms vs the header's {secs} s",
        p["duration_ms"]
    );
    let (_, m) = json(app.get(&format!("/api/v1/media/{sha}")).await).await;
    assert_eq!(m["status"], "draft", "a preview is never broadcast by itself");
    // A slower voice reads the same text for longer.
    let r = c
        .post(app.url("/console/tts/preview"))
        .header("cookie", &s.cookie)
        .header("x-csrf-token", &s.csrf)
        .header("accept", "application/json")
        .form_pairs(&[fields[0], fields[1], fields[2], ("speed", "90")])
        .send()
        .await
        .unwrap();
    let (_, slow) = json(r).await;
    assert!(slow["duration_ms"].as_i64().unwrap() > p["duration_ms"].as_i64().unwrap());

    // Without a CSRF token, as a viewer, or with nothing to read: refused, with a clear message.
    let r = c
        .post(app.url("/console/tts/preview"))
        .header("cookie", &s.cookie)
        .header("accept", "application/json")
        .form_pairs(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let cv = client();
    let sv = login(&app, &cv, "xem", "mat-khau-nguoi-xem").await;
    let r = cv
        .post(app.url("/console/tts/preview"))
        .header("cookie", &sv.cookie)
        .header("x-csrf-token", &sv.csrf)
        .header("accept", "application/json")
        .form_pairs(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(app.url("/console/tts/preview"))
        .header("cookie", &s.cookie)
        .header("x-csrf-token", &s.csrf)
        .header("accept", "application/json")
        .form_pairs(&[("title", " "), ("body", "")])
        .send()
        .await
        .unwrap();
    let (st, e) = json(r).await;
    assert_eq!(st, 400);
    assert_eq!(e["error"]["message"], "Chưa có nội dung để đọc.");

    // Without JavaScript: the form's button re-renders the page with a player.
    let r = post_form(
        &app,
        &c,
        &s,
        "/console/bulletins/new",
        &[
            Part::Text("csrf", &s.csrf),
            Part::Text("voice", "vi-vn-x-south"),
            Part::Text("speed", "160"),
            Part::Text("v0_title", "Thông báo"),
            Part::Text("v0_body", "UBND xã họp dân lúc 7h30 ngày 15/6."),
            Part::Text("action", "preview:0"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains(&format!(
            "id=\"tts-audio-0\" preload=\"metadata\" src=\"/media/{sha}\""
        )),
        "same text and voice, same speech: {html}"
    );
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM bulletins").await, 0);
    // …and a plain form post is sent to the audio.
    let r = c
        .post(app.url("/console/tts/preview"))
        .header("cookie", &s.cookie)
        .form_pairs(&[
            ("csrf", s.csrf.as_str()),
            fields[0],
            fields[1],
            fields[2],
            fields[3],
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("/media/{sha}").as_str());
}

#[tokio::test]
async fn in_a_browser_the_editor_previews_the_speech_of_the_bulletin_being_written() {
    let app = spawn_app().await;
    let (_p, a, _b) = province(&app).await;
    user(&app, "bientap", "editor", &[&a], "mat-khau-bien-tap").await;
    let d = Driver::start(1280, 1400, "console").await;
    d.login(&app.base, "bientap", "mat-khau-bien-tap").await;
    d.goto(&app.url("/console/bulletins")).await;
    d.click("#bulletin-new").await;
    d.wait_for(
        "the editor form",
        "return !!document.getElementById('bulletin-form')",
        WAIT,
    )
    .await;
    d.type_into("#v0_title", "Thông báo tiêm chủng").await;
    d.type_into(
        "#v0_body",
        "Trạm y tế xã tiêm chủng miễn phí lúc 7h30 ngày 15/6 cho trẻ em dưới 5 tuổi.",
    )
    .await;
    d.eval(&format!(
        "document.getElementById('priority').value = 'priority';
         document.querySelector('#areas option[value=\"{a}\"]').selected = true;
         document.getElementById('voice').value = 'vi-vn-x-central';
         document.getElementById('valid_from').value = '2030-06-01T07:00';
         document.getElementById('valid_until').value = '2030-06-15T17:00'; return true"
    ))
    .await;
    d.click("#tts-0").await;
    d.wait_for(
        "the preview player with audio",
        "const a = document.getElementById('tts-audio-0');
         return !!a && !a.hidden && a.src.includes('/media/') && a.readyState >= 1 && a.duration > 0",
        WAIT,
    )
    .await;
    let v: Value = d
        .eval("const a = document.getElementById('tts-audio-0'); return {src: a.getAttribute('src'), duration: a.duration, path: location.pathname}")
        .await;
    assert!(v["duration"].as_f64().unwrap() > 1.0, "{v}");
    assert_eq!(v["path"], "/console/bulletins/new", "the page did not reload");
    let sha = v["src"]
        .as_str()
        .unwrap()
        .trim_start_matches("/media/")
        .to_string();
    let (_, m) = json(app.get(&format!("/api/v1/media/{sha}")).await).await;
    assert!(
        m["title"].as_str().unwrap().contains("Thông báo tiêm chủng"),
        "{m}"
    );
    d.screenshot("bulletin-01-tts-preview").await;
    // Saved as a draft from the same page.
    d.click("#save-draft").await;
    d.wait_for(
        "the saved bulletin",
        "return location.pathname.startsWith('/console/bulletins/') && !!document.getElementById('bulletin-status')",
        WAIT,
    )
    .await;
    assert!(d.text().await.contains("Đã lưu bản tin."));
    d.screenshot("bulletin-02-saved").await;
    let (_, list) = json(app.get("/api/v1/bulletins").await).await;
    assert_eq!(list[0]["variants"][0]["title"], "Thông báo tiêm chủng");
    assert_eq!(list[0]["priority"], "priority");
    assert_eq!(list[0]["areas"], json!([a]));
}
