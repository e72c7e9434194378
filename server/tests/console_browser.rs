//! The operator console in a real headless Chromium (issue 7), driven over WebDriver: an editor
//! uploads audio (with a progress bar) and submits it, an approver approves it, an operator
//! schedules it to a commune, a device reports proof of play over MQTT and the dashboard shows
//! it; a commune operator sees and targets only its own commune. Screenshots go to
//! `target/test-artifacts/console/*.png`.

use crate::common;
use crate::console_support;
use crate::dispatch_support;

use std::time::Duration;

use chrono::Utc;
use common::{json, spawn_app};
use console_support::*;
use dispatch_support::{area, connect, device, eventually, uid};
use nguon_protocol::{DeviceId, Event, EventBatch, EventBody, PlayOutcome, Priority, ProofOfPlay, topic};
use serde_json::json;
use sqlx::Row;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn editors_approvers_and_operators_run_a_broadcast_through_the_console_in_a_browser() {
    let app = spawn_app().await;
    let (p, xa, xb) = (uid("tinh"), uid("xa-a"), uid("xa-b"));
    let (s, b) = json(
        app.post_json(
            "/api/v1/areas",
            &json!({"code": p, "name": "Tỉnh Lào Cai", "level": "province"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = json(
        app.post_json(
            "/api/v1/areas",
            &json!({"code": xa, "name": "Xã Bản Lầu", "parent": p, "level": "commune"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    area(&app, &xb, Some(&p)).await;
    let (da, db) = (uid("lc"), uid("lc"));
    device(&app, &da, &xa, "device-password-a", None).await;
    device(&app, &db, &xb, "device-password-b", None).await;
    user(&app, "bientap", "editor", &[], "mat-khau-bien-tap").await;
    user(&app, "lanhdao", "approver", &[], "mat-khau-lanh-dao").await;
    user(&app, "vanhanh", "operator", &[], "mat-khau-van-hanh").await;
    let op_a = user(&app, "xa-a-vanhanh", "operator", &[&xa], "mat-khau-xa-a-01").await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ban-tin.wav");
    std::fs::write(&file, wav(20)).unwrap();
    let title = "Bản tin phòng chống lũ quét";

    let d = Driver::start(1280, 900, "console").await;
    // 1. The editor uploads and submits.
    d.login(&app.base, "bientap", "mat-khau-bien-tap").await;
    let text = d.text().await;
    assert!(
        text.contains("Tổng quan") && text.contains("Biên tập"),
        "Vietnamese by default: {text}"
    );
    d.goto(&app.url("/console/media")).await;
    d.eval("sessionStorage.removeItem('nguon-upload-progress'); return true")
        .await;
    d.type_into("#upload-title", title).await;
    d.type_into("#upload-file", file.to_str().unwrap()).await;
    d.click("#upload-submit").await;
    d.wait_for(
        "the media page after upload",
        "return location.pathname.startsWith('/console/media/')",
        WAIT,
    )
    .await;
    let progress = d
        .eval("return sessionStorage.getItem('nguon-upload-progress')")
        .await;
    assert_eq!(progress, json!("100"), "the progress bar reached 100 %");
    d.wait_for(
        "the preview player",
        "return !!document.querySelector('audio#preview')",
        WAIT,
    )
    .await;
    d.screenshot("01-editor-uploaded").await;
    let sha = d.path().await.trim_start_matches("/console/media/").to_string();
    d.click("#submit-approval").await;
    d.wait_for(
        "the library",
        "return location.pathname === '/console/media'",
        WAIT,
    )
    .await;
    assert!(d.text().await.contains("Chờ phê duyệt"));
    d.logout().await;

    // 2. The approver approves from the queue.
    d.login(&app.base, "lanhdao", "mat-khau-lanh-dao").await;
    d.goto(&app.url("/console/approvals")).await;
    assert!(d.text().await.contains(title));
    d.screenshot("02-approval-queue").await;
    d.click(&format!("button.approve[data-sha='{sha}']")).await;
    d.wait_for(
        "the empty queue",
        "return !!document.getElementById('queue-empty')",
        WAIT,
    )
    .await;
    d.logout().await;
    let (_, m) = json(app.get(&format!("/api/v1/media/{sha}")).await).await;
    assert_eq!(m["status"], "approved");

    // 3. The operator schedules it to commune A (once, in a minute).
    d.login(&app.base, "vanhanh", "mat-khau-van-hanh").await;
    d.goto(&app.url("/console/schedules")).await;
    let at = (Utc::now().with_timezone(&chrono_tz::Asia::Ho_Chi_Minh) + chrono::Duration::minutes(2))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    d.type_into("#sched-title", "Lịch phát lũ quét").await;
    d.click(&format!("input[name=area][value='{xa}']")).await;
    d.click("#mode-once").await;
    d.eval(&format!(
        "document.getElementById('sched-media').value = '{sha}';
         document.getElementById('sched-priority').value = 'priority';
         document.getElementById('sched-at').value = '{at}'; return true"
    ))
    .await;
    d.screenshot("03-schedule-form").await;
    d.click("#sched-save").await;
    d.wait_for("the calendar", "return location.pathname === '/console/calendar' && document.body.innerText.includes('Lịch phát lũ quét')", WAIT)
        .await;
    d.screenshot("04-calendar-week").await;
    let row = sqlx::query("SELECT id FROM schedules WHERE title = $1")
        .bind("Lịch phát lũ quét")
        .fetch_one(&app.state().store.pool)
        .await
        .unwrap();
    let schedule_id: String = row.get("id");

    // 4. The device in commune A reports proof of play over MQTT.
    let dev = connect(&app, &da, "device-password-a", None).await.unwrap();
    let now = Utc::now();
    let event = Event {
        id: uuid::Uuid::new_v4(),
        at: now,
        body: EventBody::Play(ProofOfPlay {
            item_id: format!("{schedule_id}@1"),
            schedule_id: schedule_id.clone(),
            occurrence_at: now,
            sha256: sha.clone(),
            priority: Priority::Priority,
            started_at: Some(now),
            ended_at: Some(now + chrono::Duration::seconds(20)),
            outcome: PlayOutcome::Played,
            reason: None,
            max_rms_dbfs: None,
            silent: false,
            relay: None,
        }),
    };
    let batch = EventBatch {
        v: 1,
        device: DeviceId::parse(&da).unwrap(),
        sent_at: now,
        events: vec![event],
    };
    dev.publish(
        &topic::events(&DeviceId::parse(&da).unwrap()),
        batch.seal(None).to_bytes(),
        false,
    )
    .await;
    eventually("the play ingested", || async {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM plays WHERE device_id = $1")
            .bind(da.clone())
            .fetch_one(&app.state().store.pool)
            .await
            .unwrap()
            .get("n");
        (n == 1).then_some(())
    })
    .await;

    // 5. The dashboard shows commune A's device and its proof of play.
    d.goto(&app.url("/console")).await;
    d.wait_for(
        "the device and its play on the dashboard",
        &format!(
            "return !!document.querySelector('#by-area tr[data-area=\"{xa}\"]') && document.querySelector('#by-area').innerText.includes('{da}') \
             && !!document.querySelector('table.plays tr.play.played[data-device=\"{da}\"]') && document.body.innerText.includes('{title}')"
        ),
        WAIT,
    )
    .await;
    assert!(d.text().await.contains("Xã Bản Lầu"));
    d.screenshot("05-dashboard").await;
    d.goto(&app.url(&format!("/console/devices/{da}"))).await;
    assert!(d.text().await.contains(title));
    d.screenshot("06-device-detail").await;
    // English on request.
    d.goto(&app.url("/console/lang?l=en")).await;
    d.wait_for(
        "English",
        "return document.documentElement.lang === 'en' && document.body.innerText.includes('Dashboard')",
        WAIT,
    )
    .await;
    d.goto(&app.url("/console/lang?l=vi")).await;
    d.logout().await;

    // 6. A commune operator sees and targets only its own commune.
    d.login(&app.base, "xa-a-vanhanh", "mat-khau-xa-a-01").await;
    let dash = d.text().await;
    assert!(dash.contains(&da) && !dash.contains(&db), "{dash}");
    d.goto(&app.url("/console/schedules")).await;
    let options = d
        .eval("return Array.from(document.querySelectorAll('#area-tree input[name=area]')).map(o => o.value)")
        .await;
    assert_eq!(options, json!([xa]));
    d.screenshot("07-commune-operator-schedule-form").await;
    d.goto(&app.url(&format!("/console/devices/{db}"))).await;
    d.wait_for(
        "the refusal",
        "return !!document.getElementById('error-message')",
        WAIT,
    )
    .await;
    assert!(d.text().await.contains("403"));
    d.screenshot("08-commune-operator-refused").await;
    d.goto(&app.url("/console")).await;
    d.logout().await;
    let t = token(&app, &op_a).await;
    let c = client();
    assert_eq!(
        c.get(app.url(&format!("/api/v1/devices/{db}")))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let body = json!({"title": "x", "media": [sha], "targets": {"areas": [xb]}, "rule": {"kind": "cron", "cron": "0 6 * * *"}});
    assert_eq!(
        c.post(app.url("/api/v1/schedules"))
            .bearer_auth(&t)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
}
