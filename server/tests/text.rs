//! Issue 11, item 9 (HTTP half): NUL in a name or a query used to reach PostgreSQL, which refuses
//! it in any text value, and came back as a 500. Every text field, path segment and query value
//! holding NUL or another control character is now a 422 `invalid_text` naming the field, on
//! both databases, before anything is written.

use crate::common;
use crate::console_support;
use crate::dispatch_support;

use console_support::FormExt;
use dispatch_support::*;
use serde_json::json;

fn refused(status: u16, body: &serde_json::Value, field: &str) {
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_text", "{body}");
    let msg = body["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains(field), "names `{field}`: {msg}");
}

#[tokio::test]
async fn nul_and_control_characters_in_names_titles_paths_and_queries_are_a_422_not_a_500() {
    let app = common::spawn_app().await;
    let p = uid("p");
    area(&app, &p, None).await;

    // A name with NUL (JSON body): the area is refused and not created.
    let code = uid("a");
    let (s, b) = common::json(
        app.post_json(
            "/api/v1/areas",
            &json!({"code": code, "name": "Xã\u{0}Tả Phìn", "parent": p, "level": "commune"}),
        )
        .await,
    )
    .await;
    refused(s, &b, "name");
    let (s, _) = common::json(app.get(&format!("/api/v1/areas/{code}")).await).await;
    assert_eq!(s, 404, "nothing was written");

    // A device name with an escape sequence, a schedule title with a line break.
    let (s, b) = common::json(
        app.post_json(
            "/api/v1/devices",
            &json!({"id": uid("lc"), "kind": "loudspeaker", "area": p, "password": "device-password",
                    "name": "loa \u{1b}[31m"}),
        )
        .await,
    )
    .await;
    refused(s, &b, "name");
    let sha = media(&app, "approved", 10_000).await;
    let (s, b) = common::json(
        app.post_json(
            "/api/v1/schedules",
            &json!({"title": "a\u{0}b", "media": [sha], "targets": {"areas": [p]},
                    "rule": {"kind": "once", "at": "2030-01-01T08:00:00"}}),
        )
        .await,
    )
    .await;
    refused(s, &b, "title");

    // NUL in a query value and in a path segment.
    let (s, b) = common::json(app.get(&format!("/api/v1/devices?area={p}%00")).await).await;
    refused(s, &b, "area");
    let (s, b) = common::json(app.get("/api/v1/devices/lc%00x").await).await;
    refused(s, &b, "path");
    let (s, b) = common::json(app.get("/api/v1/plays?device=%00").await).await;
    refused(s, &b, "device");

    // A console form field.
    let admin = app.unique("adm");
    console_support::user(&app, &admin, "admin", &[], "admin-password-0123").await;
    let c = console_support::client();
    let session = console_support::login(&app, &c, &admin, "admin-password-0123").await;
    let code2 = uid("c");
    let r = c
        .post(app.url("/console/areas"))
        .header("cookie", &session.cookie)
        .form_pairs(&[
            ("csrf", session.csrf.as_str()),
            ("code", code2.as_str()),
            ("name", "bad\u{0}name"),
            ("parent", p.as_str()),
            ("level", "commune"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "{}", r.text().await.unwrap_or_default());

    // Text with tabs and line breaks where they mean something is still fine.
    let (s, b) = common::json(
        app.post_json(
            "/api/v1/areas",
            &json!({"code": uid("a"), "name": "Xã Tả Phìn", "parent": p, "level": "commune"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
}
