//! Policies (issue 15): the API refuses bad input naming the field, scopes by area, audits every
//! write, links content to a stage, and the coverage of a stage follows the proof of play of its
//! linked content (a gap closes when the content plays); the console lists the gaps. And the
//! half-year report's policy coverage and public reach match what the seed implies (also in its
//! CSV and XLSX).

use crate::common;
use crate::console_support;
use crate::dispatch_support;

use chrono::TimeZone;
use common::{TestApp, json, spawn_app};
use console_support::{client, login, page, scoped_user, user};
use dispatch_support::{area, device, media, uid};
use serde_json::{Value, json};
use sqlx::Row;

/// One on-air proof of play of media `sha` on `device` at `at` (unix ms).
pub async fn play_of(app: &TestApp, device: &str, sha: &str, at: i64) {
    sqlx::query(
        "INSERT INTO plays (event_id, device_id, item_id, schedule_id, occurrence_at, sha256, priority, started_at, ended_at, outcome, reason, received_at) \
         VALUES ($1, $2, $3, '', $4, $5, 'normal', $4, $6, 'played', NULL, $6)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(device.to_string())
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(at)
    .bind(sha.to_string())
    .bind(at + 60_000)
    .execute(&app.state().store.pool)
    .await
    .unwrap();
}

pub async fn create(app: &TestApp, body: &Value) -> String {
    let (s, b) = json(app.post_json("/api/v1/policies", body).await).await;
    assert_eq!(s, 201, "{b}");
    b["id"].as_str().unwrap().to_string()
}

pub async fn link(app: &TestApp, id: &str, stage: &str, kind: &str, r: &str) -> u16 {
    let (s, b) = json(
        app.post_json(
            &format!("/api/v1/policies/{id}/links"),
            &json!({"stage": stage, "kind": kind, "ref_id": r}),
        )
        .await,
    )
    .await;
    assert!(s == 200 || s == 201, "link: {s} {b}");
    s
}

#[tokio::test]
async fn a_policy_is_scoped_audited_and_a_stage_gap_closes_when_its_linked_content_plays() {
    let app = spawn_app().await;
    let p = uid("tinh");
    area(&app, &p, None).await;
    let (xa, xb) = (uid("xa"), uid("xa"));
    area(&app, &xa, Some(&p)).await;
    area(&app, &xb, Some(&p)).await;
    let speaker = uid("loa");
    device(&app, &speaker, &xa, "device-password-1", None).await;

    // Bad input is refused naming the problem; nothing is stored.
    for (body, needle) in [
        (
            json!({"title": "A", "issuer": "UBND", "field": "đất đai"}),
            "areas",
        ),
        (
            json!({"title": "A", "issuer": "UBND", "field": "đất đai", "areas": [xa], "stage": "nope"}),
            "stage",
        ),
        (
            json!({"title": "A", "issuer": "UBND", "field": "đất đai", "areas": [xa],
                "stages": [{"stage": "issued", "starts_on": "1/3/2025"}]}),
            "starts_on",
        ),
        (
            json!({"title": "A", "issuer": "UBND", "field": "đất đai", "areas": ["khong-co"]}),
            "khong-co",
        ),
        (
            json!({"title": "A", "issuer": "UBND", "field": "đất đai", "areas": [xa], "doc_url": "javascript:alert(1)"}),
            "doc_url",
        ),
    ] {
        let (s, b) = json(app.post_json("/api/v1/policies", &body).await).await;
        assert!(s == 400 || s == 422, "{body}: {s} {b}");
        assert!(b.to_string().contains(needle), "{needle} not named: {b}");
    }
    let (_, list) = json(app.get("/api/v1/policies").await).await;
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");

    let id = create(
        &app,
        &json!({"title": "Hỗ trợ học phí", "issuer": "HĐND tỉnh", "doc_number": "12/2025/NQ-HĐND", "field": "giáo dục",
                "groups": ["học sinh"], "areas": [xa], "stage": "issued",
                "stages": [{"stage": "consultation", "starts_on": "2025-01-10", "ends_on": "2025-02-10"},
                           {"stage": "issued", "starts_on": "2025-03-01"}]}),
    )
    .await;
    let (s, c) = json(app.get(&format!("/api/v1/policies/{id}/coverage")).await).await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["gaps"], json!(["consultation", "issued"]), "{c}");

    // Link: content must exist; linking twice is 200.
    let sha = media(&app, "approved", 60_000).await;
    assert_eq!(link(&app, &id, "consultation", "media", &sha).await, 201);
    assert_eq!(link(&app, &id, "consultation", "media", &sha).await, 200);
    let (s, b) = json(
        app.post_json(
            &format!("/api/v1/policies/{id}/links"),
            &json!({"stage": "issued", "kind": "bulletin", "ref_id": "khong-co"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 422, "{b}");
    // Linked but never played: still a gap.
    let (_, c) = json(app.get(&format!("/api/v1/policies/{id}/coverage")).await).await;
    assert_eq!(c["gaps"], json!(["consultation", "issued"]), "{c}");
    // It plays: the consultation stage is communicated.
    play_of(&app, &speaker, &sha, 1_736_500_000_000).await;
    let (_, c) = json(app.get(&format!("/api/v1/policies/{id}/coverage")).await).await;
    assert_eq!(c["gaps"], json!(["issued"]), "{c}");
    assert_eq!(c["stages"][0]["plays"], 1);
    assert_eq!(c["stages"][0]["devices"], 1);
    assert_eq!(c["links"][0]["plays"], 1);

    // PATCH changes only what is sent.
    let (s, b) = json(
        app.patch_json(&format!("/api/v1/policies/{id}"), &json!({"stage": "in_force"}))
            .await,
    )
    .await;
    assert_eq!(
        (s, b["stage"].as_str(), b["title"].as_str()),
        (200, Some("in_force"), Some("Hỗ trợ học phí")),
        "{b}"
    );

    // Scope: an editor of the other commune neither sees nor writes it.
    let (_, other) = scoped_user(&app, "bt-xb", "editor", &[&xb]).await;
    let r = app.get_as(&other, &format!("/api/v1/policies/{id}")).await;
    assert_eq!(r.status(), 404);
    let (_, l) = json(app.get_as(&other, "/api/v1/policies").await).await;
    assert_eq!(l.as_array().unwrap().len(), 0, "{l}");
    let r = app
        .post_json_as(
            &other,
            "/api/v1/policies",
            &json!({"title": "B", "issuer": "x", "field": "y", "areas": [xa]}),
        )
        .await;
    assert_eq!(r.status(), 403);
    // A viewer cannot publish.
    let (_, viewer) = scoped_user(&app, "xem", "viewer", &[&xa]).await;
    let r = app
        .post_json_as(&viewer, &format!("/api/v1/policies/{id}/publish"), &json!({}))
        .await;
    assert_eq!(r.status(), 403);

    // Audited: create, link, update (the repeated link is not a change).
    let actions: Vec<String> = sqlx::query("SELECT action FROM audit_log WHERE entity = $1 ORDER BY at")
        .bind(format!("policy:{id}"))
        .fetch_all(&app.state().store.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("action"))
        .collect();
    assert_eq!(actions, ["policy.create", "policy.link", "policy.update"]);

    // The console lists the policy and flags the stage nobody communicated.
    let editor = app.unique("bientap");
    user(&app, &editor, "editor", &[&p], "mat-khau-bien-tap").await;
    let c = client();
    let s = login(&app, &c, &editor, "mat-khau-bien-tap").await;
    let html = page(&c, &app, &s.cookie, "/console/policies").await;
    assert!(
        html.contains("Hỗ trợ học phí") && html.contains("class=\"gap\""),
        "{html}"
    );
    let html = page(&c, &app, &s.cookie, &format!("/console/policies/{id}")).await;
    assert!(
        html.contains("id=\"policy-timeline\"") && html.contains("data-stage=\"issued\" class=\"gap\""),
        "{html}"
    );
}

#[tokio::test]
async fn the_half_year_report_shows_the_policy_coverage_and_public_reach_the_seed_implies() {
    let app = spawn_app().await;
    let p = uid("tinh");
    area(&app, &p, None).await;
    let xa = uid("xa");
    area(&app, &xa, Some(&p)).await;
    let speaker = uid("loa");
    device(&app, &speaker, &xa, "device-password-1", None).await;
    let tz = chrono_tz::Asia::Ho_Chi_Minh;
    let at = |m, d| {
        tz.with_ymd_and_hms(2025, m, d, 7, 0, 0)
            .unwrap()
            .timestamp_millis()
    };
    let base = |title: &str, stage: &str, stages: Value| json!({"title": title, "issuer": "UBND tỉnh", "field": "an sinh", "areas": [xa], "stage": stage, "stages": stages});
    // P1: consultation (played in January), issued (linked, never played: a gap), in force (played in April).
    let p1 = create(
        &app,
        &base(
            "P1",
            "in_force",
            json!([{"stage": "consultation", "starts_on": "2025-01-05", "ends_on": "2025-01-31"},
                   {"stage": "issued", "starts_on": "2025-02-01", "ends_on": "2025-02-28"},
                   {"stage": "in_force", "starts_on": "2025-03-01"}]),
        ),
    )
    .await;
    let (m1, m2, m3, m4) = (
        media(&app, "approved", 60_000).await,
        media(&app, "approved", 60_000).await,
        media(&app, "approved", 60_000).await,
        media(&app, "approved", 60_000).await,
    );
    link(&app, &p1, "consultation", "media", &m1).await;
    link(&app, &p1, "issued", "media", &m2).await;
    link(&app, &p1, "in_force", "media", &m3).await;
    play_of(&app, &speaker, &m1, at(1, 10)).await;
    play_of(&app, &speaker, &m3, at(4, 2)).await;
    // P2: in consultation since May, communicated.
    let p2 = create(
        &app,
        &base(
            "P2",
            "consultation",
            json!([{"stage": "consultation", "starts_on": "2025-05-01"}]),
        ),
    )
    .await;
    link(&app, &p2, "consultation", "media", &m4).await;
    play_of(&app, &speaker, &m4, at(5, 3)).await;
    // P3: its consultation ended before the period (not counted); issued in January, nothing said.
    create(
        &app,
        &base(
            "P3",
            "issued",
            json!([{"stage": "consultation", "starts_on": "2024-10-01", "ends_on": "2024-11-30"},
                   {"stage": "issued", "starts_on": "2025-01-10"}]),
        ),
    )
    .await;
    // P4: no direct impact: never counted.
    let mut b4 = base("P4", "issued", json!([]));
    b4["direct_impact"] = json!(false);
    create(&app, &b4).await;
    // Public hits: three inside the period, one after it.
    for (day, path, n) in [
        ("2025-01-10", "page:/", 5i64),
        ("2025-03-01", "feed:/feeds/rss.xml", 7),
        ("2025-02-01", "qr:/b/abcdefgh/qr.svg", 2),
        ("2025-06-20", "page:/", 100),
    ] {
        sqlx::query("INSERT INTO public_hits (day, path, hits) VALUES ($1, $2, $3)")
            .bind(day)
            .bind(path)
            .bind(n)
            .execute(&app.state().store.pool)
            .await
            .unwrap();
    }

    let q = format!("from=2024-12-15&to=2025-06-14&area={p}");
    let (s, r) = json(app.get(&format!("/api/v1/reports?{q}")).await).await;
    assert_eq!(s, 200, "{r}");
    let pc = &r["policy"];
    assert_eq!(
        (pc["policies"].as_i64(), pc["fully_communicated"].as_i64()),
        (Some(3), Some(1)),
        "{pc}"
    );
    assert!((pc["rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9, "{pc}");
    let stage = |i: usize| {
        (
            pc["stages"][i]["reached"].as_i64().unwrap(),
            pc["stages"][i]["communicated"].as_i64().unwrap(),
        )
    };
    assert_eq!(
        [stage(0), stage(1), stage(2), stage(3), stage(4)],
        [(2, 2), (2, 0), (1, 1), (0, 0), (0, 0)],
        "{pc}"
    );
    let gaps: Vec<(String, String)> = pc["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["title"].as_str().unwrap().to_string(),
                g["stage"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        gaps,
        [
            ("P1".to_string(), "issued".to_string()),
            ("P3".into(), "issued".into())
        ]
    );
    assert_eq!(
        (
            r["reach"]["pages"].as_i64(),
            r["reach"]["feeds"].as_i64(),
            r["reach"]["qr"].as_i64()
        ),
        (Some(5), Some(7), Some(2)),
        "{}",
        r["reach"]
    );

    // The same figures in the CSV sections and the XLSX sheets.
    let csv = app
        .get(&format!("/api/v1/reports?{q}&format=csv&section=policy"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        csv.contains("Ban hành,2,0,0.0000") && csv.contains("Dự thảo lấy ý kiến,2,2,1.0000"),
        "{csv}"
    );
    assert!(csv.contains("P3,UBND tỉnh,Ban hành"), "{csv}");
    let csv = app
        .get(&format!("/api/v1/reports?{q}&format=csv&section=reach"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        csv.contains("Trang công khai,5") && csv.contains("Mã QR,2"),
        "{csv}"
    );
    let sheets = common::xlsx_sheets(&app, &format!("/api/v1/reports?{q}&format=xlsx")).await;
    let row = &sheets["Chinh sach"][2];
    assert_eq!(
        (row[0].as_str(), row[1].as_str(), row[2].as_str()),
        ("Ban hành", "2", "0")
    );
    assert_eq!(sheets["Kenh cong khai"][2][1], "7");

    // The console's report shows them.
    let leader = app.unique("lanhdao");
    user(&app, &leader, "viewer", &[&p], "mat-khau-lanh-dao").await;
    let c = client();
    let s = login(&app, &c, &leader, "mat-khau-lanh-dao").await;
    let html = page(&c, &app, &s.cookie, &format!("/console/reports?{q}")).await;
    assert!(
        html.contains("id=\"policy-count\">3<") && html.contains("id=\"reach-feeds\">7<"),
        "{html}"
    );
    assert!(html.contains("data-stage=\"issued\"><a"), "gaps listed: {html}");
}
