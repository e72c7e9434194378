//! Review and publishing from the console: submitted, approved and published to one commune, the
//! bulletin reaches only that commune's boards and loudspeakers.

use super::*;

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
    // A draft preview is served to a caller who sees it (issue 11, item 17), not to anyone.
    assert_eq!(app.get_anon(&speech).await.status(), 404);
    let bytes = app.get(&speech).await.bytes().await.unwrap();
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
    assert_eq!(r.status(), 303, "POST-redirect-GET");
    let back = r.headers()["location"].to_str().unwrap().to_string();
    let (_, html) = page(&app, &co, &so, &back).await;
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
