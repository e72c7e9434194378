//! Issue 15, the half-year report's engagement section: submissions per organisation and
//! citizens' feedback (received, answered, overdue, median response time) over a seeded
//! half-year, the same in the JSON, the CSV (`section=engagement`), the XLSX sheet `Tuong tac`
//! (read back with calamine) and the console's report page.

use crate::common;
use crate::console_support;
use crate::dispatch_support;

use chrono::TimeZone;
use common::{json, spawn_app};
use console_support::{client, login, page, user};
use dispatch_support::{area, uid};

const H: i64 = 3_600_000;

#[tokio::test]
async fn the_half_year_report_counts_the_seeded_submissions_and_feedback() {
    let app = spawn_app().await;
    let pool = &app.state().store.pool;
    let (p, other) = (uid("tinh"), uid("tinh"));
    area(&app, &p, None).await;
    area(&app, &other, None).await;
    let xa = uid("xa");
    area(&app, &xa, Some(&p)).await;
    let tz = chrono_tz::Asia::Ho_Chi_Minh;
    let at = |y, m, d| tz.with_ymd_and_hms(y, m, d, 7, 0, 0).unwrap().timestamp_millis();

    // Feedback: (area, received, answered after hours, status).
    let seed: [(&str, i64, Option<i64>, &str); 6] = [
        (&xa, at(2025, 2, 1), Some(10), "answered"),   // 10 h, on time
        (&xa, at(2025, 3, 1), Some(100), "closed"),    // 100 h: late (deadline 72 h)
        (&xa, at(2025, 6, 20), None, "received"),      // waiting past its deadline
        (&xa, at(2024, 12, 30), Some(50), "answered"), // received before, answered in: 50 h
        (&xa, at(2025, 7, 5), None, "received"),       // after the period
        (&other, at(2025, 2, 2), Some(1), "answered"), // another province: not in scope
    ];
    for (i, (a, received, answered, status)) in seed.iter().enumerate() {
        sqlx::query(
            "INSERT INTO feedback (id, code, area, body, status, challenge, received_at, due_at, answered_at) \
             VALUES ($1, $2, $3, 'nội dung', $4, $5, $6, $7, $8)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(format!("PA-TEST-{i:04}"))
        .bind(a.to_string())
        .bind(status.to_string())
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(*received)
        .bind(received + 72 * H)
        .bind(answered.map(|h| received + h * H))
        .execute(pool)
        .await
        .unwrap();
    }
    // Organisations and their submissions: (organisation, made, status).
    let (so, ubnd) = (uid("Sở Y tế"), uid("UBND huyện"));
    for name in [&so, &ubnd] {
        let (s, b) = json(
            app.post_json(
                "/api/v1/organisations",
                &serde_json::json!({"name": name, "kind": "department"}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 201, "{b}");
    }
    let (_, orgs) = json(app.get("/api/v1/organisations").await).await;
    let org_id = |name: &str| {
        orgs.as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for (made, status) in [
        (at(2025, 1, 15), "approved"),
        (at(2025, 3, 15), "rejected"),
        (at(2025, 5, 15), "submitted"),
        (at(2025, 8, 15), "approved"), // after the period
    ] {
        sqlx::query(
            "INSERT INTO submissions (id, organisation_id, author, title, body, areas, status, created_at, updated_at) \
             VALUES ($1, $2, 'ctv', 'bài', 'nội dung', $3, $4, $5, $5)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(org_id(&so))
        .bind(serde_json::json!([xa]).to_string())
        .bind(status)
        .bind(made)
        .execute(pool)
        .await
        .unwrap();
    }

    let q = format!("from=2025-01-01&to=2025-06-30&area={p}");
    let (s, r) = json(app.get(&format!("/api/v1/reports?{q}")).await).await;
    assert_eq!(s, 200, "{r}");
    let f = &r["engagement"]["feedback"];
    assert_eq!(
        (
            f["received"].as_i64(),
            f["answered"].as_i64(),
            f["overdue"].as_i64(),
            f["median_response_ms"].as_i64()
        ),
        (Some(3), Some(3), Some(2), Some(50 * H)),
        "{f}"
    );
    let subs = r["engagement"]["submissions"].as_array().unwrap();
    let mine: Vec<(String, i64, i64, i64)> = subs
        .iter()
        .filter(|o| o["name"] == so.as_str() || o["name"] == ubnd.as_str())
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_string(),
                o["submitted"].as_i64().unwrap(),
                o["approved"].as_i64().unwrap(),
                o["rejected"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(mine, [(so.clone(), 3, 1, 1), (ubnd.clone(), 0, 0, 0)]);

    // CSV.
    let csv = app
        .get(&format!("/api/v1/reports?{q}&format=csv&section=engagement"))
        .await
        .text()
        .await
        .unwrap();
    for line in [
        "Tiếp nhận,3".to_string(),
        "Đã trả lời,3".into(),
        "Quá hạn,2".into(),
        "Thời gian trả lời trung vị (giờ),50.0".into(),
        format!("{so},department,3,1,1"),
        format!("{ubnd},department,0,0,0"),
    ] {
        assert!(csv.lines().any(|l| l == line), "{line} missing: {csv}");
    }

    // XLSX, read back.
    let sheets = common::xlsx_sheets(&app, &format!("/api/v1/reports?{q}&format=xlsx")).await;
    let rows = &sheets["Tuong tac"];
    let cell = |label: &str| {
        rows.iter()
            .find(|r| r.first().map(String::as_str) == Some(label))
            .unwrap_or_else(|| panic!("{label}: {rows:?}"))[1..]
            .to_vec()
    };
    assert_eq!(cell("Tiếp nhận")[0], "3");
    assert_eq!(cell("Đã trả lời")[0], "3");
    assert_eq!(cell("Quá hạn")[0], "2");
    assert_eq!(cell("Thời gian trả lời trung vị (giờ)")[0], "50");
    assert_eq!(cell(&so)[1..4], ["3", "1", "1"]);

    // The console's report page.
    let leader = app.unique("lanhdao");
    user(&app, &leader, "viewer", &[&p], "mat-khau-lanh-dao").await;
    let c = client();
    let s = login(&app, &c, &leader, "mat-khau-lanh-dao").await;
    let html = page(&c, &app, &s.cookie, &format!("/console/reports?{q}")).await;
    for needle in [
        "id=\"feedback-received\">3<",
        "id=\"feedback-answered\">3<",
        "id=\"feedback-overdue\">2<",
        "id=\"feedback-median\">50,0<",
        "Tương tác",
    ] {
        assert!(html.contains(needle), "{needle}: {html}");
    }
    assert!(
        html.contains(&format!("<td>{so}</td><td>3</td><td>1</td><td>1</td>")),
        "{html}"
    );
}
