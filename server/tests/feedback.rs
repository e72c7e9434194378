//! Citizens' feedback (issue 15) against the real server: the public form's API with its
//! proof-of-work challenge and per-address budget, photos checked by content and re-encoded
//! without metadata, refusals in Vietnamese, the status by tracking code (never personal data),
//! the moderation (assign, answer, publish, close; scope; audit), the SLA alarm raised and
//! cleared by the alarm worker, and the retention purge.

use std::io::Cursor;

use serde_json::{Value, json};

use crate::common::{self, TestApp};
use crate::console_support::{scoped_user, two_communes};
use nguon_server::domain::feedback::pow;

pub(crate) async fn app() -> TestApp {
    common::spawn_app_with(|s| {
        s.alarms.evaluate_every_s = 3_600;
        s.feedback.pow_bits = 10;
        s.feedback.per_ip_per_minute = 1000;
        s.feedback.photo_max_kb = 64;
    })
    .await
}

/// A JPEG of `w`×`h` with an EXIF block (a camera make and a GPS tag) spliced in after SOI.
fn jpeg_with_exif(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, 90]));
    let mut plain = Vec::new();
    img.write_to(&mut Cursor::new(&mut plain), image::ImageFormat::Jpeg)
        .unwrap();
    let payload = b"Exif\0\0MM\0*\0\0\0\x08CAMERA-MAKE-SECRET GPS 21.0285N 105.8542E";
    let len = (payload.len() + 2) as u16;
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&plain[2..]);
    out
}

/// A feedback's multipart body: `fields`, and `files` (name, file name, bytes) as JPEG images.
fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, Vec<u8>)]) -> (String, Vec<u8>) {
    let files: Vec<_> = files
        .iter()
        .map(|(k, f, bytes)| (*k, *f, "image/jpeg", bytes.as_slice()))
        .collect();
    common::multipart(fields, &files)
}

pub(crate) async fn solved(app: &TestApp) -> (String, String) {
    let (s, c) = common::json(app.get_anon("/api/v1/feedback/challenge").await).await;
    assert_eq!(s, 200, "{c}");
    let challenge = c["challenge"].as_str().unwrap().to_string();
    let bits = c["bits"].as_u64().unwrap() as u8;
    let nonce = pow::solve(&challenge, bits);
    (challenge, nonce)
}

/// Send a feedback without credentials; `(status, body)`.
pub(crate) async fn send(
    app: &TestApp,
    fields: &[(&str, &str)],
    files: &[(&str, &str, Vec<u8>)],
) -> (u16, Value) {
    let (ct, body) = multipart(fields, files);
    common::json(app.post_as("/api/v1/feedback", None, &ct, body).await).await
}

pub(crate) async fn send_solved(
    app: &TestApp,
    area: &str,
    text: &str,
    files: &[(&str, &str, Vec<u8>)],
) -> (u16, Value) {
    let (c, n) = solved(app).await;
    send(
        app,
        &[
            ("area", area),
            ("text", text),
            ("challenge", &c),
            ("nonce", &n),
            ("name", "Nguyễn Văn A"),
            ("contact", "0912345678"),
            ("show_name", "1"),
        ],
        files,
    )
    .await
}

