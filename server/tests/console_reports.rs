//! The half-year report (issue 7): its figures match counts computed directly from the stored
//! proof-of-play rows, and the CSV and XLSX exports carry the same numbers.

use crate::common;
use crate::console_support;
use crate::dispatch_support;

use std::collections::HashMap;

use chrono::{TimeZone, Utc};
use common::{json, spawn_app};
use console_support::*;
use dispatch_support::{area, device, uid};
use serde_json::json;
use sqlx::Row;

#[allow(clippy::too_many_arguments)]
async fn play(
    app: &common::TestApp,
    device: &str,
    schedule: &str,
    item: &str,
    occ: i64,
    prio: &str,
    outcome: &str,
    start: i64,
    len_ms: i64,
) {
    sqlx::query(
        "INSERT INTO plays (event_id, device_id, item_id, schedule_id, occurrence_at, sha256, priority, started_at, ended_at, outcome, reason, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(device.to_string())
    .bind(item.to_string())
    .bind(schedule.to_string())
    .bind(occ)
    .bind("ab".repeat(32))
    .bind(prio.to_string())
    .bind(start)
    .bind(start + len_ms)
    .bind(outcome.to_string())
    .bind(start + len_ms + 1000)
    .execute(&app.state().store.pool)
    .await
    .unwrap();
}

/// (items, minutes×100 rounded, delivered) straight from the plays table.
async fn expected(app: &common::TestApp, devices: &[&str], from: i64, to: i64) -> (i64, i64, i64) {
    let list = devices
        .iter()
        .map(|d| format!("'{d}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let cond = format!(
        "device_id IN ({list}) AND outcome IN ('played', 'resumed', 'interrupted') AND occurrence_at >= {from} AND occurrence_at < {to}"
    );
    let pool = &app.state().store.pool;
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(ended_at - started_at), 0) AS BIGINT) AS ms FROM plays WHERE {cond}"
    )))
    .fetch_one(pool)
    .await
    .unwrap();
    let (n, ms): (i64, i64) = (r.get("n"), r.get("ms"));
    let d: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) AS n FROM (SELECT DISTINCT device_id, schedule_id, occurrence_at FROM plays WHERE {cond} AND schedule_id IN (SELECT id FROM schedules)) x"
    )))
    .fetch_one(pool)
    .await
    .unwrap()
    .get("n");
    (n, (ms as f64 / 600.0).round() as i64, d)
}

