//! The console's bulletin pages (issue 7): the editor form (Vietnamese and H'Mông variants, an
//! image, a recorded audio file), validation that re-renders the form and stores nothing,
//! escaping, the text-to-speech preview, the approval queue, and publishing to one commune's
//! boards. Plus one headless Chromium test of the preview button (screenshots in
//! `target/test-artifacts/console/`).

mod form;
mod preview;
mod publish;

use crate::common;
use crate::console_support;
use crate::dispatch_support;

use std::time::Duration;

use chrono::TimeZone;
use common::{TestApp, json, spawn_app, tiny_png};
use console_support::*;
use dispatch_support::uid;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Row;

/// One part of a multipart form.
pub(super) enum Part<'a> {
    Text(&'a str, &'a str),
    File(&'a str, &'a str, Vec<u8>),
}

/// A `multipart/form-data` body (content type, bytes), parts in order.
pub(super) fn multipart(parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let boundary = format!("----nguon-console-{}", common::random_suffix());
    let mut body = Vec::new();
    for p in parts {
        match p {
            Part::Text(name, value) => body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                    .as_bytes(),
            ),
            Part::File(name, filename, bytes) => {
                body.extend_from_slice(
                    format!(
                        "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n\
                         Content-Type: application/octet-stream\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(bytes);
                body.extend_from_slice(b"\r\n");
            }
        }
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// POST the editor form as a logged-in user.
pub(super) async fn post_form(
    app: &TestApp,
    c: &reqwest::Client,
    s: &Session,
    path: &str,
    parts: &[Part<'_>],
) -> reqwest::Response {
    let (ctype, body) = multipart(parts);
    c.post(app.url(path))
        .header("cookie", &s.cookie)
        .header("content-type", ctype)
        .body(body)
        .send()
        .await
        .unwrap()
}

pub(super) async fn page(app: &TestApp, c: &reqwest::Client, s: &Session, path: &str) -> (u16, String) {
    let r = c
        .get(app.url(path))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

pub(super) async fn post_pairs(
    app: &TestApp,
    c: &reqwest::Client,
    s: &Session,
    path: &str,
    pairs: &[(&str, &str)],
) -> reqwest::Response {
    c.post(app.url(path))
        .header("cookie", &s.cookie)
        .form_pairs(pairs)
        .send()
        .await
        .unwrap()
}

/// An area with a name and level.
pub(super) async fn area(app: &TestApp, code: &str, name: &str, parent: Option<&str>, level: &str) {
    let (s, b) = json(
        app.post_json(
            "/api/v1/areas",
            &json!({"code": code, "name": name, "parent": parent, "level": level}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "create area {code}: {b}");
}

/// A province with two communes; returns their codes.
pub(super) async fn province(app: &TestApp) -> (String, String, String) {
    let (p, a, b) = (uid("tinh"), uid("xa-a"), uid("xa-b"));
    area(app, &p, "Tỉnh Lào Cai", None, "province").await;
    area(app, &a, "Xã Bản Lầu", Some(&p), "commune").await;
    area(app, &b, "Xã Mường Khương", Some(&p), "commune").await;
    (p, a, b)
}

/// Register a board in `area` whose bearer token is `token`.
pub(super) async fn board(app: &TestApp, id: &str, area: &str, token: &str) {
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
        .unwrap();
}

pub(super) async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&app.state().store.pool)
        .await
        .unwrap()
        .get::<i64, _>("n")
}

/// The id in a `303 → /console/bulletins/{id}?…` answer.
pub(super) fn created_id(r: &reqwest::Response) -> String {
    assert_eq!(r.status(), 303, "expected a redirect after saving");
    let loc = r.headers()["location"].to_str().unwrap();
    loc.trim_start_matches("/console/bulletins/")
        .split('?')
        .next()
        .unwrap()
        .to_string()
}

/// Unix ms of a `datetime-local` value read in Asia/Ho_Chi_Minh.
pub(super) fn hcm_ms(local: &str) -> i64 {
    let t = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M").unwrap();
    chrono_tz::Asia::Ho_Chi_Minh
        .from_local_datetime(&t)
        .single()
        .unwrap()
        .timestamp_millis()
}

/// Duration in seconds of a PCM WAV file, read from its header (fmt byte rate, data size).
pub(super) fn wav_seconds(b: &[u8]) -> f64 {
    assert!(
        b.len() > 44 && &b[0..4] == b"RIFF" && &b[8..12] == b"WAVE",
        "not a WAV file"
    );
    let (mut i, mut byte_rate, mut data) = (12usize, 0u32, 0u32);
    while i + 8 <= b.len() {
        let id = &b[i..i + 4];
        let len = u32::from_le_bytes([b[i + 4], b[i + 5], b[i + 6], b[i + 7]]);
        if id == b"fmt " {
            byte_rate = u32::from_le_bytes([b[i + 16], b[i + 17], b[i + 18], b[i + 19]]);
        } else if id == b"data" {
            data = len.min((b.len() - i - 8) as u32);
            break;
        }
        i += 8 + len as usize + (len as usize & 1);
    }
    assert!(byte_rate > 0, "no fmt chunk");
    f64::from(data) / f64::from(byte_rate)
}

pub(super) const WAIT: Duration = Duration::from_secs(30);