#[tokio::test]
async fn a_citizen_sends_feedback_with_a_photo_and_reads_the_answer_by_its_code() {
    let app = app().await;
    let t = two_communes(&app).await;
    let photo = jpeg_with_exif(300, 200);
    assert!(photo.windows(4).any(|w| w == b"Exif"));
    let text = "Loa ở thôn 3 <script>alert('x')</script> kêu quá to & rè";
    let (s, r) = send_solved(&app, &t.mine, text, &[("photo", "loa.jpg", photo)]).await;
    assert_eq!(s, 201, "{r}");
    let code = r["code"].as_str().unwrap().to_string();
    assert!(code.starts_with("PA-"), "{code}");

    // The public status: text as typed, no name or contact, no answer yet.
    let (s, tr) = common::json(
        app.get_anon(&format!("/api/v1/feedback/track/{}", code.to_lowercase()))
            .await,
    )
    .await;
    assert_eq!(s, 200, "{tr}");
    assert_eq!(tr["status"], "received");
    assert_eq!(tr["text"], text);
    assert!(tr["name"].is_null() && tr.get("contact").is_none(), "{tr}");
    // The status page shows the script as text.
    let html = app
        .get_anon(&format!("/feedback/track/{code}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("&lt;script&gt;alert(") && !html.contains("<script>alert("),
        "{html}"
    );
    assert!(!html.contains("0912345678") && !html.contains("Nguyễn Văn A"));

    // Staff see it with its photo, re-encoded without the EXIF block.
    let (s, list) = common::json(app.get("/api/v1/feedback?status=received").await).await;
    assert_eq!(s, 200, "{list}");
    let item = list
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code.as_str())
        .unwrap()
        .clone();
    let id = item["id"].as_str().unwrap().to_string();
    assert_eq!(item["contact"], "0912345678");
    assert_eq!(item["photos"], json!([1]));
    let p = app.get(&format!("/api/v1/feedback/{id}/photos/1")).await;
    assert_eq!(p.status(), 200);
    let stored = p.bytes().await.unwrap();
    assert!(stored.starts_with(&[0xFF, 0xD8, 0xFF]));
    for secret in [&b"Exif"[..], b"CAMERA-MAKE-SECRET", b"GPS"] {
        assert!(
            !stored.windows(secret.len()).any(|w| w == secret),
            "metadata kept"
        );
    }
    assert!(
        app.get_anon(&format!("/api/v1/feedback/{id}/photos/1"))
            .await
            .status()
            == 401
    );

    // Assign, answer with publication, close; every step audited.
    let (s, org) = common::json(
        app.post_json(
            "/api/v1/organisations",
            &json!({"name": app.unique("Sở Văn hoá"), "kind": "department"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{org}");
    let (s, b) = common::json(
        app.post_json(
            &format!("/api/v1/feedback/{id}/assign"),
            &json!({"organisation_id": org["id"]}),
        )
        .await,
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("assigned")), "{b}");
    let answer = "Đã cử kỹ thuật viên chỉnh âm lượng loa thôn 3.";
    let (s, b) = common::json(
        app.post_json(
            &format!("/api/v1/feedback/{id}/answer"),
            &json!({"answer": answer, "publish": true}),
        )
        .await,
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("answered")), "{b}");
    let (s, tr) = common::json(app.get_anon(&format!("/api/v1/feedback/track/{code}")).await).await;
    assert_eq!(s, 200);
    assert_eq!(
        (tr["status"].as_str(), tr["answer"].as_str()),
        (Some("answered"), Some(answer))
    );
    assert_eq!(
        tr["name"], "Nguyễn Văn A",
        "published, and the citizen chose to show the name"
    );
    let html = app.get_anon("/feedback/answers").await.text().await.unwrap();
    assert!(html.contains(answer) && !html.contains("0912345678"));
    let (s, b) = common::json(
        app.post_json(&format!("/api/v1/feedback/{id}/close"), &json!({}))
            .await,
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("closed")), "{b}");
    let (s, b) = common::json(
        app.post_json(&format!("/api/v1/feedback/{id}/close"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(s, 409, "{b}");
    let audit = app.state().store.clone();
    let entries = nguon_server::store::audit::recent(&audit, 50).await.unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .filter(|e| e.entity == format!("feedback:{id}"))
        .map(|e| e.action.as_str())
        .collect();
    for a in [
        "feedback.receive",
        "feedback.assign",
        "feedback.answer",
        "feedback.close",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    assert!(
        entries
            .iter()
            .all(|e| !e.after.as_deref().unwrap_or("").contains("0912345678")),
        "no contact in the audit log"
    );

    // The report's engagement section counts it (JSON and CSV).
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .format("%Y-%m-%d")
        .to_string();
    let q = format!("/api/v1/reports/engagement?from={today}&to={today}");
    let (s, e) = common::json(app.get(&q).await).await;
    assert_eq!(s, 200, "{e}");
    let f = &e["feedback"];
    assert_eq!(
        (
            f["received"].as_i64(),
            f["answered"].as_i64(),
            f["overdue"].as_i64()
        ),
        (Some(1), Some(1), Some(0)),
        "{e}"
    );
    assert!(f["median_response_ms"].as_i64().unwrap() >= 0, "{e}");
    let csv = app.get(&format!("{q}&format=csv")).await.text().await.unwrap();
    assert!(
        csv.contains("Phản ánh tiếp nhận") && csv.contains("Sở Văn hoá"),
        "{csv}"
    );
}

#[tokio::test]
async fn bad_feedback_is_refused_with_a_reason_in_vietnamese() {
    let app = app().await;
    let t = two_communes(&app).await;
    let msg = |b: &Value| b["error"]["message"].as_str().unwrap_or_default().to_string();

    // No proof of work (a browser without JavaScript).
    let (s, b) = send(&app, &[("area", &t.mine), ("text", "xin chào")], &[]).await;
    assert_eq!(s, 400, "{b}");
    assert!(msg(&b).contains("JavaScript"), "{b}");
    // A wrong nonce.
    let (c, _) = solved(&app).await;
    let wrong = (0u64..)
        .map(|i| i.to_string())
        .find(|i| !pow::solves(&c, i, 10))
        .unwrap();
    let (s, b) = send(
        &app,
        &[
            ("area", &t.mine),
            ("text", "x"),
            ("challenge", &c),
            ("nonce", &wrong),
        ],
        &[],
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert!(msg(&b).contains("chống thư rác"), "{b}");
    // Over-long text.
    let long = "a".repeat(2001);
    let (s, b) = send_solved(&app, &t.mine, &long, &[]).await;
    assert_eq!(s, 422, "{b}");
    assert!(msg(&b).contains("dài quá 2000 ký tự"), "{b}");
    // Not an image (a PDF named .jpg), a broken image, an oversize one, four photos.
    let (s, b) = send_solved(
        &app,
        &t.mine,
        "ảnh",
        &[("photo", "a.jpg", b"%PDF-1.7 not an image".to_vec())],
    )
    .await;
    assert_eq!(s, 415, "{b}");
    assert!(msg(&b).contains("không phải ảnh JPEG, PNG hoặc WebP"), "{b}");
    let mut broken = jpeg_with_exif(64, 64);
    broken.truncate(200);
    let (s, b) = send_solved(&app, &t.mine, "ảnh", &[("photo", "b.jpg", broken)]).await;
    assert_eq!(s, 415, "{b}");
    assert!(msg(&b).contains("Không đọc được ảnh"), "{b}");
    let big: Vec<u8> = std::iter::repeat_n(0xAAu8, 70 * 1024).collect();
    let (s, b) = send_solved(&app, &t.mine, "ảnh", &[("photo", "big.jpg", big)]).await;
    assert_eq!(s, 413, "{b}");
    assert!(msg(&b).contains("lớn quá"), "{b}");
    let four: Vec<_> = (0..4)
        .map(|i| ("photo", "p.jpg", jpeg_with_exif(20 + i, 20)))
        .collect();
    let (s, b) = send_solved(&app, &t.mine, "ảnh", &four).await;
    assert_eq!(s, 422, "{b}");
    assert!(msg(&b).contains("tối đa 3 ảnh"), "{b}");
    // An unknown area.
    let (s, b) = send_solved(&app, "khong-co", "x", &[]).await;
    assert_eq!(s, 422, "{b}");
    assert!(msg(&b).contains("Địa bàn"), "{b}");
    // A solved challenge serves once.
    let (c, n) = solved(&app).await;
    let fields = [
        ("area", t.mine.as_str()),
        ("text", "một lần"),
        ("challenge", &c),
        ("nonce", &n),
    ];
    assert_eq!(send(&app, &fields, &[]).await.0, 201);
    let (s, b) = send(&app, &fields, &[]).await;
    assert_eq!(s, 409, "{b}");
    assert!(msg(&b).contains("đã được dùng"), "{b}");
    // Nothing refused was stored: only the one accepted.
    let (_, list) = common::json(app.get("/api/v1/feedback").await).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    // The public form shows a refusal in Vietnamese and keeps what was typed.
    let (ct, body) = multipart(&[("area", &t.mine), ("text", "giữ lại <b>nội dung</b>")], &[]);
    let r = app
        .client
        .post(app.url("/feedback"))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("JavaScript") && html.contains("giữ lại &lt;b&gt;nội dung"),
        "{html}"
    );
}

#[tokio::test]
async fn a_flood_from_one_address_is_refused_while_another_address_is_not() {
    let app = common::spawn_app_with(|s| {
        s.feedback.pow_bits = 8;
        s.feedback.per_ip_per_minute = 2;
        s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let t = two_communes(&app).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let (c, n) = solved(&app).await;
        let (ct, body) = multipart(
            &[
                ("area", &t.mine),
                ("text", "spam"),
                ("challenge", &c),
                ("nonce", &n),
            ],
            &[],
        );
        let r = app
            .client
            .post(app.url("/api/v1/feedback"))
            .header("content-type", ct)
            .header("x-forwarded-for", "203.0.113.7")
            .body(body)
            .send()
            .await
            .unwrap();
        let (s, b) = common::json(r).await;
        if s == 429 {
            assert!(
                b["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("Vui lòng thử lại sau"),
                "{b}"
            );
        }
        statuses.push(s);
    }
    assert_eq!(statuses, vec![201, 201, 429, 429]);
    let (c, n) = solved(&app).await;
    let (ct, body) = multipart(
        &[
            ("area", &t.mine),
            ("text", "khác"),
            ("challenge", &c),
            ("nonce", &n),
        ],
        &[],
    );
    let r = app
        .client
        .post(app.url("/api/v1/feedback"))
        .header("content-type", ct)
        .header("x-forwarded-for", "203.0.113.8")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn moderation_stays_in_scope_and_needs_a_moderating_role() {
    let app = app().await;
    let t = two_communes(&app).await;
    let (s, r) = send_solved(&app, &t.theirs, "ở xã khác", &[]).await;
    assert_eq!(s, 201, "{r}");
    let (_, list) = common::json(app.get("/api/v1/feedback").await).await;
    let id = list[0]["id"].as_str().unwrap().to_string();
    let (_, op) = scoped_user(&app, "op", "operator", &[&t.mine]).await;
    let (s, l) = common::json(app.get_as(&op, "/api/v1/feedback").await).await;
    assert_eq!((s, l.as_array().map(Vec::len)), (200, Some(0)), "{l}");
    let (s, _) = common::json(
        app.post_json_as(
            &op,
            &format!("/api/v1/feedback/{id}/answer"),
            &json!({"answer": "x"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 404, "outside the operator's scope");
    let (_, viewer) = scoped_user(&app, "vw", "viewer", &[]).await;
    let (s, _) = common::json(app.get_as(&viewer, &format!("/api/v1/feedback/{id}")).await).await;
    assert_eq!(s, 200);
    let (s, b) = common::json(
        app.post_json_as(
            &viewer,
            &format!("/api/v1/feedback/{id}/answer"),
            &json!({"answer": "x"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 403, "{b}");
    let (s, b) = common::json(
        app.post_json_as(
            &viewer,
            "/api/v1/organisations",
            &json!({"name": "X", "kind": "press"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 403, "{b}");
    let (s, b) = common::json(
        app.post_json(
            &format!("/api/v1/feedback/{id}/assign"),
            &json!({"organisation_id": "nope"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 422, "{b}");
}

#[tokio::test]
async fn an_unanswered_feedback_past_its_deadline_raises_an_alarm_until_answered_and_old_personal_data_is_purged()
 {
    let app = common::spawn_app_with(|s| {
        s.alarms.evaluate_every_s = 3_600;
        s.feedback.pow_bits = 8;
        s.feedback.per_ip_per_minute = 1000;
        s.feedback.sla_hours = 72;
        s.feedback.retention_days = 30;
    })
    .await;
    let t = two_communes(&app).await;
    let (s, r) = send_solved(
        &app,
        &t.mine,
        "chưa ai trả lời",
        &[("photo", "a.jpg", jpeg_with_exif(50, 40))],
    )
    .await;
    assert_eq!(s, 201, "{r}");
    let (_, list) = common::json(app.get("/api/v1/feedback").await).await;
    let id = list[0]["id"].as_str().unwrap().to_string();
    let received = list[0]["received_at"].as_i64().unwrap();
    assert_eq!(list[0]["due_at"].as_i64().unwrap() - received, 72 * 3_600_000);
    let eval = |at: i64| {
        let store = app.state().store.clone();
        let a = app.settings.alarms.clone();
        async move {
            nguon_server::workers::alarms::evaluate(&store, &a, at)
                .await
                .unwrap()
        }
    };
    let before = eval(received + 71 * 3_600_000).await;
    assert!(before.raised.iter().all(|a| a.subject_id != id));
    let late = eval(received + 73 * 3_600_000).await;
    let alarm = late
        .raised
        .iter()
        .find(|a| a.subject_id == id)
        .expect("feedback_overdue raised");
    assert_eq!(
        (alarm.kind.as_str(), alarm.area.as_str()),
        ("feedback_overdue", t.mine.as_str())
    );
    let (_, overdue) = common::json(app.get("/api/v1/feedback?overdue=true").await).await;
    assert_eq!(
        overdue.as_array().unwrap().len(),
        0,
        "not overdue at the real time yet"
    );
    let (s, _) = common::json(
        app.post_json(
            &format!("/api/v1/feedback/{id}/answer"),
            &json!({"answer": "Đã xử lý"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200);
    let after = eval(received + 74 * 3_600_000).await;
    assert_eq!(after.cleared, 1, "answered: the alarm clears");

    // Retention: nothing before 30 days; after, the name, contact and photo are gone.
    let store = app.state().store.clone();
    let purge = nguon_server::workers::feedback::purge;
    assert_eq!(
        purge(&store, &app.settings, received + 29 * 86_400_000)
            .await
            .unwrap(),
        0
    );
    let photo_files = app.files_in("feedback");
    assert_eq!(photo_files.len(), 1, "{photo_files:?}");
    assert_eq!(
        purge(&store, &app.settings, received + 31 * 86_400_000)
            .await
            .unwrap(),
        1
    );
    let (_, f) = common::json(app.get(&format!("/api/v1/feedback/{id}")).await).await;
    assert!(
        f["name"].is_null() && f["contact"].is_null() && f["purged_at"].is_i64(),
        "{f}"
    );
    assert_eq!(f["photos"], json!([]));
    assert_eq!(f["text"], "chưa ai trả lời", "the text stays for the reports");
    assert!(app.files_in("feedback").is_empty());
}
