//! Black-box tests of bulletins (issue 6): approval, publishing to a commune's boards and
//! loudspeakers, the board feed with ETags, proof of display and of play, and upload validation.

use crate::common;
use crate::dispatch_support;

use common::{TestApp, json, spawn_app, spawn_app_with, tiny_png};
use dispatch_support::{DEADLINE, area, connect, device, eventually};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

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
        .expect("set board token");
}

/// Create, submit and approve a bulletin; returns its id.
async fn approved_bulletin(app: &TestApp, body: Value) -> String {
    let (s, b) = json(app.post_json("/api/v1/bulletins", &body).await).await;
    assert_eq!(s, 201, "create bulletin: {b}");
    let id = b["id"].as_str().unwrap().to_string();
    assert_eq!(b["status"], "draft");
    let (s, b) = json(
        app.post_json(&format!("/api/v1/bulletins/{id}/submit"), &json!({}))
            .await,
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("pending")), "{b}");
    let (s, b) = json(
        app.post_json(&format!("/api/v1/bulletins/{id}/approve"), &json!({}))
            .await,
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("approved")), "{b}");
    id
}

async fn feed(app: &TestApp, board: &str, token: &str, etag: Option<&str>) -> reqwest::Response {
    let mut r = app
        .client
        .get(app.url(&format!("/api/v1/boards/{board}/feed")))
        .bearer_auth(token);
    if let Some(e) = etag {
        r = r.header("if-none-match", e);
    }
    r.send().await.expect("GET feed")
}

