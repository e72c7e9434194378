//! Issue 15's mutating routes in the audit walk of [`crate::hardening_audit`]: policies and
//! their links, organisations and their contributor accounts, a contributor's submission through
//! the editorial queue (the contributor's own calls are audited under the contributor's name),
//! and a citizen's feedback through moderation. Each call must succeed and add an audit row
//! naming its caller.

use std::collections::BTreeSet;

use serde_json::json;

use crate::common::{self, TestApp};
use crate::console_support::{token, user};
use crate::hardening_audit::{Body, step, step_as};

/// Call every issue-15 route once; `area` is a commune, `sha` an uploaded media item.
pub(crate) async fn steps(s: &TestApp, c: &mut BTreeSet<String>, area: &str, sha: &str) {
    // Policies.
    let pol = step(
        s,
        c,
        "POST /api/v1/policies",
        "/api/v1/policies",
        Body::Json(
            json!({"title": "Hỗ trợ học phí", "issuer": "HĐND tỉnh", "field": "giáo dục", "areas": [area]}),
        ),
    )
    .await;
    let pid = pol["id"].as_str().unwrap().to_string();
    step(
        s,
        c,
        "PATCH /api/v1/policies/{id}",
        &format!("/api/v1/policies/{pid}"),
        Body::Json(json!({"stage": "in_force"})),
    )
    .await;
    let link = json!({"stage": "consultation", "kind": "media", "ref_id": sha});
    step(
        s,
        c,
        "POST /api/v1/policies/{id}/links",
        &format!("/api/v1/policies/{pid}/links"),
        Body::Json(link.clone()),
    )
    .await;
    step(
        s,
        c,
        "DELETE /api/v1/policies/{id}/links",
        &format!("/api/v1/policies/{pid}/links"),
        Body::Json(link),
    )
    .await;
    for verb in ["publish", "unpublish"] {
        step(
            s,
            c,
            &format!("POST /api/v1/policies/{{id}}/{verb}"),
            &format!("/api/v1/policies/{pid}/{verb}"),
            Body::Json(json!({})),
        )
        .await;
    }

    // An organisation and its contributor account.
    let org = step(
        s,
        c,
        "POST /api/v1/organisations",
        "/api/v1/organisations",
        Body::Json(json!({"name": s.unique("Sở Y tế"), "kind": "department", "email": "so@example.vn"})),
    )
    .await;
    let oid = org["id"].as_str().unwrap().to_string();
    let uname = s.unique("ctv");
    let uid = user(s, &uname, "contributor", &[], "mat-khau-thu-nghiem").await;
    step(
        s,
        c,
        "POST /api/v1/organisations/{id}/members",
        &format!("/api/v1/organisations/{oid}/members"),
        Body::Json(json!({"user_id": uid})),
    )
    .await;
    let ctv = token(s, &uid).await;
    let me = (ctv.as_str(), uname.as_str());

    // A submission: sent, received, changes requested, edited and resubmitted by the
    // contributor, approved; a second one rejected.
    let sub = |title: &str| Body::Json(json!({"title": title, "body": "Lịch tiêm chủng.", "areas": [area]}));
    let first = step_as(
        s,
        c,
        "POST /api/v1/submissions",
        "/api/v1/submissions",
        sub("Tiêm chủng"),
        me,
    )
    .await;
    let id = first["id"].as_str().unwrap().to_string();
    let path = |verb: &str| format!("/api/v1/submissions/{id}/{verb}");
    step(
        s,
        c,
        "POST /api/v1/submissions/{id}/receive",
        &path("receive"),
        Body::Json(json!({})),
    )
    .await;
    step(
        s,
        c,
        "POST /api/v1/submissions/{id}/request-changes",
        &path("request-changes"),
        Body::Json(json!({"note": "Ghi rõ địa điểm tiêm"})),
    )
    .await;
    step_as(
        s,
        c,
        "PATCH /api/v1/submissions/{id}",
        &format!("/api/v1/submissions/{id}"),
        Body::Json(json!({"body": "Lịch tiêm tháng 12 tại trạm y tế xã."})),
        me,
    )
    .await;
    step_as(
        s,
        c,
        "POST /api/v1/submissions/{id}/resubmit",
        &path("resubmit"),
        Body::Json(json!({})),
        me,
    )
    .await;
    step(
        s,
        c,
        "POST /api/v1/submissions/{id}/approve",
        &path("approve"),
        Body::Json(json!({})),
    )
    .await;
    let second = step_as(
        s,
        c,
        "POST /api/v1/submissions",
        "/api/v1/submissions",
        sub("Tin khác"),
        me,
    )
    .await;
    step(
        s,
        c,
        "POST /api/v1/submissions/{id}/reject",
        &format!("/api/v1/submissions/{}/reject", second["id"].as_str().unwrap()),
        Body::Json(json!({"note": "Trùng nội dung"})),
    )
    .await;

    // A citizen's feedback (anonymous, not an operator action), then its moderation.
    let (st, r) = crate::feedback::send_solved(s, area, "Loa thôn 3 kêu quá to.", &[]).await;
    assert_eq!(st, 201, "{r}");
    let (_, list) = common::json(s.get("/api/v1/feedback?status=received").await).await;
    let fid = list
        .as_array()
        .and_then(|a| a.first())
        .expect("the feedback is listed")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = |verb: &str| format!("/api/v1/feedback/{fid}/{verb}");
    step(
        s,
        c,
        "POST /api/v1/feedback/{id}/assign",
        &path("assign"),
        Body::Json(json!({"organisation_id": oid})),
    )
    .await;
    step(
        s,
        c,
        "POST /api/v1/feedback/{id}/answer",
        &path("answer"),
        Body::Json(json!({"answer": "Đã chỉnh âm lượng.", "publish": true})),
    )
    .await;
    step(
        s,
        c,
        "POST /api/v1/feedback/{id}/close",
        &path("close"),
        Body::Json(json!({})),
    )
    .await;
}
