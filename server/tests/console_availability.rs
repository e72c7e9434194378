//! Device availability over a period and the device status history (issue 7): intervals recorded
//! from real presence messages (a device connecting, losing its connection, reconnecting), the
//! report's availability checked against a figure computed in SQL from the stored intervals, in
//! the page, the CSV and the XLSX, and the device page's history section.

use crate::common;
use crate::console_support;
use crate::dispatch_support;

use std::collections::HashMap;

use chrono::TimeZone;
use common::{TestApp, json, spawn_app};
use console_support::*;
use dispatch_support::*;
use nguon_protocol::{DeviceId, topic};
use rumqttc::{LastWill, QoS};
use serde_json::{Value, json};
use sqlx::Row;

async fn history(app: &TestApp, id: &str) -> Value {
    let (s, b) = json(app.get(&format!("/api/v1/devices/{id}/status-history")).await).await;
    assert_eq!(s, 200, "{b}");
    b
}

/// (session, open, ended_by) of the stored rows, oldest first.
async fn stored(app: &TestApp, id: &str) -> Vec<(i64, bool, Option<String>)> {
    sqlx::query(
        "SELECT session, online_to, ended_by FROM device_status_history WHERE device_id = $1 ORDER BY session",
    )
    .bind(id.to_string())
    .fetch_all(&app.state().store.pool)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get::<i64, _>("session"),
            r.get::<Option<i64>, _>("online_to").is_none(),
            r.get::<Option<String>, _>("ended_by"),
        )
    })
    .collect()
}

/// A heartbeat of `session` (one of an older session than the stored one is ignored) carrying
/// `marker` as manifest version, and wait until ingest stored it: every message the device sent
/// before it on the same connection has been ingested too.
async fn sentinel(app: &TestApp, dev: &TestDevice, session: u64, marker: i64) {
    let id = dev.id.clone();
    let hb = json!({"v": 1, "device": id, "at": chrono::Utc::now(), "session": session, "volume": 80,
        "now_playing": null, "manifest_version": marker, "cache_bytes": 0, "disk_free_bytes": 0,
        "clock_offset_ms": null, "agent_version": "test", "uptime_s": 1});
    dev.publish(
        &topic::telemetry(&DeviceId::parse(&id).unwrap()),
        serde_json::to_vec(&hb).unwrap(),
        false,
    )
    .await;
    eventually("the sentinel heartbeat", || async {
        let (_, d) = json(app.get(&format!("/api/v1/devices/{id}")).await).await;
        (d["manifest_version"] == marker).then_some(())
    })
    .await;
}

#[tokio::test]
async fn sessions_become_intervals_once_and_a_stale_will_does_not_close_a_reconnect() {
    let app = spawn_app().await;
    let p = uid("hist");
    area(&app, &p, None).await;
    let id = uid("lc");
    device(&app, &id, &p, "history-password", None).await;
    let state_topic = topic::state(&DeviceId::parse(&id).unwrap());
    let will = |session| {
        LastWill::new(
            &state_topic,
            state_payload(&id, false, session),
            QoS::AtLeastOnce,
            true,
        )
    };

    // Session 1 online, then the same retained online again: one interval.
    let dev = connect(&app, &id, "history-password", Some(will(1)))
        .await
        .unwrap();
    dev.publish(&state_topic, state_payload(&id, true, 1), true).await;
    eventually("session 1 recorded", || async {
        (history(&app, &id).await["intervals"]
            .as_array()
            .is_some_and(|a| a.len() == 1))
        .then_some(())
    })
    .await;
    dev.publish(&state_topic, state_payload(&id, true, 1), true).await;
    sentinel(&app, &dev, 1, 7001).await;
    assert_eq!(
        stored(&app, &id).await,
        vec![(1, true, None)],
        "a repeated online adds nothing"
    );

    // Connection lost: the broker publishes the will.
    dev.kill();
    eventually("session 1 closed by the will", || async {
        (stored(&app, &id).await == vec![(1, false, Some("will".into()))]).then_some(())
    })
    .await;

    // Session 2, then a late will of session 1.
    let dev2 = connect(&app, &id, "history-password", Some(will(2)))
        .await
        .unwrap();
    dev2.publish(&state_topic, state_payload(&id, true, 2), true)
        .await;
    dev2.publish(&state_topic, state_payload(&id, true, 2), true)
        .await;
    dev2.publish(&state_topic, state_payload(&id, false, 1), false)
        .await;
    sentinel(&app, &dev2, 2, 7002).await;
    assert_eq!(
        stored(&app, &id).await,
        vec![(1, false, Some("will".into())), (2, true, None)],
        "the stale will of session 1 leaves session 2 open"
    );

    // The API shows exactly those intervals, newest first, in order and without overlap.
    let h = history(&app, &id).await;
    let iv = h["intervals"].as_array().unwrap();
    assert_eq!(iv.len(), 2, "{h}");
    assert_eq!(iv[0]["session"], 2);
    assert!(iv[0]["online_to"].is_null() && iv[0]["ended_by"].is_null(), "{h}");
    assert_eq!(iv[1]["session"], 1);
    assert_eq!(iv[1]["ended_by"], "will");
    let (end1, start2) = (
        iv[1]["online_to"].as_i64().unwrap(),
        iv[0]["online_from"].as_i64().unwrap(),
    );
    assert!(
        iv[1]["online_from"].as_i64().unwrap() <= end1 && end1 <= start2,
        "{h}"
    );
    let a = &h["availability"];
    let ratio = a["ratio"].as_f64().unwrap();
    assert!(ratio > 0.0 && ratio <= 1.0, "{h}");
    assert!(a["online_ms"].as_i64().unwrap() <= a["period_ms"].as_i64().unwrap());

    // A clean goodbye of session 2.
    dev2.publish(&state_topic, state_payload(&id, false, 2), true)
        .await;
    eventually("session 2 closed", || async {
        (stored(&app, &id).await.last() == Some(&(2, false, Some("offline".into())))).then_some(())
    })
    .await;

    // Scope and input errors.
    let (xb, other) = (uid("hist-b"), uid("viewer"));
    area(&app, &xb, None).await;
    let uid_ = user(&app, &other, "viewer", &[&xb], "viewer-password-1").await;
    let tok = token(&app, &uid_).await;
    let r = reqwest::Client::new()
        .get(app.url(&format!("/api/v1/devices/{id}/status-history")))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a viewer of another area");
    let (s, b) = json(
        app.get(&format!("/api/v1/devices/{id}/status-history?from=yesterday"))
            .await,
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["error"]["code"], "invalid_time");
    assert!(b["error"]["message"].as_str().unwrap().contains("from"), "{b}");
    let (s, _) = json(app.get("/api/v1/devices/lc-nope-0/status-history").await).await;
    assert_eq!(s, 404);
}

