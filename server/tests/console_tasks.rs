//! The console as a province uses it (issue 13), in one headless Chromium session: an author who
//! is also an approver cannot approve their own clip (four-eyes) and the audit log names both;
//! an operator schedules "approved clip to two communes every weekday at 06:30" in at most 9
//! clicks plus typing the title, and the schedule is right; a commune operator's calendar shows
//! the inherited province-wide 06:30 item; publishing a bulletin twice leaves one loudspeaker
//! schedule; at 390 px no console page is wider than the screen; and no page logs a browser
//! error. Screenshots go to `target/test-artifacts/console-tasks/*.png`.

use crate::common;
use crate::console_support;
use crate::dispatch_support;

use std::time::Duration;

use common::{TestApp, json, spawn_app};
use console_support::*;
use dispatch_support::uid;
use serde_json::{Value, json};
use sqlx::Row;

use crate::webdriver::Driver;

const WAIT: Duration = Duration::from_secs(30);

async fn created(app: &TestApp, path: &str, body: Value) -> Value {
    let (s, b) = json(app.post_json(path, &body).await).await;
    assert!(s == 201 || s == 200 || s == 202, "{path}: {s} {b}");
    b
}

/// A clip uploaded with `token` (a user's API token), submitted; returns its sha256.
async fn clip_by(app: &TestApp, token: &str, title: &str) -> String {
    let boundary = "----nguon-console-tasks";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n{title}\r\n--{boundary}\r\n\
         Content-Disposition: form-data; name=\"file\"; filename=\"clip.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
    )
    .into_bytes();
    // Different lengths, so every clip has its own sha256.
    body.extend_from_slice(&wav(2 + title.len() as u32 % 7));
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let r = client()
        .post(app.url("/api/v1/media"))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let (s, b) = json(r).await;
    assert!(s == 201 || s == 200, "upload: {s} {b}");
    let sha = b["sha256"].as_str().unwrap().to_string();
    let r = client()
        .post(app.url(&format!("/api/v1/media/{sha}/submit")))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    sha
}

/// Click `css` and count it.
async fn click(d: &Driver, clicks: &mut u32, css: &str) {
    d.click(css).await;
    *clicks += 1;
}