#[tokio::test]
async fn a_bulletin_scheduled_to_a_commune_reaches_its_board_and_its_loudspeakers_with_proof_of_both() {
    let app = spawn_app().await;
    let (province, commune) = ("10", "10001");
    area(&app, province, None).await;
    area(&app, commune, Some(province)).await;
    let speaker = app.unique("loa");
    let screen = app.unique("bang");
    device(&app, &speaker, commune, "pw-speaker-123", None).await;
    board(&app, &screen, commune, "board-token-1").await;

    let id = approved_bulletin(
        &app,
        json!({"title": "Tiêm chủng", "body": "UBND xã tổ chức tiêm chủng ngày 15/6/2025 cho 1.250 trẻ em.",
               "category": "y tế", "areas": [commune]}),
    )
    .await;
    // Not published yet: the board shows nothing.
    let (_, f) = json(feed(&app, &screen, "board-token-1", None).await).await;
    assert_eq!(f["bulletins"].as_array().unwrap().len(), 0, "{f}");

    let mut dev = connect(&app, &speaker, "pw-speaker-123", None)
        .await
        .expect("speaker connects");
    let desired = format!("nguon/v1/d/{speaker}/desired");
    dev.subscribe(&desired).await;

    let (s, p) = json(
        app.post_json(
            &format!("/api/v1/bulletins/{id}/publish"),
            &json!({"areas": [commune]}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{p}");
    let speech = &p["speech"][0];
    assert_eq!(speech["source"], "tts");
    assert_eq!(
        speech["normalized"],
        "Tiêm chủng. Ủy ban nhân dân xã tổ chức tiêm chủng ngày mười lăm tháng sáu năm hai nghìn không trăm hai mươi lăm \
         cho một nghìn hai trăm năm mươi trẻ em."
    );
    let sha = speech["sha256"].as_str().unwrap().to_string();
    let (s, m) = json(app.get(&format!("/api/v1/media/{sha}")).await).await;
    assert_eq!((s, m["status"].as_str()), (200, Some("approved")), "{m}");
    let schedule_id = p["schedules"][0].as_str().unwrap().to_string();

    // The board's feed contains it…
    let (s, f) = json(feed(&app, &screen, "board-token-1", None).await).await;
    assert_eq!(s, 200);
    assert_eq!(f["bulletins"][0]["id"], id.as_str(), "{f}");
    assert_eq!(f["bulletins"][0]["variants"][0]["title"], "Tiêm chủng");
    // …and the loudspeaker's manifest the speech.
    dev.next_on(&desired, |b| String::from_utf8_lossy(b).contains(&sha))
        .await;

    // Proof of display, idempotent by uuid.
    let rec = json!({"displays": [{"id": "0b7a3c4e-5d6f-4a1b-8c9d-0e1f2a3b4c5d", "bulletin_id": id,
                     "shown_from": 1_750_000_000_000i64, "shown_to": 1_750_000_010_000i64}]});
    let url = app.url(&format!("/board/{screen}/display?token=board-token-1"));
    let (s, r) = json(app.client.post(&url).json(&rec).send().await.unwrap()).await;
    assert_eq!((s, r["stored"].as_u64()), (200, Some(1)), "{r}");
    let (_, r) = json(app.client.post(&url).json(&rec).send().await.unwrap()).await;
    assert_eq!(r["duplicates"], 1);
    let (_, d) = json(app.get(&format!("/api/v1/bulletins/{id}/displays")).await).await;
    assert_eq!(d.as_array().unwrap().len(), 1);
    assert_eq!(d[0]["device_id"], screen.as_str());

    // Proof of play, published as the loudspeaker.
    let now = chrono::Utc::now();
    let batch = json!({"v": 1, "device": speaker, "sent_at": now, "events": [{
        "id": uuid::Uuid::new_v4(), "at": now, "kind": "play", "item_id": "bulletin-test-item",
        "schedule_id": schedule_id, "occurrence_at": now, "sha256": sha, "priority": "normal",
        "started_at": now, "ended_at": now, "outcome": "played"}]});
    let envelope = json!({"v": 1, "payload": batch.to_string()});
    dev.publish(
        &format!("nguon/v1/d/{speaker}/events"),
        envelope.to_string().into_bytes(),
        false,
    )
    .await;
    eventually("proof of play stored", || async {
        let text = app.get("/api/v1/plays").await.text().await.unwrap_or_default();
        text.contains(&schedule_id).then_some(())
    })
    .await;
    let _ = DEADLINE;
}

#[tokio::test]
async fn the_feed_answers_304_when_unchanged_and_a_new_etag_after_a_change() {
    let app = spawn_app().await;
    area(&app, "20", None).await;
    area(&app, "20001", Some("20")).await;
    let screen = app.unique("bang");
    board(&app, &screen, "20001", "tok-etag").await;
    let first = feed(&app, &screen, "tok-etag", None).await;
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let again = feed(&app, &screen, "tok-etag", Some(&etag)).await;
    assert_eq!(again.status(), 304);

    // A bulletin published on the province reaches the commune's board.
    let id = approved_bulletin(
        &app,
        json!({"title": "Thông báo", "body": "Nội dung", "areas": ["20"]}),
    )
    .await;
    let (s, p) = json(
        app.post_json(
            &format!("/api/v1/bulletins/{id}/publish"),
            &json!({"speakers": false}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{p}");
    let changed = feed(&app, &screen, "tok-etag", Some(&etag)).await;
    assert_eq!(changed.status(), 200);
    let etag2 = changed.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(etag, etag2);
    let (_, f) = json(changed).await;
    assert_eq!(f["bulletins"][0]["id"], id.as_str());
    assert_eq!(feed(&app, &screen, "tok-etag", Some(&etag2)).await.status(), 304);

    // Wrong token: 401. Board tokens are separate and scoped to one board (issue 11, item 12):
    // the admin token is not a board token.
    assert_eq!(feed(&app, &screen, "wrong", None).await.status(), 401);
    assert_eq!(feed(&app, &screen, &app.token, None).await.status(), 401);
}

#[tokio::test]
async fn emergencies_come_first_and_variants_follow_the_area_languages() {
    let app = spawn_app().await;
    area(&app, "30", None).await;
    area(&app, "30001", Some("30")).await;
    let screen = app.unique("bang");
    board(&app, &screen, "30001", "tok-em").await;
    let (s, l) = json(
        app.put_json(
            "/api/v1/areas/30001/languages",
            &json!({"languages": ["hmn", "vi"]}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{l}");
    let normal = approved_bulletin(
        &app,
        json!({"variants": [{"language": "vi", "title": "Họp dân", "body": "Họp lúc 7h30."},
                            {"language": "hmn", "title": "Sib tham", "body": "Hmong text"}], "areas": ["30001"]}),
    )
    .await;
    let (s, p) = json(
        app.post_json(&format!("/api/v1/bulletins/{normal}/publish"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(s, 200, "{p}");
    // No recorded H'Mông audio and no H'Mông voice: vi is read, hmn is skipped with a reason.
    assert_eq!(p["speech"].as_array().unwrap().len(), 1, "{p}");
    assert!(p["skipped"][0].as_str().unwrap().contains("hmn"), "{p}");
    let em = approved_bulletin(
        &app,
        json!({"title": "Cảnh báo lũ quét", "body": "Sơ tán ngay.", "priority": "emergency", "areas": ["30"]}),
    )
    .await;
    let (s, p) = json(
        app.post_json(&format!("/api/v1/bulletins/{em}/publish"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(s, 200, "{p}");
    let (_, f) = json(feed(&app, &screen, "tok-em", None).await).await;
    assert_eq!(f["emergency"], true);
    assert_eq!(f["bulletins"][0]["id"], em.as_str());
    assert_eq!(f["bulletins"][1]["id"], normal.as_str());
    assert_eq!(f["bulletins"][1]["variants"][0]["language"], "hmn");
    assert_eq!(f["bulletins"][1]["variants"][1]["language"], "vi");
}

#[tokio::test]
async fn a_bulletin_that_is_not_approved_cannot_be_published_and_edits_need_new_approval() {
    let app = spawn_app().await;
    area(&app, "40", None).await;
    let (_, b) = json(
        app.post_json("/api/v1/bulletins", &json!({"title": "Nháp", "areas": ["40"]}))
            .await,
    )
    .await;
    let id = b["id"].as_str().unwrap();
    let (s, e) = json(
        app.post_json(&format!("/api/v1/bulletins/{id}/publish"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (422, Some("not_approved")),
        "{e}"
    );
    let (s, _) = json(
        app.post_json(&format!("/api/v1/bulletins/{id}/approve"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(s, 409, "a draft cannot be approved before it is submitted");
    let (s, e) = json(
        app.post_json("/api/v1/bulletins", &json!({"title": "x", "areas": ["99999"]}))
            .await,
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (422, Some("unknown_area")),
        "{e}"
    );
    let (s, e) = json(
        app.post_json("/api/v1/bulletins", &json!({"title": "x", "priority": "urgent"}))
            .await,
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (400, Some("invalid_priority")),
        "{e}"
    );
    let html = json(
        app.post_json(
            "/api/v1/bulletins",
            &json!({"title": "x", "body": "**Đậm** <b>x</b>"}),
        )
        .await,
    )
    .await
    .1;
    assert_eq!(
        html["variants"][0]["html"],
        "<p><strong>Đậm</strong> &lt;b&gt;x&lt;/b&gt;</p>"
    );
}

#[tokio::test]
async fn of_two_concurrent_approvals_one_wins_the_other_is_a_409_naming_the_status_and_one_is_audited() {
    let app = spawn_app().await;
    area(&app, "41", None).await;
    for round in 0..3 {
        let (s, b) = json(
            app.post_json(
                "/api/v1/bulletins",
                &json!({"title": format!("Đua {round}"), "areas": ["41"]}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 201, "{b}");
        let id = b["id"].as_str().unwrap().to_string();
        let (s, b) = json(
            app.post_json(&format!("/api/v1/bulletins/{id}/submit"), &json!({}))
                .await,
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let path = format!("/api/v1/bulletins/{id}/approve");
        let empty = json!({});
        let (a, b) = tokio::join!(app.post_json(&path, &empty), app.post_json(&path, &empty));
        let (a, b) = (json(a).await, json(b).await);
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "{} / {}", a.1, b.1);
        let lost = if a.0 == 409 { &a.1 } else { &b.1 };
        assert_eq!(lost["error"]["code"], "conflict", "{lost}");
        let msg = lost["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("`approved`"),
            "the 409 names the current status: {msg}"
        );
        let won = if a.0 == 200 { &a.1 } else { &b.1 };
        assert_eq!(won["status"], "approved", "{won}");
        let audited: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'bulletin.approve' AND entity = 'bulletin:{id}'"
        )))
        .fetch_one(&app.state().store.pool)
        .await
        .expect("count audit entries");
        assert_eq!(audited, 1, "one approval, one audit entry");
    }
}

fn png_header(w: u32, h: u32, total: usize) -> Vec<u8> {
    let mut b = tiny_png();
    b[16..20].copy_from_slice(&w.to_be_bytes());
    b[20..24].copy_from_slice(&h.to_be_bytes());
    b.resize(total.max(b.len()), 0);
    b
}

#[tokio::test]
async fn bad_uploads_are_refused_with_a_reason_and_leave_nothing_stored() {
    let app = spawn_app_with(|s| s.max_upload_mb = 1).await;
    let (_, b) = json(app.post_json("/api/v1/bulletins", &json!({"title": "Ảnh"})).await).await;
    let id = b["id"].as_str().unwrap();
    let path = format!("/api/v1/bulletins/{id}/files");

    // A PNG named .pdf is a PNG.
    let (s, f) = json(app.upload(&path, tiny_png(), "scan.pdf").await).await;
    assert_eq!(s, 201, "{f}");
    assert_eq!(
        (f["mime"].as_str(), f["kind"].as_str(), f["width"].as_i64()),
        (Some("image/png"), Some("image"), Some(1))
    );
    let sha = f["sha256"].as_str().unwrap().to_string();
    let served = app.get(&format!("/files/{sha}")).await;
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(served.bytes().await.unwrap().to_vec(), tiny_png());

    // A text file named .png: 415 with the reason.
    let (s, e) = json(
        app.upload(&path, b"xin chao, day la van ban thuong".to_vec(), "anh.png")
            .await,
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (415, Some("unsupported_file")),
        "{e}"
    );
    assert!(e["error"]["message"].as_str().unwrap().contains("text"), "{e}");
    // Over the size limit: 413.
    let (s, e) = json(
        app.upload(&path, png_header(100, 100, 1_200_000), "big.png")
            .await,
    )
    .await;
    assert_eq!((s, e["error"]["code"].as_str()), (413, Some("too_large")), "{e}");
    // Too many pixels: 422.
    let (s, e) = json(
        app.upload(&path, png_header(20_000, 20_000, 100), "huge.png")
            .await,
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (422, Some("image_too_large")),
        "{e}"
    );
    assert!(
        e["error"]["message"].as_str().unwrap().contains("20000×20000"),
        "{e}"
    );
    // A PDF is an attachment.
    let (s, f) = json(
        app.upload(
            &path,
            b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n".to_vec(),
            "thong-bao.bin",
        )
        .await,
    )
    .await;
    assert_eq!((s, f["kind"].as_str()), (201, Some("attachment")), "{f}");

    // Only the two good files are stored; no temp files are left.
    assert_eq!(app.files_in("files").len(), 2, "{:?}", app.files_in("files"));
    assert!(app.files_in("tmp").is_empty(), "{:?}", app.files_in("tmp"));
    let (_, b) = json(app.get(&format!("/api/v1/bulletins/{id}")).await).await;
    assert_eq!(b["files"].as_array().unwrap().len(), 2);
}
