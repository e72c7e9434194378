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

/// `actual` must equal the pinned JSON `expected`.
fn pinned(what: &str, actual: &serde_json::Value, expected: &str) {
    let want: serde_json::Value = serde_json::from_str(expected).expect("pinned JSON");
    assert_eq!(actual, &want, "{what}");
}

/// A value bound to a placeholder: text, integer, or a null of either type (PostgreSQL wants
/// the null's type to match its column).
enum Col {
    T(String),
    I(i64),
    NullText,
    NullInt,
}

fn t(s: impl Into<String>) -> Col {
    Col::T(s.into())
}

/// Writes one row with `$1…` placeholders bound to `values`.
async fn insert(app: &common::TestApp, sql: &str, values: Vec<Col>) {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
    for v in values {
        q = match v {
            Col::T(s) => q.bind(s),
            Col::I(i) => q.bind(i),
            Col::NullText => q.bind(None::<String>),
            Col::NullInt => q.bind(None::<i64>),
        };
    }
    q.execute(&app.state().store.pool).await.unwrap();
}

/// The report endpoints (`/api/v1/plays`, `/api/v1/events`, `/api/v1/commands/{id}`) on fixed
/// rows: their filters, order, limits and JSON shapes, pinned before they moved into layers.
#[tokio::test]
async fn the_report_endpoints_answer_in_their_pinned_shapes() {
    use serde_json::json;
    let app = spawn_app().await;
    let play = "INSERT INTO plays (event_id, device_id, item_id, schedule_id, occurrence_at, sha256, priority, started_at, ended_at, outcome, reason, received_at) \
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
    let base = 1_740_000_000_000_i64;
    for (i, (event, device, schedule, occ, outcome)) in [
        ("00000000-0000-4000-8000-000000000001", "dev-a", "s1", 0, "played"),
        (
            "00000000-0000-4000-8000-000000000002",
            "dev-a",
            "s2",
            60_000,
            "missed",
        ),
        ("00000000-0000-4000-8000-000000000003", "dev-b", "s1", 0, "failed"),
        (
            "00000000-0000-4000-8000-000000000004",
            "dev-a",
            "",
            120_000,
            "played",
        ),
        (
            "00000000-0000-4000-8000-000000000005",
            "dev-a",
            "s1",
            120_000,
            "interrupted",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let played = outcome != "missed" && outcome != "failed";
        insert(
            &app,
            play,
            vec![
                t(event),
                t(device),
                t(format!("item-{i}")),
                t(schedule),
                Col::I(base + occ),
                t("ab".repeat(32)),
                t(if schedule.is_empty() {
                    "emergency"
                } else {
                    "normal"
                }),
                if played {
                    Col::I(base + occ + 1000)
                } else {
                    Col::NullInt
                },
                if played {
                    Col::I(base + occ + 61_000)
                } else {
                    Col::NullInt
                },
                t(outcome),
                if played { Col::NullText } else { t("offline") },
                Col::I(base + 200_000 + i as i64),
            ],
        )
        .await;
    }
    let event = "INSERT INTO device_events (event_id, device_id, kind, message_id, body, at, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
    for (i, (id, device, kind, message, body)) in [
        (
            "10000000-0000-4000-8000-000000000001",
            "dev-a",
            "ack",
            Some("cmd-1"),
            r#"{"ok":true}"#,
        ),
        (
            "10000000-0000-4000-8000-000000000002",
            "dev-b",
            "ack",
            Some("cmd-1"),
            r#"{"ok":false,"reason":"busy"}"#,
        ),
        (
            "10000000-0000-4000-8000-000000000003",
            "dev-a",
            "rejected",
            Some("m-9"),
            r#"{"why":"expired"}"#,
        ),
        (
            "10000000-0000-4000-8000-000000000004",
            "dev-b",
            "media_error",
            None,
            "not json",
        ),
        (
            "10000000-0000-4000-8000-000000000005",
            "dev-a",
            "ack",
            Some("cmd-2"),
            r#"{"ok":true}"#,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        insert(
            &app,
            event,
            vec![
                t(id),
                t(device),
                t(kind),
                message.map_or(Col::NullText, t),
                t(body),
                Col::I(base + 10_000 * (5 - i as i64)),
                Col::I(base + 300_000 + i as i64),
            ],
        )
        .await;
    }
    insert(
        &app,
        "INSERT INTO commands (id, target_kind, target, topic, action, body, seq, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        vec![
            t("cmd-1"),
            t("area"),
            t("08003"),
            t("nguon/v1/a/08003/cmd"),
            t("volume"),
            t(r#"{"action":"volume","volume":70}"#),
            Col::I(7),
            Col::I(base),
            Col::I(base + 600_000),
        ],
    )
    .await;

    let get = |path: &str| {
        let path = path.to_string();
        let app = &app;
        async move { json(app.get(&path).await).await }
    };
    let (s, all) = get("/api/v1/plays").await;
    assert_eq!(s, 200);
    pinned(
        "all plays",
        &all,
        r##"[
  {
    "device_id": "dev-a",
    "ended_at": "2025-02-19T21:23:01Z",
    "event_id": "00000000-0000-4000-8000-000000000004",
    "item_id": "item-3",
    "max_rms_dbfs": null,
    "occurrence_at": "2025-02-19T21:22:00Z",
    "outcome": "played",
    "priority": "emergency",
    "reason": null,
    "received_at": "2025-02-19T21:23:20.003Z",
    "schedule_id": "",
    "sha256": "abababababababababababababababababababababababababababababababab",
    "silent": false,
    "started_at": "2025-02-19T21:22:01Z"
  },
  {
    "device_id": "dev-a",
    "ended_at": "2025-02-19T21:23:01Z",
    "event_id": "00000000-0000-4000-8000-000000000005",
    "item_id": "item-4",
    "max_rms_dbfs": null,
    "occurrence_at": "2025-02-19T21:22:00Z",
    "outcome": "interrupted",
    "priority": "normal",
    "reason": null,
    "received_at": "2025-02-19T21:23:20.004Z",
    "schedule_id": "s1",
    "sha256": "abababababababababababababababababababababababababababababababab",
    "silent": false,
    "started_at": "2025-02-19T21:22:01Z"
  },
  {
    "device_id": "dev-a",
    "ended_at": null,
    "event_id": "00000000-0000-4000-8000-000000000002",
    "item_id": "item-1",
    "max_rms_dbfs": null,
    "occurrence_at": "2025-02-19T21:21:00Z",
    "outcome": "missed",
    "priority": "normal",
    "reason": "offline",
    "received_at": "2025-02-19T21:23:20.001Z",
    "schedule_id": "s2",
    "sha256": "abababababababababababababababababababababababababababababababab",
    "silent": false,
    "started_at": null
  },
  {
    "device_id": "dev-a",
    "ended_at": "2025-02-19T21:21:01Z",
    "event_id": "00000000-0000-4000-8000-000000000001",
    "item_id": "item-0",
    "max_rms_dbfs": null,
    "occurrence_at": "2025-02-19T21:20:00Z",
    "outcome": "played",
    "priority": "normal",
    "reason": null,
    "received_at": "2025-02-19T21:23:20Z",
    "schedule_id": "s1",
    "sha256": "abababababababababababababababababababababababababababababababab",
    "silent": false,
    "started_at": "2025-02-19T21:20:01Z"
  },
  {
    "device_id": "dev-b",
    "ended_at": null,
    "event_id": "00000000-0000-4000-8000-000000000003",
    "item_id": "item-2",
    "max_rms_dbfs": null,
    "occurrence_at": "2025-02-19T21:20:00Z",
    "outcome": "failed",
    "priority": "normal",
    "reason": "offline",
    "received_at": "2025-02-19T21:23:20.002Z",
    "schedule_id": "s1",
    "sha256": "abababababababababababababababababababababababababababababababab",
    "silent": false,
    "started_at": null
  }
]"##,
    );
    let (_, some) = get("/api/v1/plays?device=dev-a&schedule=s1&since=2025-02-19T21:20:00Z&until=2025-02-19T21:22:01Z&limit=1").await;
    pinned(
        "filtered plays",
        &some,
        r##"[
  {
    "device_id": "dev-a",
    "ended_at": "2025-02-19T21:23:01Z",
    "event_id": "00000000-0000-4000-8000-000000000005",
    "item_id": "item-4",
    "max_rms_dbfs": null,
    "occurrence_at": "2025-02-19T21:22:00Z",
    "outcome": "interrupted",
    "priority": "normal",
    "reason": null,
    "received_at": "2025-02-19T21:23:20.004Z",
    "schedule_id": "s1",
    "sha256": "abababababababababababababababababababababababababababababababab",
    "silent": false,
    "started_at": "2025-02-19T21:22:01Z"
  }
]"##,
    );
    let (_, none) = get("/api/v1/plays?until=2025-02-19T21:20:00Z").await;
    assert_eq!(none, json!([]));
    let (s, events) = get("/api/v1/events").await;
    assert_eq!(s, 200);
    pinned(
        "all events",
        &events,
        r##"[
  {
    "at": "2025-02-19T21:20:50Z",
    "body": {
      "ok": true
    },
    "device_id": "dev-a",
    "event_id": "10000000-0000-4000-8000-000000000001",
    "kind": "ack",
    "message_id": "cmd-1",
    "received_at": "2025-02-19T21:25:00Z"
  },
  {
    "at": "2025-02-19T21:20:40Z",
    "body": {
      "ok": false,
      "reason": "busy"
    },
    "device_id": "dev-b",
    "event_id": "10000000-0000-4000-8000-000000000002",
    "kind": "ack",
    "message_id": "cmd-1",
    "received_at": "2025-02-19T21:25:00.001Z"
  },
  {
    "at": "2025-02-19T21:20:30Z",
    "body": {
      "why": "expired"
    },
    "device_id": "dev-a",
    "event_id": "10000000-0000-4000-8000-000000000003",
    "kind": "rejected",
    "message_id": "m-9",
    "received_at": "2025-02-19T21:25:00.002Z"
  },
  {
    "at": "2025-02-19T21:20:20Z",
    "body": "not json",
    "device_id": "dev-b",
    "event_id": "10000000-0000-4000-8000-000000000004",
    "kind": "media_error",
    "message_id": null,
    "received_at": "2025-02-19T21:25:00.003Z"
  },
  {
    "at": "2025-02-19T21:20:10Z",
    "body": {
      "ok": true
    },
    "device_id": "dev-a",
    "event_id": "10000000-0000-4000-8000-000000000005",
    "kind": "ack",
    "message_id": "cmd-2",
    "received_at": "2025-02-19T21:25:00.004Z"
  }
]"##,
    );
    let (_, acks) = get("/api/v1/events?device=dev-a&kind=ack&limit=1").await;
    pinned(
        "filtered events",
        &acks,
        r##"[
  {
    "at": "2025-02-19T21:20:50Z",
    "body": {
      "ok": true
    },
    "device_id": "dev-a",
    "event_id": "10000000-0000-4000-8000-000000000001",
    "kind": "ack",
    "message_id": "cmd-1",
    "received_at": "2025-02-19T21:25:00Z"
  }
]"##,
    );
    let (s, command) = get("/api/v1/commands/cmd-1").await;
    assert_eq!(s, 200);
    pinned(
        "command with acks",
        &command,
        r##"{
  "acks": [
    {
      "at": "2025-02-19T21:20:50Z",
      "body": {
        "ok": true
      },
      "device_id": "dev-a",
      "event_id": "10000000-0000-4000-8000-000000000001",
      "kind": "ack",
      "message_id": "cmd-1",
      "received_at": "2025-02-19T21:25:00Z"
    },
    {
      "at": "2025-02-19T21:20:40Z",
      "body": {
        "ok": false,
        "reason": "busy"
      },
      "device_id": "dev-b",
      "event_id": "10000000-0000-4000-8000-000000000002",
      "kind": "ack",
      "message_id": "cmd-1",
      "received_at": "2025-02-19T21:25:00.001Z"
    }
  ],
  "action": "volume",
  "command": {
    "action": "volume",
    "volume": 70
  },
  "expires_at": "2025-02-19T21:30:00Z",
  "id": "cmd-1",
  "issued_at": "2025-02-19T21:20:00Z",
  "issued_by": null,
  "target": "08003",
  "target_kind": "area",
  "topic": "nguon/v1/a/08003/cmd",
  "tracking": {
    "counts": {
      "cancelled": 0,
      "delivered": 0,
      "expired": 0,
      "failed": 0,
      "interrupted": 0,
      "offline_pending": 0,
      "pending": 0,
      "played": 0,
      "played_late": 0,
      "playing": 0
    },
    "reached": 0,
    "targets": []
  }
}"##,
    );
    let (s, missing) = get("/api/v1/commands/nope").await;
    assert_eq!(s, 404);
    pinned(
        "unknown command",
        &missing,
        r##"{
  "error": {
    "code": "not_found",
    "message": "command nope not found"
  }
}"##,
    );
    // Admin only.
    let viewer = crate::console_support::user(&app, "api-viewer", "viewer", &[], "api-viewer-password").await;
    let token = crate::console_support::token(&app, &viewer).await;
    for path in ["/api/v1/plays", "/api/v1/events", "/api/v1/commands/cmd-1"] {
        let r = app
            .client
            .get(app.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
}
