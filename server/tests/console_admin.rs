//! Administration from the console (issue 7): users (disable, tokens), schedule edit and delete
//! reaching devices, area delete and CSV import, CSRF. Every change must leave an audit row with
//! its before and after. Scope between communes is in `console_scope`.

use crate::common::{TestApp, json, random_suffix, spawn_app};
use crate::console_support::{FormExt, Session, client, login, token, user};
use crate::dispatch_support::{self, area, connect, device, uid};

use chrono::Utc;
use nguon_protocol::{DeviceId, ServerBody, ServerMessage, topic};
use serde_json::{Value, json as j};
use sqlx::Row;

/// POST a console form with the session (and its CSRF token unless `csrf` is false).
pub(crate) async fn post_form(
    app: &TestApp,
    s: &Session,
    path: &str,
    pairs: &[(&str, &str)],
    csrf: bool,
) -> reqwest::Response {
    let mut all: Vec<(&str, &str)> = Vec::new();
    if csrf {
        all.push(("csrf", s.csrf.as_str()));
    }
    all.extend_from_slice(pairs);
    client()
        .post(app.url(path))
        .header("cookie", &s.cookie)
        .form_pairs(&all)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn get_page(app: &TestApp, cookie: &str, path: &str) -> (u16, String) {
    let r = client()
        .get(app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.text().await.unwrap())
}

pub(crate) async fn api_status(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    bearer: &str,
    body: Option<&Value>,
) -> u16 {
    let mut r = client().request(method, app.url(path)).bearer_auth(bearer);
    if let Some(b) = body {
        r = r.json(b);
    }
    r.send().await.unwrap().status().as_u16()
}

/// Audit rows of one action on one entity: (before, after) as stored.
pub(crate) async fn audit_rows(
    app: &TestApp,
    action: &str,
    entity: &str,
) -> Vec<(Option<String>, Option<String>)> {
    sqlx::query("SELECT before_json, after_json FROM audit_log WHERE action = $1 AND entity = $2 ORDER BY at")
        .bind(action.to_string())
        .bind(entity.to_string())
        .fetch_all(&app.state().store.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.try_get("before_json").unwrap(),
                r.try_get("after_json").unwrap(),
            )
        })
        .collect()
}

pub(crate) fn has_before_and_after(rows: &[(Option<String>, Option<String>)]) -> bool {
    rows.iter().any(|(b, a)| b.is_some() && a.is_some())
}

pub(crate) fn manifest_of(app: &TestApp, id: &str, bytes: &[u8]) -> Option<nguon_protocol::Manifest> {
    let msg = ServerMessage::open(
        bytes,
        &app.server_key(),
        &nguon_protocol::Audience::Device(DeviceId::parse(id).unwrap()),
        Utc::now(),
        chrono::Duration::seconds(60),
    )
    .ok()?;
    match msg.body {
        ServerBody::Desired(m) => Some(m),
        _ => None,
    }
}

pub(crate) fn local_in(hours: i64) -> String {
    (Utc::now().with_timezone(&chrono_tz::Asia::Ho_Chi_Minh) + chrono::Duration::hours(hours))
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

pub(crate) async fn me_status(app: &TestApp, cookie: Option<&str>, bearer: Option<&str>) -> u16 {
    let mut r = client().get(app.url("/api/v1/me"));
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    if let Some(b) = bearer {
        r = r.bearer_auth(b);
    }
    r.send().await.unwrap().status().as_u16()
}

/// Audit entries of users and tokens.
pub(crate) async fn user_audit_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'user.%' OR action LIKE 'token.%'")
        .fetch_one(&app.state().store.pool)
        .await
        .unwrap()
}

