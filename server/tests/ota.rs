//! Signed agent updates (issue 16, docs/ota.md), the server's side against a fake device: bad
//! uploads are refused naming the field, a release is stored and served by sha256, a rollout puts
//! a signed build in the retained manifest of the devices it selects (the signature verifies with
//! the server key), the share only grows, a cancel takes the release out again, the device's
//! `agent_update` reports become the rollout's progress, and every change is audited.

use crate::common;
use crate::dispatch_support;

use chrono::Utc;
use dispatch_support::*;
use nguon_protocol::{Arch, DeviceId, Event, EventBatch, EventBody, UpdateState, topic};
use serde_json::{Value, json};

/// A 64-byte ELF header of `machine` (what the server reads of a binary).
fn elf(machine: u16, class: u8, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len.max(64)];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = class;
    b[5] = 1;
    b[18..20].copy_from_slice(&machine.to_le_bytes());
    b
}

/// Multipart fields: name and bytes.
type Fields<'a> = Vec<(&'a str, &'a [u8])>;

async fn upload(app: &common::TestApp, fields: &[(&str, &[u8])]) -> (u16, Value) {
    let boundary = format!("----nguon-ota-{}", common::random_suffix());
    let mut body = Vec::new();
    for (name, v) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(v);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let ct = format!("multipart/form-data; boundary={boundary}");
    common::json(app.post_raw("/api/v1/agent-releases", &ct, body).await).await
}

