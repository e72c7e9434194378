//! The kiosk page in a real headless Chromium (issues 6 and 13), driven over WebDriver
//! (fantoccini, see `webdriver`), one browser session. The browser reaches the server through a
//! TCP proxy in the test, so "the server is unreachable" can be made exact by killing the proxy
//! and every connection through it. Checked: the header names the commune and when the feed was
//! last updated; a long bulletin fits above the ticker; the emergency label lies inside the
//! viewport at 1920×1080 and 1080×1920; the open page makes the board online (and closing the
//! connection offline); with the server gone a reload still shows the bulletins with the
//! "mất kết nối" badge; the browser logs no JavaScript error. Screenshots go to
//! `target/test-artifacts/board/*.png`.

use crate::common;
use crate::dispatch_support;
use crate::webdriver;

use std::time::Duration;

use common::{TestApp, json, spawn_app};
use dispatch_support::{area, eventually};
use serde_json::json;
use sha2::{Digest, Sha256};
use webdriver::Driver;

/// A TCP proxy 127.0.0.1:<port> → the app; `kill` drops the listener and every connection.
struct Proxy {
    port: u16,
    tasks: tokio::task::JoinSet<()>,
}

impl Proxy {
    async fn start(target: std::net::SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut tasks = tokio::task::JoinSet::new();
        let conns = std::sync::Arc::new(tokio::sync::Mutex::new(tokio::task::JoinSet::new()));
        let c2 = conns.clone();
        tasks.spawn(async move {
            let _keep = c2.clone();
            while let Ok((mut inbound, _)) = listener.accept().await {
                c2.lock().await.spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        });
        // The connection set lives in the acceptor task; aborting it drops (and aborts) them all.
        drop(conns);
        Proxy { port, tasks }
    }

    fn kill(&mut self) {
        self.tasks.abort_all();
    }
}

async fn publish(app: &TestApp, title: &str, body: &str, priority: &str, area: &str) -> String {
    let (s, b) = json(
        app.post_json(
            "/api/v1/bulletins",
            &json!({"title": title, "body": body, "priority": priority, "areas": [area]}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    for step in ["submit", "approve"] {
        let (s, b) = json(
            app.post_json(&format!("/api/v1/bulletins/{id}/{step}"), &json!({}))
                .await,
        )
        .await;
        assert_eq!(s, 200, "{step}: {b}");
    }
    let (s, b) = json(
        app.post_json(
            &format!("/api/v1/bulletins/{id}/publish"),
            &json!({"speakers": false}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "publish: {b}");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_board_page_shows_bulletins_follows_changes_shows_emergencies_and_survives_losing_the_server() {
    let app = spawn_app().await;
    area(&app, "50", None).await;
    let (s, b) = json(
        app.post_json(
            "/api/v1/areas",
            &json!({"code": "50001", "name": "Xã Bản Lầu", "parent": "50", "level": "commune"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let screen = app.unique("bang");
    let (s, b) = json(
        app.post_json(
            "/api/v1/devices",
            &json!({"id": screen, "kind": "board", "area": "50001"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    sqlx::query("UPDATE devices SET board_token_hash = $1 WHERE id = $2")
        .bind(hex::encode(Sha256::digest(b"kiosk-token")))
        .bind(screen.clone())
        .execute(&app.state().store.pool)
        .await
        .unwrap();
    // A long bulletin: its last point must stay above the ticker.
    let long_body = (1..=9)
        .map(|i| format!("- Điểm {i}: trạm y tế xã **tiêm chủng** cho trẻ em dưới 5 tuổi vào thứ Bảy, mang theo sổ tiêm chủng."))
        .collect::<Vec<_>>()
        .join("\n");
    let a = publish(&app, "Lịch tiêm chủng mở rộng", &long_body, "normal", "50001").await;

    let mut proxy = Proxy::start(app.addr).await;
    let driver = Driver::start(1920, 1080, "board").await;
    // Wrong token: refused.
    let r = app
        .client
        .get(app.url(&format!("/board/{screen}?token=nope")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    driver
        .goto(&format!(
            "http://127.0.0.1:{}/board/{screen}?token=kiosk-token",
            proxy.port
        ))
        .await;
    driver
        .wait_for(
            "bulletin A",
            "return document.getElementById('title').textContent === 'Lịch tiêm chủng mở rộng'",
            Duration::from_secs(15),
        )
        .await;
    driver
        .wait_for(
            "the clock",
            "return /\\d\\d:\\d\\d/.test(document.getElementById('time').textContent)",
            Duration::from_secs(5),
        )
        .await;
    // The bundled font is used for diacritics.
    driver
        .wait_for(
            "the bundled font",
            "return document.fonts.check('700 40px \"Noto Sans Board\"', 'Lịch')",
            Duration::from_secs(10),
        )
        .await;
    // The header names the commune and when the feed was last fetched.
    driver
        .wait_for(
            "the header",
            "return document.getElementById('area').textContent === 'Xã Bản Lầu' && \
             /^Cập nhật lúc \\d\\d:\\d\\d/.test(document.getElementById('updated').textContent)",
            Duration::from_secs(10),
        )
        .await;
    // The text fits: the last point of the long bulletin ends above the ticker.
    let fits = driver
        .eval(
            "var items = document.querySelectorAll('#body li'); var last = items[items.length - 1]; \
             return [items.length, Math.round(last.getBoundingClientRect().bottom), \
                     Math.round(document.getElementById('ticker').getBoundingClientRect().top)]",
        )
        .await;
    assert_eq!(fits[0], 9, "{fits}");
    assert!(
        fits[1].as_i64() <= fits[2].as_i64(),
        "clipped behind the ticker: {fits}"
    );
    driver.screenshot("1-bulletin-a").await;

    // The open page is the board's presence: online, with an open interval.
    let online = |want: bool| {
        let app = &app;
        let screen = screen.clone();
        async move {
            eventually("the board's presence", || {
                let screen = screen.clone();
                async move {
                    let (_, d) = json(app.get(&format!("/api/v1/devices/{screen}")).await).await;
                    (d["online"] == json!(want)).then_some(())
                }
            })
            .await
        }
    };
    online(true).await;
    let (s, hist) = json(app.get(&format!("/api/v1/devices/{screen}/status-history")).await).await;
    assert_eq!(s, 200, "{hist}");
    assert_eq!(hist["intervals"][0]["online_to"], json!(null), "{hist}");

    // B is published through the API and appears without a reload, within 5 s.
    driver.eval("window.__marker = 'same-page'; return true").await;
    let b = publish(
        &app,
        "Thông báo họp dân ngày 20/6",
        "Họp tại nhà văn hoá thôn lúc 19h.",
        "normal",
        "50",
    )
    .await;
    driver
        .wait_for(
            "bulletin B in the ticker",
            "return document.getElementById('ticker-text').textContent.includes('Thông báo họp dân ngày 20/6')",
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(
        driver.eval("return window.__marker").await,
        "same-page",
        "the page was reloaded"
    );
    driver.screenshot("2-bulletin-b-added").await;

    // An emergency takes over the whole screen.
    publish(
        &app,
        "CẢNH BÁO LŨ QUÉT",
        "Bà con khẩn trương **sơ tán** khỏi vùng trũng.",
        "emergency",
        "50001",
    )
    .await;
    driver
        .wait_for(
            "the emergency banner",
            "var e = document.getElementById('emergency'); var r = e.getBoundingClientRect(); \
             return !e.hidden && r.width >= window.innerWidth && r.height >= window.innerHeight && \
             document.getElementById('emergency-title').textContent === 'CẢNH BÁO LŨ QUÉT'",
            Duration::from_secs(5),
        )
        .await;
    driver.screenshot("3-emergency").await;
    // The label is inside the viewport, landscape and portrait.
    let label_inside = "var r = document.getElementById('emergency-label').getBoundingClientRect(); \
        return r.width > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= window.innerHeight && r.right <= window.innerWidth";
    driver
        .wait_for("the label inside 1920×1080", label_inside, Duration::from_secs(5))
        .await;
    driver.resize(1080, 1920).await;
    driver
        .wait_for(
            "a portrait viewport",
            "return window.innerHeight > window.innerWidth",
            Duration::from_secs(5),
        )
        .await;
    driver
        .wait_for("the label inside 1080×1920", label_inside, Duration::from_secs(5))
        .await;
    driver.screenshot("3b-emergency-portrait").await;
    driver.resize(1920, 1080).await;

    // Proof of display reaches the server.
    driver.eval("window.nguonBoard.flush(); return true").await;
    dispatch_support::eventually("proof of display", || async {
        let (_, d) = json(app.get(&format!("/api/v1/bulletins/{a}/displays")).await).await;
        (d.as_array().map(|x| x.len()).unwrap_or(0) >= 1).then_some(())
    })
    .await;

    // The page shell is kept for an outage.
    driver
        .wait_for(
            "the offline shell",
            "return window.nguonBoard.offlineReady()",
            Duration::from_secs(15),
        )
        .await;

    // The server becomes unreachable: the page keeps its content and says it is offline; the
    // board's stream ended, so the board is offline.
    proxy.kill();
    online(false).await;
    drop(app);
    driver
        .wait_for(
            "the offline notice",
            "return !document.getElementById('status').hidden",
            Duration::from_secs(40),
        )
        .await;
    let text = driver.text().await;
    assert!(text.contains("CẢNH BÁO LŨ QUÉT"), "{text}");
    let cached = driver
        .eval("return localStorage.getItem('nguon.feed.' + document.body.dataset.device)")
        .await;
    let cached = cached.as_str().unwrap_or_default();
    assert!(
        cached.contains(&b) && cached.contains("Lịch tiêm chủng mở rộng"),
        "{cached}"
    );
    driver.screenshot("4-offline").await;

    // A reload during the outage (a kiosk rebooting) still shows the bulletins, marked offline.
    driver.reload().await;
    driver
        .wait_for(
            "the bulletins after a reload without the server",
            "return document.getElementById('emergency-title').textContent === 'CẢNH BÁO LŨ QUÉT' && \
             !document.getElementById('status').hidden && \
             document.getElementById('status').textContent.includes('Mất kết nối') && \
             document.getElementById('area').textContent === 'Xã Bản Lầu'",
            Duration::from_secs(20),
        )
        .await;
    driver.screenshot("5-reloaded-offline").await;
    // No JavaScript error (failed requests to the unreachable server are expected).
    let errors = driver
        .browser_errors(&["net::ERR_", "Failed to load resource"])
        .await;
    assert!(errors.is_empty(), "browser errors: {errors:?}");
}
