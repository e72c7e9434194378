//! Dispatch: signed retained manifests reach devices through the broker; one publish per device
//! per change; nothing is lost between commit and publish.

use crate::common;
use crate::dispatch_support;

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use dispatch_support::*;
use nguon_protocol::{DeviceId, topic};
use serde_json::json;

#[tokio::test]
async fn a_registered_device_receives_its_signed_retained_manifest_with_the_scheduled_occurrence() {
    let app = common::spawn_app().await;
    let (province, commune) = (uid("p"), uid("c"));
    area(&app, &province, None).await;
    area(&app, &commune, Some(&province)).await;
    let id = uid("lc");
    device(&app, &id, &commune, "correct-horse-battery", None).await;
    let sha = media(&app, "approved", 30_000).await;
    let at = (Utc::now().with_timezone(&chrono_tz::Asia::Ho_Chi_Minh) + chrono::Duration::hours(2))
        .format("%Y-%m-%dT%H:%M:00")
        .to_string();
    let (s, created) = common::json(
        app.post_json(
            "/api/v1/schedules",
            &json!({"title": "Thông báo", "media": [sha], "targets": {"areas": [province]},
                    "rule": {"kind": "once", "at": at}, "priority": "priority", "volume": 70}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let sid = created["schedule"]["id"].as_str().unwrap().to_string();
    let utc = created["next_occurrences"][0]["utc"]
        .as_str()
        .unwrap()
        .to_string();

    // Connect only afterwards: the manifest must be waiting as a retained message.
    let mut dev = connect(&app, &id, "correct-horse-battery", None)
        .await
        .expect("device connects");
    let desired = topic::desired(&DeviceId::parse(&id).unwrap());
    dev.subscribe(&desired).await;
    let m = dev.next_on(&desired, |b| has_item(b, &sid)).await;
    let manifest = open_manifest(&app, &id, &m.payload);
    let item = manifest.items.iter().find(|i| i.schedule_id == sid).unwrap();
    assert_eq!(
        item.starts_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        utc.replace(".000", "")
    );
    assert_eq!(item.id, format!("{sid}@{}", item.starts_at.timestamp()));
    assert_eq!(item.volume, 70);
    assert_eq!(manifest.media[0].sha256, sha);
    assert!(manifest.media[0].url.ends_with(&format!("/media/{sha}")));
    assert!(manifest.version >= 1);
}

#[tokio::test]
async fn a_wrong_password_is_refused_by_the_embedded_broker() {
    let app = common::spawn_app().await;
    if app.external_mqtt {
        return; // the external broker has its own password file
    }
    let p = uid("p");
    area(&app, &p, None).await;
    let id = uid("lc");
    device(&app, &id, &p, "the-right-password", None).await;
    assert!(connect(&app, &id, "the-wrong-password", None).await.is_err());
    assert!(
        connect(&app, &uid("nobody"), "the-right-password", None)
            .await
            .is_err()
    );
    assert!(connect(&app, &id, "the-right-password", None).await.is_ok());
}

#[tokio::test]
async fn a_schedule_change_for_2000_devices_publishes_each_manifest_exactly_once() {
    let app = common::spawn_app().await;
    let province = uid("p");
    area(&app, &province, None).await;
    let communes: Vec<String> = (0..20).map(|i| format!("{province}-{i}")).collect();
    for c in &communes {
        area(&app, c, Some(&province)).await;
    }
    // 2,000 devices written straight to the registry (no notification, no credentials needed).
    let prefix = uid("bulk");
    bulk_devices(&app, &prefix, &communes, 2000).await;

    // Twenty observers, each subscribed to the topics of 100 of the devices: Mosquitto queues at
    // most `max_queued_messages` (1000 by default) for one client, so a single wildcard observer
    // of a 2,000-manifest burst can lose messages inside the broker (and on a shared broker it
    // also gets every retained manifest earlier runs left). A client's SUBSCRIBEs are handled in
    // order, so when the retained manifest of its own topic (subscribed last) arrives, the others
    // are live. Everything they receive is forwarded to one channel, tagged with the observer.
    const OBSERVERS: usize = 20;
    let bulk_prefix = format!("nguon/v1/d/{prefix}-");
    let (fwd, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Msg)>();
    let mut observers = Vec::new();
    for k in 0..OBSERVERS {
        // The embedded broker's gate lets no device read another's topics: observers log in as
        // the server's internal user there, and each follows a device of its own for the sentinel.
        let oid = uid("obs");
        device(&app, &oid, &province, "observer-password", None).await;
        let mut o = connect_observer(&app, &province).await;
        for i in (k..2000).step_by(OBSERVERS) {
            o.subscribe(&format!("{bulk_prefix}{i:04}/desired")).await;
        }
        let own = topic::desired(&DeviceId::parse(&oid).unwrap());
        o.subscribe(&own).await;
        o.next_on(&own, |_| true).await;
        let fwd = fwd.clone();
        tokio::spawn(async move {
            while let Some(m) = o.rx.recv().await {
                if fwd.send((k, m)).is_err() {
                    break;
                }
            }
        });
        observers.push((oid, own));
    }

    let sha = media(&app, "approved", 10_000).await;
    let sid = province_schedule(&app, &province, &sha).await;

    let mut counts: HashMap<String, usize> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while counts.len() < 2000 {
        let (_, m) = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("all 2,000 manifests in time")
            .unwrap();
        if m.topic.starts_with(&bulk_prefix) {
            assert!(
                has_item(&m.payload, &sid),
                "manifest without the new schedule on {}",
                m.topic
            );
            *counts.entry(m.topic).or_default() += 1;
        }
    }
    // Sentinel: a later change for the observers alone; anything duplicated would reach an
    // observer before its own sentinel manifest.
    let ids: Vec<&str> = observers.iter().map(|(id, _)| id.as_str()).collect();
    let (s, b) = common::json(
        app.post_json(
            "/api/v1/schedules",
            &json!({"title": "sentinel", "media": [sha], "targets": {"devices": ids},
                    "rule": {"kind": "cron", "cron": "0 7 * * *"}}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let sentinel = b["schedule"]["id"].as_str().unwrap().to_string();
    let mut done = std::collections::HashSet::new();
    while done.len() < OBSERVERS {
        let (k, m) = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("sentinels in time")
            .unwrap();
        if m.topic == observers[k].1 && has_item(&m.payload, &sentinel) {
            done.insert(k);
        }
        if m.topic.starts_with(&bulk_prefix) {
            *counts.entry(m.topic).or_default() += 1;
        }
    }
    assert_eq!(counts.len(), 2000);
    let dupes: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(dupes.is_empty(), "published more than once: {dupes:?}");
    // On a shared external broker, leave no 2,000 retained manifests behind for later runs.
    let topics: Vec<String> = counts
        .into_keys()
        .chain(observers.into_iter().map(|(_, own)| own))
        .collect();
    clear_retained(&app, &province, &topics).await;
}

#[tokio::test]
async fn a_change_committed_but_not_published_before_a_crash_reaches_the_device_after_restart() {
    // A 10-minute debounce: the first app commits the schedule and its outbox row but never
    // publishes within this test (as if killed between commit and publish).
    let app = common::spawn_app_with(|s| s.dispatch_debounce_ms = 600_000).await;
    let p = uid("p");
    area(&app, &p, None).await;
    let id = uid("lc");
    device(&app, &id, &p, "restart-password", None).await;
    let sha = media(&app, "approved", 5_000).await;
    let (s, b) = common::json(
        app.post_json(
            "/api/v1/schedules",
            &json!({"title": "after restart", "media": [sha], "targets": {"devices": [id]},
                    "rule": {"kind": "cron", "cron": "15 8 * * *"}}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let sid = b["schedule"]["id"].as_str().unwrap().to_string();
    let outbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dispatch_outbox")
        .fetch_one(&app.state().store.pool)
        .await
        .unwrap();
    assert!(outbox >= 1, "the change is in the outbox");

    // Crash, then rebuild on the same data dir / database (and, embedded, a fresh broker that lost
    // all retained messages).
    let mut app = app;
    app.crash().await;
    let mut settings = app.settings.clone();
    settings.http_addr = "127.0.0.1:0".parse().unwrap();
    // Port 0: the broker's gate takes a free port itself (a port picked by `free_port` and released
    // stays free only by chance during the whole build: migrations, the engine's start).
    settings.mqtt_addr = "127.0.0.1:0".parse().unwrap();
    settings.dispatch_debounce_ms = 20;
    let second = match nguon_server::Application::build(settings).await {
        Ok(a) => a,
        Err(e) => panic!("rebuild on the crashed instance's data: {e:?}"),
    };
    let (host, port) = match second.mqtt_addr() {
        Some(a) => (a.ip().to_string(), a.port()),
        None => (app.mqtt_host.clone(), app.mqtt_port),
    };
    let pool = second.state().store.pool.clone();
    let task = tokio::spawn(second.run_until_stopped(std::future::pending()));
    let mut dev = connect_to(&host, port, &id, "restart-password", None)
        .await
        .expect("device connects");
    let desired = topic::desired(&DeviceId::parse(&id).unwrap());
    dev.subscribe(&desired).await;
    dev.next_on(&desired, |b| has_item(b, &sid)).await;
    eventually("the outbox to drain", || {
        let pool = pool.clone();
        async move {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dispatch_outbox")
                .fetch_one(&pool)
                .await
                .ok()?;
            (n == 0).then_some(())
        }
    })
    .await;
    task.abort();
}
