//! The dispatch outbox keeps a change until the broker has confirmed every manifest it caused:
//! the server's MQTT link goes through a proxy the tests cut (connections closed) or stall
//! (connections open, nothing delivered) while a schedule is created. The outbox row stays,
//! the batch is retried, and once the link is back the device's retained manifest carries the
//! change and the outbox empties. Both backends (SQLite + embedded broker, PostgreSQL +
//! Mosquitto with `NGUON_TEST_DATABASE_URL` / `NGUON_TEST_MQTT_URL`).

use crate::common::{self, TestApp};
use crate::dispatch_support::*;

use std::time::Duration;

use chrono::Utc;
use nguon_protocol::{DeviceId, topic};
use serde_json::json;

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.state().store.pool)
        .await
        .expect(sql)
}

async fn outbox_rows(app: &TestApp) -> i64 {
    count(app, "SELECT COUNT(*) FROM dispatch_outbox").await
}

/// A device with its first (empty) manifest received, and nothing left in the outbox.
async fn ready_device(app: &TestApp, password: &str) -> (String, TestDevice, String) {
    let (province, commune) = (uid("p"), uid("c"));
    area(app, &province, None).await;
    area(app, &commune, Some(&province)).await;
    let id = uid("lc");
    device(app, &id, &commune, password, None).await;
    let mut dev = connect(app, &id, password, None).await.expect("device connects");
    let desired = topic::desired(&DeviceId::parse(&id).unwrap());
    dev.subscribe(&desired).await;
    dev.next_on(&desired, |_| true).await;
    eventually("the outbox to drain before the cut", || async {
        (outbox_rows(app).await == 0).then_some(())
    })
    .await;
    (id, dev, province)
}

/// Create a schedule for `province` while the link is down; wait until a dispatch batch has
/// failed on it, and check the outbox still holds it. Returns the schedule id.
async fn schedule_while_down(app: &TestApp, province: &str, dev: &mut TestDevice) -> String {
    let failures = metric(app, "nguon_dispatch_failures_total").await;
    let sha = media(app, "approved", 30_000).await;
    let at = (Utc::now().with_timezone(&chrono_tz::Asia::Ho_Chi_Minh) + chrono::Duration::hours(2))
        .format("%Y-%m-%dT%H:%M:00")
        .to_string();
    let (s, created) = common::json(
        app.post_json(
            "/api/v1/schedules",
            &json!({"title": "Mất kết nối", "media": [sha], "targets": {"areas": [province]},
                    "rule": {"kind": "once", "at": at}}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let sid = created["schedule"]["id"].as_str().unwrap().to_string();
    eventually("a dispatch batch to fail while the link is down", || async {
        (metric(app, "nguon_dispatch_failures_total").await > failures).then_some(())
    })
    .await;
    assert!(
        outbox_rows(app).await >= 1,
        "the failed batch kept the schedule's outbox row"
    );
    while let Ok(m) = dev.rx.try_recv() {
        assert!(
            !has_item(&m.payload, &sid),
            "nothing reached the device while the link was down"
        );
    }
    sid
}

/// After the link is back: the retained manifest with the schedule reaches the device (also a
/// fresh subscriber), the outbox empties and every manifest is confirmed.
async fn delivered_after_restore(app: &TestApp, id: &str, password: &str, dev: &mut TestDevice, sid: &str) {
    let desired = topic::desired(&DeviceId::parse(id).unwrap());
    dev.next_on(&desired, |b| has_item(b, sid)).await;
    eventually("the outbox to drain after the restore", || async {
        (outbox_rows(app).await == 0).then_some(())
    })
    .await;
    eventually("every manifest confirmed", || async {
        (count(app, "SELECT COUNT(*) FROM manifests WHERE published_at = 0").await == 0).then_some(())
    })
    .await;
    drop(std::mem::replace(
        dev,
        connect(app, id, password, None).await.expect("reconnects"),
    ));
    dev.subscribe(&desired).await;
    dev.next_on(&desired, |b| has_item(b, sid)).await;
}

#[tokio::test]
async fn a_change_made_while_the_link_is_cut_stays_in_the_outbox_and_reaches_the_device_after_restore() {
    let (app, proxy) = common::proxy::spawn_app_behind_proxy().await;
    let password = "outbox-cut-password";
    let (id, mut dev, province) = ready_device(&app, password).await;

    proxy.cut();
    let mut up = app.state().link_up.clone();
    tokio::time::timeout(DEADLINE, up.wait_for(|v| !*v))
        .await
        .expect("the link notices the cut")
        .unwrap();
    let sid = schedule_while_down(&app, &province, &mut dev).await;
    // Still kept after a retry or two.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        outbox_rows(&app).await >= 1,
        "retries keep the outbox row while the link is down"
    );

    proxy.restore();
    delivered_after_restore(&app, &id, password, &mut dev, &sid).await;
}

#[tokio::test]
async fn a_publish_the_broker_never_acknowledges_keeps_the_outbox_row_until_it_is() {
    let (app, proxy) = common::proxy::spawn_app_behind_proxy_with(|s| s.mqtt_ack_timeout_ms = 300).await;
    let password = "outbox-stall-password";
    let (id, mut dev, province) = ready_device(&app, password).await;

    // The connection stays open (the link still counts as up) but nothing gets through: the
    // publishes are handed to the broker connection and their acks never come.
    proxy.stall();
    let sid = schedule_while_down(&app, &province, &mut dev).await;
    assert!(*app.state().link_up.borrow(), "the stall is not a disconnect");

    proxy.cut();
    proxy.restore();
    delivered_after_restore(&app, &id, password, &mut dev, &sid).await;
}
