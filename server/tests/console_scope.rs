//! Scope between communes in the console (issue 7): an operator of one commune cannot open, edit
//! or delete another's schedules, devices or media; the province sees all; a scope of more than
//! 500 areas is filtered in SQL; and error pages speak the language of the `lang` cookie.

use crate::common::{TestApp, json, random_suffix, spawn_app};
use crate::console_admin::{api_status, audit_rows, get_page, has_before_and_after, post_form};
use crate::console_support::{FormExt, client, login, token, user, wav};
use crate::dispatch_support::{self, area, device, uid};

use chrono::Utc;
use serde_json::{Value, json as j};
use sqlx::Row;

#[tokio::test]
async fn an_operator_of_one_commune_cannot_open_edit_or_delete_schedules_and_devices_of_another() {
    let app = spawn_app().await;
    let (p, a, b) = (uid("p"), uid("xa-a"), uid("xa-b"));
    area(&app, &p, None).await;
    area(&app, &a, Some(&p)).await;
    area(&app, &b, Some(&p)).await;
    let (da, db) = (uid("lc"), uid("lc"));
    device(&app, &da, &a, "device-password-a", None).await;
    device(&app, &db, &b, "device-password-b", None).await;
    let sha = dispatch_support::media(&app, "approved", 5000).await;
    let mut sids = Vec::new();
    for target in [&a, &b] {
        let (s, v) = json(
            app.post_json(
                "/api/v1/schedules",
                &j!({"title": format!("lịch {target}"), "media": [sha], "targets": {"areas": [target]},
                     "rule": {"kind": "cron", "cron": "0 6 * * *"}}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 201, "{v}");
        sids.push(v["schedule"]["id"].as_str().unwrap().to_string());
    }
    let (sa, sb) = (sids[0].clone(), sids[1].clone());
    let op_id = user(&app, "vanhanh-a", "operator", &[&a], "mat-khau-van-hanh").await;
    let op_t = token(&app, &op_id).await;
    let c = client();
    let op = login(&app, &c, "vanhanh-a", "mat-khau-van-hanh").await;

    // Console: 403 pages, nothing changes.
    let (st, _) = get_page(&app, &op.cookie, &format!("/console/schedules/{sb}")).await;
    assert_eq!(st, 403);
    let r = post_form(
        &app,
        &op,
        &format!("/console/schedules/{sb}"),
        &[
            ("title", "chiếm"),
            ("media", &sha),
            ("area", &a),
            ("kind", "cron"),
            ("cron", "0 7 * * *"),
            ("volume", "80"),
        ],
        true,
    )
    .await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        post_form(&app, &op, &format!("/console/schedules/{sb}/delete"), &[], true)
            .await
            .status(),
        403
    );
    let (_, stored) = json(app.get(&format!("/api/v1/schedules/{sb}")).await).await;
    assert_eq!(stored["title"], format!("lịch {b}"));
    let (st, _) = get_page(&app, &op.cookie, &format!("/console/devices/{db}/edit")).await;
    assert_eq!(st, 403);
    let r = post_form(
        &app,
        &op,
        &format!("/console/devices/{db}/edit"),
        &[("name", "chiếm"), ("area", &a), ("enabled", "1")],
        true,
    )
    .await;
    assert_eq!(r.status(), 403);
    let (_, dev_b) = json(app.get(&format!("/api/v1/devices/{db}")).await).await;
    assert_eq!(dev_b["name"], db.as_str());
    assert_eq!(dev_b["area"], b.as_str());

    // API: the same rule.
    use reqwest::Method;
    assert_eq!(
        api_status(&app, Method::GET, &format!("/api/v1/schedules/{sb}"), &op_t, None).await,
        403
    );
    let body = j!({"title": "chiếm", "media": [sha], "targets": {"areas": [a]}, "rule": {"kind": "cron", "cron": "0 7 * * *"}});
    assert_eq!(
        api_status(
            &app,
            Method::PUT,
            &format!("/api/v1/schedules/{sb}"),
            &op_t,
            Some(&body)
        )
        .await,
        403
    );
    assert_eq!(
        api_status(
            &app,
            Method::DELETE,
            &format!("/api/v1/schedules/{sb}"),
            &op_t,
            None
        )
        .await,
        403
    );
    assert_eq!(
        api_status(
            &app,
            Method::PATCH,
            &format!("/api/v1/devices/{db}"),
            &op_t,
            Some(&j!({"name": "x"}))
        )
        .await,
        403
    );
    assert_eq!(
        app.get(&format!("/api/v1/schedules/{sb}")).await.status(),
        200,
        "still there"
    );
    let (_, list) = json(
        c.get(app.url("/api/v1/schedules"))
            .bearer_auth(&op_t)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![sa.as_str()]);

    // Own schedule: the form offers only commune A's areas and devices.
    let (st, form) = get_page(&app, &op.cookie, &format!("/console/schedules/{sa}")).await;
    assert_eq!(st, 200);
    assert!(form.contains(&format!("value=\"{a}\"")) && form.contains(&format!("value=\"{da}\"")));
    assert!(!form.contains(&format!("value=\"{b}\"")) && !form.contains(&format!("value=\"{db}\"")));
    let (_, list_page) = get_page(&app, &op.cookie, "/console/schedules").await;
    assert!(list_page.contains(&sa) && !list_page.contains(&sb));
    // Moving its own schedule to commune B is refused.
    let r = post_form(
        &app,
        &op,
        &format!("/console/schedules/{sa}"),
        &[
            ("title", "x"),
            ("media", &sha),
            ("area", &b),
            ("kind", "cron"),
            ("cron", "0 7 * * *"),
            ("volume", "80"),
        ],
        true,
    )
    .await;
    assert_eq!(r.status(), 403);

    // Own device: editable, but not movable out of scope.
    let (st, dform) = get_page(&app, &op.cookie, &format!("/console/devices/{da}/edit")).await;
    assert_eq!(st, 200);
    assert!(!dform.contains(&format!("value=\"{b}\"")));
    let r = post_form(
        &app,
        &op,
        &format!("/console/devices/{da}/edit"),
        &[
            ("name", "Loa chợ"),
            ("area", &a),
            ("lat", "22,33"),
            ("lon", "103.84"),
            ("enabled", "1"),
        ],
        true,
    )
    .await;
    assert_eq!(r.status(), 303);
    let (_, dev_a) = json(app.get(&format!("/api/v1/devices/{da}")).await).await;
    assert_eq!(dev_a["name"], "Loa chợ");
    assert_eq!(dev_a["lat"], 22.33);
    assert!(has_before_and_after(
        &audit_rows(&app, "device.update", &format!("device:{da}")).await
    ));
    let r = post_form(
        &app,
        &op,
        &format!("/console/devices/{da}/edit"),
        &[("name", "Loa chợ"), ("area", &b), ("enabled", "1")],
        true,
    )
    .await;
    assert_eq!(r.status(), 403);
    let (_, dev_a) = json(app.get(&format!("/api/v1/devices/{da}")).await).await;
    assert_eq!(dev_a["area"], a.as_str());
}

/// Upload a WAV as the bearer of `token` (optionally with an `area` field).
async fn upload_as(app: &TestApp, bearer: &str, secs: u32, area: Option<&str>) -> (u16, Value) {
    let boundary = format!("----nguon-{}", random_suffix());
    let mut body = Vec::new();
    if let Some(a) = area {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"area\"\r\n\r\n{a}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(&wav(secs));
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    json(
        client()
            .post(app.url("/api/v1/media"))
            .bearer_auth(bearer)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn media_of_one_commune_is_invisible_to_another_and_visible_to_the_province() {
    let app = spawn_app().await;
    let (p, a, b) = (uid("p"), uid("xa-a"), uid("xa-b"));
    area(&app, &p, None).await;
    area(&app, &a, Some(&p)).await;
    area(&app, &b, Some(&p)).await;
    let ed_a = user(&app, "bientap-a", "editor", &[&a], "mat-khau-bien-tap").await;
    let op_b = user(&app, "vanhanh-b", "operator", &[&b], "mat-khau-van-hanh").await;
    let prov = user(&app, "tinh", "viewer", &[&p], "mat-khau-tinh-1").await;
    let ed_all = user(&app, "bientap-tinh", "editor", &[], "mat-khau-bien-tap").await;
    let (ta, tb, tp, tall) = (
        token(&app, &ed_a).await,
        token(&app, &op_b).await,
        token(&app, &prov).await,
        token(&app, &ed_all).await,
    );
    let (s, m) = upload_as(&app, &ta, 1, None).await;
    assert_eq!(s, 201, "{m}");
    assert_eq!(
        m["area"],
        a.as_str(),
        "a scoped editor's upload belongs to their area"
    );
    let sha = m["sha256"].as_str().unwrap().to_string();
    // An explicit area outside the scope is refused.
    let (s, _) = upload_as(&app, &ta, 2, Some(&b)).await;
    assert_eq!(s, 403);
    let (s, wide) = upload_as(&app, &tall, 3, None).await;
    assert_eq!(s, 201);
    assert!(wide["area"].is_null(), "an unscoped upload is province-wide");
    let wide_sha = wide["sha256"].as_str().unwrap().to_string();

    use reqwest::Method;
    assert_eq!(
        api_status(&app, Method::GET, &format!("/api/v1/media/{sha}"), &tb, None).await,
        404
    );
    assert_eq!(
        api_status(&app, Method::GET, &format!("/api/v1/media/{sha}"), &tp, None).await,
        200
    );
    assert_eq!(
        api_status(&app, Method::GET, &format!("/api/v1/media/{wide_sha}"), &tb, None).await,
        200
    );
    let listed = |list: &Value, s: &str| list.as_array().unwrap().iter().any(|m| m["sha256"] == s);
    let (_, lb) = json(
        client()
            .get(app.url("/api/v1/media"))
            .bearer_auth(&tb)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(!listed(&lb, &sha) && listed(&lb, &wide_sha));
    let (_, lp) = json(
        client()
            .get(app.url("/api/v1/media"))
            .bearer_auth(&tp)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(listed(&lp, &sha) && listed(&lp, &wide_sha));
    // The count a scoped user sees equals the rows of their scope, computed from the store.
    let visible_b: i64 = sqlx::query("SELECT COUNT(*) AS n FROM media WHERE area IS NULL OR area = $1")
        .bind(b.clone())
        .fetch_one(&app.state().store.pool)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    assert_eq!(lb.as_array().unwrap().len() as i64, visible_b);

    // Console: 404 page for B, the detail page for the province user.
    let c = client();
    let sb = login(&app, &c, "vanhanh-b", "mat-khau-van-hanh").await;
    let (st, _) = get_page(&app, &sb.cookie, &format!("/console/media/{sha}")).await;
    assert_eq!(st, 404);
    let (_, lib) = get_page(&app, &sb.cookie, "/console/media").await;
    assert!(!lib.contains(&sha) && lib.contains(&wide_sha));
    let sp = login(&app, &c, "tinh", "mat-khau-tinh-1").await;
    let (st, detail) = get_page(&app, &sp.cookie, &format!("/console/media/{sha}")).await;
    assert_eq!(st, 200);
    assert!(detail.contains(&a));

    // Scheduling A's media from commune B: 404 naming the media, nothing stored.
    assert_eq!(
        app.post_json(&format!("/api/v1/media/{sha}/approve"), &j!({}))
            .await
            .status(),
        200
    );
    let body = j!({"title": "x", "media": [sha], "targets": {"areas": [b]}, "rule": {"kind": "cron", "cron": "0 6 * * *"}});
    let (s, err) = json(
        client()
            .post(app.url("/api/v1/schedules"))
            .bearer_auth(&tb)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 404, "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains(&sha));
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM schedules")
        .fetch_one(&app.state().store.pool)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    assert_eq!(n, 0);
    // Devices still fetch by hash without a user.
    assert_eq!(app.get_anon(&format!("/media/{sha}")).await.status(), 200);
}

#[tokio::test]
async fn the_error_page_is_in_the_language_of_the_lang_cookie() {
    let app = spawn_app().await;
    user(&app, "xem", "viewer", &[], "mat-khau-xem-1").await;
    let c = client();
    let v = login(&app, &c, "xem", "mat-khau-xem-1").await;
    let (st, en) = get_page(&app, &format!("{}; lang=en", v.cookie), "/console/users").await;
    assert_eq!(st, 403);
    assert!(
        en.contains("<html lang=\"en\">") && en.contains("403 · Forbidden"),
        "{en}"
    );
    assert!(en.contains("this needs the `admin` role"));
    let (st, vi) = get_page(&app, &v.cookie, "/console/users").await;
    assert_eq!(st, 403);
    assert!(vi.contains("403 · Không có quyền"));
    let missing = "0".repeat(64);
    let (st, nf) = get_page(
        &app,
        &format!("lang=en; {}", v.cookie),
        &format!("/console/media/{missing}"),
    )
    .await;
    assert_eq!(st, 404);
    assert!(nf.contains("404 · Not found") && nf.contains(&missing));
    // A CSRF refusal is rendered in English too.
    let r = client()
        .post(app.url("/console/logout"))
        .header("cookie", format!("{}; lang=en", v.cookie))
        .form_pairs(&[("csrf", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("403 · Forbidden"));
}

#[tokio::test]
async fn a_scope_of_more_than_500_areas_is_filtered_in_sql_without_hitting_parameter_limits() {
    let app = spawn_app().await;
    let (p, a) = (uid("p"), uid("xa"));
    area(&app, &p, None).await;
    area(&app, &a, Some(&p)).await;
    // 700 villages under the commune, written straight to the store.
    let now = Utc::now().timestamp_millis();
    let prefix = format!("v{}", random_suffix());
    for chunk in (0..700).collect::<Vec<_>>().chunks(100) {
        let mut sql =
            String::from("INSERT INTO areas (code, name, parent, level, created_at, updated_at) VALUES ");
        sql.push_str(
            &chunk
                .iter()
                .map(|i| format!("('{prefix}-{i}', 'Thôn {i}', '{a}', 'village', {now}, {now})"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&app.state().store.pool)
            .await
            .unwrap();
    }
    let (inside, outside) = (uid("lc"), uid("lc"));
    device(&app, &inside, &format!("{prefix}-699"), "device-password-1", None).await;
    device(&app, &outside, &p, "device-password-2", None).await;
    let op = user(&app, "vanhanh-xa", "operator", &[&a], "mat-khau-van-hanh").await;
    let t = token(&app, &op).await;
    let (s, list) = json(
        client()
            .get(app.url("/api/v1/devices"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{list}");
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![inside.as_str()]);
    let (s, areas) = json(
        client()
            .get(app.url("/api/v1/areas"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(areas.as_array().unwrap().len(), 701);
    let c = client();
    let sess = login(&app, &c, "vanhanh-xa", "mat-khau-van-hanh").await;
    let (st, page) = get_page(&app, &sess.cookie, "/console/devices").await;
    assert_eq!(st, 200);
    assert!(page.contains(&inside) && !page.contains(&outside));
}