#[tokio::test]
async fn a_rollout_signs_its_release_into_the_manifests_it_selects_and_shows_the_devices_reports() {
    let app = common::spawn_app_with(|s| s.ota.max_binary_mb = 1).await;
    let p = uid("p");
    area(&app, &p, None).await;
    let a = uid("lc");
    device(&app, &a, &p, "ota-password-123", None).await;
    let mut d = connect(&app, &a, "ota-password-123", None).await.unwrap();
    d.subscribe(&topic::desired(&DeviceId::parse(&a).unwrap())).await;
    crate::catch_up::manifest_where(&app, &mut d, |_| true).await;

    // Bad uploads, each named.
    let x86 = elf(62, 2, 4096);
    let cases: Vec<(Fields, u16, &str)> = vec![
        (
            vec![("version", b"1.0"), ("arch", b"x86_64")],
            422,
            "`binary` is required",
        ),
        (
            vec![("version", b"1.0"), ("arch", b"aarch64"), ("binary", &x86)],
            422,
            "wrong_arch",
        ),
        (
            vec![("version", b"1.0"), ("arch", b"sparc"), ("binary", &x86)],
            422,
            "invalid_arch",
        ),
        (
            vec![("version", b"../1"), ("arch", b"x86_64"), ("binary", &x86)],
            422,
            "invalid_version",
        ),
        (
            vec![
                ("version", b"1.0"),
                ("arch", b"x86_64"),
                ("binary", b"#!/bin/sh\n"),
            ],
            422,
            "not_an_executable",
        ),
    ];
    for (fields, status, needle) in cases {
        let (s, b) = upload(&app, &fields).await;
        assert_eq!(s, status, "{b}");
        assert!(b.to_string().contains(needle), "{needle}: {b}");
    }
    let big = elf(62, 2, 1024 * 1024 + 1);
    let (s, b) = upload(
        &app,
        &[("version", b"1.0"), ("arch", b"x86_64"), ("binary", &big)],
    )
    .await;
    assert_eq!(s, 413, "{b}");
    assert!(b.to_string().contains("max_binary_mb"), "{b}");

    // A release, stored and served by its sha256; a second build of it for the arch is a conflict.
    let (s, rel) = upload(
        &app,
        &[("version", b"2.0.0"), ("arch", b"x86_64"), ("binary", &x86)],
    )
    .await;
    assert_eq!(s, 201, "{rel}");
    let sha = rel["sha256"].as_str().unwrap().to_string();
    let served = app.get_anon(&format!("/agent-releases/{sha}")).await;
    assert_eq!(served.status().as_u16(), 200);
    assert_eq!(served.bytes().await.unwrap().to_vec(), x86);
    assert_eq!(
        app.get_anon(&format!("/agent-releases/{}", "0".repeat(64)))
            .await
            .status()
            .as_u16(),
        404
    );
    let (s, _) = upload(
        &app,
        &[("version", b"2.0.0"), ("arch", b"x86_64"), ("binary", &x86)],
    )
    .await;
    assert_eq!(s, 409);
    let (s, _) = upload(
        &app,
        &[
            ("version", b"2.0.0"),
            ("arch", b"armv7"),
            ("binary", &elf(40, 1, 64)),
        ],
    )
    .await;
    assert_eq!(s, 201);

    // Rollouts: bad ones named; a good one reaches the device's manifest, signed.
    for (body, needle) in [
        (
            json!({"release": "9.9", "areas": [p], "percent": 10}),
            "unknown_release",
        ),
        (
            json!({"release": "2.0.0", "areas": ["nowhere"], "percent": 10}),
            "unknown_area",
        ),
        (
            json!({"release": "2.0.0", "areas": [p], "percent": 0}),
            "invalid_percent",
        ),
        (
            json!({"release": "2.0.0", "areas": [], "percent": 10}),
            "invalid_areas",
        ),
    ] {
        let (s, b) = common::json(app.post_json("/api/v1/rollouts", &body).await).await;
        assert_eq!(s, 422, "{b}");
        assert!(b.to_string().contains(needle), "{needle}: {b}");
    }
    let (s, r) = common::json(
        app.post_json(
            "/api/v1/rollouts",
            &json!({"release": "2.0.0", "areas": [p], "percent": 100, "confirm_minutes": 3}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    let m = crate::catch_up::manifest_where(&app, &mut d, |m| m.agent.is_some()).await;
    let t = m.agent.unwrap();
    assert_eq!(
        (t.rollout.as_str(), t.version.as_str(), t.confirm_s),
        (id.as_str(), "2.0.0", 180)
    );
    let b = t.build_for(Arch::X86_64).unwrap();
    assert_eq!(b.sha256, sha);
    assert!(b.url.ends_with(&format!("/agent-releases/{sha}")), "{}", b.url);
    nguon_protocol::ota::verify_release(&app.server_key(), "2.0.0", Arch::X86_64, &sha, &b.signature)
        .unwrap();
    assert!(t.build_for(Arch::Armv7).is_some());

    // The device's reports are the rollout's progress.
    let events = [
        UpdateState::Downloading,
        UpdateState::Verified,
        UpdateState::Installed,
        UpdateState::Confirmed,
    ];
    let batch = EventBatch {
        v: 1,
        device: DeviceId::parse(&a).unwrap(),
        sent_at: Utc::now(),
        events: events
            .iter()
            .enumerate()
            .map(|(i, s)| Event {
                id: uuid::Uuid::new_v4(),
                at: Utc::now() + chrono::Duration::milliseconds(i as i64),
                body: EventBody::AgentUpdate {
                    rollout: id.clone(),
                    version: "2.0.0".into(),
                    state: *s,
                    reason: None,
                },
            })
            .collect(),
    };
    d.publish(
        &topic::events(&DeviceId::parse(&a).unwrap()),
        batch.seal(None).to_bytes(),
        false,
    )
    .await;
    let mut progress = Value::Null;
    for _ in 0..100 {
        progress = common::json(app.get(&format!("/api/v1/rollouts/{id}")).await)
            .await
            .1;
        if progress["counts"]["confirmed"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(progress["counts"]["confirmed"], 1, "{progress}");
    assert_eq!(progress["devices"][0]["device"], a.as_str());
    use crate::console_support::{client, login, page, user};
    user(&app, "quantri-ota", "admin", &[], "mat-khau-quan-tri-ota").await;
    let c = client();
    let s = login(&app, &c, "quantri-ota", "mat-khau-quan-tri-ota").await;
    let html = page(&c, &app, &s.cookie, &format!("/console/rollouts/{id}")).await;
    assert!(
        html.contains("Hoàn tất") && html.contains(&a),
        "Vietnamese first: {html}"
    );
    let html = page(&c, &app, &s.cookie, "/console/rollouts").await;
    assert!(
        html.contains("Cập nhật phần mềm thiết bị") && html.contains("2.0.0"),
        "{html}"
    );

    // The share only grows; a cancel takes the release out of the manifest.
    let (s, b) = common::json(
        app.patch_json(&format!("/api/v1/rollouts/{id}"), &json!({"percent": 50}))
            .await,
    )
    .await;
    assert!(s == 422 && b.to_string().contains("invalid_percent"), "{s} {b}");
    let (s, b) = common::json(
        app.patch_json(&format!("/api/v1/rollouts/{id}"), &json!({"state": "cancelled"}))
            .await,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    crate::catch_up::manifest_where(&app, &mut d, |m| m.agent.is_none()).await;

    let actions: Vec<(String,)> = sqlx::query_as(
        "SELECT action FROM audit_log WHERE action IN ('agent_release.create', 'rollout.create', 'rollout.update') ORDER BY at",
    )
    .fetch_all(&app.state().store.pool)
    .await
    .unwrap();
    let actions: Vec<&str> = actions.iter().map(|(a,)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "agent_release.create",
            "agent_release.create",
            "rollout.create",
            "rollout.update"
        ]
    );
}
