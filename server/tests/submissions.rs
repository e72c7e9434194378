//! Contributors' submissions (issue 15) against the real server: an organisation's account sends
//! text with a picture and a recording, sees only its organisation's submissions, is told of
//! each editorial step; the Department receives, requests changes, and approves, which makes a
//! draft bulletin for the bulletins' own review. As an attacker, the contributor's own
//! credentials never approve or publish anything, nor read anything else. The monthly tracking
//! names who has not submitted.

use serde_json::{Value, json};

use crate::common::{self, TestApp};
use crate::console_support::{scoped_user, token, two_communes, user, wav};

struct Org {
    id: String,
    /// A contributor's bearer token.
    token: String,
}

async fn org_with_contributor(app: &TestApp, name: &str) -> Org {
    let (s, o) = common::json(
        app.post_json(
            "/api/v1/organisations",
            &json!({"name": app.unique(name), "kind": "department", "email": "so@example.vn"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{o}");
    let id = o["id"].as_str().unwrap().to_string();
    let uname = app.unique("ctv");
    let uid = user(app, &uname, "contributor", &[], "mat-khau-thu-nghiem").await;
    let r = app
        .post_json(
            &format!("/api/v1/organisations/{id}/members"),
            &json!({"user_id": uid}),
        )
        .await;
    assert_eq!(r.status(), 204);
    Org {
        id,
        token: token(app, &uid).await,
    }
}

/// A submission's multipart body: `fields`, and `files` (file name, bytes) as field `file`.
fn multipart(fields: &[(&str, &str)], files: &[(&str, Vec<u8>)]) -> (String, Vec<u8>) {
    let files: Vec<_> = files
        .iter()
        .map(|(f, bytes)| ("file", *f, "application/octet-stream", bytes.as_slice()))
        .collect();
    common::multipart(fields, &files)
}

/// A contributor's multipart submission (`multipart`'s content type and body) with its bearer.
async fn submit(app: &TestApp, bearer: &str, ct: String, body: Vec<u8>) -> (u16, Value) {
    common::json(app.post_as("/api/v1/submissions", Some(bearer), &ct, body).await).await
}

async fn as_(app: &TestApp, bearer: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut r = app
        .client
        .request(method.parse().unwrap(), app.url(path))
        .bearer_auth(bearer);
    if let Some(b) = body {
        r = r.json(b);
    }
    common::json(r.send().await.unwrap()).await
}

#[tokio::test]
async fn a_contributor_submits_and_the_department_requests_changes_then_approves_into_a_draft_bulletin() {
    let app = common::spawn_app().await;
    let t = two_communes(&app).await;
    let so = org_with_contributor(&app, "Sở Y tế").await;
    let other = org_with_contributor(&app, "UBND huyện").await;

    let policy = crate::policy::create(
        &app,
        &json!({"title": "Tiêm chủng mở rộng 2026", "issuer": "Sở Y tế", "field": "y tế",
                "areas": [t.mine], "stage": "in_force"}),
    )
    .await;
    // A policy that does not exist is refused, naming the field.
    let (ct, body) = multipart(
        &[("title", "x"), ("policy_id", "CS-2026-01"), ("areas", &t.mine)],
        &[],
    );
    let (s, b) = submit(&app, &so.token, ct, body).await;
    assert_eq!(s, 422, "{b}");
    assert!(b.to_string().contains("policy_id"), "{b}");
    let (ct, body) = multipart(
        &[
            ("title", "Tiêm chủng mở rộng"),
            ("body", "Lịch tiêm tháng 12 <b>miễn phí</b>."),
            ("policy_id", &policy),
            ("areas", &t.mine),
        ],
        &[("poster.png", common::tiny_png()), ("loi-nhan.wav", wav(1))],
    );
    let (s, sub) = submit(&app, &so.token, ct, body).await;
    assert_eq!(s, 201, "{sub}");
    let id = sub["id"].as_str().unwrap().to_string();
    assert_eq!(sub["status"], "submitted");
    let kinds: Vec<&str> = sub["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 2);
    assert!(kinds.contains(&"image") && kinds.contains(&"audio"), "{kinds:?}");
    // The recording is a draft in the media library: never playable before an approval.
    let audio = sub["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "audio")
        .unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, m) = common::json(app.get(&format!("/api/v1/media/{audio}")).await).await;
    assert_eq!(m["status"], "draft", "{m}");

    // Each organisation sees only its own.
    let (s, mine) = as_(&app, &so.token, "GET", "/api/v1/submissions", None).await;
    assert_eq!((s, mine.as_array().unwrap().len()), (200, 1));
    let (s, theirs) = as_(&app, &other.token, "GET", "/api/v1/submissions", None).await;
    assert_eq!((s, theirs.as_array().unwrap().len()), (200, 0), "{theirs}");
    let (s, _) = as_(
        &app,
        &other.token,
        "GET",
        &format!("/api/v1/submissions/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 404);

    // The Department: receive, request changes (a reason is needed), the contributor edits and
    // sends again, the approver approves.
    let (_, editor) = scoped_user(&app, "bt", "editor", &[]).await;
    let (_, approver) = scoped_user(&app, "ld", "approver", &[]).await;
    let (s, b) = as_(
        &app,
        &editor,
        "POST",
        &format!("/api/v1/submissions/{id}/receive"),
        None,
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("received")), "{b}");
    let (s, _) = as_(
        &app,
        &editor,
        "POST",
        &format!("/api/v1/submissions/{id}/request-changes"),
        Some(&json!({})),
    )
    .await;
    assert_eq!(s, 400, "a request for changes needs a note");
    let (s, b) = as_(
        &app,
        &editor,
        "POST",
        &format!("/api/v1/submissions/{id}/request-changes"),
        Some(&json!({"note": "Ghi rõ địa điểm tiêm"})),
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("changes_requested")), "{b}");
    let (_, seen) = as_(&app, &so.token, "GET", &format!("/api/v1/submissions/{id}"), None).await;
    let notices = seen["notices"].as_array().unwrap();
    assert!(
        notices
            .iter()
            .any(|n| n["message"].as_str().unwrap().contains("Ghi rõ địa điểm tiêm")),
        "{seen}"
    );
    assert_eq!(
        notices.last().unwrap()["state"],
        "pending",
        "to be e-mailed to the organisation"
    );
    let (s, b) = as_(
        &app,
        &so.token,
        "PATCH",
        &format!("/api/v1/submissions/{id}"),
        Some(&json!({"body": "Lịch tiêm tháng 12 tại trạm y tế xã."})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = as_(
        &app,
        &so.token,
        "POST",
        &format!("/api/v1/submissions/{id}/resubmit"),
        None,
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("submitted")), "{b}");
    let (s, b) = as_(
        &app,
        &editor,
        "POST",
        &format!("/api/v1/submissions/{id}/approve"),
        None,
    )
    .await;
    assert_eq!(s, 403, "approving needs the approver role: {b}");
    let (s, b) = as_(
        &app,
        &approver,
        "POST",
        &format!("/api/v1/submissions/{id}/approve"),
        None,
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("approved")), "{b}");
    let bulletin = b["bulletin_id"].as_str().expect("a draft bulletin").to_string();
    let (_, bl) = common::json(app.get(&format!("/api/v1/bulletins/{bulletin}")).await).await;
    assert_eq!(
        bl["status"], "draft",
        "the bulletin goes through its own review: {bl}"
    );
    assert_eq!(bl["areas"], json!([t.mine]));
    // The bulletin is linked to the policy's current stage: its coverage will count it.
    let (_, cov) = common::json(app.get(&format!("/api/v1/policies/{policy}/coverage")).await).await;
    assert_eq!(
        cov["links"],
        json!([{"stage": "in_force", "kind": "bulletin", "ref_id": bulletin, "plays": 0, "devices": 0, "displays": 0, "public": false}]),
        "{cov}"
    );
    // Decided: nobody edits it any more.
    let (s, _) = as_(
        &app,
        &so.token,
        "PATCH",
        &format!("/api/v1/submissions/{id}"),
        Some(&json!({"title": "x"})),
    )
    .await;
    assert_eq!(s, 409);

    // Monthly tracking: the other organisation has not submitted.
    let (s, m) = common::json(app.get("/api/v1/submissions/monthly").await).await;
    assert_eq!(s, 200, "{m}");
    let line = m["organisations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["organisation_id"] == so.id.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (line["submitted"].as_i64(), line["approved"].as_i64()),
        (Some(1), Some(1))
    );
    assert!(
        m["not_submitted"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().starts_with("UBND huyện")),
        "{m}"
    );
    let (s, _) = as_(&app, &so.token, "GET", "/api/v1/submissions/monthly", None).await;
    assert_eq!(s, 403, "contributors do not see the other organisations");
}

#[tokio::test]
async fn a_contributor_can_never_approve_or_publish_with_its_own_credentials() {
    let app = common::spawn_app().await;
    let t = two_communes(&app).await;
    let so = org_with_contributor(&app, "Báo tỉnh").await;
    let (s, sub) = as_(
        &app,
        &so.token,
        "POST",
        "/api/v1/submissions",
        Some(&json!({"title": "Tin", "body": "…", "areas": [t.mine]})),
    )
    .await;
    assert_eq!(s, 201, "{sub}");
    let id = sub["id"].as_str().unwrap().to_string();
    // A bulletin made by staff, pending approval, and an uploaded draft file.
    let (_, b) = common::json(
        app.post_json(
            "/api/v1/bulletins",
            &json!({"title": "T", "body": "B", "areas": [t.mine]}),
        )
        .await,
    )
    .await;
    let bid = b["id"].as_str().unwrap().to_string();
    app.post_json(&format!("/api/v1/bulletins/{bid}/submit"), &json!({}))
        .await;
    let attempts: Vec<(&str, String, Value)> = vec![
        ("POST", format!("/api/v1/submissions/{id}/approve"), json!({})),
        ("POST", format!("/api/v1/submissions/{id}/receive"), json!({})),
        (
            "POST",
            format!("/api/v1/submissions/{id}/reject"),
            json!({"note": "tự từ chối"}),
        ),
        ("POST", format!("/api/v1/bulletins/{bid}/approve"), json!({})),
        ("POST", format!("/api/v1/bulletins/{bid}/publish"), json!({})),
        (
            "POST",
            "/api/v1/bulletins".into(),
            json!({"title": "T", "body": "B", "areas": [t.mine]}),
        ),
        (
            "POST",
            format!("/api/v1/areas/{}/commands", t.mine),
            json!({"action": "stop"}),
        ),
        ("POST", "/api/v1/schedules".into(), json!({})),
        ("GET", "/api/v1/devices".into(), Value::Null),
        ("GET", "/api/v1/feedback".into(), Value::Null),
        (
            "POST",
            format!("/api/v1/users/{}/tokens", "x"),
            json!({"name": "x"}),
        ),
    ];
    for (method, path, body) in attempts {
        let (s, b) = as_(&app, &so.token, method, &path, (!body.is_null()).then_some(&body)).await;
        assert_eq!(s, 403, "{method} {path} with a contributor's token: {b}");
    }
    let (_, after) = common::json(app.get(&format!("/api/v1/submissions/{id}")).await).await;
    assert_eq!(after["status"], "submitted");
    let (_, bl) = common::json(app.get(&format!("/api/v1/bulletins/{bid}")).await).await;
    assert_eq!(bl["status"], "pending");
    // A positive control: the same approve endpoint works for an approver.
    let (_, approver) = scoped_user(&app, "ld", "approver", &[]).await;
    let (s, _) = as_(
        &app,
        &approver,
        "POST",
        &format!("/api/v1/submissions/{id}/approve"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    // The console sends a contributor to its submissions and nowhere else.
    let c = crate::console_support::client();
    let uname = app.unique("ctv2");
    let uid = user(&app, &uname, "contributor", &[], "mat-khau-thu-nghiem").await;
    app.post_json(
        &format!("/api/v1/organisations/{}/members", so.id),
        &json!({"user_id": uid}),
    )
    .await;
    let r = crate::console_support::try_login(&app, &c, &uname, "mat-khau-thu-nghiem").await;
    assert_eq!(r.status(), 303);
    let cookie = format!(
        "nguon_session={}",
        crate::console_support::set_cookie(&r, "nguon_session").unwrap()
    );
    for path in [
        "/console",
        "/console/devices",
        "/console/feedback",
        "/console/bulletins",
    ] {
        let r = c
            .get(app.url(path))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.headers()["location"], "/console/submissions", "{path}");
    }
    let html = crate::console_support::page(&c, &app, &cookie, "/console/submissions").await;
    assert!(html.contains("Tin") && html.contains("submission-form"), "{html}");
}
