//! The command outbox: a command is recorded with its audit entry in one transaction (from the
//! API and from the console), published once by the command sender and marked published; a
//! command that expired unpublished is failed and never sent; a command issued while the
//! server's MQTT link is cut or stalled is delivered exactly once when the link is back.

use std::time::Duration;

use crate::common;
use crate::console_support;
use crate::dispatch_support;

use chrono::Utc;
use console_support::{FormExt, client, login, user};
use dispatch_support::*;
use nguon_protocol::{Audience, DeviceId, ServerMessage, topic};
use serde_json::json;
use sqlx::Row;

/// A connected device subscribed to its command topic (subscriptions in place once its retained
/// manifest arrived on a second subscription).
pub async fn listening(app: &common::TestApp, id: &str, password: &str) -> TestDevice {
    let mut d = connect(app, id, password, None).await.unwrap();
    let did = DeviceId::parse(id).unwrap();
    d.subscribe(&topic::cmd(&did)).await;
    d.subscribe(&topic::desired(&did)).await;
    d.next_on(&topic::desired(&did), |_| true).await;
    d
}

/// The id and sequence number of a command message for device `id`.
pub fn opened(app: &common::TestApp, id: &str, payload: &[u8]) -> (String, u64) {
    let m = ServerMessage::open(
        payload,
        &app.server_key(),
        &Audience::Device(DeviceId::parse(id).unwrap()),
        Utc::now(),
        chrono::Duration::seconds(60),
    )
    .expect("a command signed by the server for this device");
    (m.id.to_string(), m.seq)
}

/// Every message on `topic` received within `wait`.
pub async fn drain(d: &mut TestDevice, topic: &str, wait: Duration) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(m)) = tokio::time::timeout_at(deadline, d.rx.recv()).await {
        if m.topic == topic {
            out.push(m.payload);
        }
    }
    out
}

/// `(published_at, failed_at, seq)` of a command row.
pub async fn row(app: &common::TestApp, id: &str) -> (Option<i64>, Option<i64>, i64) {
    let r = sqlx::query("SELECT published_at, failed_at, seq FROM commands WHERE id = $1")
        .bind(id.to_string())
        .fetch_one(&app.state().store.pool)
        .await
        .expect("command row");
    (
        r.try_get("published_at").unwrap(),
        r.try_get("failed_at").unwrap(),
        r.try_get("seq").unwrap(),
    )
}

async fn audited(app: &common::TestApp, action: &str, entity: &str) -> Vec<String> {
    nguon_server::store::audit::recent(&app.state().store, 500)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == action && e.entity == entity)
        .map(|e| e.actor)
        .collect()
}

