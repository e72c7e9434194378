//! Issue 11 items 14 and 17: request bodies are bounded as a whole and field by field, and the
//! small scope leaks are closed: an upload's `area` answers the same for unknown and outside
//! the caller's scope, `/media/{sha}` serves only approved media without a caller (devices fetch
//! those by hash) and anything else only to a caller who may see it, `/files/{sha}` serves a
//! bulletin's files without a caller only while the bulletin is on the boards, and a request the
//! server cannot parse is answered with the `{"error":…}` shape like every other error.

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{self, TestApp, json as body};
use crate::console_support::{TwoCommunes, scoped_user, two_communes, wav};

/// One multipart part, as raw bytes, or `size` bytes of filler generated while sending.
enum Part {
    Bytes(&'static str, Vec<u8>),
    Filler(String, usize),
}

/// POST a multipart body over a raw socket with chunked transfer encoding (no length announced
/// up front, as an attacker may choose): the body is written by a separate task (its write
/// errors ignored: the server may answer and close before reading it all) while the answer is
/// read, so a body of any size is sent without being held in memory.
async fn raw_multipart(app: &TestApp, parts: Vec<Part>) -> (u16, Value) {
    let boundary = "nguon-raw-boundary";
    let head = move |name: &str| {
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.bin\"\r\n\r\n"
        )
    };
    let stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let request = format!(
        "POST /api/v1/media HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nTransfer-Encoding: chunked\r\n\r\n",
        app.addr, app.token
    );
    let writer = tokio::spawn(async move {
        async fn chunk(wr: &mut tokio::net::tcp::OwnedWriteHalf, data: &[u8]) -> std::io::Result<()> {
            wr.write_all(format!("{:x}\r\n", data.len()).as_bytes()).await?;
            wr.write_all(data).await?;
            wr.write_all(b"\r\n").await
        }
        wr.write_all(request.as_bytes()).await?;
        let filler = vec![b'x'; 64 * 1024];
        for p in parts {
            match p {
                Part::Bytes(n, b) => {
                    chunk(&mut wr, head(n).as_bytes()).await?;
                    chunk(&mut wr, &b).await?;
                }
                Part::Filler(n, mut size) => {
                    chunk(&mut wr, head(&n).as_bytes()).await?;
                    while size > 0 {
                        let k = size.min(filler.len());
                        chunk(&mut wr, &filler[..k]).await?;
                        size -= k;
                    }
                }
            }
            chunk(&mut wr, b"\r\n").await?;
        }
        chunk(&mut wr, format!("--{boundary}--\r\n").as_bytes()).await?;
        wr.write_all(b"0\r\n\r\n").await?;
        // Kept open: dropping the write half would half-close the socket, which the server
        // takes as the client going away before its answer.
        std::io::Result::Ok(wr)
    });
    let mut answer = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut ended = String::from("end of stream");
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                ended = e.to_string();
                0
            }
        };
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer).to_string();
        if let Some((headers, rest)) = text.split_once("\r\n\r\n") {
            let want = headers
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if rest.len() >= want {
                break;
            }
        }
    }
    writer.abort();
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer ({ended}): {text:?}"));
    let json = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

