//! Immediate commands: signed, fanned out by area, refused for unapproved media, acks joined.

use crate::common;
use crate::dispatch_support;

use chrono::Utc;
use dispatch_support::*;
use nguon_protocol::{
    AreaCode, Audience, Command, DeviceId, Event, EventBatch, EventBody, ServerBody, ServerMessage, topic,
};
use serde_json::json;

#[tokio::test]
async fn play_now_to_an_area_reaches_its_devices_signed_and_acks_are_joined() {
    let app = common::spawn_app().await;
    let p = uid("p");
    area(&app, &p, None).await;
    let (a, b) = (uid("lc"), uid("lc"));
    device(&app, &a, &p, "command-password", None).await;
    device(&app, &b, &p, "command-password", None).await;
    let sha = media(&app, "approved", 20_000).await;
    let area_topic = topic::area_cmd(&AreaCode::parse(&p).unwrap());
    let mut devs = Vec::new();
    for id in [&a, &b] {
        let d = connect(&app, id, "command-password", None).await.unwrap();
        d.subscribe(&area_topic).await;
        devs.push(d);
    }
    // Subscriptions are in place once a retained manifest arrives on a second subscription.
    for d in &mut devs {
        let desired = topic::desired(&DeviceId::parse(&d.id).unwrap());
        d.subscribe(&desired).await;
        d.next_on(&desired, |_| true).await;
    }
    let (s, issued) = common::json(
        app.post_json(
            &format!("/api/v1/areas/{p}/commands"),
            &json!({"action": "play_now", "media": [sha], "priority": "emergency", "volume": 100}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 202, "{issued}");
    assert_eq!(issued["topic"], area_topic.as_str());
    let cid = issued["command_id"].as_str().unwrap().to_string();
    for d in &mut devs {
        let m = d.next_on(&area_topic, |_| true).await;
        let msg = ServerMessage::open(
            &m.payload,
            &app.server_key(),
            &Audience::Area(AreaCode::parse(&p).unwrap()),
            Utc::now(),
            chrono::Duration::seconds(60),
        )
        .expect("signed for the area");
        assert_eq!(msg.id.to_string(), cid);
        match msg.body {
            ServerBody::Command(Command::PlayNow { item, media }) => {
                assert_eq!(item.id, cid);
                assert_eq!(item.priority, nguon_protocol::Priority::Emergency);
                assert_eq!(item.volume, 100);
                assert_eq!(media[0].sha256, sha);
            }
            other => panic!("not play_now: {other:?}"),
        }
    }
    // Device a acks.
    let ack = EventBatch {
        v: 1,
        device: DeviceId::parse(&a).unwrap(),
        sent_at: Utc::now(),
        events: vec![Event {
            id: uuid::Uuid::new_v4(),
            at: Utc::now(),
            body: EventBody::Ack {
                message_id: cid.parse().unwrap(),
                ok: true,
                manifest_version: None,
                reason: None,
            },
        }],
    };
    devs[0]
        .publish(
            &topic::events(&DeviceId::parse(&a).unwrap()),
            ack.seal(None).to_bytes(),
            false,
        )
        .await;
    let report = eventually("the ack joined to the command", || async {
        let (s, r) = common::json(app.get(&format!("/api/v1/commands/{cid}")).await).await;
        (s == 200 && r["acks"].as_array().is_some_and(|x| x.len() == 1)).then_some(r)
    })
    .await;
    assert_eq!(report["acks"][0]["device_id"], a.as_str());
    assert_eq!(report["action"], "play_now");
}

#[tokio::test]
async fn commands_with_unapproved_media_or_unknown_targets_are_refused() {
    let app = common::spawn_app().await;
    let p = uid("p");
    area(&app, &p, None).await;
    let id = uid("lc");
    device(&app, &id, &p, "command-password", None).await;
    let draft = media(&app, "draft", 1000).await;
    let (s, b) = common::json(
        app.post_json(
            &format!("/api/v1/devices/{id}/commands"),
            &json!({"action": "play_now", "media": [draft]}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["error"]["code"], "media_not_approved");
    assert!(b["error"]["message"].as_str().unwrap().contains(&draft));
    let (s, _) = common::json(
        app.post_json("/api/v1/areas/nowhere-zz/commands", &json!({"action": "sync"}))
            .await,
    )
    .await;
    assert_eq!(s, 404);
    let (s, b) = common::json(
        app.post_json(
            &format!("/api/v1/devices/{id}/commands"),
            &json!({"action": "volume", "level": 60}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 202, "{b}");
    let (s, b) = common::json(
        app.post_json(
            &format!("/api/v1/devices/{id}/commands"),
            &json!({"action": "dance"}),
        )
        .await,
    )
    .await;
    assert_eq!((s, b["error"]["code"].as_str()), (400, Some("invalid_body")));
}
