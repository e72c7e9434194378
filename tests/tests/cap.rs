//! CAP 1.2 alerts (issue 12 §4) with the real `nguon-server` and `nguon-agent` binaries as
//! processes: four loudspeakers, two inside the alert's polygon and two outside.
//!
//! - an Alert (from an untrusted sender, approved through the API) plays on exactly the two
//!   inside, proven by their proofs of play, and on none outside;
//! - an Update keeps the alert id: `GET /api/v1/alerts/{id}` follows the new command, which the
//!   inside loudspeakers play;
//! - a Cancel stops it everywhere, including an agent that was offline while the cancel was
//!   sent: that agent never plays the update issued while it was away;
//! - Exercise (no area takes exercises) and Test alerts issue nothing and play nowhere.

use std::time::Duration;

use chrono::Utc;
use nguon_tests::commands::{plays_of, wait_play, wait_tracking};
use nguon_tests::province::Province;
use serde_json::{Value, json};

const SENDER: &str = "pctt@example.vn";
const POLYGON: &str = "20.9,105.7 20.9,105.9 21.1,105.9 21.1,105.7 20.9,105.7";

fn cap(identifier: &str, status: &str, msg_type: &str, refs: Option<&str>, headline: &str) -> String {
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%S+00:00");
    let expires = (Utc::now() + chrono::Duration::minutes(30)).format("%Y-%m-%dT%H:%M:%S+00:00");
    let refs = refs
        .map(|r| format!("<references>{r}</references>"))
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier><sender>{SENDER}</sender><sent>{now}</sent>
  <status>{status}</status><msgType>{msg_type}</msgType><scope>Public</scope>{refs}
  <info><language>vi-VN</language><category>Met</category><event>Lũ quét</event>
    <urgency>Immediate</urgency><severity>Severe</severity><certainty>Observed</certainty>
    <expires>{expires}</expires><headline>{headline}</headline>
    <area><areaDesc>Vùng trũng</areaDesc><polygon>{POLYGON}</polygon></area></info>
</alert>"#
    )
}

/// Post a CAP document; approve it when it waits. Returns the answer after the decision.
async fn post_and_approve(p: &Province, xml: String) -> Value {
    let r = p
        .api()
        .post_body("/api/v1/alerts/cap", "application/cap+xml", xml)
        .await
        .unwrap_or_else(|e| panic!("CAP post: {e:#}\n{}", p.logs()));
    if r["state"] != "pending_approval" {
        return r;
    }
    let pending = p
        .api()
        .get("/api/v1/alerts?state=pending_approval")
        .await
        .expect("pending");
    let mid = pending[0]["id"].as_str().expect("message id").to_string();
    p.api()
        .post(&format!("/api/v1/alerts/messages/{mid}/approve"), &json!({}))
        .await
        .unwrap_or_else(|e| panic!("approve: {e:#}\n{}", p.logs()))
}

async fn current_command(p: &Province, alert: &str) -> String {
    let r = p
        .api()
        .get(&format!("/api/v1/alerts/{alert}"))
        .await
        .expect("alert tracking");
    r["id"].as_str().expect("command id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_alert_plays_inside_its_polygon_updates_in_place_and_a_cancel_reaches_the_offline() {
    let mut p = Province::new(None, 1, 4).await;
    let ids: Vec<String> = p.plan.devices.iter().map(|d| d.id.to_string()).collect();
    // 0 and 1 inside the polygon, 2 and 3 outside (north, east).
    for (id, (lat, lon)) in ids
        .iter()
        .zip([(21.0, 105.8), (20.95, 105.85), (21.3, 105.8), (21.0, 106.2)])
    {
        p.api()
            .patch(&format!("/api/v1/devices/{id}"), &json!({"lat": lat, "lon": lon}))
            .await
            .expect("position");
    }
    p.start_agents(|_| None).await;
    p.wait_online().await;

    // Alert: exactly the two inside play it.
    let a = post_and_approve(&p, cap("SYS-1", "Actual", "Alert", None, "Cảnh báo lũ quét")).await;
    assert_eq!(a["state"], "issued", "{a}");
    assert_eq!(a["targets"]["devices"], 2, "{a}");
    let alert = a["id"].as_str().expect("alert id").to_string();
    let first = current_command(&p, &alert).await;
    for d in &ids[..2] {
        wait_play(&p, &first, d, Duration::from_secs(60)).await;
    }
    let sent_first = p
        .api()
        .get(&format!("/api/v1/alerts/{alert}/messages"))
        .await
        .expect("messages")[0]["sent"]
        .as_str()
        .expect("sent")
        .to_string();
    let reference = format!("{SENDER},SYS-1,{sent_first}");

    // Update: same alert, a new command, played by the inside ones.
    let u = post_and_approve(
        &p,
        cap(
            "SYS-1-U1",
            "Actual",
            "Update",
            Some(&reference),
            "Cập nhật lũ quét",
        ),
    )
    .await;
    assert_eq!(u["id"], alert.as_str(), "{u}");
    let second = current_command(&p, &alert).await;
    assert_ne!(second, first);
    for d in &ids[..2] {
        wait_play(&p, &second, d, Duration::from_secs(60)).await;
    }

    // Agent 1 goes away; a second update is issued; then the Cancel while it is still away.
    p.stop_agent(1).await;
    let u2 = post_and_approve(
        &p,
        cap(
            "SYS-1-U2",
            "Actual",
            "Update",
            Some(&reference),
            "Lũ quét lần hai",
        ),
    )
    .await;
    assert_eq!(u2["id"], alert.as_str(), "{u2}");
    let third = current_command(&p, &alert).await;
    wait_play(&p, &third, &ids[0], Duration::from_secs(60)).await;
    let c = post_and_approve(
        &p,
        cap("SYS-1-C", "Actual", "Cancel", Some(&reference), "Hủy cảnh báo"),
    )
    .await;
    assert_eq!(c["state"], "issued", "{c}");
    tokio::time::sleep(Duration::from_secs(8)).await;
    p.agents[1].restart().expect("agent 1 restarts");
    p.settle_after_restart(1).await;
    let tracking = wait_tracking(&p, &third, "the cancel in the tracking", |t| {
        nguon_tests::commands::state(t, &ids[1]) == "cancelled"
    })
    .await;
    assert_eq!(
        nguon_tests::commands::state(&tracking, &ids[1]),
        "cancelled",
        "{tracking}"
    );
    let by = plays_of(&p, &third).await;
    assert!(
        !by.contains_key(&ids[1]),
        "the agent that was away played the cancelled update: {by:?}"
    );

    // Outside the polygon nothing ever played; Exercise and Test issue nothing.
    for cmd in [&first, &second, &third] {
        let by = plays_of(&p, cmd).await;
        for d in &ids[2..] {
            assert!(!by.contains_key(d), "{d} is outside the polygon: {by:?}");
        }
    }
    for (ident, status) in [("SYS-X", "Exercise"), ("SYS-T", "Test")] {
        let r = post_and_approve(&p, cap(ident, status, "Alert", None, "Diễn tập")).await;
        assert_eq!(r["state"], "not_played", "{r}");
        assert!(r["command_id"].is_null(), "{r}");
    }
    for a in &p.agents[2..] {
        assert!(a.wav_files().is_empty(), "{:?}", a.wav_files());
    }
}
