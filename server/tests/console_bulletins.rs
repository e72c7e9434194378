//! The console's bulletin pages (issue 7): the editor form (Vietnamese and H'Mông variants, an
//! image, a recorded audio file), validation that re-renders the form and stores nothing,
//! escaping, the text-to-speech preview, the approval queue, and publishing to one commune's
//! boards. Plus one headless Chromium test of the preview button (screenshots in
//! `target/test-artifacts/console/`).

use crate::common;
use crate::console_support;
use crate::dispatch_support;

use std::time::Duration;

use chrono::TimeZone;
use common::{TestApp, json, spawn_app, tiny_png};
use console_support::*;
use dispatch_support::uid;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Row;

/// One part of a multipart form.
enum Part<'a> {
    Text(&'a str, &'a str),
    File(&'a str, &'a str, Vec<u8>),
}

/// A `multipart/form-data` body (content type, bytes), parts in order.
fn multipart(parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let boundary = format!("----nguon-console-{}", common::random_suffix());
    let mut body = Vec::new();
    for p in parts {
        match p {
            Part::Text(name, value) => body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                    .as_bytes(),
            ),
            Part::File(name, filename, bytes) => {
                body.extend_from_slice(
                    format!(
                        "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n\
                         Content-Type: application/octet-stream\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(bytes);
                body.extend_from_slice(b"\r\n");
            }
        }
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// POST the editor form as a logged-in user.
async fn post_form(
    app: &TestApp,
    c: &reqwest::Client,
    s: &Session,
    path: &str,
    parts: &[Part<'_>],
) -> reqwest::Response {
    let (ctype, body) = multipart(parts);
    c.post(app.url(path))
        .header("cookie", &s.cookie)
        .header("content-type", ctype)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn page(app: &TestApp, c: &reqwest::Client, s: &Session, path: &str) -> (u16, String) {
    let r = c
        .get(app.url(path))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn post_pairs(
    app: &TestApp,
    c: &reqwest::Client,
    s: &Session,
    path: &str,
    pairs: &[(&str, &str)],
) -> reqwest::Response {
    c.post(app.url(path))
        .header("cookie", &s.cookie)
        .form_pairs(pairs)
        .send()
        .await
        .unwrap()
}

/// An area with a name and level.
async fn area(app: &TestApp, code: &str, name: &str, parent: Option<&str>, level: &str) {
    let (s, b) = json(
        app.post_json(
            "/api/v1/areas",
            &json!({"code": code, "name": name, "parent": parent, "level": level}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "create area {code}: {b}");
}

/// A province with two communes; returns their codes.
async fn province(app: &TestApp) -> (String, String, String) {
    let (p, a, b) = (uid("tinh"), uid("xa-a"), uid("xa-b"));
    area(app, &p, "Tỉnh Lào Cai", None, "province").await;
    area(app, &a, "Xã Bản Lầu", Some(&p), "commune").await;
    area(app, &b, "Xã Mường Khương", Some(&p), "commune").await;
    (p, a, b)
}

/// Register a board in `area` whose bearer token is `token`.
async fn board(app: &TestApp, id: &str, area: &str, token: &str) {
    let (s, b) = json(
        app.post_json(
            "/api/v1/devices",
            &json!({"id": id, "kind": "board", "area": area}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "create board: {b}");
    sqlx::query("UPDATE devices SET board_token_hash = $1 WHERE id = $2")
        .bind(hex::encode(Sha256::digest(token.as_bytes())))
        .bind(id.to_string())
        .execute(&app.state().store.pool)
        .await
        .unwrap();
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&app.state().store.pool)
        .await
        .unwrap()
        .get::<i64, _>("n")
}

/// The id in a `303 → /console/bulletins/{id}?…` answer.
fn created_id(r: &reqwest::Response) -> String {
    assert_eq!(r.status(), 303, "expected a redirect after saving");
    let loc = r.headers()["location"].to_str().unwrap();
    loc.trim_start_matches("/console/bulletins/")
        .split('?')
        .next()
        .unwrap()
        .to_string()
}

/// Unix ms of a `datetime-local` value read in Asia/Ho_Chi_Minh.
fn hcm_ms(local: &str) -> i64 {
    let t = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M").unwrap();
    chrono_tz::Asia::Ho_Chi_Minh
        .from_local_datetime(&t)
        .single()
        .unwrap()
        .timestamp_millis()
}

/// Duration in seconds of a PCM WAV file, read from its header (fmt byte rate, data size).
fn wav_seconds(b: &[u8]) -> f64 {
    assert!(
        b.len() > 44 && &b[0..4] == b"RIFF" && &b[8..12] == b"WAVE",
        "not a WAV file"
    );
    let (mut i, mut byte_rate, mut data) = (12usize, 0u32, 0u32);
    while i + 8 <= b.len() {
        let id = &b[i..i + 4];
        let len = u32::from_le_bytes([b[i + 4], b[i + 5], b[i + 6], b[i + 7]]);
        if id == b"fmt " {
            byte_rate = u32::from_le_bytes([b[i + 16], b[i + 17], b[i + 18], b[i + 19]]);
        } else if id == b"data" {
            data = len.min((b.len() - i - 8) as u32);
            break;
        }
        i += 8 + len as usize + (len as usize & 1);
    }
    assert!(byte_rate > 0, "no fmt chunk");
    f64::from(data) / f64::from(byte_rate)
}

#[tokio::test]
async fn an_editor_creates_a_bulletin_with_vietnamese_and_hmong_variants_through_the_form() {
    let app = spawn_app().await;
    let (p, a, b_code) = province(&app).await;
    user(&app, "bt-xa-a", "editor", &[&a], "mat-khau-bien-tap").await;
    let c = client();
    let s = login(&app, &c, "bt-xa-a", "mat-khau-bien-tap").await;

    // The nav links to the bulletins, between media and approvals.
    let (st, html) = page(&app, &c, &s, "/console/bulletins").await;
    assert_eq!(st, 200);
    let (m, bl, ap) = (
        html.find("href=\"/console/media\"").unwrap(),
        html.find("href=\"/console/bulletins\"").unwrap(),
        html.find("href=\"/console/approvals\"").unwrap(),
    );
    assert!(m < bl && bl < ap, "nav order");
    assert!(html.contains("Bản tin điện tử"));
    // The editor form offers only the editor's commune (and not the province above it).
    let (st, form) = page(&app, &c, &s, "/console/bulletins/new").await;
    assert_eq!(st, 200);
    assert!(form.contains(&format!("<option value=\"{a}\"")), "{form}");
    assert!(!form.contains(&format!("<option value=\"{p}\"")));
    for label in [
        "Thông thường",
        "Ưu tiên",
        "Khẩn cấp",
        "Gửi duyệt",
        "Nghe thử giọng đọc",
    ] {
        assert!(form.contains(label), "form shows {label}");
    }

    let recording = wav(2);
    let r = post_form(
        &app,
        &c,
        &s,
        "/console/bulletins/new",
        &[
            Part::Text("csrf", &s.csrf),
            Part::Text("category", "y tế"),
            Part::Text("priority", "priority"),
            Part::Text("valid_from", "2030-05-01T07:30"),
            Part::Text("valid_until", "2030-05-31T17:00"),
            Part::Text("areas", &a),
            Part::File("image", "anh.png", tiny_png()),
            Part::Text("voice", "vi"),
            Part::Text("speed", "150"),
            Part::Text("v0_lang", "vi"),
            Part::Text("v0_title", "Tiêm chủng mở rộng"),
            Part::Text(
                "v0_body",
                "Trạm y tế xã tiêm chủng **miễn phí** ngày 15/5.\r\n\r\n- Mang sổ tiêm",
            ),
            Part::File("v0_audio", "", Vec::new()),
            Part::Text("v1_lang", "hmn"),
            Part::Text("v1_title", "Txhaj tshuaj tiv thaiv"),
            Part::Text("v1_body", "Tsev kho mob txhaj tshuaj dawb."),
            Part::File("v1_audio", "hmn.wav", recording.clone()),
            Part::Text("action", "save"),
        ],
    )
    .await;
    let id = created_id(&r);

    // Stored as typed (read back through the API).
    let (st, b) = json(app.get(&format!("/api/v1/bulletins/{id}")).await).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["status"], "draft");
    assert_eq!(b["category"], "y tế");
    assert_eq!(b["priority"], "priority");
    assert_eq!(b["areas"], json!([a]));
    assert_eq!(b["valid_from"], hcm_ms("2030-05-01T07:30"));
    assert_eq!(b["valid_until"], hcm_ms("2030-05-31T17:00"));
    let langs: Vec<&str> = b["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["language"].as_str().unwrap())
        .collect();
    assert_eq!(langs, ["vi", "hmn"]);
    assert_eq!(b["variants"][0]["title"], "Tiêm chủng mở rộng");
    assert_eq!(
        b["variants"][0]["body"],
        "Trạm y tế xã tiêm chủng **miễn phí** ngày 15/5.\n\n- Mang sổ tiêm"
    );
    assert!(b["variants"][0]["audio_sha256"].is_null());
    assert_eq!(b["variants"][1]["title"], "Txhaj tshuaj tiv thaiv");
    let audio = b["variants"][1]["audio_sha256"].as_str().unwrap().to_string();
    assert_eq!(audio, hex::encode(Sha256::digest(&recording)));
    let (_, m) = json(app.get(&format!("/api/v1/media/{audio}")).await).await;
    assert_eq!(m["status"], "draft", "{m}");
    assert_eq!(b["files"].as_array().unwrap().len(), 1, "{b}");
    assert_eq!(b["files"][0]["kind"], "image");
    assert_eq!(b["files"][0]["sha256"], hex::encode(Sha256::digest(tiny_png())));
    // Audited, with the creator.
    let n = count(
        &app,
        &format!(
            "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'bulletin.create' AND actor = 'bt-xa-a' AND entity = 'bulletin:{id}'"
        ),
    )
    .await;
    assert_eq!(n, 1);

    // The editor page shows it again as stored; the list filters by status.
    let (st, html) = page(&app, &c, &s, &format!("/console/bulletins/{id}?saved=1")).await;
    assert_eq!(st, 200);
    assert!(html.contains("Đã lưu bản tin."));
    assert!(html.contains("value=\"Txhaj tshuaj tiv thaiv\""));
    assert!(html.contains(&format!("name=\"v1_audio_keep\" value=\"{audio}\"")));
    assert!(html.contains("value=\"2030-05-01T07:30\""));
    let (_, drafts) = page(&app, &c, &s, "/console/bulletins?status=draft").await;
    assert!(drafts.contains(&format!("data-id=\"{id}\"")));
    assert!(drafts.contains("Bản nháp") && drafts.contains("Ưu tiên"));
    assert!(
        drafts
            .replace("&#x2f;", "/")
            .contains("01/05/2030 07:30 – 31/05/2030 17:00"),
        "validity in Vietnamese format"
    );
    let (_, pending) = page(&app, &c, &s, "/console/bulletins?status=pending").await;
    assert!(!pending.contains(&format!("data-id=\"{id}\"")));

    // Editing keeps the recording and adds nothing unasked.
    let r = post_form(
        &app,
        &c,
        &s,
        &format!("/console/bulletins/{id}"),
        &[
            Part::Text("csrf", &s.csrf),
            Part::Text("category", "y tế"),
            Part::Text("priority", "normal"),
            Part::Text("areas", &a),
            Part::Text("v0_title", "Tiêm chủng mở rộng (sửa)"),
            Part::Text("v0_body", "Nội dung mới."),
            Part::Text("v1_lang", "hmn"),
            Part::Text("v1_title", "Txhaj tshuaj tiv thaiv"),
            Part::Text("v1_audio_keep", &audio),
            Part::Text("action", "save"),
        ],
    )
    .await;
    assert_eq!(created_id(&r), id);
    let (_, b) = json(app.get(&format!("/api/v1/bulletins/{id}")).await).await;
    assert_eq!(b["variants"][0]["title"], "Tiêm chủng mở rộng (sửa)");
    assert_eq!(b["variants"][1]["audio_sha256"], audio.as_str());
    assert!(b["valid_from"].is_null(), "cleared validity is stored as none");
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM bulletins").await, 1);

    // Another commune's editor neither sees nor edits it.
    user(&app, "bt-xa-b", "editor", &[&b_code], "mat-khau-bien-tap-2").await;
    let c2 = client();
    let s2 = login(&app, &c2, "bt-xa-b", "mat-khau-bien-tap-2").await;
    let (_, list) = page(&app, &c2, &s2, "/console/bulletins").await;
    assert!(!list.contains(&id));
    let (st, _) = page(&app, &c2, &s2, &format!("/console/bulletins/{id}")).await;
    assert_eq!(st, 403);
}

/// Post an emergency bulletin form with an image and an H'Mông recording.
#[allow(clippy::too_many_arguments)]
async fn bad_form(
    app: &TestApp,
    c: &reqwest::Client,
    cookie: &str,
    csrf: &str,
    title: &str,
    from: &str,
    until: &str,
    area: &str,
) -> (u16, String) {
    let s = Session {
        cookie: cookie.to_string(),
        csrf: csrf.to_string(),
    };
    let r = post_form(
        app,
        c,
        &s,
        "/console/bulletins/new",
        &[
            Part::Text("csrf", csrf),
            Part::Text("category", "thời tiết"),
            Part::Text("priority", "emergency"),
            Part::Text("valid_from", from),
            Part::Text("valid_until", until),
            Part::Text("areas", area),
            Part::File("image", "anh.png", tiny_png()),
            Part::Text("v0_title", title),
            Part::Text("v0_body", "Mưa lớn kéo dài, đề phòng lũ quét."),
            Part::Text("v1_lang", "hmn"),
            Part::Text("v1_title", "Nag hlob"),
            Part::File("v1_audio", "hmn.wav", wav(1)),
            Part::Text("action", "submit"),
        ],
    )
    .await;
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn a_bad_bulletin_form_is_shown_again_with_its_messages_and_nothing_is_stored() {
    let app = spawn_app().await;
    let (_p, a, b) = province(&app).await;
    user(&app, "bt-a", "editor", &[&a], "mat-khau-bien-tap").await;
    let c = client();
    let s = login(&app, &c, "bt-a", "mat-khau-bien-tap").await;
    let nothing_stored = || async {
        assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM bulletins").await, 0);
        assert_eq!(
            count(&app, "SELECT COUNT(*) AS n FROM bulletin_variants").await,
            0
        );
        assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM media").await, 0);
        assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM files").await, 0);
        assert!(app.files_in("files").is_empty());
        assert!(
            app.files_in("tmp").is_empty(),
            "spooled uploads removed: {:?}",
            app.files_in("tmp")
        );
    };
    // An empty title.
    let (st, html) = bad_form(
        &app,
        &c,
        &s.cookie,
        &s.csrf,
        "",
        "2030-06-01T08:00",
        "2030-06-02T08:00",
        &a,
    )
    .await;
    assert_eq!(st, 422, "{html}");
    assert!(
        html.contains("id=\"error-v0_title\">Vui lòng nhập tiêu đề.</span>"),
        "{html}"
    );
    assert!(
        html.contains("Mưa lớn kéo dài, đề phòng lũ quét."),
        "the text typed is kept"
    );
    assert!(html.contains("value=\"thời tiết\"") && html.contains("value=\"Nag hlob\""));
    assert!(html.contains("<option value=\"emergency\" selected>"));
    assert!(html.contains(&format!("<option value=\"{a}\" selected>")));
    nothing_stored().await;

    // The end of validity before its start.
    let (st, html) = bad_form(
        &app,
        &c,
        &s.cookie,
        &s.csrf,
        "Cảnh báo mưa lớn",
        "2030-06-02T08:00",
        "2030-06-01T08:00",
        &a,
    )
    .await;
    assert_eq!(st, 422);
    assert!(
        html.contains(
            "id=\"error-valid_until\">Thời điểm kết thúc hiệu lực phải sau thời điểm bắt đầu.</span>"
        )
    );
    assert!(html.contains("value=\"2030-06-02T08:00\"") && html.contains("value=\"Cảnh báo mưa lớn\""));
    nothing_stored().await;

    // An area outside the editor's scope.
    let (st, html) = bad_form(
        &app,
        &c,
        &s.cookie,
        &s.csrf,
        "Cảnh báo mưa lớn",
        "2030-06-01T08:00",
        "2030-06-02T08:00",
        &b,
    )
    .await;
    assert_eq!(st, 403);
    assert!(
        html.contains(&format!(
            "id=\"error-areas\">Địa bàn {b} nằm ngoài phạm vi quản lý của bạn.</span>"
        )),
        "{html}"
    );
    assert!(html.contains("value=\"Cảnh báo mưa lớn\""));
    nothing_stored().await;

    // No CSRF token: refused before anything is read.
    let (st, _) = bad_form(
        &app,
        &c,
        &s.cookie,
        "wrong",
        "Cảnh báo mưa lớn",
        "2030-06-01T08:00",
        "2030-06-02T08:00",
        &a,
    )
    .await;
    assert_eq!(st, 403);
    nothing_stored().await;

    // A picture that is not one, and a recording that is not audio.
    let r = post_form(
        &app,
        &c,
        &s,
        "/console/bulletins/new",
        &[
            Part::Text("csrf", &s.csrf),
            Part::Text("v0_title", "Thông báo"),
            Part::File("image", "anh.png", b"this is plain text, not an image".to_vec()),
            Part::Text("action", "save"),
        ],
    )
    .await;
    assert_eq!(r.status(), 415);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Tệp anh.png không phải ảnh PNG, JPEG, WebP hoặc GIF.")
    );
    nothing_stored().await;

    // A viewer has no form at all.
    user(&app, "xem", "viewer", &[], "mat-khau-nguoi-xem").await;
    let cv = client();
    let sv = login(&app, &cv, "xem", "mat-khau-nguoi-xem").await;
    let (st, _) = page(&app, &cv, &sv, "/console/bulletins/new").await;
    assert_eq!(st, 403);
    let r = post_form(
        &app,
        &cv,
        &sv,
        "/console/bulletins/new",
        &[Part::Text("csrf", &sv.csrf), Part::Text("v0_title", "x")],
    )
    .await;
    assert_eq!(r.status(), 403);

    // Adding a language re-renders the form (typed text kept), stores nothing.
    let r = post_form(
        &app,
        &c,
        &s,
        "/console/bulletins/new",
        &[
            Part::Text("csrf", &s.csrf),
            Part::Text("v0_title", "Thông báo họp dân"),
            Part::Text("action", "add"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"variant-1\"") && html.contains("value=\"Thông báo họp dân\""));
    nothing_stored().await;
}

#[tokio::test]
async fn a_script_in_a_title_is_shown_as_text_in_the_list_the_editor_and_the_queue() {
    let app = spawn_app().await;
    let (_p, a, _b) = province(&app).await;
    user(&app, "bientap", "editor", &[], "mat-khau-bien-tap").await;
    user(&app, "lanhdao", "approver", &[], "mat-khau-lanh-dao").await;
    let c = client();
    let s = login(&app, &c, "bientap", "mat-khau-bien-tap").await;
    let evil = "<script>alert(1)</script>";
    let r = post_form(
        &app,
        &c,
        &s,
        "/console/bulletins/new",
        &[
            Part::Text("csrf", &s.csrf),
            Part::Text("category", "<img src=x onerror=alert(2)>"),
            Part::Text("areas", &a),
            Part::Text("v0_title", evil),
            Part::Text("v0_body", "<b>đậm giả</b> và **đậm thật**"),
            Part::Text("action", "submit"),
        ],
    )
    .await;
    let id = created_id(&r);
    let (_, b) = json(app.get(&format!("/api/v1/bulletins/{id}")).await).await;
    assert_eq!(b["variants"][0]["title"], evil, "stored as typed");
    assert_eq!(b["status"], "pending");

    let (_, list) = page(&app, &c, &s, "/console/bulletins").await;
    let (_, editor) = page(&app, &c, &s, &format!("/console/bulletins/{id}")).await;
    let ca = client();
    let sa = login(&app, &ca, "lanhdao", "mat-khau-lanh-dao").await;
    let (_, queue) = page(&app, &ca, &sa, "/console/approvals").await;
    for (name, html) in [("list", &list), ("editor", &editor), ("queue", &queue)] {
        assert!(!html.contains(evil), "{name}: raw script tag");
        assert!(!html.contains("<img src=x"), "{name}: raw img tag");
        assert!(html.contains("&lt;script&gt;alert(1)"), "{name}: escaped title");
    }
    // The body renders through the safe Markdown renderer: HTML as text, Markdown as markup.
    assert!(
        queue.contains("&lt;b&gt;đậm giả&lt;/b&gt; và <strong>đậm thật</strong>"),
        "{queue}"
    );
    assert!(!queue.contains("<b>đậm giả</b>"));
}

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
    let audio = app
        .get_anon(&format!("/media/{sha}"))
        .await
        .bytes()
        .await
        .unwrap();
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
async fn submitted_approved_and_published_to_one_commune_it_reaches_only_that_communes_boards() {
    let app = spawn_app().await;
    let (p, a, b) = province(&app).await;
    let (board_a, board_b) = (uid("bang-a"), uid("bang-b"));
    board(&app, &board_a, &a, "board-token-a").await;
    board(&app, &board_b, &b, "board-token-b").await;
    user(&app, "bientap", "editor", &[], "mat-khau-bien-tap").await;
    user(&app, "lanhdao", "approver", &[], "mat-khau-lanh-dao").await;
    user(&app, "vanhanh-a", "operator", &[&a], "mat-khau-van-hanh").await;

    // The editor writes a province-wide bulletin with an H'Mông recording and submits it.
    let c = client();
    let s = login(&app, &c, "bientap", "mat-khau-bien-tap").await;
    let title = "Phòng chống lũ quét";
    let r = post_form(
        &app,
        &c,
        &s,
        "/console/bulletins/new",
        &[
            Part::Text("csrf", &s.csrf),
            Part::Text("category", "cảnh báo"),
            Part::Text("priority", "normal"),
            Part::Text("areas", &p),
            Part::Text("v0_title", title),
            Part::Text("v0_body", "Bà con **không** qua suối khi nước lớn."),
            Part::Text("v1_lang", "hmn"),
            Part::Text("v1_title", "Dej nyab"),
            Part::File("v1_audio", "hmn.wav", wav(2)),
            Part::Text("action", "submit"),
        ],
    )
    .await;
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("/console/bulletins/{}?saved=submitted", created_id(&r))
    );
    let id = created_id(&r);
    let (_, bj) = json(app.get(&format!("/api/v1/bulletins/{id}")).await).await;
    assert_eq!(bj["status"], "pending");
    let audio = bj["variants"][1]["audio_sha256"].as_str().unwrap().to_string();
    let (_, m) = json(app.get(&format!("/api/v1/media/{audio}")).await).await;
    assert_eq!(m["status"], "pending", "the recording is submitted with it");

    // It waits in the approval queue with its rendered text, recording and speech preview.
    let ca = client();
    let sa = login(&app, &ca, "lanhdao", "mat-khau-lanh-dao").await;
    let (st, queue) = page(&app, &ca, &sa, "/console/approvals").await;
    assert_eq!(st, 200);
    assert!(queue.contains(&format!("data-bulletin=\"{id}\"")) && queue.contains(title));
    assert!(queue.contains("Bà con <strong>không</strong> qua suối khi nước lớn."));
    assert!(queue.contains(&format!("src=\"/media/{audio}\"")));
    assert!(queue.contains("class=\"inline tts-form\"") && queue.contains("name=\"language\" value=\"hmn\""));
    // The reviewer hears the stored text through the preview form.
    let r = post_pairs(
        &app,
        &ca,
        &sa,
        "/console/tts/preview",
        &[("csrf", &sa.csrf), ("bulletin", &id), ("language", "vi")],
    )
    .await;
    assert_eq!(r.status(), 303);
    let speech = r.headers()["location"].to_str().unwrap().to_string();
    let bytes = app.get_anon(&speech).await.bytes().await.unwrap();
    assert!(wav_seconds(&bytes) > 1.0);

    // A rejection needs a reason; then it is approved (with its recording).
    let path = format!("/console/bulletins/{id}/review");
    let r = post_pairs(
        &app,
        &ca,
        &sa,
        &path,
        &[("csrf", &sa.csrf), ("step", "reject"), ("note", "  ")],
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("Từ chối cần nêu lý do."));
    // The editor cannot approve.
    let r = post_pairs(&app, &c, &s, &path, &[("csrf", &s.csrf), ("step", "approve")]).await;
    assert_eq!(r.status(), 403);
    let (_, bj) = json(app.get(&format!("/api/v1/bulletins/{id}")).await).await;
    assert_eq!(bj["status"], "pending");
    let r = post_pairs(&app, &ca, &sa, &path, &[("csrf", &sa.csrf), ("step", "approve")]).await;
    assert_eq!(r.status(), 303);
    let (_, bj) = json(app.get(&format!("/api/v1/bulletins/{id}")).await).await;
    assert_eq!(bj["status"], "approved");
    let (_, m) = json(app.get(&format!("/api/v1/media/{audio}")).await).await;
    assert_eq!(m["status"], "approved");
    let (_, queue) = page(&app, &ca, &sa, "/console/approvals").await;
    assert!(queue.contains("id=\"bulletin-queue-empty\""));

    // The commune operator sees the province-wide bulletin and may publish only in the commune.
    let co = client();
    let so = login(&app, &co, "vanhanh-a", "mat-khau-van-hanh").await;
    let (_, list) = page(&app, &co, &so, "/console/bulletins").await;
    assert!(list.contains(&format!("data-id=\"{id}\"")));
    let (st, html) = page(&app, &co, &so, &format!("/console/bulletins/{id}")).await;
    assert_eq!(st, 200);
    assert!(html.contains("id=\"publish-form\""));
    assert!(html.contains(&format!("<option value=\"{a}\"")));
    assert!(!html.contains(&format!("<option value=\"{b}\"")));
    assert!(
        !html.contains("id=\"bulletin-form\""),
        "an operator does not edit"
    );
    let publish = format!("/console/bulletins/{id}/publish");
    let r = post_pairs(
        &app,
        &co,
        &so,
        &publish,
        &[("csrf", &so.csrf), ("areas", &b), ("speakers", "1")],
    )
    .await;
    assert_eq!(r.status(), 403, "commune B is outside the operator's scope");
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM bulletin_targets").await, 0);
    let r = post_pairs(
        &app,
        &co,
        &so,
        &publish,
        &[
            ("csrf", &so.csrf),
            ("areas", &a),
            ("voice", "vi"),
            ("speed", "150"),
            ("speakers", "1"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"publish-result\"") && html.contains("Đã phát hành bản tin."));

    // One action: the board in commune A lists it, the board in commune B does not…
    let feed = |board: String, token: &'static str| {
        let app = &app;
        async move {
            let r = app
                .client
                .get(app.url(&format!("/api/v1/boards/{board}/feed")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let (st, f) = json(r).await;
            assert_eq!(st, 200, "{f}");
            f["bulletins"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(feed(board_a.clone(), "board-token-a").await, vec![id.clone()]);
    assert!(feed(board_b.clone(), "board-token-b").await.is_empty());
    // …and commune A's loudspeakers got a schedule with the Vietnamese speech.
    let row = sqlx::query(
        "SELECT media_sha256, source, schedule_id FROM bulletin_speech WHERE bulletin_id = $1 AND area = $2",
    )
    .bind(id.clone())
    .bind(a.clone())
    .fetch_one(&app.state().store.pool)
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>("source"), "tts");
    let schedule: Option<String> = row.get("schedule_id");
    let (_, sch) = json(app.get(&format!("/api/v1/schedules/{}", schedule.unwrap())).await).await;
    assert_eq!(sch["targets"]["areas"], json!([a]), "{sch}");
    let n = count(
        &app,
        &format!(
            "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'bulletin.publish' AND actor = 'vanhanh-a' AND entity = 'bulletin:{id}'"
        ),
    )
    .await;
    assert_eq!(n, 1);
    let n = count(
        &app,
        &format!(
            "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'bulletin.approve' AND actor = 'lanhdao' AND entity = 'bulletin:{id}'"
        ),
    )
    .await;
    assert_eq!(n, 1);
}

const WAIT: Duration = Duration::from_secs(30);

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