#[tokio::test]
async fn a_province_runs_its_console_tasks_in_a_browser_on_a_desktop_and_a_phone() {
    let app = spawn_app().await;
    let (p, xa, xb, xc) = (uid("tinh"), uid("xa-a"), uid("xa-b"), uid("xa-c"));
    created(
        &app,
        "/api/v1/areas",
        json!({"code": p, "name": "Tỉnh Lào Cai", "level": "province"}),
    )
    .await;
    for (code, name) in [(&xa, "Xã Bản Lầu"), (&xb, "Xã Bản Phiệt"), (&xc, "Xã Cốc San")] {
        created(
            &app,
            "/api/v1/areas",
            json!({"code": code, "name": name, "parent": p, "level": "commune"}),
        )
        .await;
    }
    let (da, db, board) = (uid("lc"), uid("lc"), uid("bang"));
    for (id, area, lat) in [(&da, &xa, 22.50), (&db, &xb, 22.52)] {
        created(&app, "/api/v1/devices", json!({"id": id, "kind": "loudspeaker", "area": area, "name": format!("Cụm loa {id}"), "password": "device-password-1",
                                               "lat": lat, "lon": 103.95})).await;
    }
    created(&app, "/api/v1/devices", json!({"id": board, "kind": "board", "area": xa, "name": "Bảng tin UBND xã", "password": "device-password-2",
                                           "lat": 22.51, "lon": 103.96})).await;
    // A commune clerk holds two roles on one account; the author below also approves.
    let tacgia = created(
        &app,
        "/api/v1/users",
        json!({"username": "tacgia", "display_name": "Tác giả", "role": "editor",
        "roles": ["approver"], "password": "mat-khau-tac-gia"}),
    )
    .await;
    assert_eq!(tacgia["extra_roles"], json!(["approver"]), "{tacgia}");
    user(&app, "lanhdao", "approver", &[], "mat-khau-lanh-dao").await;
    user(&app, "vanhanh", "operator", &[], "mat-khau-van-hanh").await;
    user(&app, "xa-a-vanhanh", "operator", &[&xa], "mat-khau-xa-a-01").await;
    user(&app, "quantri", "admin", &[], "mat-khau-quan-tri").await;
    let t = token(&app, tacgia["id"].as_str().unwrap()).await;
    let sha = clip_by(&app, &t, "Tin phòng chống lũ").await;

    let d = Driver::start(1366, 768, "console-tasks").await;

    // 1. Four eyes: the author cannot approve their own clip; another approver can, and the
    //    audit log names both.
    d.login(&app.base, "tacgia", "mat-khau-tac-gia").await;
    d.goto(&app.url("/console/approvals")).await;
    d.click(&format!("button.approve[data-sha='{sha}']")).await;
    d.wait_for(
        "the four-eyes refusal",
        "return !!document.getElementById('error-message')",
        WAIT,
    )
    .await;
    let text = d.text().await;
    assert!(text.contains("Người duyệt phải khác người soạn"), "{text}");
    assert!(
        text.contains("Lịch phát"),
        "the error page keeps the menu: {text}"
    );
    d.screenshot("01-four-eyes-refused").await;
    let (_, m) = json(app.get(&format!("/api/v1/media/{sha}")).await).await;
    assert_eq!(m["status"], "pending");
    d.logout().await;
    d.login(&app.base, "lanhdao", "mat-khau-lanh-dao").await;
    d.goto(&app.url("/console/approvals")).await;
    d.click(&format!("button.approve[data-sha='{sha}']")).await;
    d.wait_for(
        "the approval's confirmation",
        "return !!document.getElementById('flash')",
        WAIT,
    )
    .await;
    let (_, m) = json(app.get(&format!("/api/v1/media/{sha}")).await).await;
    assert_eq!(m["status"], "approved");
    let row =
        sqlx::query("SELECT actor, after_json FROM audit_log WHERE action = 'media.approve' AND entity = $1")
            .bind(format!("media:{sha}"))
            .fetch_one(&app.state().store.pool)
            .await
            .unwrap();
    let after: Value = serde_json::from_str(&row.get::<String, _>("after_json")).unwrap();
    assert_eq!(row.get::<String, _>("actor"), "lanhdao");
    assert_eq!(
        (after["authors"].clone(), after["reviewed_by"].clone()),
        (json!(["tacgia"]), json!("lanhdao"))
    );
    d.logout().await;

    // 2. The core task, counted from the dashboard: the approved clip to two communes every
    //    weekday at 06:30.
    d.login(&app.base, "vanhanh", "mat-khau-van-hanh").await;
    let mut clicks = 0;
    click(&d, &mut clicks, "#main-nav a[href='/console/schedules']").await;
    d.wait_for(
        "the schedule form",
        "return !!document.getElementById('schedule-form')",
        WAIT,
    )
    .await;
    d.type_into("#sched-title", "Bản tin sáng").await;
    click(&d, &mut clicks, "#sched-media").await;
    click(&d, &mut clicks, &format!("#sched-media option[value='{sha}']")).await;
    click(&d, &mut clicks, &format!("input[name=area][value='{xa}']")).await;
    click(&d, &mut clicks, &format!("input[name=area][value='{xb}']")).await;
    click(&d, &mut clicks, "#days-weekdays").await;
    click(&d, &mut clicks, "#time-0630").await;
    d.wait_for(
        "the plain-language preview",
        "return document.getElementById('preview-describe').textContent.includes('Hằng tuần vào Thứ Hai')",
        WAIT,
    )
    .await;
    let preview = d
        .eval("return document.getElementById('sched-preview').innerText")
        .await;
    assert!(
        preview.as_str().unwrap().contains("lúc 06:30")
            && preview.as_str().unwrap().contains("Xã Bản Lầu, Xã Bản Phiệt"),
        "{preview}"
    );
    d.screenshot("02-core-task-form").await;
    click(&d, &mut clicks, "#sched-save").await;
    d.wait_for(
        "the week with the new schedule",
        "return location.pathname === '/console/calendar' && !!document.getElementById('flash') && document.body.innerText.includes('Bản tin sáng')",
        WAIT,
    )
    .await;
    assert!(clicks <= 9, "the core task took {clicks} clicks");
    d.screenshot("03-core-task-calendar").await;
    let (_, list) = json(app.get("/api/v1/schedules").await).await;
    let s = list
        .as_array()
        .or_else(|| list["schedules"].as_array())
        .unwrap()
        .iter()
        .find(|s| s["title"] == "Bản tin sáng")
        .cloned()
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(s["rule"], json!({"kind": "cron", "cron": "30 6 * * 1-5"}));
    let mut areas: Vec<String> = serde_json::from_value(s["targets"]["areas"].clone()).unwrap();
    areas.sort();
    let mut want = vec![xa.clone(), xb.clone()];
    want.sort();
    assert_eq!(areas, want);
    assert_eq!(
        (s["media"].clone(), s["time_zone"].clone()),
        (json!([sha]), json!("Asia/Ho_Chi_Minh"))
    );

    // A one-off in the past is refused next to its field, in Vietnamese, with the input kept.
    d.goto(&app.url("/console/schedules")).await;
    d.type_into("#sched-title", "Lỡ giờ").await;
    d.click(&format!("input[name=area][value='{xa}']")).await;
    d.click("#mode-once").await;
    d.eval("document.getElementById('sched-at').value = '2020-01-01T06:30'; return true")
        .await;
    d.click("#sched-save").await;
    d.wait_for(
        "the refusal beside the field",
        "return !!document.getElementById('at-error')",
        WAIT,
    )
    .await;
    let v = d.eval("return [document.getElementById('sched-title').value, document.getElementById('at-error').innerText]").await;
    assert_eq!(v[0], "Lỡ giờ");
    assert!(v[1].as_str().unwrap().contains("Thời điểm phát đã qua"), "{v}");
    d.logout().await;

    // 3. A commune operator sees the province-wide 06:30 item that reaches their speakers,
    //    marked as inherited, and the two-commune schedule too.
    created(
        &app,
        "/api/v1/schedules",
        json!({"title": "Bản tin tỉnh 06:30", "media": [sha], "targets": {"areas": [p]},
        "rule": {"kind": "cron", "cron": "30 6 * * *"}}),
    )
    .await;
    d.login(&app.base, "xa-a-vanhanh", "mat-khau-xa-a-01").await;
    // The week of the weekday 06:30 schedule's next occurrence (on a Saturday this week has
    // none left), as the form's redirect shows it.
    d.goto(&app.url(&format!(
        "/console/calendar?view=week&date={}",
        next_weekday_0630()
    )))
    .await;
    let cal = d.text().await;
    assert!(
        cal.contains("Bản tin tỉnh 06:30") && cal.contains("Bản tin sáng"),
        "{cal}"
    );
    assert!(
        cal.contains("Kế thừa") && cal.contains("Thứ Hai") && cal.contains("Tỉnh Lào Cai"),
        "{cal}"
    );
    assert!(!cal.contains(&p), "area names, not codes: {cal}");
    let inherited = d
        .eval("return Array.from(document.querySelectorAll('li.occ.inherited a')).map(a => a.textContent)")
        .await;
    assert!(
        inherited.to_string().contains("06:30 Bản tin tỉnh 06:30"),
        "{inherited}"
    );
    d.screenshot("04-commune-calendar").await;
    d.click("li.occ.inherited a").await;
    d.wait_for(
        "the inherited schedule, read-only",
        "return !!document.getElementById('inherited-note')",
        WAIT,
    )
    .await;
    d.logout().await;

    // 4. Publishing a bulletin twice (and reloading the result) leaves one schedule.
    let b = created(
        &app,
        "/api/v1/bulletins",
        json!({"areas": [xa], "variants": [{"language": "vi", "title": "Lịch tiêm chủng",
        "body": "Tiêm chủng tại trạm y tế xã.", "audio_sha256": sha}]}),
    )
    .await;
    let bid = b["id"].as_str().unwrap().to_string();
    created(&app, &format!("/api/v1/bulletins/{bid}/submit"), json!({})).await;
    created(&app, &format!("/api/v1/bulletins/{bid}/approve"), json!({})).await;
    d.login(&app.base, "vanhanh", "mat-khau-van-hanh").await;
    for round in 0..2 {
        d.goto(&app.url(&format!("/console/bulletins/{bid}"))).await;
        d.eval(&format!(
            "document.querySelector('#publish-areas option[value=\"{xa}\"]').selected = true; return true"
        ))
        .await;
        d.click("#publish").await;
        d.wait_for(
            "the publication's confirmation",
            "return !!document.getElementById('flash')",
            WAIT,
        )
        .await;
        let text = d.text().await;
        assert_eq!(
            text.contains("không tạo trùng"),
            round == 1,
            "round {round}: {text}"
        );
        d.eval("location.reload(); return true").await;
        d.wait_for(
            "the reloaded page",
            "return document.readyState === 'complete' && !!document.getElementById('already-published')",
            WAIT,
        )
        .await;
    }
    let n: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM schedules WHERE title LIKE 'Bản tin: Lịch tiêm chủng%'")
            .fetch_one(&app.state().store.pool)
            .await
            .unwrap()
            .get("n");
    assert_eq!(n, 1, "publishing twice leaves one schedule");

    // "Dừng phát" asks first, then shows the command's result; a board has no loudspeaker
    // controls.
    d.goto(&app.url(&format!("/console/devices/{da}"))).await;
    d.click("#cmd-stop").await;
    d.wait_for(
        "the stop confirmation",
        "return !!document.getElementById('stop-confirm')",
        WAIT,
    )
    .await;
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM commands")
        .fetch_one(&app.state().store.pool)
        .await
        .unwrap()
        .get("n");
    assert_eq!(n, 0, "nothing is sent before the confirmation");
    d.click("#cmd-stop-confirm").await;
    d.wait_for(
        "the command's result",
        "return location.pathname.startsWith('/console/commands/') && !!document.getElementById('flash') && !!document.getElementById('live-tracking')",
        WAIT,
    )
    .await;
    let command_page = d.path().await;
    d.goto(&app.url(&format!("/console/devices/{board}"))).await;
    assert_eq!(
        d.eval("return [!!document.getElementById('board-note'), !!document.getElementById('cmd-stop'), !!document.getElementById('cmd-volume')]")
            .await,
        json!([true, false, false])
    );
    d.logout().await;

    // 5. Every page, as an admin, on a desktop and on a 390 px phone: no horizontal overflow,
    //    no browser error.
    d.login(&app.base, "quantri", "mat-khau-quan-tri").await;
    let mut pages: Vec<String> = [
        "/console",
        "/console/media",
        "/console/approvals",
        "/console/bulletins",
        "/console/bulletins/new",
        "/console/schedules",
        "/console/calendar",
        "/console/calendar?view=day",
        "/console/devices",
        "/console/commands",
        "/console/areas",
        "/console/reports",
        "/console/users",
        "/console/audit",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    pages.push(format!("/console/media/{sha}"));
    pages.push(format!("/console/bulletins/{bid}"));
    pages.push(format!("/console/schedules/{}", s["id"].as_str().unwrap()));
    pages.push(format!("/console/devices/{da}"));
    pages.push(format!("/console/devices/{board}"));
    pages.push(format!("/console/devices/{da}/edit"));
    pages.push(format!("/console/users/{}", tacgia["id"].as_str().unwrap()));
    pages.push(command_page.split('?').next().unwrap().to_string());
    let _ = d.browser_errors(&[]).await; // what came before this walk
    for (w, h) in [(1366, 768), (390, 844)] {
        d.resize(w, h).await;
        for path in &pages {
            d.goto(&app.url(path)).await;
            d.wait_for(
                &format!("{path} loaded"),
                "return document.readyState === 'complete'",
                WAIT,
            )
            .await;
            let dims = d
                .eval("return [document.documentElement.scrollWidth, window.innerWidth, document.title]")
                .await;
            assert!(
                dims[0].as_u64() <= dims[1].as_u64(),
                "{path} at {w} px is {} px wide ({})",
                dims[0],
                dims[2]
            );
            let errors = d.browser_errors(&[]).await;
            assert!(errors.is_empty(), "{path} at {w} px: {errors:?}");
        }
    }
    // The phone menu is folded, and opens.
    d.goto(&app.url("/console")).await;
    let shown = "return getComputedStyle(document.getElementById('main-nav')).display !== 'none'";
    assert_eq!(d.eval(shown).await, json!(false));
    d.click("#menu-toggle").await;
    assert_eq!(d.eval(shown).await, json!(true));
    d.screenshot("05-phone-menu").await;
    d.goto(&app.url("/console/devices")).await;
    d.wait_for(
        "the map's markers",
        "return document.querySelectorAll('#device-map .leaflet-interactive').length >= 3",
        WAIT,
    )
    .await;
    d.screenshot("06-phone-devices-map").await;
    assert!(d.browser_errors(&[]).await.is_empty());
}

/// The local date (Asia/Ho_Chi_Minh) of the next Monday-to-Friday 06:30 from now.
fn next_weekday_0630() -> String {
    use chrono::{Datelike, Duration, TimeZone, Utc, Weekday};
    let tz = chrono_tz::Asia::Ho_Chi_Minh;
    let now = Utc::now().with_timezone(&tz);
    (0..8)
        .map(|d| now.date_naive() + Duration::days(d))
        .find(|day| {
            let at = tz
                .from_local_datetime(&day.and_hms_opt(6, 30, 0).unwrap())
                .unwrap();
            !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && at > now
        })
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}
