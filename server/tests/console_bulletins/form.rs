//! The bulletin editor form: variants in several languages with recorded audio and images, a bad
//! form shown again with its messages, and markup in a title shown as text.

use super::*;

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
