//! Issue 11 item 7: every state-changing API call writes an audit row naming its caller. The
//! test walks the router: it reads every `.route(...)` of `server/src/http/` and
//! `server/src/board/` (as `layers.rs` reads the source) and collects each POST, PUT, PATCH and
//! DELETE; a scenario then calls each one once, successfully, and checks that the call added an
//! audit row whose actor is the caller. A new mutating route without a step here fails the test,
//! so it cannot be added unaudited unnoticed.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::common::{self, TestApp, json as body, tiny_png};
use crate::console_support::wav;

/// Routes that change nothing an operator did: a board reporting what it displayed is device
/// traffic, like the MQTT ingest (stored idempotently, no audit entry).
const NOT_OPERATOR_ACTIONS: &[&str] = &[
    "POST /board/{device_id}/display",
    // A read with a body: shows how a text will be read, stores nothing.
    "POST /api/v1/tts/normalize",
    // A citizen's anonymous feedback (proof of work, per-address budget): audited with no
    // personal data and no operator; `feedback.rs` checks its audit entry.
    "POST /api/v1/feedback",
];

/// Every `METHOD path` of the API and board routers that is POST, PUT, PATCH or DELETE (the
/// router scan of the route index test, `api_docs`).
fn mutating_routes() -> BTreeSet<String> {
    crate::api_docs::router_routes()
        .into_iter()
        .filter(|r| !r.starts_with("GET "))
        .collect()
}