#[tokio::test]
pub(crate) async fn a_refused_user_change_writes_no_audit_entry_and_an_accepted_one_writes_exactly_one() {
    let app = spawn_app().await;
    let n0 = user_audit_count(&app).await;
    let name = format!("qt{}", random_suffix());
    let admin_id = user(&app, &name, "admin", &[], "mat-khau-quan-tri").await;
    assert_eq!(user_audit_count(&app).await, n0 + 1, "user.create");
    let admin = token(&app, &admin_id).await;
    let n1 = user_audit_count(&app).await;
    assert_eq!(n1, n0 + 2, "token.create");

    let again = j!({"username": name, "role": "viewer", "password": "mat-khau-khac"});
    let unknown_area =
        j!({"username": "khac", "role": "viewer", "areas": ["nowhere-xyz"], "password": "mat-khau-khac"});
    let refused = [
        (
            reqwest::Method::POST,
            "/api/v1/users".to_string(),
            Some(again),
            409,
        ),
        (
            reqwest::Method::POST,
            "/api/v1/users".to_string(),
            Some(unknown_area),
            422,
        ),
        (
            reqwest::Method::PATCH,
            format!("/api/v1/users/{admin_id}"),
            Some(j!({"enabled": false})),
            409,
        ),
        (
            reqwest::Method::PATCH,
            format!("/api/v1/users/{admin_id}"),
            Some(j!({"password": "short"})),
            422,
        ),
        (
            reqwest::Method::DELETE,
            format!("/api/v1/users/{admin_id}/tokens/no-such-token"),
            None,
            404,
        ),
    ];
    for (method, path, body, want) in refused {
        let got = api_status(&app, method.clone(), &path, &admin, body.as_ref()).await;
        assert_eq!(got, want, "{method} {path}");
    }
    assert_eq!(user_audit_count(&app).await, n1, "nothing refused is audited");

    let got = api_status(
        &app,
        reqwest::Method::PATCH,
        &format!("/api/v1/users/{admin_id}"),
        &admin,
        Some(&j!({"display_name": "Quản trị hai"})),
    )
    .await;
    assert_eq!(got, 200);
    assert_eq!(user_audit_count(&app).await, n1 + 1);
    let rows = audit_rows(&app, "user.update", &format!("user:{name}")).await;
    assert_eq!(rows.len(), 1);
    assert!(has_before_and_after(&rows));
}

