//! Helpers for the console tests (issue 7): users made through the API, a cookie-carrying login
//! through the real login form, a tiny WAV file, and the headless Chromium of the browser tests
//! (`nguon_webdriver::Driver`, which also logs in and out of the console).
#![allow(dead_code)]

use serde_json::json;

use crate::common::{TestApp, json as body};

/// Create a user through the API (admin token); returns its id.
pub async fn user(app: &TestApp, username: &str, role: &str, areas: &[&str], password: &str) -> String {
    let (s, b) = body(
        app.post_json(
            "/api/v1/users",
            &json!({"username": username, "display_name": format!("Người dùng {username}"), "role": role, "areas": areas, "password": password}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "create user {username}: {b}");
    b["id"].as_str().unwrap().to_string()
}

/// An API token for a user (issued with the admin token).
pub async fn token(app: &TestApp, user_id: &str) -> String {
    let (s, b) = body(
        app.post_json(
            &format!("/api/v1/users/{user_id}/tokens"),
            &json!({"name": "test"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    b["token"].as_str().unwrap().to_string()
}

/// A new user (unique name `prefix-…`) with `role` over `areas`: its username and a bearer token.
pub async fn scoped_user(app: &TestApp, prefix: &str, role: &str, areas: &[&str]) -> (String, String) {
    let name = app.unique(prefix);
    let id = user(app, &name, role, areas, "mat-khau-thu-nghiem").await;
    (name, token(app, &id).await)
}

/// A province with two communes: the scope of the user under test and another one.
pub struct TwoCommunes {
    /// The province.
    pub province: String,
    /// The commune inside the user's scope.
    pub mine: String,
    /// The commune outside it.
    pub theirs: String,
}

/// Create a province and two of its communes (unique codes).
pub async fn two_communes(app: &TestApp) -> TwoCommunes {
    let province = app.unique("p");
    let (mine, theirs) = (app.unique("c"), app.unique("c"));
    crate::dispatch_support::area(app, &province, None).await;
    crate::dispatch_support::area(app, &mine, Some(&province)).await;
    crate::dispatch_support::area(app, &theirs, Some(&province)).await;
    TwoCommunes {
        province,
        mine,
        theirs,
    }
}

/// `application/x-www-form-urlencoded` body of `pairs`.
pub fn form_body(pairs: &[(&str, &str)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Extension: `.form_pairs(&[...])` on a request builder (reqwest's `form` feature is off).
pub trait FormExt {
    /// Send `pairs` as a urlencoded form.
    fn form_pairs(self, pairs: &[(&str, &str)]) -> Self;
}

impl FormExt for reqwest::RequestBuilder {
    fn form_pairs(self, pairs: &[(&str, &str)]) -> Self {
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(pairs))
    }
}

/// A client that never follows redirects (tests look at them).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of cookie `name` set by a response.
pub fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The `value` of the first hidden input named `name` in an HTML page.
pub fn hidden(html: &str, name: &str) -> String {
    let pat = format!("name=\"{name}\" value=\"");
    let i = html
        .find(&pat)
        .unwrap_or_else(|| panic!("no hidden `{name}` in page"));
    let rest = &html[i + pat.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// Try a login through the form; returns the response (303 with a session cookie on success).
pub async fn try_login(
    app: &TestApp,
    c: &reqwest::Client,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let page = c.get(app.url("/console/login")).send().await.unwrap();
    let login_csrf = set_cookie(&page, "nguon_login_csrf").expect("login csrf cookie");
    let html = page.text().await.unwrap();
    let field = hidden(&html, "csrf");
    assert_eq!(field, login_csrf);
    c.post(app.url("/console/login"))
        .header("cookie", format!("nguon_login_csrf={login_csrf}"))
        .form_pairs(&[
            ("csrf", field.as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

/// A logged-in console session.
pub struct Session {
    /// Cookie header value.
    pub cookie: String,
    /// The session's CSRF token (read from a page).
    pub csrf: String,
}

/// Log in (must succeed) and read the CSRF token from the dashboard.
pub async fn login(app: &TestApp, c: &reqwest::Client, username: &str, password: &str) -> Session {
    let r = try_login(app, c, username, password).await;
    assert_eq!(r.status(), 303, "login of {username}");
    let sid = set_cookie(&r, "nguon_session").expect("session cookie");
    let cookie = format!("nguon_session={sid}");
    let html = c
        .get(app.url("/console"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&html, "csrf");
    Session { cookie, csrf }
}

/// A 16-bit mono 8 kHz WAV of `secs` seconds of a 440 Hz tone.
pub fn wav(secs: u32) -> Vec<u8> {
    let rate = 8000u32;
    let n = rate * secs;
    let mut v = Vec::with_capacity(44 + 2 * n as usize);
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + 2 * n).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * 2).to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&(2 * n).to_le_bytes());
    for i in 0..n {
        let s = ((i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin() * 8000.0) as i16;
        v.extend_from_slice(&s.to_le_bytes());
    }
    v
}

pub use nguon_webdriver::Driver;

/// The HTML of console page `path` with the session `cookie`.
pub async fn page(c: &reqwest::Client, app: &TestApp, cookie: &str, path: &str) -> String {
    c.get(app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