pub(crate) enum Body {
    Json(Value),
    Csv(String),
    File(Vec<u8>, &'static str),
    /// A multipart form of named fields.
    Fields(Vec<(&'static str, Vec<u8>)>),
    Xml(String),
    None,
}

async fn audit_rows(app: &TestApp) -> Vec<(String, String)> {
    sqlx::query_as("SELECT actor, action FROM audit_log ORDER BY at, id")
        .fetch_all(&app.state().store.pool)
        .await
        .unwrap()
}

/// Call `method path` with the admin token; it must succeed and add an audit row by the caller.
pub(crate) async fn step(
    app: &TestApp,
    covered: &mut BTreeSet<String>,
    route: &str,
    path: &str,
    b: Body,
) -> Value {
    step_as(app, covered, route, path, b, (&app.token, "admin-token")).await
}

/// [`step`] with another caller: `(bearer token, username the audit row must name)`.
pub(crate) async fn step_as(
    app: &TestApp,
    covered: &mut BTreeSet<String>,
    route: &str,
    path: &str,
    b: Body,
    (bearer, actor_name): (&str, &str),
) -> Value {
    let (method, _) = route.split_once(' ').unwrap();
    let before = audit_rows(app).await.len();
    let req = app
        .client
        .request(method.parse().unwrap(), app.url(path))
        .bearer_auth(bearer);
    let req = match b {
        Body::Json(v) => req.json(&v),
        Body::Csv(t) => req.header("content-type", "text/csv").body(t),
        Body::Xml(t) => req.header("content-type", "application/cap+xml").body(t),
        Body::File(bytes, name) => {
            let boundary = "nguon-audit-boundary";
            let mut form = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\r\n"
            )
            .into_bytes();
            form.extend_from_slice(&bytes);
            form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            req.header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(form)
        }
        Body::Fields(fields) => {
            let boundary = "nguon-audit-boundary";
            let mut form = Vec::new();
            for (name, v) in fields {
                form.extend_from_slice(
                    format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                        .as_bytes(),
                );
                form.extend_from_slice(&v);
                form.extend_from_slice(b"\r\n");
            }
            form.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
            req.header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(form)
        }
        Body::None => req,
    };
    let (s, v) = body(req.send().await.unwrap()).await;
    assert!((200..300).contains(&s), "{route} ({path}): {s} {v}");
    let rows = audit_rows(app).await;
    assert!(rows.len() > before, "{route} ({path}) wrote no audit row");
    for (actor, action) in &rows[before..] {
        assert_eq!(actor, actor_name, "{route}: {action}");
    }
    covered.insert(route.to_string());
    v
}

#[tokio::test]
async fn every_mutating_api_route_writes_an_audit_row_naming_the_caller() {
    let app = common::spawn_app().await;
    let mut c = BTreeSet::new();
    let c = &mut c;
    let (p, k, gone) = (app.unique("p"), app.unique("c"), app.unique("g"));
    let s = &app;
    step(
        s,
        c,
        "POST /api/v1/areas",
        "/api/v1/areas",
        Body::Json(json!({"code": p, "name": "Tỉnh", "level": "province"})),
    )
    .await;
    step(
        s,
        c,
        "PATCH /api/v1/areas/{code}",
        &format!("/api/v1/areas/{p}"),
        Body::Json(json!({"name": "Tỉnh mới"})),
    )
    .await;
    step(
        s,
        c,
        "PUT /api/v1/areas/{code}/languages",
        &format!("/api/v1/areas/{p}/languages"),
        Body::Json(json!({"languages": ["vi", "hmn"]})),
    )
    .await;
    step(
        s,
        c,
        "POST /api/v1/areas/import",
        "/api/v1/areas/import",
        Body::Csv(format!(
            "code,name,parent,level\n{k},Xã,{p},commune\n{gone},Xóa,{p},commune\n"
        )),
    )
    .await;
    step(
        s,
        c,
        "DELETE /api/v1/areas/{code}",
        &format!("/api/v1/areas/{gone}"),
        Body::None,
    )
    .await;
    let (d, d2) = (app.unique("lc"), app.unique("lc"));
    step(
        s,
        c,
        "POST /api/v1/devices",
        "/api/v1/devices",
        Body::Json(json!({"id": d, "kind": "loudspeaker", "area": k, "password": "audit-password-1"})),
    )
    .await;
    step(
        s,
        c,
        "PATCH /api/v1/devices/{id}",
        &format!("/api/v1/devices/{d}"),
        Body::Json(json!({"name": "Loa 1"})),
    )
    .await;
    let hash = nguon_provision::credential::hash_password("pw-0123456789");
    step(s, c, "POST /api/v1/fleet/import", "/api/v1/fleet/import", Body::Json(json!({"version": 1, "areas": [],
        "devices": [{"id": d2, "kind": "loudspeaker", "area": k, "name": "Loa 2", "lat": null, "lon": null, "password_hash": hash, "public_key": null}],
        "disabled": []}))).await;

    let m = step(
        s,
        c,
        "POST /api/v1/media",
        "/api/v1/media",
        Body::File(wav(1), "a.wav"),
    )
    .await;
    let sha = m["sha256"].as_str().unwrap().to_string();
    step(
        s,
        c,
        "POST /api/v1/media/{sha256}/submit",
        &format!("/api/v1/media/{sha}/submit"),
        Body::None,
    )
    .await;
    step(
        s,
        c,
        "POST /api/v1/media/{sha256}/approve",
        &format!("/api/v1/media/{sha}/approve"),
        Body::None,
    )
    .await;
    let other = step(
        s,
        c,
        "POST /api/v1/media",
        "/api/v1/media",
        Body::File(wav(2), "b.wav"),
    )
    .await;
    let other = other["sha256"].as_str().unwrap().to_string();
    step(
        s,
        c,
        "POST /api/v1/media/{sha256}/reject",
        &format!("/api/v1/media/{other}/reject"),
        Body::Json(json!({"note": "ồn"})),
    )
    .await;

    let sched = json!({"title": "sáng", "media": [sha], "targets": {"areas": [k]},
        "rule": {"kind": "cron", "cron": "30 6 * * 1-5"}, "time_zone": "Asia/Ho_Chi_Minh"});
    let made = step(
        s,
        c,
        "POST /api/v1/schedules",
        "/api/v1/schedules",
        Body::Json(sched.clone()),
    )
    .await;
    let sid = made["schedule"]["id"].as_str().unwrap().to_string();
    let mut again = sched.clone();
    again["title"] = json!("trưa");
    step(
        s,
        c,
        "PUT /api/v1/schedules/{id}",
        &format!("/api/v1/schedules/{sid}"),
        Body::Json(again),
    )
    .await;
    step(
        s,
        c,
        "PATCH /api/v1/schedules/{id}",
        &format!("/api/v1/schedules/{sid}"),
        Body::Json(json!({"enabled": false})),
    )
    .await;
    step(
        s,
        c,
        "DELETE /api/v1/schedules/{id}",
        &format!("/api/v1/schedules/{sid}"),
        Body::None,
    )
    .await;

    let play = json!({"action": "play_now", "media": [sha], "priority": "emergency"});
    step(
        s,
        c,
        "POST /api/v1/devices/{id}/commands",
        &format!("/api/v1/devices/{d}/commands"),
        Body::Json(play.clone()),
    )
    .await;
    step(
        s,
        c,
        "POST /api/v1/areas/{code}/commands",
        &format!("/api/v1/areas/{k}/commands"),
        Body::Json(play),
    )
    .await;
    let live = step(
        s,
        c,
        "POST /api/v1/live",
        "/api/v1/live",
        Body::Json(json!({"devices": [d]})),
    )
    .await;
    step(
        s,
        c,
        "DELETE /api/v1/live/{id}",
        &format!("/api/v1/live/{}", live["id"].as_str().unwrap()),
        Body::None,
    )
    .await;

    let b = step(
        s,
        c,
        "POST /api/v1/bulletins",
        "/api/v1/bulletins",
        Body::Json(json!({"title": "Thông báo", "body": "Nội dung", "areas": [k]})),
    )
    .await;
    let bid = b["id"].as_str().unwrap().to_string();
    step(
        s,
        c,
        "PATCH /api/v1/bulletins/{id}",
        &format!("/api/v1/bulletins/{bid}"),
        Body::Json(json!({"category": "Thời tiết"})),
    )
    .await;
    step(
        s,
        c,
        "POST /api/v1/bulletins/{id}/files",
        &format!("/api/v1/bulletins/{bid}/files"),
        Body::File(tiny_png(), "a.png"),
    )
    .await;
    step(
        s,
        c,
        "POST /api/v1/bulletins/{id}/submit",
        &format!("/api/v1/bulletins/{bid}/submit"),
        Body::Json(json!({})),
    )
    .await;
    step(
        s,
        c,
        "POST /api/v1/bulletins/{id}/approve",
        &format!("/api/v1/bulletins/{bid}/approve"),
        Body::Json(json!({})),
    )
    .await;
    step(
        s,
        c,
        "POST /api/v1/bulletins/{id}/publish",
        &format!("/api/v1/bulletins/{bid}/publish"),
        Body::Json(json!({"speakers": false})),
    )
    .await;
    step(
        s,
        c,
        "POST /api/v1/bulletins/{id}/unpublish",
        &format!("/api/v1/bulletins/{bid}/unpublish"),
        Body::Json(json!({})),
    )
    .await;
    step(
        s,
        c,
        "POST /api/v1/bulletins/{id}/schedule",
        &format!("/api/v1/bulletins/{bid}/schedule"),
        Body::Json(json!({"speakers": false})),
    )
    .await;
    let r = step(
        s,
        c,
        "POST /api/v1/bulletins",
        "/api/v1/bulletins",
        Body::Json(json!({"title": "Bị từ chối", "areas": [k]})),
    )
    .await;
    let rid = r["id"].as_str().unwrap().to_string();
    step(
        s,
        c,
        "POST /api/v1/bulletins/{id}/submit",
        &format!("/api/v1/bulletins/{rid}/submit"),
        Body::Json(json!({})),
    )
    .await;
    step(
        s,
        c,
        "POST /api/v1/bulletins/{id}/reject",
        &format!("/api/v1/bulletins/{rid}/reject"),
        Body::Json(json!({"note": "sai"})),
    )
    .await;

    step(
        s,
        c,
        "PUT /api/v1/tts/lexicon",
        "/api/v1/tts/lexicon",
        Body::Json(json!({"entries": [{"term": "HTX", "expansion": "hợp tác xã"}]})),
    )
    .await;
    step(
        s,
        c,
        "POST /api/v1/tts/lexicon/entries",
        "/api/v1/tts/lexicon/entries",
        Body::Json(json!({"term": "HTXNN", "expansion": "hợp tác xã nông nghiệp"})),
    )
    .await;
    step(
        s,
        c,
        "PUT /api/v1/areas/{code}/voice",
        &format!("/api/v1/areas/{p}/voice"),
        Body::Json(json!({"voice": "vi", "speed": 150, "pitch": 50})),
    )
    .await;
    step(
        s,
        c,
        "DELETE /api/v1/areas/{code}/voice",
        &format!("/api/v1/areas/{p}/voice"),
        Body::None,
    )
    .await;
    crate::alarms::audit_steps(s, c, &p).await;
    step(
        s,
        c,
        "POST /api/v1/tts/preview",
        "/api/v1/tts/preview",
        Body::Json(json!({"text": "Xin chào bà con", "voice": "vi"})),
    )
    .await;

    // CAP (issue 12 §4): an untrusted sender's alerts wait; one approved, one rejected.
    step(
        s,
        c,
        "PUT /api/v1/areas/{code}/cap",
        &format!("/api/v1/areas/{k}/cap"),
        Body::Json(json!({"geocodes": ["ISO3166-2=VN-99"]})),
    )
    .await;
    let mut waiting = Vec::new();
    for n in ["1", "2"] {
        let sent = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S+00:00");
        let xml = format!(
            r#"<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>AUDIT-{n}</identifier>
<sender>audit@example.org</sender><sent>{sent}</sent><status>Actual</status><msgType>Alert</msgType>
<scope>Public</scope><info><category>Met</category><event>Lũ</event><urgency>Immediate</urgency>
<severity>Severe</severity><certainty>Observed</certainty><headline>Lũ quét</headline><area>
<areaDesc>Xã</areaDesc><geocode><valueName>ISO3166-2</valueName><value>VN-99</value></geocode></area></info></alert>"#
        );
        let r = step(
            s,
            c,
            "POST /api/v1/alerts/cap",
            "/api/v1/alerts/cap",
            Body::Xml(xml),
        )
        .await;
        assert_eq!(r["state"], "pending_approval", "{r}");
        waiting.push(r["id"].as_str().unwrap().to_string());
    }
    let (_, pending) = body(app.get("/api/v1/alerts?state=pending_approval").await).await;
    let ids: Vec<String> = pending
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{pending}");
    step(
        s,
        c,
        "POST /api/v1/alerts/messages/{id}/approve",
        &format!("/api/v1/alerts/messages/{}/approve", ids[0]),
        Body::None,
    )
    .await;
    step(
        s,
        c,
        "POST /api/v1/alerts/messages/{id}/reject",
        &format!("/api/v1/alerts/messages/{}/reject", ids[1]),
        Body::None,
    )
    .await;

    let u = step(
        s,
        c,
        "POST /api/v1/users",
        "/api/v1/users",
        Body::Json(json!({"username": app.unique("u"), "role": "viewer", "password": "mat-khau-nguoi-xem"})),
    )
    .await;
    let uid = u["id"].as_str().unwrap().to_string();
    step(
        s,
        c,
        "PATCH /api/v1/users/{id}",
        &format!("/api/v1/users/{uid}"),
        Body::Json(json!({"display_name": "Người xem"})),
    )
    .await;
    let t = step(
        s,
        c,
        "POST /api/v1/users/{id}/tokens",
        &format!("/api/v1/users/{uid}/tokens"),
        Body::Json(json!({"name": "t"})),
    )
    .await;
    let tid = t["id"].as_str().unwrap().to_string();
    step(
        s,
        c,
        "DELETE /api/v1/users/{id}/tokens/{token_id}",
        &format!("/api/v1/users/{uid}/tokens/{tid}"),
        Body::None,
    )
    .await;

    crate::hardening_audit_issue15::steps(s, c, &k, &sha).await;
    crate::hardening_audit_ota::steps(s, c, &p).await;
    crate::hardening_audit_autonomy::steps(s, c, &p, &sha).await;

    let all = mutating_routes();
    assert!(all.len() >= 30, "the walk found the routes: {all:?}");
    let missing: Vec<_> = all
        .iter()
        .filter(|r| !c.contains(*r) && !NOT_OPERATOR_ACTIONS.contains(&r.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "mutating routes not exercised here (add a step): {missing:?}"
    );
}