#[tokio::test]
async fn a_command_is_recorded_with_its_audit_entry_then_published_once_and_marked() {
    let app = common::spawn_app().await;
    let p = uid("p");
    area(&app, &p, None).await;
    let id = uid("lc");
    device(&app, &id, &p, "outbox-password", None).await;
    let mut dev = listening(&app, &id, "outbox-password").await;
    let cmd_topic = topic::cmd(&DeviceId::parse(&id).unwrap());

    let (s, issued) = common::json(
        app.post_json(
            &format!("/api/v1/devices/{id}/commands"),
            &json!({"action": "volume", "level": 40}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 202, "{issued}");
    let cid = issued["command_id"].as_str().unwrap().to_string();
    assert_eq!(issued["topic"], cmd_topic.as_str());
    let m = dev.next_on(&cmd_topic, |_| true).await;
    let (got, seq) = opened(&app, &id, &m.payload);
    assert_eq!(got, cid);
    let (published, failed, stored_seq) = eventually("the command marked published", || async {
        let r = row(&app, &cid).await;
        r.0.is_some().then_some(r)
    })
    .await;
    assert!(published.is_some() && failed.is_none());
    assert_eq!(
        stored_seq as u64, seq,
        "the row keeps the number it was sent with"
    );
    assert_eq!(
        audited(&app, "device.command.volume", &format!("device:{id}")).await,
        ["admin-token"]
    );
    assert!(
        drain(&mut dev, &cmd_topic, Duration::from_millis(1500))
            .await
            .is_empty(),
        "published once"
    );

    // The console's quick command goes through the same use case: one row, one audit entry by
    // the operator; a refused one writes neither.
    let op = app.unique("op");
    user(&app, &op, "operator", &[&p], "operator-password").await;
    let c = client();
    let s = login(&app, &c, &op, "operator-password").await;
    let post = |action: &'static str| {
        let (c, s, url) = (&c, &s, app.url(&format!("/console/devices/{id}/command")));
        async move {
            c.post(url)
                .header("cookie", &s.cookie)
                .form_pairs(&[("csrf", s.csrf.as_str()), ("action", action)])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(post("sync").await, 303);
    assert_eq!(post("dance").await, 400);
    assert_eq!(
        audited(&app, "device.command.sync", &format!("device:{id}")).await,
        [op]
    );
    let m = dev.next_on(&cmd_topic, |_| true).await;
    let (sync_id, sync_seq) = opened(&app, &id, &m.payload);
    assert!(sync_seq > seq, "numbered after the first");
    let actions: Vec<String> =
        sqlx::query("SELECT id, action FROM commands WHERE target = $1 ORDER BY issued_at")
            .bind(id.clone())
            .fetch_all(&app.state().store.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get::<String, _>("action").unwrap())
            .collect();
    assert_eq!(actions, ["volume", "sync"]);
    eventually("the console's command marked published", || async {
        row(&app, &sync_id).await.0.map(|_| ())
    })
    .await;
}

#[tokio::test]
async fn a_command_that_expired_unpublished_is_failed_and_never_sent() {
    let app = common::spawn_app().await;
    let p = uid("p");
    area(&app, &p, None).await;
    let id = uid("lc");
    device(&app, &id, &p, "outbox-password", None).await;
    let mut dev = listening(&app, &id, "outbox-password").await;
    let cmd_topic = topic::cmd(&DeviceId::parse(&id).unwrap());
    // Two unpublished commands as a server that stopped before sending them leaves them: one
    // past its expiry, one still valid (the sender reads the outbox at start and on every tick).
    let now = Utc::now().timestamp_millis();
    let (late, due) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
    for (cid, issued) in [(&late, now - 400_000), (&due, now - 1_000)] {
        sqlx::query(
            "INSERT INTO commands (id, target_kind, target, topic, action, body, seq, issued_at, expires_at) \
             VALUES ($1, 'device', $2, $3, 'volume', $4, 0, $5, $6)",
        )
        .bind(cid.clone())
        .bind(id.clone())
        .bind(cmd_topic.clone())
        .bind(r#"{"action":"volume","level":30}"#)
        .bind(issued)
        .bind(issued + 300_000)
        .execute(&app.state().store.pool)
        .await
        .unwrap();
    }
    let m = dev.next_on(&cmd_topic, |_| true).await;
    assert_eq!(opened(&app, &id, &m.payload).0, due);
    let (published, failed, _) = eventually("the expired command failed", || async {
        let r = row(&app, &late).await;
        r.1.is_some().then_some(r)
    })
    .await;
    assert_eq!((published, failed.is_some()), (None, true));
    let rest = drain(&mut dev, &cmd_topic, Duration::from_millis(2500)).await;
    assert!(rest.is_empty(), "the expired command is never sent");
}

/// Send a volume command to device `id` through the API; its command id.
async fn issue_volume(app: &common::TestApp, id: &str, level: u8) -> String {
    let (s, issued) = common::json(
        app.post_json(
            &format!("/api/v1/devices/{id}/commands"),
            &json!({"action": "volume", "level": level}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 202, "{issued}");
    issued["command_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_command_issued_while_the_link_is_cut_or_stalled_is_delivered_once_when_it_is_back_and_acks_join_it()
 {
    // An ack that does not come within 300 ms counts as a failed publish.
    let (app, proxy) = common::proxy::spawn_app_behind_proxy_with(|s| s.mqtt_ack_timeout_ms = 300).await;
    let p = uid("p");
    area(&app, &p, None).await;
    let id = uid("lc");
    device(&app, &id, &p, "outbox-password", None).await;
    let mut dev = listening(&app, &id, "outbox-password").await;
    let did = DeviceId::parse(&id).unwrap();
    let cmd_topic = topic::cmd(&did);
    let mut delivered = Vec::new();
    for phase in ["cut", "stalled"] {
        // The link goes: closed (the server sees it at once) or stalled (the connection stays
        // open and swallows every publish; only the missing acks tell).
        if phase == "cut" {
            proxy.cut();
            eventually("the server's link down", || async {
                (!*app.state().link_up.borrow()).then_some(())
            })
            .await;
        } else {
            proxy.stall();
        }
        let cid = issue_volume(&app, &id, if phase == "cut" { 55 } else { 45 }).await;
        assert!(
            drain(&mut dev, &cmd_topic, Duration::from_millis(1500))
                .await
                .is_empty(),
            "{phase}: nothing reaches the device"
        );
        assert_eq!(
            row(&app, &cid).await.0,
            None,
            "{phase}: the command is still unpublished"
        );
        if phase == "stalled" {
            proxy.cut();
        }
        proxy.restore();
        let m = dev.next_on(&cmd_topic, |_| true).await;
        let (got, seq) = opened(&app, &id, &m.payload);
        assert_eq!(got, cid, "{phase}: the command arrives once the link is back");
        let (published, failed, stored_seq) = eventually("the command marked published", || async {
            let r = row(&app, &cid).await;
            r.0.is_some().then_some(r)
        })
        .await;
        assert!(published.is_some() && failed.is_none());
        assert_eq!(
            stored_seq as u64, seq,
            "{phase}: every attempt is the same message"
        );
        assert!(
            drain(&mut dev, &cmd_topic, Duration::from_millis(2500))
                .await
                .is_empty(),
            "{phase}: delivered exactly once"
        );
        delivered.push(cid);
    }
    // The device acks both; each ack joins its command.
    let events = delivered
        .iter()
        .map(|cid| nguon_protocol::Event {
            id: uuid::Uuid::new_v4(),
            at: Utc::now(),
            body: nguon_protocol::EventBody::Ack {
                message_id: cid.parse().unwrap(),
                ok: true,
                manifest_version: None,
                reason: None,
            },
        })
        .collect();
    let batch = nguon_protocol::EventBatch {
        v: 1,
        device: did.clone(),
        sent_at: Utc::now(),
        events,
    };
    dev.publish(&topic::events(&did), batch.seal(None).to_bytes(), false)
        .await;
    for cid in &delivered {
        let r = eventually("the ack joined to its command", || async {
            let (s, r) = common::json(app.get(&format!("/api/v1/commands/{cid}")).await).await;
            (s == 200 && r["acks"].as_array().is_some_and(|a| a.len() == 1)).then_some(r)
        })
        .await;
        assert_eq!(r["acks"][0]["device_id"], id.as_str());
        assert_eq!(r["action"], "volume");
    }
}