#[tokio::test]
async fn the_half_year_report_matches_the_stored_proof_of_play_and_exports_the_same_numbers() {
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
    let sha = dispatch_support::media(&app, "approved", 60_000).await;
    // Every 1 March at 06:30 in Hồ Chí Minh City: once in the 2025 half-year, for both of A's speakers.
    let (s, created) = json(
        app.post_json(
            "/api/v1/schedules",
            &json!({"title": "Bản tin 1/3", "media": [sha], "targets": {"areas": [xa]}, "rule": {"kind": "cron", "cron": "30 6 1 3 *"},
                    "time_zone": "Asia/Ho_Chi_Minh"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let sid = created["schedule"]["id"].as_str().unwrap().to_string();
    // The schedule has existed since 2024 (only occurrences after a schedule's creation count).
    let since = chrono_tz::Asia::Ho_Chi_Minh
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .unwrap()
        .timestamp_millis();
    for q in [
        "UPDATE schedules SET created_at = $1 WHERE id = $2",
        "UPDATE schedule_enablement SET at = $1 WHERE schedule_id = $2",
    ] {
        sqlx::query(q)
            .bind(since)
            .bind(sid.clone())
            .execute(&app.state().store.pool)
            .await
            .unwrap();
    }
    let tz = chrono_tz::Asia::Ho_Chi_Minh;
    let t = tz
        .with_ymd_and_hms(2025, 3, 1, 6, 30, 0)
        .unwrap()
        .timestamp_millis();
    let t2 = tz
        .with_ymd_and_hms(2025, 4, 10, 9, 0, 0)
        .unwrap()
        .timestamp_millis();
    let late = tz
        .with_ymd_and_hms(2025, 6, 20, 7, 0, 0)
        .unwrap()
        .timestamp_millis();
    play(&app, &a1, &sid, "i1", t, "normal", "played", t + 1000, 60_000).await;
    play(
        &app,
        &a2,
        &sid,
        "i1",
        t,
        "normal",
        "interrupted",
        t + 2000,
        30_000,
    )
    .await;
    play(&app, &a1, "other", "i2", t2, "normal", "failed", t2, 0).await;
    play(
        &app,
        &a1,
        "",
        "cmd-1",
        t2,
        "emergency",
        "played",
        t2 + 5000,
        60_000,
    )
    .await;
    play(
        &app,
        &a2,
        "",
        "cmd-1",
        t2,
        "emergency",
        "played",
        t2 + 9000,
        60_000,
    )
    .await;
    play(&app, &a1, &sid, "i3", late, "normal", "played", late, 60_000).await; // after 14 June
    play(
        &app,
        &b1,
        "other",
        "i4",
        t2,
        "priority",
        "resumed",
        t2 + 500,
        120_000,
    )
    .await;

    let (from, to) = (
        tz.with_ymd_and_hms(2024, 12, 15, 0, 0, 0)
            .unwrap()
            .timestamp_millis(),
        tz.with_ymd_and_hms(2025, 6, 15, 0, 0, 0)
            .unwrap()
            .timestamp_millis(),
    );
    let want_a = expected(&app, &[&a1, &a2], from, to).await;
    let want_b = expected(&app, &[&b1], from, to).await;
    assert_eq!(want_a, (4, 350, 2), "the fixture itself");
    assert_eq!(want_b, (1, 200, 0));

    let c = client();
    let s = login(&app, &c, "admin", common::TOKEN).await;
    // CSV.
    let r = c
        .get(app.url("/console/reports.csv?preset=half&year=2025"))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let mut rd = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let mut rows: HashMap<String, Vec<String>> = HashMap::new();
    for rec in rd.records() {
        let rec = rec.unwrap();
        rows.insert(rec[0].to_string(), rec.iter().map(str::to_string).collect());
    }
    let check =
        |row: &Vec<String>, (items, min100, delivered): (i64, i64, i64), devices: i64, scheduled: i64| {
            assert_eq!(row[2], devices.to_string(), "{row:?}");
            assert_eq!(row[3], items.to_string(), "{row:?}");
            assert_eq!(
                (row[4].parse::<f64>().unwrap() * 100.0).round() as i64,
                min100,
                "{row:?}"
            );
            assert_eq!(row[5], scheduled.to_string(), "{row:?}");
            assert_eq!(row[6], delivered.to_string(), "{row:?}");
        };
    check(&rows[&xa], want_a, 2, 2);
    check(&rows[&xb], want_b, 1, 0);
    assert_eq!(rows[&xa][7], "1.0000", "delivery rate 2/2");
    assert_eq!(rows[&xa][9], "1", "one emergency");
    assert_eq!(rows[&xa][10], "5.0000", "first play 5 s after the command");
    // XLSX, read back.
    let r = c
        .get(app.url("/console/reports.xlsx?preset=half&year=2025"))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap().to_vec();
    use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
    let mut wb: Xlsx<_> = open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let range = wb.worksheet_range("Bao cao").unwrap();
    let num = |d: &Data| match d {
        Data::Float(f) => *f,
        Data::Int(i) => *i as f64,
        other => panic!("not a number: {other:?}"),
    };
    let mut found = 0;
    for row in range.rows() {
        let code = match &row[0] {
            Data::String(s) => s.clone(),
            _ => continue,
        };
        let want = if code == xa {
            (want_a, 2.0, 2.0)
        } else if code == xb {
            (want_b, 1.0, 0.0)
        } else {
            continue;
        };
        found += 1;
        assert_eq!(num(&row[2]), want.1);
        assert_eq!(num(&row[3]), want.0.0 as f64);
        assert_eq!((num(&row[4]) * 100.0).round() as i64, want.0.1);
        assert_eq!(num(&row[5]), want.2);
        assert_eq!(num(&row[6]), want.0.2 as f64);
    }
    assert_eq!(found, 2);
    // The page shows the same figures, in Vietnamese formats, with charts.
    let html = c
        .get(app.url("/console/reports?preset=half&year=2025"))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .replace("&#x2f;", "/"); // minijinja escapes `/` in text
    assert!(
        html.contains("15/12/2024") && html.contains("14/06/2025"),
        "period label"
    );
    assert!(html.contains("<svg class=\"bars\""));
    assert!(
        html.contains(&format!("data-area=\"{xa}\"")) && html.contains("3,5"),
        "3.5 minutes written 3,5"
    );
    let _ = Utc::now();
}
