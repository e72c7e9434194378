//! Issue 15: a citizen's feedback names a real, published policy (an unknown or unpublished one
//! is 422 naming `policy_id`; the public form offers the published policies; the moderation
//! page links the policy; the policy page counts the feedback about it), and the console edits a
//! policy's fields and stage dates and unlinks content from a stage, audited under the editor's
//! name.

use crate::common::{self, TestApp, json};
use crate::console_support::{FormExt, client, login, page, user};
use crate::dispatch_support::{area, media, uid};
use crate::feedback::{send, solved};
use crate::policy::{create, link};
use serde_json::json;
use sqlx::Row;

async fn feedback_about(app: &TestApp, area: &str, policy: &str) -> (u16, serde_json::Value) {
    let (c, n) = solved(app).await;
    send(
        app,
        &[
            ("area", area),
            ("policy_id", policy),
            ("text", "Chính sách này áp dụng từ khi nào?"),
            ("challenge", &c),
            ("nonce", &n),
        ],
        &[],
    )
    .await
}

#[tokio::test]
async fn feedback_names_a_published_policy_which_the_moderator_and_the_policy_page_see() {
    let app = crate::feedback::app().await;
    let p = uid("tinh");
    area(&app, &p, None).await;
    let xa = uid("xa");
    area(&app, &xa, Some(&p)).await;
    let body = |t: &str| json!({"title": t, "issuer": "UBND tỉnh", "field": "y tế", "areas": [xa]});
    let public = create(&app, &body("Bảo hiểm y tế học sinh")).await;
    let hidden = create(&app, &body("Dự thảo chưa công bố")).await;
    let (s, b) = json(
        app.post_json(&format!("/api/v1/policies/{public}/publish"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(s, 200, "{b}");

    // Unknown and unpublished policies are refused naming the field; nothing is stored.
    for bad in ["khong-co-chinh-sach-nay", hidden.as_str()] {
        let (s, b) = feedback_about(&app, &xa, bad).await;
        assert_eq!(s, 422, "{bad}: {b}");
        assert!(b.to_string().contains("policy_id"), "{b}");
    }
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM feedback")
        .fetch_one(&app.state().store.pool)
        .await
        .unwrap()
        .get("n");
    assert_eq!(n, 0);

    // The public form offers the published policy only, preselected from the QR link.
    let html = app
        .get_anon(&format!("/feedback?area={xa}&policy={public}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!(
            "<option value=\"{public}\" selected>Bảo hiểm y tế học sinh</option>"
        )),
        "{html}"
    );
    assert!(
        !html.contains(&hidden),
        "an unpublished policy is offered: {html}"
    );
    let html = app
        .get_anon(&format!("/chinh-sach/{public}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(&format!("/feedback?policy={public}")), "{html}");

    let (s, b) = feedback_about(&app, &xa, &public).await;
    assert!(s == 200 || s == 201, "{s} {b}");
    let code = b["code"].as_str().unwrap().to_string();
    let track = app
        .get_anon(&format!("/feedback/track/{code}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        track.contains(&format!(
            "<a href=\"/chinh-sach/{public}\">Bảo hiểm y tế học sinh</a>"
        )),
        "{track}"
    );

    // The moderator sees the policy linked; the policy page counts the feedback about it.
    let (_, list) = json(app.get(&format!("/api/v1/feedback?policy_id={public}")).await).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let (_, none) = json(app.get(&format!("/api/v1/feedback?policy_id={hidden}")).await).await;
    assert_eq!(none.as_array().unwrap().len(), 0, "{none}");
    let id = list[0]["id"].as_str().unwrap().to_string();
    let editor = app.unique("bientap");
    user(&app, &editor, "editor", &[&p], "mat-khau-bien-tap").await;
    let c = client();
    let s = login(&app, &c, &editor, "mat-khau-bien-tap").await;
    let html = page(&c, &app, &s.cookie, &format!("/console/feedback/{id}")).await;
    assert!(
        html.contains(&format!(
            "<a href=\"/console/policies/{public}\">Bảo hiểm y tế học sinh</a>"
        )),
        "{html}"
    );
    let html = page(&c, &app, &s.cookie, &format!("/console/policies/{public}")).await;
    assert!(html.contains("id=\"policy-feedback-total\">1<"), "{html}");
    assert!(
        html.contains(&format!("/console/feedback?policy={public}")),
        "{html}"
    );
    let html = page(&c, &app, &s.cookie, &format!("/console/policies/{hidden}")).await;
    assert!(html.contains("id=\"policy-feedback-total\">0<"), "{html}");
    let html = page(&c, &app, &s.cookie, &format!("/console/feedback?policy={hidden}")).await;
    assert!(!html.contains(&code), "{html}");
    let html = page(&c, &app, &s.cookie, &format!("/console/feedback?policy={public}")).await;
    assert!(html.contains(&code), "{html}");
}

#[tokio::test]
async fn an_editor_edits_a_policy_and_its_stage_dates_and_unlinks_content_in_the_console() {
    let app = common::spawn_app().await;
    let p = uid("tinh");
    area(&app, &p, None).await;
    let xa = uid("xa");
    area(&app, &xa, Some(&p)).await;
    let id = create(
        &app,
        &json!({"title": "Cũ", "issuer": "UBND tỉnh", "field": "đất đai", "areas": [xa],
                "stage": "consultation", "stages": [{"stage": "consultation", "starts_on": "2025-01-01"}]}),
    )
    .await;
    let sha = media(&app, "approved", 60_000).await;
    link(&app, &id, "consultation", "media", &sha).await;

    let editor = app.unique("bientap");
    user(&app, &editor, "editor", &[&p], "mat-khau-bien-tap").await;
    let c = client();
    let s = login(&app, &c, &editor, "mat-khau-bien-tap").await;
    let html = page(&c, &app, &s.cookie, &format!("/console/policies/{id}")).await;
    assert!(
        html.contains(&format!("href=\"/console/policies/{id}/edit\"")),
        "{html}"
    );
    let html = page(&c, &app, &s.cookie, &format!("/console/policies/{id}/edit")).await;
    assert!(
        html.contains("Sửa chính sách") && html.contains("name=\"starts_on.issued\""),
        "{html}"
    );
    let post = |path: String, pairs: Vec<(&'static str, String)>| {
        let c = c.clone();
        let (cookie, csrf) = (s.cookie.clone(), s.csrf.clone());
        let url = app.url(&path);
        async move {
            let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
            all.extend(pairs.iter().map(|(k, v)| (*k, v.as_str())));
            c.post(url)
                .header("cookie", cookie)
                .form_pairs(&all)
                .send()
                .await
                .unwrap()
        }
    };
    let fields = |end: &str| {
        vec![
            ("title", "Hỗ trợ nhà ở xã hội".to_string()),
            ("issuer", "HĐND tỉnh".into()),
            ("doc_number", "05/2025/NQ-HĐND".into()),
            ("doc_url", "https://vanban.example.vn/05".into()),
            ("field", "nhà ở".into()),
            ("groups", "công nhân, người thu nhập thấp".into()),
            ("areas", xa.clone()),
            ("summary", "Tóm tắt <b>mới</b>".into()),
            ("stage", "issued".into()),
            ("starts_on.consultation", "2025-01-01".into()),
            ("ends_on.consultation", end.into()),
            ("starts_on.issued", "2025-03-01".into()),
        ]
    };
    // An end before the start is refused, naming the problem; nothing changes.
    let r = post(format!("/console/policies/{id}/edit"), fields("2024-12-01")).await;
    let body = r.text().await.unwrap();
    assert!(body.contains("ends (2024-12-01) before it starts"), "{body}");
    let (_, before) = json(app.get(&format!("/api/v1/policies/{id}")).await).await;
    assert_eq!(before["title"], "Cũ");

    let r = post(format!("/console/policies/{id}/edit"), fields("2025-02-15")).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let (_, after) = json(app.get(&format!("/api/v1/policies/{id}")).await).await;
    assert_eq!(
        (
            after["title"].as_str(),
            after["stage"].as_str(),
            after["direct_impact"].as_bool(),
            after["groups"].as_array().map(Vec::len)
        ),
        (Some("Hỗ trợ nhà ở xã hội"), Some("issued"), Some(false), Some(2)),
        "{after}"
    );
    assert_eq!(
        after["stages"],
        json!([{"stage": "consultation", "starts_on": "2025-01-01", "ends_on": "2025-02-15"},
               {"stage": "issued", "starts_on": "2025-03-01", "ends_on": null}]),
        "{after}"
    );

    // Unlink the content from its stage.
    let r = post(
        format!("/console/policies/{id}/unlink"),
        vec![
            ("stage", "consultation".into()),
            ("kind", "media".into()),
            ("ref_id", sha.clone()),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let (_, cov) = json(app.get(&format!("/api/v1/policies/{id}/coverage")).await).await;
    assert_eq!(cov["links"].as_array().unwrap().len(), 0, "{cov}");

    // Audited under the editor's name.
    let mine: Vec<String> = app
        .audit_actions(&format!("policy:{id}"))
        .await
        .into_iter()
        .filter(|(actor, _)| *actor == editor)
        .map(|(_, action)| action)
        .collect();
    assert_eq!(mine, ["policy.update", "policy.unlink"]);

    // A viewer has no edit link and cannot post the form.
    let viewer = app.unique("xem");
    user(&app, &viewer, "viewer", &[&p], "mat-khau-xem-1").await;
    let cv = client();
    let sv = login(&app, &cv, &viewer, "mat-khau-xem-1").await;
    let html = page(&cv, &app, &sv.cookie, &format!("/console/policies/{id}")).await;
    assert!(!html.contains("/edit\""), "{html}");
    let r = cv
        .post(app.url(&format!("/console/policies/{id}/edit")))
        .header("cookie", &sv.cookie)
        .form_pairs(&[
            ("csrf", &sv.csrf),
            ("title", "x"),
            ("issuer", "x"),
            ("field", "x"),
            ("areas", &xa),
            ("stage", "issued"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}
