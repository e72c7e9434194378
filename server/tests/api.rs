//! Black-box tests of the system endpoints: health, metrics, OpenAPI, server key, auth.

use crate::common;

use common::{json, spawn_app};

#[tokio::test]
async fn healthz_answers_ok_with_the_server_time() {
    let app = spawn_app().await;
    let resp = app.get_anon("/healthz").await;
    assert_eq!(resp.status(), 200);
    let t: i64 = resp.headers()["x-server-time-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(t > 1_600_000_000_000);
    let (_, body) = json(resp).await;
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_device_gauges() {
    let app = spawn_app().await;
    let resp = app.get_anon("/metrics").await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.contains("nguon_devices_total 0"), "{text}");
    assert!(text.contains("nguon_devices_online 0"), "{text}");
}

#[tokio::test]
async fn the_openapi_document_and_swagger_ui_are_served() {
    let app = spawn_app().await;
    let (status, doc) = json(app.get_anon("/api/openapi.json").await).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/healthz"].is_object());
    let resp = app.get_anon("/api/docs/").await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn the_server_key_endpoint_matches_the_key_in_the_data_dir() {
    let app = spawn_app().await;
    let (status, body) = json(app.get_anon("/api/v1/keys/server").await).await;
    assert_eq!(status, 200);
    assert_eq!(body["algorithm"], "ed25519");
    let stored = std::fs::read_to_string(app.data_dir.join("server.key")).unwrap();
    let key = nguon_protocol::ServerKey::from_b64(stored.trim()).unwrap();
    assert_eq!(body["public_key"], key.public_b64());
}
