//! The console's "Chờ xã tiếp nhận" page (issue 16): a commune's operator sees the province
//! content awaiting its acceptance, in Vietnamese, declines one with a reason and re-slots
//! another through the page's forms (CSRF-checked, audited as through the API); another
//! commune's operator sees none of it and cannot answer; the report page shows the counts.

use chrono::{Duration, Utc};
use serde_json::json;

use crate::common::{self, json as body};
use crate::console_admin::{get_page, post_form};
use crate::console_support::{TwoCommunes, client, login, two_communes, user};
use crate::dispatch_support::{eventually, media};

#[tokio::test]
async fn a_commune_operator_answers_in_the_console_and_another_commune_cannot() {
    let app = common::spawn_app().await;
    let TwoCommunes {
        province,
        mine,
        theirs,
    } = two_communes(&app).await;
    let (s, b) = body(
        app.put_json(
            &format!("/api/v1/areas/{mine}/autonomy"),
            &json!({"enabled": true}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let sha = media(&app, "approved", 20_000).await;
    let at = (Utc::now().with_timezone(&chrono_tz::Asia::Ho_Chi_Minh) + Duration::hours(3))
        .format("%Y-%m-%dT%H:%M:00")
        .to_string();
    let mut ids = Vec::new();
    for title in ["Bản tin nông nghiệp", "Bản tin y tế"] {
        let (s, b) = body(
            app.post_json(
                "/api/v1/schedules",
                &json!({"title": title, "media": [sha], "targets": {"areas": [province]},
                        "rule": {"kind": "once", "at": at}}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 201, "{b}");
        ids.push(b["schedule"]["id"].as_str().unwrap().to_string());
    }
    let questions = eventually("two questions", || async {
        let (_, b) = body(app.get(&format!("/api/v1/autonomy/requests?area={mine}")).await).await;
        let v = b.as_array().unwrap().clone();
        (v.len() == 2).then_some(v)
    })
    .await;
    let qid = |sid: &str| {
        questions.iter().find(|q| q["schedule_id"] == sid).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (q1, q2) = (qid(&ids[0]), qid(&ids[1]));

    let name = app.unique("xa");
    user(&app, &name, "operator", &[&mine], "mat-khau-thu-nghiem").await;
    let stranger = app.unique("xakhac");
    user(&app, &stranger, "operator", &[&theirs], "mat-khau-thu-nghiem").await;
    let c = client();
    let op = login(&app, &c, &name, "mat-khau-thu-nghiem").await;
    let other = login(&app, &c, &stranger, "mat-khau-thu-nghiem").await;

    let (s, html) = get_page(&app, &op.cookie, "/console/autonomy").await;
    assert_eq!(s, 200);
    assert!(
        html.contains("Chờ xã tiếp nhận") && html.contains("Bản tin nông nghiệp"),
        "{html}"
    );
    assert!(html.contains(&format!("data-question=\"{q1}\"")) && html.contains("Từ chối"));
    let (_, theirs_html) = get_page(&app, &other.cookie, "/console/autonomy").await;
    assert!(
        !theirs_html.contains("Bản tin nông nghiệp"),
        "another commune sees nothing"
    );
    let r = post_form(
        &app,
        &other,
        &format!("/console/autonomy/{q1}/answer"),
        &[("decision", "accept")],
        true,
    )
    .await;
    assert_eq!(r.status(), 404);

    // Decline with a reason; re-slot to a local time; a form without CSRF is refused.
    let r = post_form(
        &app,
        &op,
        &format!("/console/autonomy/{q1}/answer"),
        &[("decision", "accept")],
        false,
    )
    .await;
    assert_eq!(r.status(), 403);
    let r = post_form(
        &app,
        &op,
        &format!("/console/autonomy/{q1}/answer"),
        &[("decision", "decline"), ("reason", "Xã đang tổ chức lễ hội")],
        true,
    )
    .await;
    assert_eq!(r.status(), 303);
    let slot_local = Utc::now().with_timezone(&chrono_tz::Asia::Ho_Chi_Minh) + Duration::hours(5);
    let r = post_form(
        &app,
        &op,
        &format!("/console/autonomy/{q2}/answer"),
        &[
            ("decision", "reslot"),
            ("slot", &slot_local.format("%Y-%m-%dT%H:%M").to_string()),
        ],
        true,
    )
    .await;
    assert_eq!(r.status(), 303);
    let (_, q) = body(app.get(&format!("/api/v1/autonomy/requests/{q1}")).await).await;
    assert_eq!(
        (q["state"].as_str(), q["reason"].as_str()),
        (Some("declined"), Some("Xã đang tổ chức lễ hội"))
    );
    assert_eq!(q["answered_by"], name.as_str());
    let (_, q) = body(app.get(&format!("/api/v1/autonomy/requests/{q2}")).await).await;
    let slot: chrono::DateTime<Utc> = q["slot_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        slot.timestamp() / 60,
        slot_local.timestamp() / 60,
        "the local time, in UTC: {q}"
    );
    let (_, html) = get_page(&app, &op.cookie, "/console/autonomy").await;
    assert!(html.contains("Đã từ chối") && html.contains("Đổi giờ"), "{html}");
    assert!(html.contains("Không có tin nào chờ xã tiếp nhận."));

    // An admin turns another commune's setting on from the page; an operator cannot.
    let r = post_form(
        &app,
        &op,
        "/console/autonomy/settings",
        &[("area", &theirs), ("enabled", "1")],
        true,
    )
    .await;
    assert_eq!(r.status(), 403);
    let boss = app.unique("admin");
    user(&app, &boss, "admin", &[], "mat-khau-thu-nghiem").await;
    let admin = login(&app, &c, &boss, "mat-khau-thu-nghiem").await;
    let r = post_form(
        &app,
        &admin,
        "/console/autonomy/settings",
        &[("area", &theirs), ("enabled", "1"), ("unanswered", "skip")],
        true,
    )
    .await;
    assert_eq!(r.status(), 303);
    let (_, setting) = body(app.get(&format!("/api/v1/areas/{theirs}/autonomy")).await).await;
    assert_eq!(
        (setting["enabled"].as_bool(), setting["unanswered"].as_str()),
        (Some(true), Some("skip"))
    );
    assert_eq!(setting["updated_by"], boss.as_str());
    let (_, html) = get_page(&app, &admin.cookie, "/console/autonomy").await;
    assert!(html.contains(&format!("<li data-area=\"{theirs}\">")), "{html}");

    // The report page counts them for the commune.
    let (s, html) = get_page(&app, &op.cookie, "/console/reports").await;
    assert_eq!(s, 200);
    assert!(
        html.contains("id=\"autonomy-answers\"") && html.contains(&format!("data-area=\"{mine}\"")),
        "{html}"
    );
}