async fn interval(app: &TestApp, device: &str, session: i64, from: i64, to: Option<i64>) {
    sqlx::query(
        "INSERT INTO device_status_history (device_id, session, online_from, online_to, ended_by, state_at) \
         VALUES ($1, $2, $3, $4, $5, NULL)",
    )
    .bind(device.to_string())
    .bind(session)
    .bind(from)
    .bind(to)
    .bind(to.map(|_| "will".to_string()))
    .execute(&app.state().store.pool)
    .await
    .unwrap();
}

async fn created(app: &TestApp, device: &str, at: i64) {
    sqlx::query("UPDATE devices SET created_at = $1 WHERE id = $2")
        .bind(at)
        .bind(device.to_string())
        .execute(&app.state().store.pool)
        .await
        .unwrap();
}

/// Each device's availability over `[from, to)` (a past period) computed in SQL straight from
/// the stored intervals: overlap of each interval with `[max(from, created_at), to)`.
async fn expected(app: &TestApp, devices: &[&str], from: i64, to: i64) -> HashMap<String, f64> {
    let list = devices
        .iter()
        .map(|d| format!("'{d}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let start = format!("(CASE WHEN d.created_at > {from} THEN d.created_at ELSE {from} END)");
    let sql = format!(
        "SELECT d.id, {start} AS a, CAST(COALESCE(SUM(\
            (CASE WHEN h.online_to IS NULL OR h.online_to > {to} THEN {to} ELSE h.online_to END) - \
            (CASE WHEN h.online_from < {start} THEN {start} ELSE h.online_from END)), 0) AS BIGINT) AS online \
         FROM devices d LEFT JOIN device_status_history h ON h.device_id = d.id \
           AND h.online_from < {to} AND (h.online_to IS NULL OR h.online_to > {start}) \
         WHERE d.id IN ({list}) GROUP BY d.id, d.created_at"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&app.state().store.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let a: i64 = r.get("a");
            let online: i64 = r.get("online");
            (r.get::<String, _>("id"), online as f64 / (to - a) as f64)
        })
        .collect()
}

#[tokio::test]
async fn report_availability_matches_the_stored_intervals_in_page_csv_and_xlsx() {
    let app = spawn_app().await;
    let p = uid("tinh");
    let (s, b) = json(
        app.post_json(
            "/api/v1/areas",
            &json!({"code": p, "name": "Tỉnh Lào Cai", "level": "province"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (xa, xb) = (uid("xa-a"), uid("xa-b"));
    area(&app, &xa, Some(&p)).await;
    area(&app, &xb, Some(&p)).await;
    let (a1, a2, b1) = (uid("lc"), uid("lc"), uid("lc"));
    device(&app, &a1, &xa, "device-password-1", None).await;
    device(&app, &a2, &xa, "device-password-2", None).await;
    device(&app, &b1, &xb, "device-password-3", None).await;

    // The period: 1 March 2026 (Hồ Chí Minh City), 24 h.
    let tz = chrono_tz::Asia::Ho_Chi_Minh;
    let at = |d: u32, h: u32| {
        tz.with_ymd_and_hms(2026, 3, d, h, 0, 0)
            .unwrap()
            .timestamp_millis()
    };
    let (from, to) = (at(1, 0), at(2, 0));
    let jan = tz
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .unwrap()
        .timestamp_millis();
    created(&app, &a1, jan).await;
    created(&app, &a2, jan).await;
    created(&app, &b1, at(1, 12)).await; // registered at noon: 12 h of the period count
    // a1: online 06:00–12:00 → 6 of 24 h = 25 %.
    interval(&app, &a1, 1, at(1, 6), Some(at(1, 12))).await;
    interval(&app, &a1, 2, at(2, 1), Some(at(2, 5))).await; // after the period
    // a2: 20:00 the day before – 02:00 (2 h in the period), and 22:00 – still online (2 h): 4/24.
    interval(&app, &a2, 7, at(1, 0) - 4 * 3_600_000, Some(at(1, 2))).await;
    interval(&app, &a2, 8, at(1, 22), None).await;
    // b1: 18:00–21:00 of its 12 h = 25 %; one interval in February is ignored.
    interval(
        &app,
        &b1,
        1,
        at(1, 0) - 20 * 86_400_000,
        Some(at(1, 0) - 19 * 86_400_000),
    )
    .await;
    interval(&app, &b1, 2, at(1, 18), Some(at(1, 21))).await;

    let want = expected(&app, &[&a1, &a2, &b1], from, to).await;
    assert!((want[&a1] - 0.25).abs() < 1e-12, "{want:?}");
    assert!((want[&a2] - 4.0 / 24.0).abs() < 1e-12, "{want:?}");
    assert!((want[&b1] - 0.25).abs() < 1e-12, "{want:?}");
    let want_xa = (want[&a1] + want[&a2]) / 2.0;
    let want_xb = want[&b1];
    let want_total = (want[&a1] + want[&a2] + want[&b1]) / 3.0;

    let c = client();
    let s = login(&app, &c, "admin", common::TOKEN).await;
    let q = "from=2026-03-01&to=2026-03-01";
    // CSV (4 decimals).
    let text = c
        .get(app.url(&format!("/console/reports.csv?{q}")))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut rd = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let mut rows: HashMap<String, Vec<String>> = HashMap::new();
    for rec in rd.records() {
        let rec = rec.unwrap();
        rows.insert(rec[0].to_string(), rec.iter().map(str::to_string).collect());
    }
    assert_eq!(rows[&xa][8], format!("{want_xa:.4}"));
    assert_eq!(rows[&xa][8], "0.2083", "mean of 25 % and 16.7 %");
    assert_eq!(rows[&xb][8], format!("{want_xb:.4}"));
    assert_eq!(rows[&xb][8], "0.2500", "6 of 24 h; 3 of the 12 h it existed");
    assert_eq!(
        rows[""][8],
        format!("{want_total:.4}"),
        "total: mean over all loudspeakers"
    );
    // XLSX (full precision).
    let bytes = c
        .get(app.url(&format!("/console/reports.xlsx?{q}")))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
    let mut wb: Xlsx<_> = open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let range = wb.worksheet_range("Bao cao").unwrap();
    let mut found = 0;
    for row in range.rows().skip(3) {
        let code = match (&row[0], &row[1]) {
            (Data::String(s), _) => s.clone(),
            (Data::Empty, Data::String(n)) if n == "Tổng cộng" => String::new(), // the total row
            _ => continue,
        };
        let want = if code == xa {
            want_xa
        } else if code == xb {
            want_xb
        } else if code.is_empty() {
            want_total
        } else {
            continue;
        };
        let Data::Float(v) = row[8] else {
            panic!("availability of {code} is not a number: {:?}", row[8])
        };
        assert!((v - want).abs() < 1e-9, "{code}: {v} vs {want}");
        found += 1;
    }
    assert_eq!(found, 3, "both communes and the total");
    // The page: same figures, Vietnamese format, and the footnote says what they are.
    let html = c
        .get(app.url(&format!("/console/reports?{q}")))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let row_of = |code: &str| {
        let i = html.find(&format!("data-area=\"{code}\"")).expect("row");
        html[i..i + html[i..].find("</tr>").unwrap()].to_string()
    };
    assert!(row_of(&xa).contains("20,8 %"), "{}", row_of(&xa));
    assert!(row_of(&xb).contains("25,0 %"), "{}", row_of(&xb));
    assert!(html.contains("22,2 %"), "total");
    assert!(html.contains("thời gian trực tuyến trong kỳ"), "footnote");
    assert!(!html.contains("không lưu lịch sử"), "the old footnote is gone");

    // The API gives the same figure for one device.
    let (st, h) = json(
        app.get(&format!(
            "/api/v1/devices/{a1}/status-history?from={from}&to={to}"
        ))
        .await,
    )
    .await;
    assert_eq!(st, 200, "{h}");
    assert_eq!(h["availability"]["ratio"], 0.25);
    assert_eq!(h["availability"]["online_ms"], 6 * 3_600_000);
    assert_eq!(
        h["intervals"].as_array().unwrap().len(),
        1,
        "only the period's intervals"
    );

    // The device page: history section with the times, the gap shown as offline.
    let page = |id: String| {
        let (c, cookie) = (c.clone(), s.cookie.clone());
        let url = app.url(&format!("/console/devices/{id}"));
        async move {
            let r = c.get(url).header("cookie", cookie).send().await.unwrap();
            (
                r.status().as_u16(),
                r.text().await.unwrap().replace("&#x2f;", "/"),
            )
        }
    };
    let (st, html) = page(a2.clone()).await;
    assert_eq!(st, 200);
    assert!(html.contains("Lịch sử trạng thái"), "section title");
    let section = &html[html.find("id=\"status-history\"").unwrap()..];
    for t in ["28/02/2026 20:00", "01/03/2026 02:00", "01/03/2026 22:00"] {
        assert!(section.contains(t), "{t} in the history section");
    }
    assert!(section.contains("class=\"gap\""), "the offline gap 02:00–22:00");
    assert!(section.contains("20:00:00"), "a 20 h gap");
    assert!(section.contains("Đang trực tuyến"), "the open interval");
    assert!(section.contains("Mất kết nối (last will)"));
    assert!(section.contains("id=\"avail-7\""));
    // A viewer of commune B does not see A's device.
    let other = uid("viewer");
    user(&app, &other, "viewer", &[&xb], "viewer-password-1").await;
    let vs = login(&app, &c, &other, "viewer-password-1").await;
    let r = c
        .get(app.url(&format!("/console/devices/{a1}")))
        .header("cookie", &vs.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn after_a_restart_unconfirmed_intervals_close_at_the_last_message_and_a_live_session_reopens() {
    let app = spawn_app().await;
    let p = uid("hist");
    area(&app, &p, None).await;
    let (gone, alive) = (uid("lc"), uid("lc"));
    device(&app, &gone, &p, "history-password", None).await;
    device(&app, &alive, &p, "history-password", None).await;
    let pool = &app.state().store.pool;
    let t0 = chrono::Utc::now().timestamp_millis() - 3_600_000;
    // Both were online in session 5 before the "restart"; `gone` was last heard at t0 + 10 min.
    for (id, seen) in [(&gone, t0 + 600_000), (&alive, t0 + 1_200_000)] {
        interval(&app, id, 5, t0, None).await;
        sqlx::query("INSERT INTO device_status (device_id, online, session, state_at, last_seen) VALUES ($1, 1, 5, $2, $3)")
            .bind(id.to_string())
            .bind(t0)
            .bind(seen)
            .execute(pool)
            .await
            .unwrap();
    }
    let started = chrono::Utc::now().timestamp_millis();
    // `alive` still holds its session-5 connection: its retained online re-confirms it.
    let dev = connect(&app, &alive, "history-password", None).await.unwrap();
    let st = topic::state(&DeviceId::parse(&alive).unwrap());
    dev.publish(&st, state_payload(&alive, true, 5), true).await;
    sentinel(&app, &dev, 5, 7101).await;
    let n = nguon_server::store::history::close_unconfirmed(&app.state().store, started)
        .await
        .unwrap();
    assert_eq!(n, 1, "only the device not heard from since the start");
    let row = sqlx::query("SELECT online_to, ended_by FROM device_status_history WHERE device_id = $1")
        .bind(gone.clone())
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(
        row.get::<Option<i64>, _>("online_to"),
        Some(t0 + 600_000),
        "closed at its last message"
    );
    assert_eq!(
        row.get::<Option<String>, _>("ended_by").as_deref(),
        Some("server_restart")
    );
    assert_eq!(stored(&app, &alive).await, vec![(5, true, None)]);
    // Had the reconciliation closed `alive` too, the same session coming back reopens it.
    sqlx::query(
        "UPDATE device_status_history SET online_to = $1, ended_by = 'server_restart' WHERE device_id = $2",
    )
    .bind(t0 + 1_200_000)
    .bind(alive.clone())
    .execute(pool)
    .await
    .unwrap();
    dev.publish(&st, state_payload(&alive, true, 5), true).await;
    sentinel(&app, &dev, 5, 7102).await;
    assert_eq!(
        stored(&app, &alive).await,
        vec![(5, true, None)],
        "one connection, one open interval"
    );
}
