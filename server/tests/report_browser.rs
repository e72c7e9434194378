//! The broadcast report in a real headless Chromium (issue 13), one browser session: on a fresh
//! system, a schedule created today whose occurrences all played shows 100 % (only occurrences
//! after a schedule was created count: a daily 00:00 schedule created now has nothing due today),
//! on the console page, its printable A4 twin and `GET /api/v1/reports` alike; the page does not
//! overflow a 390 px phone; the browser logs no error. Screenshots go to
//! `target/test-artifacts/report/*.png`.

use crate::common;
use crate::dispatch_support;
use crate::webdriver;

use std::time::Duration;

use chrono::{NaiveDateTime, TimeZone, Utc};
use common::{json, spawn_app};
use dispatch_support::{connect, device, eventually, uid};
use nguon_protocol::{DeviceId, Event, EventBatch, EventBody, PlayOutcome, Priority, ProofOfPlay, topic};
use serde_json::json;
use sqlx::Row;
use webdriver::Driver;

const WAIT: Duration = Duration::from_secs(30);

async fn new_area(app: &common::TestApp, code: &str, name: &str, parent: Option<&str>, level: &str) {
    let (s, b) = json(
        app.post_json(
            "/api/v1/areas",
            &json!({"code": code, "name": name, "parent": parent, "level": level}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
}

async fn schedule(
    app: &common::TestApp,
    title: &str,
    sha: &str,
    area: &str,
    rule: serde_json::Value,
) -> String {
    let (s, b) = json(
        app.post_json(
            "/api/v1/schedules",
            &json!({"title": title, "media": [sha], "targets": {"areas": [area]}, "rule": rule,
                    "time_zone": "Asia/Ho_Chi_Minh"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    b["schedule"]["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_created_today_whose_occurrences_all_played_shows_one_hundred_percent() {
    let app = spawn_app().await;
    let (p, h, xa) = (uid("tinh"), uid("huyen"), uid("xa"));
    new_area(&app, &p, "Tỉnh Lào Cai", None, "province").await;
    new_area(&app, &h, "Huyện Bát Xát", Some(&p), "district").await;
    new_area(&app, &xa, "Xã Bản Vược", Some(&h), "commune").await;
    let da = uid("lc");
    device(&app, &da, &xa, "device-password-a", None).await;
    let sha = dispatch_support::media(&app, "approved", 20_000).await;
    let tz = chrono_tz::Asia::Ho_Chi_Minh;

    // Every day at 00:00, created now: today's 00:00 came before the schedule existed.
    schedule(
        &app,
        "Bản tin đầu ngày",
        &sha,
        &xa,
        json!({"kind": "cron", "cron": "0 0 * * *"}),
    )
    .await;
    // Once, three seconds from now; its one occurrence is played and reported.
    let local = (Utc::now().with_timezone(&tz) + chrono::Duration::seconds(3)).naive_local();
    let at_text = local.format("%Y-%m-%dT%H:%M:%S").to_string();
    let at_local = NaiveDateTime::parse_from_str(&at_text, "%Y-%m-%dT%H:%M:%S").unwrap();
    let at = tz
        .from_local_datetime(&at_local)
        .single()
        .unwrap()
        .with_timezone(&Utc);
    let once = schedule(
        &app,
        "Thông báo tiêm chủng",
        &sha,
        &xa,
        json!({"kind": "once", "at": at_text}),
    )
    .await;
    // The occurrence must be in the past before it can have played.
    while Utc::now() <= at + chrono::Duration::milliseconds(200) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dev = connect(&app, &da, "device-password-a", None).await.unwrap();
    let id = DeviceId::parse(&da).unwrap();
    let batch = EventBatch {
        v: 1,
        device: id.clone(),
        sent_at: Utc::now(),
        events: vec![Event {
            id: uuid::Uuid::new_v4(),
            at: Utc::now(),
            body: EventBody::Play(ProofOfPlay {
                item_id: format!("{once}@{}", at.timestamp()),
                schedule_id: once.clone(),
                occurrence_at: at,
                sha256: sha.clone(),
                priority: Priority::Normal,
                started_at: Some(at),
                ended_at: Some(at + chrono::Duration::seconds(20)),
                outcome: PlayOutcome::Played,
                reason: None,
                max_rms_dbfs: None,
                silent: false,
                relay: None,
            }),
        }],
    };
    dev.publish(&topic::events(&id), batch.seal(None).to_bytes(), false)
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

    // Today and tomorrow: tomorrow's 00:00 has not come yet either.
    let today = Utc::now().with_timezone(&tz).date_naive();
    let period = format!(
        "from={}&to={}",
        today.format("%Y-%m-%d"),
        today.succ_opt().unwrap().format("%Y-%m-%d")
    );

    // The API.
    let (s, api) = json(app.get(&format!("/api/v1/reports?{period}")).await).await;
    assert_eq!(s, 200, "{api}");
    let t = &api["total"];
    assert_eq!(
        (&t["scheduled"], &t["delivered"], &t["delivery_rate"]),
        (&json!(1), &json!(1), &json!(1.0)),
        "{api}"
    );
    assert_eq!(api["areas"][0]["code"], xa);
    assert_eq!(api["areas"][0]["district"], h);
    assert_eq!(api["unit"], "UBND tỉnh Lào Cai");
    assert_eq!(api["period"]["from"], today.format("%Y-%m-%d").to_string());

    // The console page, then on a phone, then the printable page.
    let d = Driver::start(1366, 900, "report").await;
    d.login(&app.base, "admin", common::TOKEN).await;
    d.goto(&app.url(&format!("/console/reports?{period}"))).await;
    d.wait_for(
        "the report table",
        "return !!document.getElementById('total-delivery')",
        WAIT,
    )
    .await;
    let total = d
        .eval("return document.getElementById('total-delivery').textContent")
        .await;
    assert_eq!(total, "100,0 %", "{}", d.text().await);
    let row = d
        .eval(&format!(
            "return document.querySelector('#report tr[data-area=\"{xa}\"] .delivery').textContent"
        ))
        .await;
    assert_eq!(row, "100,0 %");
    // The delivery chart is on a 0–100 % scale: 100 % is the full 380 px bar.
    let bar = d
        .eval("return document.querySelectorAll('svg.bars')[0].querySelector('rect').getAttribute('width')")
        .await;
    assert_eq!(bar, "380.0");
    let text = d.text().await;
    assert!(
        text.contains("Huyện Bát Xát") && text.contains("UBND tỉnh Lào Cai"),
        "{text}"
    );
    d.screenshot("1-report-1366").await;

    d.resize(390, 844).await;
    d.goto(&app.url(&format!("/console/reports?{period}"))).await;
    d.wait_for(
        "the report on a phone",
        "return !!document.getElementById('total-delivery')",
        WAIT,
    )
    .await;
    let widths = d
        .eval("return [document.documentElement.scrollWidth, window.innerWidth]")
        .await;
    assert!(
        widths[0].as_i64() <= widths[1].as_i64(),
        "the page overflows at 390 px: {widths}"
    );
    d.screenshot("2-report-390").await;

    d.resize(1000, 1400).await;
    d.goto(&app.url(&format!("/console/reports/print?{period}")))
        .await;
    d.wait_for(
        "the printable report",
        "return document.body.innerText.includes('NGƯỜI LẬP BIỂU')",
        WAIT,
    )
    .await;
    let text = d.text().await;
    assert!(
        text.contains("BÁO CÁO KẾT QUẢ HOẠT ĐỘNG THÔNG TIN CƠ SỞ")
            && text.contains("UBND tỉnh Lào Cai")
            && text.contains("THỦ TRƯỞNG ĐƠN VỊ"),
        "{text}"
    );
    assert_eq!(
        d.eval("return document.getElementById('total-delivery').textContent")
            .await,
        "100,0 %"
    );
    assert_eq!(
        d.eval("return document.querySelector('header.top') === null")
            .await,
        true,
        "the printable page has no menu"
    );
    d.screenshot("3-report-print").await;

    // (`favicon.ico` is the console's own business: issue 13's wording part.)
    let errors = d.browser_errors(&["favicon.ico"]).await;
    assert!(errors.is_empty(), "browser errors: {errors:?}");
}
