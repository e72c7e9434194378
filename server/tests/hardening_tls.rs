//! Issue 11 item 11 (HTTP part): with `tls_cert` and `tls_key` the server speaks HTTPS on its
//! port (rustls, ring), answers with the same headers, and refuses plain HTTP there; a missing or
//! wrong file stops the start naming the setting. The test certificate in `fixtures/` is
//! self-signed for 127.0.0.1 (openssl, valid for 100 years; its key exists only for this test).

use std::path::PathBuf;

use crate::common;
use nguon_server::{Application, Settings};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[tokio::test]
async fn with_a_certificate_the_http_port_speaks_https_only() {
    let app = common::spawn_app_with(|s| {
        s.tls_cert = Some(fixture("tls-test.crt"));
        s.tls_key = Some(fixture("tls-test.key"));
    })
    .await;
    let ca = reqwest::Certificate::from_pem(&std::fs::read(fixture("tls-test.crt")).unwrap()).unwrap();
    let https = reqwest::Client::builder().tls_certs_only([ca]).build().unwrap();
    let url = format!("https://127.0.0.1:{}/api/v1/me", app.addr.port());
    let r = https.get(&url).bearer_auth(&app.token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let r = https
        .get(format!("https://127.0.0.1:{}/healthz", app.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Plain HTTP on the same port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/healthz", app.addr.port()))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
    // The URL devices are given says https.
    assert!(
        app.state().public_url.starts_with("https://"),
        "{}",
        app.state().public_url
    );
}

#[tokio::test]
async fn a_missing_or_unreadable_tls_file_stops_the_start_naming_the_setting() {
    for (cert, key, named) in [
        (fixture("tls-test.crt"), fixture("no-such.key"), "tls_key"),
        (fixture("no-such.crt"), fixture("tls-test.key"), "tls_cert"),
        (fixture("tls-test.key"), fixture("tls-test.key"), "tls_cert"),
        (fixture("tls-test.crt"), fixture("tls-test.crt"), "tls_key"),
    ] {
        let (prepared, settings) = common::prepare(|s| {
            s.tls_cert = Some(cert.clone());
            s.tls_key = Some(key.clone());
        })
        .await;
        let e = match Application::build(settings).await {
            Ok(_) => panic!("{cert:?} {key:?} accepted"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(named), "{named}: {e}");
        drop(prepared);
    }
    let e = Settings::load(
        None,
        [("NGUON_TLS_CERT".to_string(), "/etc/cert.pem".to_string())],
    )
    .unwrap_err();
    assert_eq!(e.key, "tls_key", "{e}");
}
