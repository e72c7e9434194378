//! The public site (issue 15): only approved bulletins that are on the boards and published
//! policies are public (pages, feeds, short links); every page advertises its RSS and Atom
//! feeds; the feeds parse with `feed-rs`, answer 304 to their ETag and carry caching; the short
//! link redirects and its QR code is served as SVG and PNG and named in the board's feed; text
//! is escaped; hits are counted per path and day without cookies.

use crate::common;
use crate::dispatch_support;

use common::{TestApp, json, spawn_app};
use dispatch_support::{area, uid};
use serde_json::{Value, json};
use sqlx::Row;

async fn bulletin(app: &TestApp, title: &str, areas: &[&str], steps: &[&str]) -> String {
    let (s, b) = json(
        app.post_json(
            "/api/v1/bulletins",
            &json!({"title": title, "body": format!("Nội dung của {title}."), "areas": areas}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    for step in steps {
        let (s, b) = json(
            app.post_json(&format!("/api/v1/bulletins/{id}/{step}"), &json!({}))
                .await,
        )
        .await;
        assert_eq!(s, 200, "{step}: {b}");
    }
    id
}

async fn text(app: &TestApp, path: &str) -> (u16, String) {
    let r = app.client.get(app.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn advertises_feeds(html: &str) -> bool {
    html.contains(r#"<link rel="alternate" type="application/rss+xml""#)
        && html.contains(r#"<link rel="alternate" type="application/atom+xml""#)
}

#[tokio::test]
async fn only_published_content_is_public_in_pages_feeds_and_short_links() {
    let app = spawn_app().await;
    let p = uid("tinh");
    area(&app, &p, None).await;
    let xa = uid("xa");
    area(&app, &xa, Some(&p)).await;

    let public = bulletin(
        &app,
        "Lịch tiêm chủng <script>x</script>",
        &[&xa],
        &["submit", "approve", "publish"],
    )
    .await;
    let draft = bulletin(&app, "Bản nháp chưa duyệt", &[&xa], &[]).await;
    let pending = bulletin(&app, "Đang chờ duyệt", &[&xa], &["submit"]).await;
    let approved = bulletin(&app, "Đã duyệt chưa đăng", &[&xa], &["submit", "approve"]).await;
    let withdrawn = bulletin(
        &app,
        "Đã gỡ khỏi bảng tin",
        &[&xa],
        &["submit", "approve", "publish", "unpublish"],
    )
    .await;
    let hidden = [
        "Bản nháp chưa duyệt",
        "Đang chờ duyệt",
        "Đã duyệt chưa đăng",
        "Đã gỡ khỏi bảng tin",
    ];

    let policy = |title: &str| json!({"title": title, "issuer": "UBND tỉnh", "field": "y tế", "areas": [p], "stage": "issued"});
    let (_, pol) = json(
        app.post_json("/api/v1/policies", &policy("Chính sách đã công bố"))
            .await,
    )
    .await;
    let pol = pol["id"].as_str().unwrap().to_string();
    let (_, secret) = json(
        app.post_json("/api/v1/policies", &policy("Chính sách chưa công bố"))
            .await,
    )
    .await;
    let secret = secret["id"].as_str().unwrap().to_string();
    let (s, _) = json(
        app.post_json(&format!("/api/v1/policies/{pol}/publish"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(s, 200);
    for b in [&public, &draft, &approved, &withdrawn] {
        let (s, l) = json(
            app.post_json(
                &format!("/api/v1/policies/{pol}/links"),
                &json!({"stage": "issued", "kind": "bulletin", "ref_id": b}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 201, "{l}");
    }

    // Pages: the public bulletin with its audio, escaped; nothing else; feeds advertised everywhere.
    let pages = [
        "/".to_string(),
        format!("/khu-vuc/{xa}"),
        format!("/khu-vuc/{p}"),
        "/chinh-sach".into(),
        format!("/chinh-sach/{pol}"),
        format!("/ban-tin/{public}"),
    ];
    for path in &pages {
        let (s, html) = text(&app, path).await;
        assert_eq!(s, 200, "{path}: {html}");
        assert!(advertises_feeds(&html), "{path} advertises no feeds: {html}");
        assert!(
            html.contains("&lt;script&gt;x&lt;") || path == "/chinh-sach",
            "{path} escapes the title: {html}"
        );
        assert!(!html.contains("<script>"), "{path}: {html}");
        for h in hidden {
            assert!(!html.contains(h), "{path} shows `{h}`");
        }
        assert!(!html.contains("Chính sách chưa công bố"), "{path}");
    }
    let (_, html) = text(&app, &format!("/ban-tin/{public}")).await;
    let audio = html.split("<audio").nth(1).expect("an audio player").to_string();
    let src = audio
        .split("src=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&#x2f;", "/");
    let r = app.client.get(app.url(&src)).send().await.unwrap();
    assert_eq!(r.status(), 200, "the audio {src} is served without login");
    for id in [&draft, &pending, &approved, &withdrawn] {
        assert_eq!(text(&app, &format!("/ban-tin/{id}")).await.0, 404, "{id}");
    }
    let (s, html) = text(&app, &format!("/chinh-sach/{secret}")).await;
    assert!(s == 404 && advertises_feeds(&html), "{s}");

    // Feeds: parse, only the public bulletin, ETag → 304, caching.
    for base in [
        "/feeds".to_string(),
        format!("/feeds/khu-vuc/{xa}"),
        format!("/feeds/chinh-sach/{pol}"),
    ] {
        for name in ["rss.xml", "atom.xml", "feed.json"] {
            let url = app.url(&format!("{base}/{name}"));
            let r = app.client.get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200, "{url}");
            let etag = r.headers()["etag"].to_str().unwrap().to_string();
            assert!(
                r.headers()["cache-control"].to_str().unwrap().contains("max-age"),
                "{url}"
            );
            let body = r.bytes().await.unwrap();
            let feed = feed_rs::parser::parse(&body[..]).unwrap_or_else(|e| panic!("{url}: {e}"));
            let titles: Vec<String> = feed
                .entries
                .iter()
                .map(|e| e.title.as_ref().unwrap().content.clone())
                .collect();
            assert_eq!(titles, ["Lịch tiêm chủng <script>x</script>"], "{url}");
            assert!(
                feed.entries[0]
                    .links
                    .iter()
                    .any(|l| l.href.ends_with(&format!("/ban-tin/{public}"))),
                "{url}"
            );
            let again = app
                .client
                .get(&url)
                .header("if-none-match", &etag)
                .send()
                .await
                .unwrap();
            assert_eq!(again.status(), 304, "{url}");
        }
    }
    assert_eq!(
        text(&app, &format!("/feeds/chinh-sach/{secret}/rss.xml")).await.0,
        404
    );

    // Short link and QR code.
    let code_path = html_short(&app, &public).await;
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect.get(app.url(&code_path)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("/ban-tin/{public}").as_str());
    let r = app
        .client
        .get(app.url(&format!("{code_path}/qr.svg")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert!(r.text().await.unwrap().contains("<svg"));
    let png = app
        .client
        .get(app.url(&format!("{code_path}/qr.png")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let info = png::Decoder::new(std::io::Cursor::new(png.to_vec()))
        .read_info()
        .unwrap()
        .info()
        .clone();
    assert!(
        info.width >= 200 && info.width == info.height,
        "{}x{}",
        info.width,
        info.height
    );
    // A code of an unpublished bulletin resolves to nothing.
    let other = format!("/b/{}", nguon_server::domain::shortlink::code(&approved));
    assert_eq!(
        no_redirect.get(app.url(&other)).send().await.unwrap().status(),
        404
    );

    // Hits were counted per path, without cookies.
    let r = app.client.get(app.url("/")).send().await.unwrap();
    assert!(r.headers().get("set-cookie").is_none());
    let hits: Vec<(String, i64)> = sqlx::query("SELECT path, hits FROM public_hits ORDER BY path")
        .fetch_all(&app.state().store.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("path"), r.get("hits")))
        .collect();
    let of = |k: &str| hits.iter().find(|(p, _)| p == k).map(|x| x.1);
    assert_eq!(of("page:/"), Some(2), "{hits:?}");
    assert_eq!(of("feed:/feeds/rss.xml"), Some(2), "200 and 304: {hits:?}");
    assert!(
        of(&format!("page:/ban-tin/{draft}")).is_none(),
        "a 404 is not a hit: {hits:?}"
    );
}

/// The short link's path shown on the bulletin's page.
async fn html_short(app: &TestApp, id: &str) -> String {
    let (_, html) = text(app, &format!("/ban-tin/{id}")).await;
    let v: Value = json!(
        html.split("id=\"short-link\" href=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
    );
    v.as_str().unwrap().replace("&#x2f;", "/")
}

#[tokio::test]
async fn a_board_feed_names_the_short_link_and_qr_code_of_each_bulletin() {
    let app = spawn_app().await;
    let xa = uid("xa");
    area(&app, &xa, None).await;
    let id = bulletin(&app, "Thông báo", &[&xa], &["submit", "approve", "publish"]).await;
    let screen = uid("bang");
    let (s, b) = json(
        app.post_json(
            "/api/v1/devices",
            &json!({"id": screen, "kind": "board", "area": xa}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    use sha2::Digest;
    sqlx::query("UPDATE devices SET board_token_hash = $1 WHERE id = $2")
        .bind(hex::encode(sha2::Sha256::digest(b"token-bang-1")))
        .bind(screen.clone())
        .execute(&app.state().store.pool)
        .await
        .unwrap();
    let r = app
        .client
        .get(app.url(&format!("/api/v1/boards/{screen}/feed")))
        .bearer_auth("token-bang-1")
        .send()
        .await
        .unwrap();
    let (_, f) = json(r).await;
    let item = &f["bulletins"][0];
    assert_eq!(item["id"], id.as_str());
    let qr = item["qr_svg"].as_str().unwrap();
    let r = app.client.get(qr).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), r.headers()["content-type"].to_str().unwrap()),
        (200, "image/svg+xml"),
        "{qr}"
    );
    let short = item["short_url"].as_str().unwrap();
    let page = app.client.get(short).send().await.unwrap();
    assert!(
        page.url().path().ends_with(&format!("/ban-tin/{id}")),
        "{}",
        page.url()
    );
}