#[tokio::test]
pub(crate) async fn disabling_a_user_stops_their_session_and_token_at_once_and_console_tokens_work_until_revoked()
 {
    let app = spawn_app().await;
    let admin_id = user(&app, "quantri", "admin", &[], "mat-khau-quan-tri").await;
    let op_id = user(&app, "vanhanh", "operator", &[], "mat-khau-van-hanh").await;
    let c = client();
    let adm = login(&app, &c, "quantri", "mat-khau-quan-tri").await;
    let op = login(&app, &c, "vanhanh", "mat-khau-van-hanh").await;
    let op_api = token(&app, &op_id).await;
    assert_eq!(me_status(&app, Some(&op.cookie), None).await, 200);
    assert_eq!(me_status(&app, None, Some(&op_api)).await, 200);

    // A form without the CSRF token changes nothing.
    let r = post_form(
        &app,
        &adm,
        &format!("/console/users/{op_id}"),
        &[("display_name", "X"), ("role", "viewer")],
        false,
    )
    .await;
    assert_eq!(r.status(), 403);
    let (_, u) = json(app.get("/api/v1/users").await).await;
    let stored = u
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == op_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(stored["role"], "operator");

    // Issue a token in the console: shown once, works, stops after revoke.
    let r = post_form(
        &app,
        &adm,
        &format!("/console/users/{op_id}/tokens"),
        &[("name", "tích hợp")],
        true,
    )
    .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let start = html.find("id=\"new-token\">").expect("the token is shown") + "id=\"new-token\">".len();
    let new_token = html[start..start + 64].to_string();
    assert!(new_token.bytes().all(|b| b.is_ascii_hexdigit()), "{new_token}");
    assert_eq!(me_status(&app, None, Some(&new_token)).await, 200);
    let (_, again) = get_page(&app, &adm.cookie, &format!("/console/users/{op_id}")).await;
    assert!(!again.contains(&new_token), "the token is shown only once");
    assert!(again.contains("tích hợp"), "the token is listed by name");
    let tid: String = sqlx::query("SELECT id FROM api_tokens WHERE user_id = $1 AND name = $2")
        .bind(op_id.clone())
        .bind("tích hợp")
        .fetch_one(&app.state().store.pool)
        .await
        .unwrap()
        .try_get("id")
        .unwrap();
    let r = post_form(
        &app,
        &adm,
        &format!("/console/users/{op_id}/tokens/{tid}/revoke"),
        &[],
        true,
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(me_status(&app, None, Some(&new_token)).await, 401);
    assert_eq!(
        me_status(&app, None, Some(&op_api)).await,
        200,
        "other tokens still work"
    );

    // Disable: the session and the API token stop at once.
    let r = post_form(
        &app,
        &adm,
        &format!("/console/users/{op_id}/enabled"),
        &[("enabled", "0")],
        true,
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(me_status(&app, Some(&op.cookie), None).await, 401);
    assert_eq!(me_status(&app, None, Some(&op_api)).await, 401);
    let (s, _) = get_page(&app, &op.cookie, "/console").await;
    assert_eq!(s, 303, "the console sends a disabled user to the login page");

    // An admin cannot disable or demote themselves.
    let r = post_form(
        &app,
        &adm,
        &format!("/console/users/{admin_id}/enabled"),
        &[("enabled", "0")],
        true,
    )
    .await;
    assert_eq!(r.status(), 409);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Bạn không thể tự tắt tài khoản của chính mình")
    );
    let r = post_form(
        &app,
        &adm,
        &format!("/console/users/{admin_id}"),
        &[("display_name", "Quản trị"), ("role", "viewer")],
        true,
    )
    .await;
    assert_eq!(r.status(), 409);
    assert_eq!(me_status(&app, Some(&adm.cookie), None).await, 200);
    let (_, me) = json(
        c.get(app.url("/api/v1/me"))
            .header("cookie", &adm.cookie)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(me["role"], "admin");

    // Edit display name, role and scope; the audit log keeps before and after.
    let p = uid("p");
    area(&app, &p, None).await;
    let r = post_form(
        &app,
        &adm,
        &format!("/console/users/{op_id}"),
        &[("display_name", "Anh Ba"), ("role", "viewer"), ("areas", &p)],
        true,
    )
    .await;
    assert_eq!(r.status(), 303);
    let (_, u) = json(app.get("/api/v1/users").await).await;
    let stored = u
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == op_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(stored["display_name"], "Anh Ba");
    assert_eq!(stored["role"], "viewer");
    assert_eq!(stored["areas"], j!([p]));
    assert_eq!(stored["enabled"], false);
    let rows = audit_rows(&app, "user.update", "user:vanhanh").await;
    assert_eq!(rows.len(), 2, "disable and edit");
    assert!(has_before_and_after(&rows));
    assert!(
        rows.iter()
            .any(|(b, a)| b.as_deref().unwrap().contains("\"enabled\":true")
                && a.as_deref().unwrap().contains("\"enabled\":false"))
    );
    assert_eq!(audit_rows(&app, "token.create", "user:vanhanh").await.len(), 2);
    assert!(has_before_and_after(
        &audit_rows(&app, "token.revoke", "user:vanhanh").await
    ));
}

#[tokio::test]
pub(crate) async fn editing_a_schedule_in_the_console_changes_the_manifest_and_deleting_it_removes_the_item()
{
    let app = spawn_app().await;
    let (p, cm) = (uid("p"), uid("c"));
    area(&app, &p, None).await;
    area(&app, &cm, Some(&p)).await;
    let id = uid("lc");
    device(&app, &id, &cm, "correct-horse-battery", None).await;
    let m1 = dispatch_support::media(&app, "approved", 20_000).await;
    let m2 = dispatch_support::media(&app, "approved", 30_000).await;
    let (s, created) = json(
        app.post_json(
            "/api/v1/schedules",
            &j!({"title": "Bản tin sáng", "media": [m1], "targets": {"areas": [cm]},
                 "rule": {"kind": "once", "at": local_in(2)}, "volume": 70}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let sid = created["schedule"]["id"].as_str().unwrap().to_string();
    user(&app, "vanhanh-tinh", "operator", &[&p], "mat-khau-van-hanh").await;
    let c = client();
    let op = login(&app, &c, "vanhanh-tinh", "mat-khau-van-hanh").await;

    let mut dev = connect(&app, &id, "correct-horse-battery", None)
        .await
        .expect("device connects");
    let desired = topic::desired(&DeviceId::parse(&id).unwrap());
    dev.subscribe(&desired).await;
    let has = |app: &TestApp, b: &[u8], f: &dyn Fn(&nguon_protocol::Manifest) -> bool| {
        manifest_of(app, &id, b).is_some_and(|m| f(&m))
    };
    dev.next_on(&desired, |b| {
        has(&app, b, &|m| {
            m.items.iter().any(|i| i.schedule_id == sid && i.volume == 70)
        })
    })
    .await;

    let (st, page) = get_page(&app, &op.cookie, &format!("/console/schedules/{sid}")).await;
    assert_eq!(st, 200);
    assert!(page.contains("Bản tin sáng") && page.contains("id=\"sched-describe\""));

    let at = local_in(3);
    let r = post_form(
        &app,
        &op,
        &format!("/console/schedules/{sid}"),
        &[
            ("title", "Bản tin trưa"),
            ("media", &m2),
            ("area", &cm),
            ("priority", "priority"),
            ("kind", "once"),
            ("at", &at),
            ("cron", ""),
            ("time_zone", "Asia/Ho_Chi_Minh"),
            ("volume", "55"),
            ("repeat", "1"),
            ("enabled", "1"),
        ],
        true,
    )
    .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let m = dev
        .next_on(&desired, |b| {
            has(&app, b, &|m| {
                m.items.iter().any(|i| i.schedule_id == sid && i.volume == 55)
            })
        })
        .await;
    let manifest = manifest_of(&app, &id, &m.payload).unwrap();
    assert!(
        manifest.media.iter().any(|x| x.sha256 == m2),
        "the new item is in the manifest"
    );
    assert!(
        !manifest.media.iter().any(|x| x.sha256 == m1),
        "the old item left the manifest"
    );
    let (_, stored) = json(app.get(&format!("/api/v1/schedules/{sid}")).await).await;
    assert_eq!(stored["title"], "Bản tin trưa");
    assert_eq!(stored["priority"], "priority");

    // A refused value is shown on the form and changes nothing.
    let r = post_form(
        &app,
        &op,
        &format!("/console/schedules/{sid}"),
        &[
            ("title", "x"),
            ("media", &m2),
            ("area", &cm),
            ("kind", "cron"),
            ("cron", "61 6 * * *"),
            ("volume", "55"),
        ],
        true,
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("61 6 * * *"));
    let (_, stored) = json(app.get(&format!("/api/v1/schedules/{sid}")).await).await;
    assert_eq!(stored["title"], "Bản tin trưa");

    // Delete with a confirm step.
    let (st, confirm) = get_page(&app, &op.cookie, &format!("/console/schedules/{sid}/delete")).await;
    assert_eq!(st, 200);
    assert!(confirm.contains("schedule-delete-confirm"));
    let r = post_form(&app, &op, &format!("/console/schedules/{sid}/delete"), &[], true).await;
    assert_eq!(r.status(), 303);
    dev.next_on(&desired, |b| {
        has(&app, b, &|m| !m.items.iter().any(|i| i.schedule_id == sid))
    })
    .await;
    assert_eq!(app.get(&format!("/api/v1/schedules/{sid}")).await.status(), 404);
    let entity = format!("schedule:{sid}");
    assert!(has_before_and_after(
        &audit_rows(&app, "schedule.update", &entity).await
    ));
    let del = audit_rows(&app, "schedule.delete", &entity).await;
    assert_eq!(del.len(), 1);
    assert!(del[0].0.as_deref().unwrap().contains("Bản tin trưa"));
}

#[tokio::test]
pub(crate) async fn an_area_with_children_is_not_deleted_and_a_bad_csv_line_is_shown_with_its_number() {
    let app = spawn_app().await;
    user(&app, "quantri", "admin", &[], "mat-khau-quan-tri").await;
    let c = client();
    let adm = login(&app, &c, "quantri", "mat-khau-quan-tri").await;
    let (p, cm) = (format!("p{}", random_suffix()), format!("c{}", random_suffix()));
    let r = post_form(
        &app,
        &adm,
        "/console/areas",
        &[
            ("code", &p),
            ("name", "Tỉnh Lào Cai"),
            ("level", "province"),
            ("parent", ""),
        ],
        true,
    )
    .await;
    assert_eq!(r.status(), 303);
    let r = post_form(
        &app,
        &adm,
        "/console/areas",
        &[
            ("code", &cm),
            ("name", "Xã Sa Pa"),
            ("level", "commune"),
            ("parent", &p),
        ],
        true,
    )
    .await;
    assert_eq!(r.status(), 303);
    let count = || async {
        sqlx::query("SELECT COUNT(*) AS n FROM areas")
            .fetch_one(&app.state().store.pool)
            .await
            .unwrap()
            .try_get::<i64, _>("n")
            .unwrap()
    };
    let before = count().await;
    let r = post_form(&app, &adm, &format!("/console/areas/{p}/delete"), &[], true).await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("còn 1 địa bàn con"));
    assert_eq!(count().await, before);
    assert_eq!(app.get(&format!("/api/v1/areas/{p}")).await.status(), 200);

    // Rename and move are audited with before and after.
    let r = post_form(
        &app,
        &adm,
        &format!("/console/areas/{cm}"),
        &[("name", "Phường Sa Pa"), ("level", "ward"), ("parent", &p)],
        true,
    )
    .await;
    assert_eq!(r.status(), 303);
    let (_, a) = json(app.get(&format!("/api/v1/areas/{cm}")).await).await;
    assert_eq!(a["name"], "Phường Sa Pa");
    let rows = audit_rows(&app, "area.update", &format!("area:{cm}")).await;
    assert!(
        rows.iter()
            .any(|(b, a)| b.as_deref().unwrap().contains("Xã Sa Pa")
                && a.as_deref().unwrap().contains("Phường Sa Pa"))
    );
    assert_eq!(
        audit_rows(&app, "area.create", &format!("area:{p}")).await.len(),
        1
    );

    // CSV: one good line, one bad one on line 3: nothing imported, the line number shown.
    let good = format!("g{}", random_suffix());
    let csv =
        format!("code,name,parent,level\n{good},Thôn Mới,{cm},village\nbad code!,Thôn Lỗi,{cm},village\n");
    let r = post_form(&app, &adm, "/console/areas/import", &[("csv", &csv)], true).await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("data-line=\"3\""), "{html}");
    assert!(!html.contains("data-line=\"2\""));
    assert_eq!(app.get(&format!("/api/v1/areas/{good}")).await.status(), 404);
    let ok = format!("code,name,parent,level\n{good},Thôn Mới,{cm},village\n");
    let r = post_form(&app, &adm, "/console/areas/import", &[("csv", &ok)], true).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.get(&format!("/api/v1/areas/{good}")).await.status(), 200);

    // Deleting a leaf works and is audited.
    let r = post_form(&app, &adm, &format!("/console/areas/{good}/delete"), &[], true).await;
    assert_eq!(r.status(), 303);
    assert_eq!(app.get(&format!("/api/v1/areas/{good}")).await.status(), 404);
    let del = audit_rows(&app, "area.delete", &format!("area:{good}")).await;
    assert!(del.len() == 1 && del[0].0.is_some());
}
