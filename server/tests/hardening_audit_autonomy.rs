//! Issue 16's commune autonomy routes in the audit walk of [`crate::hardening_audit`]: a
//! commune's setting and an answer to the question the dispatcher then asks it. Each call must
//! succeed and add an audit row naming its caller.

use std::collections::BTreeSet;

use serde_json::json;

use crate::common::{TestApp, json as body};
use crate::dispatch_support::eventually;
use crate::hardening_audit::{Body, step};

/// Call every autonomy route once; `province` is an area code, `sha` approved media.
pub(crate) async fn steps(s: &TestApp, c: &mut BTreeSet<String>, province: &str, sha: &str) {
    let xa = s.unique("xa");
    let (st, b) = body(
        s.post_json(
            "/api/v1/areas",
            &json!({"code": xa, "name": "Xã tự chủ", "parent": province, "level": "commune"}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 201, "{b}");
    step(
        s,
        c,
        "PUT /api/v1/areas/{code}/autonomy",
        &format!("/api/v1/areas/{xa}/autonomy"),
        Body::Json(json!({"enabled": true, "unanswered": "skip"})),
    )
    .await;
    let at = (chrono::Utc::now().with_timezone(&chrono_tz::Asia::Ho_Chi_Minh) + chrono::Duration::hours(2))
        .format("%Y-%m-%dT%H:%M:00")
        .to_string();
    let (st, b) = body(
        s.post_json(
            "/api/v1/schedules",
            &json!({"title": "Tin của tỉnh", "media": [sha], "targets": {"areas": [province]},
                    "rule": {"kind": "once", "at": at}}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 201, "{b}");
    let id = eventually("the commune's question", || async {
        let (_, b) = body(s.get(&format!("/api/v1/autonomy/requests?area={xa}")).await).await;
        b.as_array()
            .and_then(|v| v.first())
            .and_then(|q| q["id"].as_str())
            .map(str::to_string)
    })
    .await;
    step(
        s,
        c,
        "POST /api/v1/autonomy/requests/{id}/answer",
        &format!("/api/v1/autonomy/requests/{id}/answer"),
        Body::Json(json!({"decision": "decline", "reason": "Trùng lịch"})),
    )
    .await;
}
