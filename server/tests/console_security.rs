//! Console and API security (issue 7): CSRF on every form, login rate limiting, 401 without
//! credentials, sessions ended by logout, escaping of operator-entered text, roles and area
//! scopes on the API and the pages.

use crate::common;
use crate::console_support;
use crate::dispatch_support;

use common::{TestApp, json, spawn_app};
use console_support::*;
use dispatch_support::{area, device, uid};
use serde_json::json;

#[tokio::test]
async fn a_form_post_without_the_csrf_token_is_refused_with_403() {
    let app = spawn_app().await;
    let c = client();
    let s = login(&app, &c, "admin", common::TOKEN).await;
    let form = [
        ("username", "mallory1"),
        ("role", "admin"),
        ("password", "long-enough-pw"),
    ];
    let r = c
        .post(app.url("/console/users"))
        .header("cookie", &s.cookie)
        .form_pairs(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let mut with_wrong = form.to_vec();
    with_wrong.push(("csrf", "not-the-token"));
    let r = c
        .post(app.url("/console/users"))
        .header("cookie", &s.cookie)
        .form_pairs(&with_wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // The API refuses a state change made with the cookie but without the header token.
    let r = c
        .post(app.url("/api/v1/users"))
        .header("cookie", &s.cookie)
        .json(&json!({"username": "mallory2", "role": "admin", "password": "long-enough-pw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Logging out without the token is refused too; the login form needs its own token.
    let r = c
        .post(app.url("/console/logout"))
        .header("cookie", &s.cookie)
        .form_pairs(&[("x", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(app.url("/console/login"))
        .form_pairs(&[("username", "admin"), ("password", common::TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // With the token the same form works, and nobody was created before.
    let mut ok = form.to_vec();
    ok.push(("csrf", s.csrf.as_str()));
    let r = c
        .post(app.url("/console/users"))
        .header("cookie", &s.cookie)
        .form_pairs(&ok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, users) = json(app.get("/api/v1/users").await).await;
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"mallory1") && !names.contains(&"mallory2"),
        "{names:?}"
    );
    // Every change is in the audit log.
    let html = page(&c, &app, &s.cookie, "/console/audit").await;
    assert!(
        html.contains("user.create") && html.contains("user:mallory1"),
        "{html}"
    );
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_login_for_that_user_and_address() {
    let app = spawn_app().await;
    user(&app, "bientap", "editor", &[], "mat-khau-dung-1").await;
    let c = client();
    for i in 0..5 {
        let r = try_login(&app, &c, "bientap", "sai-mat-khau").await;
        assert_eq!(r.status(), 401, "attempt {i}");
        assert!(set_cookie(&r, "nguon_session").is_none());
    }
    // Now even the right password is refused until the window has passed.
    let r = try_login(&app, &c, "bientap", "mat-khau-dung-1").await;
    assert_eq!(r.status(), 429);
    assert!(set_cookie(&r, "nguon_session").is_none());
    let html = r.text().await.unwrap();
    assert!(html.contains("15 phút"), "{html}");
    // The attempts are stored in the database.
    let n: i64 = sqlx::Row::get(
        &sqlx::query("SELECT COUNT(*) AS n FROM login_attempts WHERE username = 'bientap' AND ok = 0")
            .fetch_one(&app.state().store.pool)
            .await
            .unwrap(),
        "n",
    );
    assert_eq!(n, 6);
    // Another user from the same address is not affected.
    user(&app, "duyet", "approver", &[], "mat-khau-dung-2").await;
    assert_eq!(
        try_login(&app, &c, "duyet", "mat-khau-dung-2").await.status(),
        303
    );
}

#[tokio::test]
async fn an_api_call_without_a_session_or_token_gets_401() {
    let app = spawn_app().await;
    let c = client();
    for path in ["/api/v1/media", "/api/v1/devices", "/api/v1/users", "/api/v1/me"] {
        assert_eq!(c.get(app.url(path)).send().await.unwrap().status(), 401, "{path}");
        let r = c
            .get(app.url(path))
            .header("cookie", "nguon_session=deadbeef")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} with a made-up session");
        assert_eq!(
            c.get(app.url(path))
                .bearer_auth("wrong")
                .send()
                .await
                .unwrap()
                .status(),
            401,
            "{path}"
        );
    }
    // A per-user token works, with that user's role.
    let id = user(&app, "xem", "viewer", &[], "mat-khau-xem-1").await;
    let t = token(&app, &id).await;
    assert_eq!(
        c.get(app.url("/api/v1/media"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(app.url("/api/v1/users"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let r = c
        .post(app.url("/api/v1/areas"))
        .bearer_auth(&t)
        .json(&json!({"code": "x1", "name": "x", "level": "commune"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Only the hash of the token is stored.
    let stored: String = sqlx::Row::get(
        &sqlx::query("SELECT token_hash FROM api_tokens")
            .fetch_one(&app.state().store.pool)
            .await
            .unwrap(),
        "token_hash",
    );
    assert_ne!(stored, t);
    // Pages without a session redirect to the login page.
    let r = c.get(app.url("/console/media")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/login");
}

#[tokio::test]
async fn a_session_id_does_not_survive_logout() {
    let app = spawn_app().await;
    let c = client();
    let s = login(&app, &c, "admin", common::TOKEN).await;
    assert_eq!(
        c.get(app.url("/api/v1/me"))
            .header("cookie", &s.cookie)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // The session id is not stored as such.
    let sid = s.cookie.trim_start_matches("nguon_session=").to_string();
    let n: i64 = sqlx::Row::get(
        &sqlx::query("SELECT COUNT(*) AS n FROM sessions WHERE id_hash = $1")
            .bind(sid.clone())
            .fetch_one(&app.state().store.pool)
            .await
            .unwrap(),
        "n",
    );
    assert_eq!(n, 0);
    let r = c
        .post(app.url("/console/logout"))
        .header("cookie", &s.cookie)
        .form_pairs(&[("csrf", s.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cleared = set_cookie(&r, "nguon_session").unwrap();
    assert!(cleared.is_empty());
    let r = c
        .get(app.url("/console"))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "the old cookie no longer opens the console");
    assert_eq!(
        c.get(app.url("/api/v1/me"))
            .header("cookie", &s.cookie)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn the_session_cookie_is_httponly_and_samesite() {
    let app = spawn_app().await;
    let c = client();
    let r = try_login(&app, &c, "admin", common::TOKEN).await;
    let raw: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let s = raw.iter().find(|v| v.starts_with("nguon_session=")).unwrap();
    assert!(
        s.contains("HttpOnly") && s.contains("SameSite=Lax") && s.contains("Max-Age="),
        "{s}"
    );
    assert_eq!(
        s.split(';').next().unwrap().len(),
        "nguon_session=".len() + 64,
        "32 random bytes, hex"
    );
}

#[tokio::test]
async fn templates_escape_operator_entered_text() {
    let app = spawn_app().await;
    let evil = "<script>alert(1)</script>";
    let r = app
        .upload_with_title("/api/v1/media", wav(1), "a.wav", Some(evil))
        .await;
    assert_eq!(r.status(), 201);
    let sha = r.json::<serde_json::Value>().await.unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let c = client();
    let s = login(&app, &c, "admin", common::TOKEN).await;
    for path in ["/console/media".to_string(), format!("/console/media/{sha}")] {
        let html = c
            .get(app.url(&path))
            .header("cookie", &s.cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{path}: {html}"
        );
        assert!(!html.contains(evil), "{path} must not contain the raw tag");
    }
}

#[tokio::test]
async fn roles_and_area_scopes_are_enforced_on_the_api_and_the_pages() {
    let app = spawn_app().await;
    let (p, a, b) = (uid("p"), uid("xa-a"), uid("xa-b"));
    area(&app, &p, None).await;
    area(&app, &a, Some(&p)).await;
    area(&app, &b, Some(&p)).await;
    let (da, db) = (uid("lc"), uid("lc"));
    device(&app, &da, &a, "device-password-a", None).await;
    device(&app, &db, &b, "device-password-b", None).await;
    let sha = dispatch_support::media(&app, "approved", 5000).await;
    let pending = dispatch_support::media(&app, "pending", 5000).await;
    let op = user(&app, "vanhanh-a", "operator", &[&a], "mat-khau-van-hanh").await;
    let ed = user(&app, "bientap-a", "editor", &[], "mat-khau-bien-tap").await;
    let (op_t, ed_t) = (token(&app, &op).await, token(&app, &ed).await);
    let c = client();
    // API: devices of another commune are invisible and forbidden.
    let (s, list) = json(
        c.get(app.url("/api/v1/devices"))
            .bearer_auth(&op_t)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![da.as_str()]);
    assert_eq!(
        c.get(app.url(&format!("/api/v1/devices/{db}")))
            .bearer_auth(&op_t)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        c.get(app.url(&format!("/api/v1/devices/{da}")))
            .bearer_auth(&op_t)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(app.url(&format!("/api/v1/areas/{b}")))
            .bearer_auth(&op_t)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let body = json!({"title": "x", "media": [sha], "targets": {"areas": [b]}, "rule": {"kind": "cron", "cron": "0 6 * * *"}});
    assert_eq!(
        c.post(app.url("/api/v1/schedules"))
            .bearer_auth(&op_t)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let cmd = json!({"action": "sync"});
    assert_eq!(
        c.post(app.url(&format!("/api/v1/devices/{db}/commands")))
            .bearer_auth(&op_t)
            .json(&cmd)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    // Inside its own commune the same operator may schedule and command through the API.
    let own = json!({"title": "x", "media": [sha], "targets": {"areas": [a]}, "rule": {"kind": "cron", "cron": "0 6 * * *"}});
    assert_eq!(
        c.post(app.url("/api/v1/schedules"))
            .bearer_auth(&op_t)
            .json(&own)
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(
        c.post(app.url(&format!("/api/v1/devices/{da}/commands")))
            .bearer_auth(&op_t)
            .json(&cmd)
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    assert_eq!(
        c.post(app.url(&format!("/api/v1/areas/{b}/commands")))
            .bearer_auth(&op_t)
            .json(&cmd)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    // An editor may not schedule at all.
    assert_eq!(
        c.post(app.url("/api/v1/schedules"))
            .bearer_auth(&ed_t)
            .json(&own)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    // Roles: an editor may not approve, an operator may not upload or approve.
    assert_eq!(
        c.post(app.url(&format!("/api/v1/media/{pending}/approve")))
            .bearer_auth(&ed_t)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        c.post(app.url(&format!("/api/v1/media/{pending}/approve")))
            .bearer_auth(&op_t)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    // Pages: the schedule form offers only the operator's commune; another commune's device is 403.
    let s = login(&app, &c, "vanhanh-a", "mat-khau-van-hanh").await;
    let html = page(&c, &app, &s.cookie, "/console/schedules").await;
    assert!(
        html.contains(&format!("name=\"area\" value=\"{a}\"")) && !html.contains(&b),
        "{html}"
    );
    let r = c
        .get(app.url(&format!("/console/devices/{db}")))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let html = page(&c, &app, &s.cookie, "/console/devices").await;
    assert!(html.contains(&da) && !html.contains(&db));
    // A forged form for the other commune is refused, and nothing is created.
    let form = [
        ("csrf", s.csrf.as_str()),
        ("title", "lậu"),
        ("media", sha.as_str()),
        ("area", b.as_str()),
        ("priority", "normal"),
        ("kind", "cron"),
        ("cron", "0 6 * * *"),
    ];
    let r = post_schedules(&c, &app, &s.cookie, &form).await;
    assert_eq!(r.status(), 403);
    let (_, all) = json(app.get("/api/v1/schedules").await).await;
    // Only the schedule created through the API for its own commune exists; none targets `b`.
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
    assert!(!all.to_string().contains(&b), "{all}");
    // The same form for its own commune works.
    let form = [
        ("csrf", s.csrf.as_str()),
        ("title", "Bản tin sáng"),
        ("media", sha.as_str()),
        ("area", a.as_str()),
        ("priority", "priority"),
        ("kind", "cron"),
        ("cron", "0 6 * * *"),
        ("time_zone", "Asia/Ho_Chi_Minh"),
    ];
    let r = post_schedules(&c, &app, &s.cookie, &form).await;
    assert_eq!(r.status(), 303);
    let (_, all) = json(app.get("/api/v1/schedules").await).await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    // Issue 12 §3: "Phát ngay" offers the repetition presets; an emergency sent with one repeats.
    assert!(html_has_repetition(&c, &app, &s.cookie).await);
    let form = [
        ("csrf", s.csrf.as_str()),
        ("title", "Lũ quét"),
        ("media", sha.as_str()),
        ("area", a.as_str()),
        ("priority", "emergency"),
        ("repetition", "every_2h"),
        ("action", "play_now"),
    ];
    let r = post_schedules(&c, &app, &s.cookie, &form).await;
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    let id = to
        .trim_start_matches("/console/commands/")
        .split('?')
        .next()
        .unwrap();
    let (_, cmd) = json(app.get(&format!("/api/v1/commands/{id}")).await).await;
    assert_eq!(
        cmd.pointer("/command/item/repetition/every_s"),
        Some(&serde_json::json!(7200)),
        "{cmd}"
    );
    // It repeats for the longest window (24 h), not the 30 min late window that would end it
    // before its first replay.
    let at = |k: &str| chrono::DateTime::parse_from_rfc3339(cmd[k].as_str().unwrap()).unwrap();
    assert_eq!(
        (at("expires_at") - at("issued_at")).num_seconds(),
        86_400,
        "{cmd}"
    );
}

/// `form` posted to the schedule page with the session `cookie`.
async fn post_schedules(
    c: &reqwest::Client,
    app: &TestApp,
    cookie: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    c.post(app.url("/console/schedules"))
        .header("cookie", cookie)
        .form_pairs(form)
        .send()
        .await
        .unwrap()
}

/// The schedule form offers the repetition choice with both presets.
async fn html_has_repetition(c: &reqwest::Client, app: &TestApp, cookie: &str) -> bool {
    let html = page(c, app, cookie, "/console/schedules").await;
    html.contains("name=\"repetition\"")
        && html.contains("value=\"every_2h\"")
        && html.contains("value=\"twice_5min_then_every_30min\"")
}
