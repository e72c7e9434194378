//! Pinned figures (issue 10, step D2): the report, its exports and the dashboard's recent plays
//! on a fixed fixture, computed by hand (see the comments) and pinned before the report moved into
//! layers, so the move is proven not to change a number.

use crate::common;
use crate::console_support;
use crate::dispatch_support;

use chrono::TimeZone;
use common::{json, spawn_app};
use console_support::*;
use dispatch_support::{device, uid};
use serde_json::json;

/// Unix ms of a wall-clock time in Hồ Chí Minh City.
fn hcm(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    chrono_tz::Asia::Ho_Chi_Minh
        .with_ymd_and_hms(y, mo, d, h, mi, s)
        .unwrap()
        .timestamp_millis()
}

/// One proof of play written straight into the table, received at `received`.
struct Play {
    device: String,
    schedule: String,
    item: String,
    occ: i64,
    sha: String,
    prio: String,
    outcome: String,
    started: Option<i64>,
    ended: Option<i64>,
    reason: Option<&'static str>,
}

async fn insert_play(app: &common::TestApp, p: &Play, received: i64) {
    sqlx::query(
        "INSERT INTO plays (event_id, device_id, item_id, schedule_id, occurrence_at, sha256, priority, started_at, ended_at, outcome, reason, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(p.device.clone())
    .bind(p.item.clone())
    .bind(p.schedule.clone())
    .bind(p.occ)
    .bind(p.sha.clone())
    .bind(p.prio.clone())
    .bind(p.started)
    .bind(p.ended)
    .bind(p.outcome.clone())
    .bind(p.reason.map(str::to_string))
    .bind(received)
    .execute(&app.state().store.pool)
    .await
    .unwrap();
}

async fn sql(app: &common::TestApp, q: &str, binds: &[&str], ints: &[i64]) {
    let mut query = sqlx::query(sqlx::AssertSqlSafe(q.to_string()));
    for b in binds {
        query = query.bind(b.to_string());
    }
    for i in ints {
        query = query.bind(*i);
    }
    query.execute(&app.state().store.pool).await.unwrap();
}

/// The fixture's names, to turn random codes back into readable placeholders.
struct Names(Vec<(String, &'static str)>);

impl Names {
    fn apply(&self, s: &str) -> String {
        let mut s = s.to_string();
        for (real, name) in &self.0 {
            s = s.replace(real.as_str(), name);
        }
        s
    }
}

/// Province P › communes XA (with village VA), XB (level `phường`), XC (no devices).
/// Loudspeakers a1 (XA), a2 (VA), b1 (XB), p0 (P: above every commune, in no row); board bd (XB).
async fn pinned_fixture(app: &common::TestApp) -> Names {
    let (p, xa, va, xb, xc) = (
        uid("pin-p"),
        uid("pin-xa"),
        uid("pin-xa-va"),
        uid("pin-xb"),
        uid("pin-xc"),
    );
    for (code, name, parent, level) in [
        (&p, "Tỉnh Ghim", None, "province"),
        (&xa, "Xã A <b>&\"'", Some(&p), "commune"),
        (&va, "Thôn A1", Some(&xa), "village"),
        (&xb, "Phường B", Some(&p), "phường"),
        (&xc, "Xã C", Some(&p), "xã"),
    ] {
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
    let (a1, a2, b1, p0, bd) = (
        uid("pin-a1"),
        uid("pin-a2"),
        uid("pin-b1"),
        uid("pin-p0"),
        uid("pin-bd"),
    );
    device(app, &a1, &xa, "device-password-1", None).await;
    device(app, &a2, &va, "device-password-2", None).await;
    device(app, &b1, &xb, "device-password-3", None).await;
    device(app, &p0, &p, "device-password-4", None).await;
    let (s, b) = json(
        app.post_json(
            "/api/v1/devices",
            &json!({"id": bd, "kind": "board", "area": xb, "password": "device-password-5"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    // Registered: a1 before the period, a2 on 1 March, b1 now (after the period: no availability),
    // p0 and bd long ago.
    for (id, at) in [
        (&a1, hcm(2024, 12, 1, 0, 0, 0)),
        (&a2, hcm(2025, 3, 1, 0, 0, 0)),
        (&p0, hcm(2024, 1, 1, 0, 0, 0)),
        (&bd, hcm(2024, 1, 1, 0, 0, 0)),
    ] {
        sql(
            app,
            "UPDATE devices SET created_at = $2 WHERE id = $1",
            &[id],
            &[at],
        )
        .await;
    }
    // Online now: a1 and b1.
    for (id, online) in [(&a1, 1), (&a2, 0), (&b1, 1), (&p0, 1), (&bd, 1)] {
        sql(app, "DELETE FROM device_status WHERE device_id = $1", &[id], &[]).await;
        sql(
            app,
            "INSERT INTO device_status (device_id, online, session) VALUES ($1, $2, 1)",
            &[id],
            &[online],
        )
        .await;
    }
    // Status history: a1 online all January and from 1 March on (still online); a2 all April;
    // p0 always (in no row).
    for (id, session, from, to) in [
        (&a1, 1, hcm(2025, 1, 1, 0, 0, 0), Some(hcm(2025, 2, 1, 0, 0, 0))),
        (&a1, 2, hcm(2025, 3, 1, 0, 0, 0), None),
        (&a2, 1, hcm(2025, 4, 1, 0, 0, 0), Some(hcm(2025, 5, 1, 0, 0, 0))),
        (&p0, 1, hcm(2024, 1, 1, 0, 0, 0), None),
    ] {
        match to {
            Some(to) => {
                sql(
                    app,
                    "INSERT INTO device_status_history (device_id, session, online_from, online_to, ended_by) VALUES ($1, $2, $3, $4, 'offline')",
                    &[id],
                    &[session, from, to],
                )
                .await
            }
            None => {
                sql(
                    app,
                    "INSERT INTO device_status_history (device_id, session, online_from) VALUES ($1, $2, $3)",
                    &[id],
                    &[session, from],
                )
                .await
            }
        }
    }
    let sha = dispatch_support::media(app, "approved", 60_000).await;
    let schedule = |title: &str, targets: serde_json::Value, cron: &str, valid_from: Option<&str>| {
        json!({"title": title, "media": [sha], "targets": targets, "rule": {"kind": "cron", "cron": cron},
               "time_zone": "Asia/Ho_Chi_Minh", "valid_from": valid_from})
    };
    let mut ids = Vec::new();
    for body in [
        // S1: 1 March 06:30, the XA subtree: once for a1 and a2.
        schedule("S1", json!({"areas": [xa]}), "30 6 1 3 *", None),
        // S2: Mondays 07:00 from 1 May (UTC): 5, 12, 19, 26 May, 2 and 9 June, for b1 only
        // (bd is a board, p0 is in no row).
        schedule(
            "S2",
            json!({"devices": [b1, p0, bd]}),
            "0 7 * * 1",
            Some("2025-05-01T00:00:00Z"),
        ),
        // S3: daily over the whole province, disabled below: counts nothing.
        schedule("S3", json!({"areas": [p]}), "0 8 * * *", None),
        // S4: 15 June 09:00, just after the period: nothing.
        schedule("S4", json!({"areas": [xa]}), "0 9 15 6 *", None),
    ] {
        let (s, created) = json(app.post_json("/api/v1/schedules", &body).await).await;
        assert_eq!(s, 201, "{created}");
        ids.push(created["schedule"]["id"].as_str().unwrap().to_string());
    }
    // All four exist since 1 January 2024 (only occurrences after a schedule's creation count);
    // S3 has been disabled since then.
    for id in &ids {
        for q in [
            "UPDATE schedules SET created_at = $2 WHERE id = $1",
            "UPDATE schedule_enablement SET at = $2 WHERE schedule_id = $1",
        ] {
            sql(app, q, &[id], &[hcm(2024, 1, 1, 0, 0, 0)]).await;
        }
    }
    sql(
        app,
        "UPDATE schedules SET enabled = 0 WHERE id = $1",
        &[&ids[2]],
        &[],
    )
    .await;
    sql(
        app,
        "UPDATE schedule_enablement SET enabled = 0 WHERE schedule_id = $1",
        &[&ids[2]],
        &[],
    )
    .await;
    let (s1, s2) = (ids[0].as_str(), ids[1].as_str());
    let other = "cd".repeat(32);
    let t = hcm(2025, 3, 1, 6, 30, 0);
    let t2 = hcm(2025, 4, 10, 9, 0, 0);
    let t3 = hcm(2025, 4, 20, 10, 0, 0);
    let may5 = hcm(2025, 5, 5, 7, 0, 0);
    let may12 = hcm(2025, 5, 12, 7, 0, 0);
    let s = |ms: i64| Some(ms);
    let play = |device: &str,
                schedule: &str,
                item: &str,
                occ,
                prio: &str,
                outcome: &str,
                started: Option<i64>,
                len: i64| Play {
        device: device.to_string(),
        schedule: schedule.to_string(),
        item: item.to_string(),
        occ,
        sha: if schedule == s1 {
            sha.clone()
        } else {
            other.clone()
        },
        prio: prio.to_string(),
        outcome: outcome.to_string(),
        started,
        ended: started.map(|s| s + len),
        reason: None,
    };
    let plays = [
        // XA: S1 on a1, played twice (one delivery, two items), on a2 interrupted after 30 s,
        // and a missed and a failed report of the same occurrence (nothing).
        play(&a1, s1, "i1", t, "normal", "played", s(t + 1000), 60_000),
        play(&a1, s1, "i1", t, "normal", "played", s(t + 1000), 60_000),
        play(&a2, s1, "i1", t, "normal", "interrupted", s(t + 2000), 30_000),
        Play {
            reason: Some("offline"),
            ..play(&a2, s1, "i1", t, "normal", "missed", None, 0)
        },
        Play {
            reason: Some("decode error"),
            ..play(&a1, s1, "i1", t, "normal", "failed", None, 0)
        },
        // XA: a schedule that no longer exists, resumed for 2 minutes (an item, not delivered).
        play(&a1, "gone", "i9", t2, "priority", "resumed", s(t2 + 500), 120_000),
        // XA: a play whose end is before its start (an item, no minutes).
        play(&a2, "gone", "i8", t2, "normal", "played", s(t2 + 10_000), -5000),
        // Emergency cmd-1 on a1 (5 s, and again at 7 s) and a2 (9 s): one emergency, 5 s.
        play(&a1, "", "cmd-1", t3, "emergency", "played", s(t3 + 5000), 60_000),
        play(&a1, "", "cmd-1", t3, "emergency", "played", s(t3 + 7000), 60_000),
        play(&a2, "", "cmd-1", t3, "emergency", "played", s(t3 + 9000), 60_000),
        // XB: cmd-1 on b1 after 3 s, cmd-2 started before its occurrence (0 s), cmd-3 failed:
        // two emergencies, 1.5 s.
        play(&b1, "", "cmd-1", t3, "emergency", "played", s(t3 + 3000), 60_000),
        play(&b1, "", "cmd-2", t3, "emergency", "played", s(t3 - 1000), 60_000),
        Play {
            reason: Some("no media"),
            ..play(&b1, "", "cmd-3", t3, "emergency", "failed", None, 0)
        },
        // XB: S2 on 5 May on b1 (45 s) and on the board bd (10 s): two deliveries; 12 May missed.
        play(&b1, s2, "s2-1", may5, "normal", "played", s(may5), 45_000),
        play(&bd, s2, "s2-1", may5, "normal", "played", s(may5 + 100), 10_000),
        play(&b1, s2, "s2-2", may12, "normal", "missed", None, 0),
        // Nowhere: p0 is above every commune; plays outside the period.
        play(&p0, s1, "i1", t, "normal", "played", s(t), 60_000),
        play(
            &a1,
            s1,
            "i1",
            hcm(2025, 6, 20, 7, 0, 0),
            "normal",
            "played",
            s(hcm(2025, 6, 20, 7, 0, 0)),
            60_000,
        ),
        play(
            &a1,
            s1,
            "i0",
            hcm(2024, 12, 14, 23, 59, 0),
            "normal",
            "played",
            s(hcm(2024, 12, 14, 23, 59, 0)),
            60_000,
        ),
    ];
    for (i, p) in plays.iter().enumerate() {
        // Received one minute apart in this order (the dashboard lists the newest first).
        insert_play(app, p, hcm(2025, 7, 1, 8, 0, 0) + i as i64 * 60_000).await;
    }
    Names(vec![
        (xa, "XA"),
        (va, "VA"),
        (xb, "XB"),
        (xc, "XC"),
        (p, "P"),
        (a1, "a1"),
        (a2, "a2"),
        (b1, "b1"),
        (p0, "p0"),
        (bd, "bd"),
    ])
}

/// A CSV export, checked to start with the byte-order mark Excel needs, without it.
async fn get_csv(app: &common::TestApp, c: &reqwest::Client, cookie: &str, path: &str) -> String {
    let text = get_text(app, c, cookie, path).await;
    assert!(text.starts_with('\u{feff}'), "{path}: BOM");
    text.trim_start_matches('\u{feff}').to_string()
}

async fn get_text(app: &common::TestApp, c: &reqwest::Client, cookie: &str, path: &str) -> String {
    let r = c
        .get(app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.unwrap()
}

/// The form's date line for today in Vietnam (`ngày 3 tháng 12 năm 2026`), replaced before pinning.
fn dated_today() -> String {
    use chrono::Datelike;
    let d = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .date_naive();
    format!("ngày {} tháng {} năm {}", d.day(), d.month(), d.year())
}

/// `actual` must equal the pinned `expected` text. With `NGUON_PIN_DUMP=<dir>` the actual text is
/// also written to `<dir>/<what>.txt`, to review a deliberate change of the pins.
fn pinned(what: &str, actual: &str, expected: &str) {
    if let Ok(dir) = std::env::var("NGUON_PIN_DUMP") {
        std::fs::write(format!("{dir}/{what}.txt"), actual).unwrap();
    }
    assert_eq!(actual, expected, "{what}");
}

/// The rows of HTML tables as text: one line per `<tr>`, cells separated by `|`, tags dropped.
fn rows_text(html: &str) -> String {
    let mut out = String::new();
    for tr in html.split("<tr").skip(1) {
        let tr = &tr[..tr.find("</tr>").unwrap_or(tr.len())];
        let attrs = &tr[..tr.find('>').unwrap_or(0)];
        let mut cells = Vec::new();
        for td in tr.split("<t").skip(1) {
            let mut text = String::new();
            let mut in_tag = true; // the cell's own opening tag
            for ch in td.chars() {
                match ch {
                    '<' => in_tag = true,
                    '>' if in_tag => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            cells.push(text.trim().to_string());
        }
        out.push_str(attrs.trim());
        out.push_str(" => ");
        out.push_str(&cells.join(" | "));
        out.push('\n');
    }
    out.replace("&#x2f;", "/")
}

/// Every cell of the XLSX sheet `Bao cao`, one `row,col: value` line each.
fn xlsx_cells(bytes: Vec<u8>) -> String {
    use calamine::{Reader, Xlsx, open_workbook_from_rs};
    let mut wb: Xlsx<_> = open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let range = wb.worksheet_range("Bao cao").unwrap();
    let mut out = String::new();
    for (r, row) in range.rows().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            if !matches!(cell, calamine::Data::Empty) {
                out.push_str(&format!("{r},{c}: {cell:?}\n"));
            }
        }
    }
    out
}

/// The `<table …>…</table>` elements of a page whose opening tag starts with `open`.
fn tables(html: &str, open: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(open) {
        let end = rest[i..].find("</table>").unwrap() + i + "</table>".len();
        out.push(rest[i..end].to_string());
        rest = &rest[end..];
    }
    out
}

/// The charts of the report page.
fn charts(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<svg class=\"bars\"") {
        let end = rest[i..].find("</svg>").unwrap() + i + "</svg>".len();
        out.push(rest[i..end].to_string());
        rest = &rest[end..];
    }
    out
}

#[tokio::test]
async fn the_report_figures_on_a_fixed_fixture_are_pinned() {
    let app = spawn_app().await;
    let names = pinned_fixture(&app).await;
    let c = client();
    let admin = login(&app, &c, "admin", common::TOKEN).await;

    // Hand-computed, period 15 Dec 2024 – 14 Jun 2025 (Decree 09/2019/NĐ-CP, 182 days; the play
    // of 14 Dec 23:59 is just outside):
    // XA: loudspeakers a1, a2; items 8 (2 + 1 + 1 + 1 + 3 emergency plays) of 2 programmes (S1's
    //     media and the other), minutes (60 + 60 + 30 + 120 + 0 + 60 + 60 + 60) s = 7.5;
    //     scheduled 2 (S1 × a1, a2), delivered 2; availability mean(a1 137/182, a2 30/106) =
    //     0.5179; one emergency, 5 s.
    // XB: loudspeaker b1 (bd is a board); items 4 (cmd-1, cmd-2, S2 on b1 and on bd), minutes
    //     (60 + 60 + 45 + 10) s = 2.9167; scheduled 6, delivered 1 (b1 on 5 May: the board's play
    //     is no scheduled pair); availability none (b1 registered after the period); two
    //     emergencies, 1.5 s.
    // XC: nothing. Total: 3 loudspeakers, 12 items, 2 programmes, 10.4167 min, 8 scheduled,
    //     3 delivered, three emergencies, (5 + 3 + 0) / 3 s.
    let csv = get_csv(
        &app,
        &c,
        &admin.cookie,
        "/console/reports.csv?preset=half&year=2025",
    )
    .await;
    pinned(
        "admin CSV",
        &names.apply(&csv),
        r##"Mã,Tên,Số cụm loa,Lượt phát,Số phút phát,Lượt theo lịch,Lượt theo lịch đã phát,Tỷ lệ phát thành công,Tỷ lệ thiết bị trực tuyến,Bản tin khẩn cấp,Thời gian đến lần phát đầu (giây),Số chương trình,Huyện
XA,"Xã A <b>&""'",2,8,7.50,2,2,1.0000,0.5179,1,5.0000,2,
XB,Phường B,1,4,2.92,6,1,0.1667,,2,1.5000,1,
XC,Xã C,0,0,0.00,0,0,,,0,,0,
,Tổng cộng,3,12,10.42,8,3,0.3750,0.5179,3,2.6667,2,
"##,
    );
    let r = c
        .get(app.url("/console/reports.xlsx?preset=half&year=2025"))
        .header("cookie", &admin.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"bao-cao-20241215-20250614.xlsx\""
    );
    let cells = xlsx_cells(r.bytes().await.unwrap().to_vec()).replace(&dated_today(), "ngày D tháng M năm Y");
    pinned(
        "admin XLSX",
        &names.apply(&cells),
        r##"0,0: String("UBND tỉnh Ghim")
0,6: String("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM")
1,6: String("Độc lập - Tự do - Hạnh phúc")
3,0: String("BÁO CÁO KẾT QUẢ HOẠT ĐỘNG THÔNG TIN CƠ SỞ")
4,0: String("Kỳ báo cáo: từ ngày 15/12/2024 đến ngày 14/06/2025")
5,0: String("Theo Nghị định số 09/2019/NĐ-CP quy định về chế độ báo cáo của cơ quan hành chính nhà nước")
7,0: String("Mã")
7,1: String("Tên")
7,2: String("Số cụm loa")
7,3: String("Lượt phát")
7,4: String("Số phút phát")
7,5: String("Lượt theo lịch")
7,6: String("Lượt theo lịch đã phát")
7,7: String("Tỷ lệ phát thành công")
7,8: String("Tỷ lệ thiết bị trực tuyến")
7,9: String("Bản tin khẩn cấp")
7,10: String("Thời gian đến lần phát đầu (giây)")
7,11: String("Số chương trình")
7,12: String("Huyện")
8,0: String("XA")
8,1: String("Xã A <b>&\"'")
8,2: Float(2.0)
8,3: Float(8.0)
8,4: Float(7.5)
8,5: Float(2.0)
8,6: Float(2.0)
8,7: Float(1.0)
8,8: Float(0.5178830603358905)
8,9: Float(1.0)
8,10: Float(5.0)
8,11: Float(2.0)
9,0: String("XB")
9,1: String("Phường B")
9,2: Float(1.0)
9,3: Float(4.0)
9,4: Float(2.92)
9,5: Float(6.0)
9,6: Float(1.0)
9,7: Float(0.16666666666666666)
9,9: Float(2.0)
9,10: Float(1.5)
9,11: Float(1.0)
10,0: String("XC")
10,1: String("Xã C")
10,2: Float(0.0)
10,3: Float(0.0)
10,4: Float(0.0)
10,5: Float(0.0)
10,6: Float(0.0)
10,9: Float(0.0)
10,11: Float(0.0)
11,1: String("Tổng cộng")
11,2: Float(3.0)
11,3: Float(12.0)
11,4: Float(10.42)
11,5: Float(8.0)
11,6: Float(3.0)
11,7: Float(0.375)
11,8: Float(0.5178830603358905)
11,9: Float(3.0)
11,10: Float(2.6666666666666665)
11,11: Float(2.0)
13,6: String("…………, ngày D tháng M năm Y")
14,0: String("NGƯỜI LẬP BIỂU")
14,6: String("THỦ TRƯỞNG ĐƠN VỊ")
15,0: String("(Ký, ghi rõ họ tên)")
15,6: String("(Ký, ghi rõ họ tên, đóng dấu)")
"##,
    );
    let html = get_text(&app, &c, &admin.cookie, "/console/reports?preset=half&year=2025").await;
    let table = tables(&html, "<table id=\"report\"");
    assert_eq!(table.len(), 1);
    pinned(
        "admin page table",
        &rows_text(&names.apply(&table[0])),
        r##" => Địa bàn | Số cụm loa | Lượt phát | Số chương trình | Số phút phát | Lượt theo lịch | Lượt theo lịch đã phát | Tỷ lệ phát thành công | Tỷ lệ thiết bị trực tuyến | Bản tin khẩn cấp | Thời gian đến lần phát đầu (giây)
data-area="XA" => Xã A &lt;b&gt;&amp;&quot;&#x27; XA | 2 | 8 | 2 | 7,5 | 2 | 2 | 100,0 % | 51,8 % | 1 | 5,0
data-area="XB" => Phường B XB | 1 | 4 | 1 | 2,9 | 6 | 1 | 16,7 % | — | 2 | 1,5
data-area="XC" => Xã C XC | 0 | 0 | 0 | 0,0 | 0 | 0 | — | — | 0 | —
 => Tổng cộng | 3 | 12 | 2 | 10,4 | 8 | 3 | 37,5 % | 51,8 % | 3 | 2,7
"##,
    );
    pinned(
        "admin page charts",
        &names.apply(&charts(&html).join("\n")),
        r##"<svg class="bars" role="img" viewBox="0 0 640 70" width="100%" height="70" xmlns="http://www.w3.org/2000/svg"><line class="axis" x1="560" y1="0" x2="560" y2="70"></line><text x="0" y="16">Xã A &lt;b&gt;&amp;&quot;&#39;</text><rect x="180" y="4" width="380.0" height="16"></rect><text x="565.0" y="16">100,0 %</text><text x="0" y="38">Phường B</text><rect x="180" y="26" width="63.3" height="16"></rect><text x="248.3" y="38">16,7 %</text><text x="0" y="60">Xã C</text><rect x="180" y="48" width="0.0" height="16"></rect><text x="185.0" y="60">—</text></svg>
<svg class="bars" role="img" viewBox="0 0 640 70" width="100%" height="70" xmlns="http://www.w3.org/2000/svg"><line class="axis" x1="560" y1="0" x2="560" y2="70"></line><text x="0" y="16">Xã A &lt;b&gt;&amp;&quot;&#39;</text><rect x="180" y="4" width="196.8" height="16"></rect><text x="381.8" y="16">51,8 %</text><text x="0" y="38">Phường B</text><rect x="180" y="26" width="0.0" height="16"></rect><text x="185.0" y="38">—</text><text x="0" y="60">Xã C</text><rect x="180" y="48" width="0.0" height="16"></rect><text x="185.0" y="60">—</text></svg>
<svg class="bars" role="img" viewBox="0 0 640 70" width="100%" height="70" xmlns="http://www.w3.org/2000/svg"><text x="0" y="16">Xã A &lt;b&gt;&amp;&quot;&#39;</text><rect x="180" y="4" width="380.0" height="16"></rect><text x="565.0" y="16">7,5</text><text x="0" y="38">Phường B</text><rect x="180" y="26" width="147.8" height="16"></rect><text x="332.8" y="38">2,9</text><text x="0" y="60">Xã C</text><rect x="180" y="48" width="0.0" height="16"></rect><text x="185.0" y="60">0,0</text></svg>"##,
    );
    // A date range instead of a preset: April only.
    let csv = get_csv(
        &app,
        &c,
        &admin.cookie,
        "/console/reports.csv?from=2025-04-01&to=2025-04-30",
    )
    .await;
    pinned(
        "April CSV",
        &names.apply(&csv),
        r##"Mã,Tên,Số cụm loa,Lượt phát,Số phút phát,Lượt theo lịch,Lượt theo lịch đã phát,Tỷ lệ phát thành công,Tỷ lệ thiết bị trực tuyến,Bản tin khẩn cấp,Thời gian đến lần phát đầu (giây),Số chương trình,Huyện
XA,"Xã A <b>&""'",2,5,5.00,0,0,,1.0000,1,5.0000,1,
XB,Phường B,1,2,2.00,0,0,,,2,1.5000,1,
XC,Xã C,0,0,0.00,0,0,,,0,,0,
,Tổng cộng,3,7,7.00,0,0,,1.0000,3,2.6667,1,
"##,
    );

    // An operator of XB sees one row; a viewer of the village VA (no commune in scope) gets VA.
    let xb = names.0.iter().find(|(_, n)| *n == "XB").unwrap().0.clone();
    let va = names.0.iter().find(|(_, n)| *n == "VA").unwrap().0.clone();
    user(&app, "pin-op", "operator", &[xb.as_str()], "pin-op-password").await;
    user(
        &app,
        "pin-viewer",
        "viewer",
        &[va.as_str()],
        "pin-viewer-password",
    )
    .await;
    let op = login(&app, &c, "pin-op", "pin-op-password").await;
    let csv = get_csv(&app, &c, &op.cookie, "/console/reports.csv?preset=half&year=2025").await;
    pinned(
        "operator CSV",
        &names.apply(&csv),
        r##"Mã,Tên,Số cụm loa,Lượt phát,Số phút phát,Lượt theo lịch,Lượt theo lịch đã phát,Tỷ lệ phát thành công,Tỷ lệ thiết bị trực tuyến,Bản tin khẩn cấp,Thời gian đến lần phát đầu (giây),Số chương trình,Huyện
XB,Phường B,1,4,2.92,6,1,0.1667,,2,1.5000,1,
,Tổng cộng,1,4,2.92,6,1,0.1667,,2,1.5000,1,
"##,
    );
    let viewer = login(&app, &c, "pin-viewer", "pin-viewer-password").await;
    let csv = get_csv(
        &app,
        &c,
        &viewer.cookie,
        "/console/reports.csv?preset=half&year=2025",
    )
    .await;
    pinned(
        "viewer CSV",
        &names.apply(&csv),
        r##"Mã,Tên,Số cụm loa,Lượt phát,Số phút phát,Lượt theo lịch,Lượt theo lịch đã phát,Tỷ lệ phát thành công,Tỷ lệ thiết bị trực tuyến,Bản tin khẩn cấp,Thời gian đến lần phát đầu (giây),Số chương trình,Huyện
VA,Thôn A1,1,3,1.50,1,1,1.0000,0.2830,1,9.0000,2,
,Tổng cộng,1,3,1.50,1,1,1.0000,0.2830,1,9.0000,2,
"##,
    );
}

#[tokio::test]
async fn the_dashboard_recent_plays_on_a_fixed_fixture_are_pinned() {
    let app = spawn_app().await;
    let names = pinned_fixture(&app).await;
    let c = client();
    let admin = login(&app, &c, "admin", common::TOKEN).await;
    let html = get_text(&app, &c, &admin.cookie, "/console").await;
    let plays = tables(&html, "<table class=\"plays\"");
    assert_eq!(plays.len(), 3, "recent, emergencies, failures");
    pinned(
        "admin dashboard",
        &rows_text(&names.apply(&plays.join("\n"))),
        r##" => Bắt đầu | Thiết bị | Tiêu đề | Mức ưu tiên | Kết quả
class="play played" data-device="a1" => 14/12/2024 23:59 | a1 | clip | Thông thường | Đã phát
class="play played" data-device="a1" => 20/06/2025 07:00 | a1 | clip | Thông thường | Đã phát
class="play played" data-device="p0" => 01/03/2025 06:30 | p0 | clip | Thông thường | Đã phát
class="play missed" data-device="b1" => 12/05/2025 07:00 | b1 |  | Thông thường | Bỏ lỡ
class="play played" data-device="bd" => 05/05/2025 07:00 | bd |  | Thông thường | Đã phát
class="play played" data-device="b1" => 05/05/2025 07:00 | b1 |  | Thông thường | Đã phát
class="play failed" data-device="b1" => 20/04/2025 10:00 | b1 |  | Khẩn cấp | Lỗi (no media)
class="play played" data-device="b1" => 20/04/2025 09:59 | b1 |  | Khẩn cấp | Đã phát
class="play played" data-device="b1" => 20/04/2025 10:00 | b1 |  | Khẩn cấp | Đã phát
class="play played" data-device="a2" => 20/04/2025 10:00 | a2 |  | Khẩn cấp | Đã phát
class="play played" data-device="a1" => 20/04/2025 10:00 | a1 |  | Khẩn cấp | Đã phát
class="play played" data-device="a1" => 20/04/2025 10:00 | a1 |  | Khẩn cấp | Đã phát
class="play played" data-device="a2" => 10/04/2025 09:00 | a2 |  | Thông thường | Đã phát
class="play resumed" data-device="a1" => 10/04/2025 09:00 | a1 |  | Ưu tiên | Phát tiếp
class="play failed" data-device="a1" => 01/03/2025 06:30 | a1 | clip | Thông thường | Lỗi (decode error)
class="play missed" data-device="a2" => 01/03/2025 06:30 | a2 | clip | Thông thường | Bỏ lỡ (offline)
class="play interrupted" data-device="a2" => 01/03/2025 06:30 | a2 | clip | Thông thường | Bị ngắt
class="play played" data-device="a1" => 01/03/2025 06:30 | a1 | clip | Thông thường | Đã phát
class="play played" data-device="a1" => 01/03/2025 06:30 | a1 | clip | Thông thường | Đã phát
 => Bắt đầu | Thiết bị | Tiêu đề | Mức ưu tiên | Kết quả
class="play failed" data-device="b1" => 20/04/2025 10:00 | b1 |  | Khẩn cấp | Lỗi (no media)
class="play played" data-device="b1" => 20/04/2025 09:59 | b1 |  | Khẩn cấp | Đã phát
class="play played" data-device="b1" => 20/04/2025 10:00 | b1 |  | Khẩn cấp | Đã phát
class="play played" data-device="a2" => 20/04/2025 10:00 | a2 |  | Khẩn cấp | Đã phát
class="play played" data-device="a1" => 20/04/2025 10:00 | a1 |  | Khẩn cấp | Đã phát
class="play played" data-device="a1" => 20/04/2025 10:00 | a1 |  | Khẩn cấp | Đã phát
 => Bắt đầu | Thiết bị | Tiêu đề | Mức ưu tiên | Kết quả
class="play missed" data-device="b1" => 12/05/2025 07:00 | b1 |  | Thông thường | Bỏ lỡ
class="play failed" data-device="b1" => 20/04/2025 10:00 | b1 |  | Khẩn cấp | Lỗi (no media)
class="play failed" data-device="a1" => 01/03/2025 06:30 | a1 | clip | Thông thường | Lỗi (decode error)
class="play missed" data-device="a2" => 01/03/2025 06:30 | a2 | clip | Thông thường | Bỏ lỡ (offline)
"##,
    );
    let xb = names.0.iter().find(|(_, n)| *n == "XB").unwrap().0.clone();
    user(&app, "pin-op", "operator", &[xb.as_str()], "pin-op-password").await;
    let op = login(&app, &c, "pin-op", "pin-op-password").await;
    let html = get_text(&app, &c, &op.cookie, "/console").await;
    let plays = tables(&html, "<table class=\"plays\"");
    pinned(
        "operator dashboard",
        &rows_text(&names.apply(&plays.join("\n"))),
        r##" => Bắt đầu | Thiết bị | Tiêu đề | Mức ưu tiên | Kết quả
class="play missed" data-device="b1" => 12/05/2025 07:00 | b1 |  | Thông thường | Bỏ lỡ
class="play played" data-device="bd" => 05/05/2025 07:00 | bd |  | Thông thường | Đã phát
class="play played" data-device="b1" => 05/05/2025 07:00 | b1 |  | Thông thường | Đã phát
class="play failed" data-device="b1" => 20/04/2025 10:00 | b1 |  | Khẩn cấp | Lỗi (no media)
class="play played" data-device="b1" => 20/04/2025 09:59 | b1 |  | Khẩn cấp | Đã phát
class="play played" data-device="b1" => 20/04/2025 10:00 | b1 |  | Khẩn cấp | Đã phát
 => Bắt đầu | Thiết bị | Tiêu đề | Mức ưu tiên | Kết quả
class="play failed" data-device="b1" => 20/04/2025 10:00 | b1 |  | Khẩn cấp | Lỗi (no media)
class="play played" data-device="b1" => 20/04/2025 09:59 | b1 |  | Khẩn cấp | Đã phát
class="play played" data-device="b1" => 20/04/2025 10:00 | b1 |  | Khẩn cấp | Đã phát
 => Bắt đầu | Thiết bị | Tiêu đề | Mức ưu tiên | Kết quả
class="play missed" data-device="b1" => 12/05/2025 07:00 | b1 |  | Thông thường | Bỏ lỡ
class="play failed" data-device="b1" => 20/04/2025 10:00 | b1 |  | Khẩn cấp | Lỗi (no media)
"##,
    );
}