#[tokio::test]
async fn an_upload_with_an_oversized_extra_field_or_too_many_fields_is_refused() {
    let app = common::spawn_app_with(|s| s.max_upload_mb = 2).await;
    // 70 MB of junk in a field the upload does not know, before the real file.
    let (s, b) = raw_multipart(
        &app,
        vec![
            Part::Filler("junk".into(), 70 * 1024 * 1024),
            Part::Bytes("file", wav(1)),
        ],
    )
    .await;
    assert_eq!(s, 413, "{b}");
    assert_eq!(b["error"]["code"], "too_large", "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("junk"), "{b}");
    // Many small fields, each under the per-field limit, add up past the body limit.
    let mut parts: Vec<Part> = (0..200)
        .map(|i| Part::Filler(format!("f{i}"), 30 * 1024))
        .collect();
    parts.push(Part::Bytes("file", wav(1)));
    let (s, b) = raw_multipart(&app, parts).await;
    assert_eq!(s, 413, "{b}");
    assert_eq!(b["error"]["code"], "too_large", "{b}");
    assert!(app.files_in("media").is_empty(), "nothing stored");
    assert!(app.files_in("tmp").is_empty(), "no temp file left");
    // The same file alone is stored.
    let (s, b) = raw_multipart(&app, vec![Part::Bytes("file", wav(1))]).await;
    assert_eq!(s, 201, "{b}");
}

async fn upload_as(app: &TestApp, bearer: &str, area: &str) -> (u16, Value) {
    let b = "nguon-area-boundary";
    let mut form = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"area\"\r\n\r\n{area}\r\n\
         --{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n"
    )
    .into_bytes();
    form.extend_from_slice(&wav(1));
    form.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    body(
        app.client
            .post(app.url("/api/v1/media"))
            .bearer_auth(bearer)
            .header("content-type", format!("multipart/form-data; boundary={b}"))
            .body(form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn an_upload_to_an_unknown_area_answers_as_one_outside_the_scope() {
    let app = common::spawn_app().await;
    let TwoCommunes { mine, theirs, .. } = two_communes(&app).await;
    let (_, ed) = scoped_user(&app, "bientap", "editor", &[&mine]).await;
    let (s1, b1) = upload_as(&app, &ed, &theirs).await;
    let (s2, b2) = upload_as(&app, &ed, "no-such-area").await;
    assert_eq!((s1, s2), (403, 403), "{b1} {b2}");
    assert_eq!(b1["error"]["code"], b2["error"]["code"]);
    assert_eq!(
        b1["error"]["message"].as_str().unwrap().replace(&theirs, "X"),
        b2["error"]["message"]
            .as_str()
            .unwrap()
            .replace("no-such-area", "X"),
    );
    let (s, b) = upload_as(&app, &ed, &mine).await;
    assert_eq!(s, 201, "{b}");
}

#[tokio::test]
async fn media_files_that_are_not_approved_need_a_caller_who_may_see_them() {
    let app = common::spawn_app().await;
    let TwoCommunes { mine, theirs, .. } = two_communes(&app).await;
    let (s, m) = body(app.upload("/api/v1/media", wav(1), "draft.wav").await).await;
    assert_eq!(s, 201, "{m}");
    let sha = m["sha256"].as_str().unwrap().to_string();
    sqlx::query("UPDATE media SET area = $1 WHERE sha256 = $2")
        .bind(theirs.clone())
        .bind(sha.clone())
        .execute(&app.state().store.pool)
        .await
        .unwrap();
    let (_, op) = scoped_user(&app, "vanhanh", "operator", &[&mine]).await;
    let path = format!("/media/{sha}");
    let fetch = |bearer: Option<String>| {
        let mut r = app.client.get(app.url(&path));
        if let Some(t) = bearer {
            r = r.bearer_auth(t);
        }
        async move { r.send().await.unwrap() }
    };
    for status in ["draft", "pending", "rejected"] {
        sqlx::query("UPDATE media SET status = $1 WHERE sha256 = $2")
            .bind(status)
            .bind(sha.clone())
            .execute(&app.state().store.pool)
            .await
            .unwrap();
        let r = fetch(None).await;
        assert_eq!(r.status(), 404, "{status} without a caller");
        assert!(r.headers()["content-type"].to_str().unwrap().contains("json"));
        assert_eq!(
            fetch(Some(op.clone())).await.status(),
            404,
            "{status}, other commune"
        );
        assert_eq!(
            fetch(Some(app.token.clone())).await.status(),
            200,
            "{status}, admin"
        );
    }
    // Approved media is what devices fetch by hash, without credentials.
    sqlx::query("UPDATE media SET status = 'approved' WHERE sha256 = $1")
        .bind(sha.clone())
        .execute(&app.state().store.pool)
        .await
        .unwrap();
    let r = fetch(None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), wav(1).len());
}

#[tokio::test]
async fn requests_the_server_cannot_parse_get_the_json_error_shape() {
    let app = common::spawn_app().await;
    let bad_json = app
        .client
        .post(app.url(&format!("/api/v1/media/{}/reject", "0".repeat(64))))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let bad_query = app.get("/api/v1/plays?limit=many").await;
    let bad_path = app.get("/api/v1/devices/%FF%FE").await;
    let bad_method = app
        .client
        .put(app.url("/api/v1/areas/import"))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    let not_multipart = app.post_raw("/api/v1/media", "text/plain", "hello").await;
    for (what, r) in [
        ("json", bad_json),
        ("query", bad_query),
        ("path", bad_path),
        ("method", bad_method),
        ("multipart", not_multipart),
    ] {
        let status = r.status().as_u16();
        assert!((400..500).contains(&status), "{what}: {status}");
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        let (_, b) = body(r).await;
        assert!(
            ct.as_deref().unwrap_or("").contains("application/json"),
            "{what}: {ct:?} {b}"
        );
        assert!(b["error"]["code"].is_string(), "{what}: {b}");
        assert!(b["error"]["message"].is_string(), "{what}: {b}");
    }
    let _ = json!({});
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_the_console_a_strict_csp() {
    let app = common::spawn_app().await;
    let login = app.get_anon("/console/login").await;
    let api = app.get("/api/v1/me").await;
    let missing = app.get_anon("/api/v1/nothing-here").await;
    for (what, r) in [("console", &login), ("api", &api), ("404", &missing)] {
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(h["x-frame-options"], "DENY", "{what}");
        assert_eq!(h["referrer-policy"], "same-origin", "{what}");
        assert_eq!(h["cache-control"], "no-store", "{what}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{what}"
        );
    }
    let csp = login.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("style-src 'self'"),
        "{csp}"
    );
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    // The strict policy holds only if no console page has inline script or style: none has.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/console/templates");
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let t = std::fs::read_to_string(&p).unwrap();
        for bad in [
            "<style",
            " style=",
            "<script>",
            " onclick=",
            " onchange=",
            " onsubmit=",
            " onload=",
            "javascript:",
        ] {
            assert!(
                !t.contains(bad),
                "{}: `{bad}` needs the CSP's unsafe-inline",
                p.display()
            );
        }
    }
}

#[tokio::test]
async fn bulletin_files_are_served_without_credentials_only_while_their_bulletin_is_on_the_boards() {
    let app = common::spawn_app().await;
    let TwoCommunes { mine, theirs, .. } = two_communes(&app).await;
    let (s, b) = body(
        app.post_json(
            "/api/v1/bulletins",
            &json!({"title": "Lịch cắt điện", "body": "Dự thảo, chưa duyệt.", "areas": [theirs]}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    let png = common::tiny_png();
    let (s, f) = body(
        app.upload(&format!("/api/v1/bulletins/{id}/files"), png.clone(), "so-do.png")
            .await,
    )
    .await;
    assert_eq!(s, 201, "{f}");
    let path = format!("/files/{}", f["sha256"].as_str().unwrap());
    let (_, op) = scoped_user(&app, "vanhanh", "operator", &[&mine]).await;
    let fetch = |bearer: Option<&str>, range: Option<&str>| {
        let mut r = app.client.get(app.url(&path));
        if let Some(t) = bearer {
            r = r.bearer_auth(t);
        }
        if let Some(range) = range {
            r = r.header("range", range);
        }
        async move { r.send().await.unwrap() }
    };
    let cache = |r: &reqwest::Response| r.headers()["cache-control"].to_str().unwrap().to_string();
    // The attack: a draft's attachment fetched by its hash without credentials. Refused as if
    // it did not exist, also in review and once approved but not on any board; a commune
    // operator whose scope the bulletin does not reach is refused too; an admin sees it, never
    // cached.
    for step in ["draft", "submit", "approve"] {
        if step != "draft" {
            let (s, b) = body(
                app.post_json(&format!("/api/v1/bulletins/{id}/{step}"), &json!({}))
                    .await,
            )
            .await;
            assert_eq!(s, 200, "{step}: {b}");
        }
        let r = fetch(None, None).await;
        assert_eq!(r.status(), 404, "{step}, without a caller");
        assert!(r.headers()["content-type"].to_str().unwrap().contains("json"));
        assert_eq!(
            fetch(Some(&op), None).await.status(),
            404,
            "{step}, other commune"
        );
        let r = fetch(Some(&app.token), None).await;
        assert_eq!(r.status(), 200, "{step}, admin");
        assert_eq!(cache(&r), "private, no-store");
        assert_eq!(r.bytes().await.unwrap().to_vec(), png);
    }
    // On the boards, it is what boards and players fetch from their feed: no credentials,
    // cacheable, with Range.
    let (s, b) = body(
        app.post_json(
            &format!("/api/v1/bulletins/{id}/publish"),
            &json!({"speakers": false}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let r = fetch(None, None).await;
    assert_eq!(r.status(), 200);
    assert!(cache(&r).starts_with("public"), "{}", cache(&r));
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().to_vec(), png);
    let r = fetch(None, Some("bytes=1-3")).await;
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().to_vec(), png[1..4].to_vec());
    // Taken off the boards, it is private again.
    let (s, b) = body(
        app.post_json(&format!("/api/v1/bulletins/{id}/unpublish"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(fetch(None, None).await.status(), 404, "unpublished");
    assert_eq!(fetch(Some(&app.token), None).await.status(), 200);
}
