//! Issue 15, end to end in a real headless Chromium at 390×844: an organisation's contributor
//! logs in and submits content for a policy and a commune; the Department's approver receives
//! and approves it in the editorial queue (which links the draft bulletin to the policy's current
//! stage); the bulletin passes its own review and is published; the commune's board page shows
//! it inside the screen, and a loudspeaker (a fake device on MQTT, as agents do) gets it in its
//! manifest and reports the proof of play, which the policy's coverage then counts. Skipped,
//! saying why, only when Chromium or chromedriver is not installed. Screenshots go to
//! `target/test-artifacts/contributor/*.png`.

use std::time::Duration;

use chrono::Utc;
use nguon_protocol::{DeviceId, Event, EventBatch, EventBody, PlayOutcome, ProofOfPlay, topic};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{self, TestApp};
use crate::console_support::user;
use crate::dispatch_support::{area, connect, device, eventually, has_item, open_manifest, uid};
use crate::webdriver::Driver;

const WAIT: Duration = Duration::from_secs(30);

async fn ok(app: &TestApp, path: &str, body: Value) -> Value {
    let (s, b) = common::json(app.post_json(path, &body).await).await;
    assert!(s == 200 || s == 201, "{path}: {s} {b}");
    b
}

/// Log in through the form as `username` (a contributor lands on its submissions).
async fn login_to(d: &Driver, app: &TestApp, username: &str, password: &str, lands: &str) {
    d.goto(&app.url("/console/login")).await;
    d.type_into("#username", username).await;
    d.type_into("#password", password).await;
    d.click("#login").await;
    d.wait_for(
        "the landing page",
        &format!("return location.pathname === '{lands}'"),
        WAIT,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contributor_submits_for_a_policy_the_editor_approves_and_it_reaches_a_board_and_a_speaker() {
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        if !std::path::Path::new(tool).exists() {
            eprintln!("skipped: {tool} is not installed (apt-get install chromium chromium-driver)");
            return;
        }
    }
    let app = common::spawn_app().await;
    let p = uid("tinh");
    area(&app, &p, None).await;
    let xa = uid("xa");
    area(&app, &xa, Some(&p)).await;
    let policy = ok(
        &app,
        "/api/v1/policies",
        json!({"title": "Hỗ trợ bảo hiểm y tế hộ cận nghèo", "issuer": "UBND tỉnh", "field": "y tế",
               "areas": [xa], "stage": "in_force"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The organisation, its contributor, the Department's approver.
    let org = ok(
        &app,
        "/api/v1/organisations",
        json!({"name": app.unique("Sở Y tế"), "kind": "department"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ctv = app.unique("ctv");
    let ctv_id = user(&app, &ctv, "contributor", &[], "mat-khau-cong-tac").await;
    let r = app
        .post_json(
            &format!("/api/v1/organisations/{org}/members"),
            &json!({"user_id": ctv_id}),
        )
        .await;
    assert_eq!(r.status(), 204);
    let leader = app.unique("lanhdao");
    user(&app, &leader, "approver", &[], "mat-khau-lanh-dao").await;
    // The commune's board and loudspeaker.
    let screen = app.unique("bang");
    ok(
        &app,
        "/api/v1/devices",
        json!({"id": screen, "kind": "board", "area": xa}),
    )
    .await;
    sqlx::query("UPDATE devices SET board_token_hash = $1 WHERE id = $2")
        .bind(hex::encode(Sha256::digest(b"kiosk-token")))
        .bind(screen.clone())
        .execute(&app.state().store.pool)
        .await
        .unwrap();
    let speaker = uid("loa");
    device(&app, &speaker, &xa, "speaker-password-1", None).await;
    let mut dev = connect(&app, &speaker, "speaker-password-1", None)
        .await
        .expect("the loudspeaker connects");
    let did = DeviceId::parse(&speaker).unwrap();
    dev.subscribe(&topic::desired(&did)).await;

    // 1. The contributor submits from a phone.
    let title = "Đăng ký bảo hiểm y tế cho hộ cận nghèo";
    let d = Driver::start(390, 844, "contributor").await;
    d.resize(390, 844).await;
    login_to(&d, &app, &ctv, "mat-khau-cong-tac", "/console/submissions").await;
    d.type_into("#submission-form input[name=title]", title).await;
    d.type_into(
        "#submission-form textarea[name=body]",
        "Hộ cận nghèo được hỗ trợ 70 % mức đóng. Đăng ký tại UBND xã trước ngày 31/12.",
    )
    .await;
    let picked = d
        .eval(&format!(
            "var s = document.getElementById('sub-policy'); s.value = '{policy}'; return s.value"
        ))
        .await;
    assert_eq!(picked, json!(policy), "the form offers the policy");
    d.click(&format!("#submission-form input[name=areas][value='{xa}']"))
        .await;
    let dims = d
        .eval("return [document.documentElement.scrollWidth, window.innerWidth]")
        .await;
    assert!(dims[0].as_u64() <= dims[1].as_u64(), "fits a phone: {dims}");
    d.screenshot("1-submit").await;
    d.click("#submission-form button[type=submit]").await;
    d.wait_for(
        "the submission page",
        "var s = document.getElementById('sub-status'); return !!s && s.dataset.status === 'submitted'",
        WAIT,
    )
    .await;
    let sub = d.path().await;
    let sub = sub
        .trim_start_matches("/console/submissions/")
        .split('?')
        .next()
        .unwrap()
        .to_string();
    // Log out (a contributor's logout used to be redirected to its submissions like any other
    // console page, so the session stayed open).
    d.eval("document.getElementById('logout').click(); return true")
        .await;
    d.wait_for(
        "the login page",
        "return location.pathname === '/console/login'",
        WAIT,
    )
    .await;

    // 2. The approver receives and approves it in the editorial queue.
    d.login(&app.base, &leader, "mat-khau-lanh-dao").await;
    d.goto(&app.url("/console/submissions")).await;
    d.click(&format!("a[href='/console/submissions/{sub}']")).await;
    d.wait_for(
        "the queue item",
        "return !!document.getElementById('receive')",
        WAIT,
    )
    .await;
    d.click("#receive").await;
    d.wait_for(
        "received",
        "var s = document.getElementById('sub-status'); return !!s && s.dataset.status === 'received'",
        WAIT,
    )
    .await;
    d.click("#approve").await;
    d.wait_for(
        "approved",
        "var s = document.getElementById('sub-status'); return !!s && s.dataset.status === 'approved'",
        WAIT,
    )
    .await;
    d.screenshot("2-approved").await;
    let (_, s) = common::json(app.get(&format!("/api/v1/submissions/{sub}")).await).await;
    let bulletin = s["bulletin_id"].as_str().expect("a draft bulletin").to_string();

    // 3. The bulletin's own review (another person than its maker, the approver), then published
    //    to the commune's boards and loudspeakers.
    for step in ["submit", "approve"] {
        ok(&app, &format!("/api/v1/bulletins/{bulletin}/{step}"), json!({})).await;
    }
    ok(
        &app,
        &format!("/api/v1/bulletins/{bulletin}/publish"),
        json!({"speakers": true}),
    )
    .await;

    // 4. The board page shows it, inside the screen.
    d.goto(&app.url(&format!("/board/{screen}?token=kiosk-token")))
        .await;
    d.wait_for(
        "the bulletin on the board",
        &format!("return document.getElementById('title').textContent === '{title}'"),
        WAIT,
    )
    .await;
    let rect = d
        .eval(
            "var r = document.getElementById('title').getBoundingClientRect(); \
             return [r.left, r.top, r.right, r.bottom, r.width, r.height, window.innerWidth, window.innerHeight]",
        )
        .await;
    let v: Vec<f64> = rect
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!(
        v[4] > 0.0 && v[5] > 0.0 && v[0] >= 0.0 && v[1] >= 0.0 && v[2] <= v[6] && v[3] <= v[7],
        "the title is on screen: {rect}"
    );
    d.screenshot("3-board").await;

    // 5. The loudspeaker gets it in its manifest and proves the play.
    let schedule: String = eventually("the bulletin's speech schedule", || {
        let app = &app;
        let bulletin = bulletin.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT schedule_id FROM bulletin_speech WHERE bulletin_id = $1 AND schedule_id IS NOT NULL",
            )
            .bind(bulletin)
            .fetch_optional(&app.state().store.pool)
            .await
            .unwrap()
        }
    })
    .await;
    let m = dev
        .next_on(&topic::desired(&did), |b| has_item(b, &schedule))
        .await;
    let manifest = open_manifest(&app, &speaker, &m.payload);
    let item = manifest
        .items
        .iter()
        .find(|i| i.schedule_id == schedule)
        .unwrap()
        .clone();
    let now = Utc::now();
    let batch = EventBatch {
        v: 1,
        device: did.clone(),
        sent_at: now,
        events: vec![Event {
            id: uuid::Uuid::new_v4(),
            at: now,
            body: EventBody::Play(ProofOfPlay {
                item_id: item.id.clone(),
                schedule_id: item.schedule_id.clone(),
                occurrence_at: item.starts_at,
                sha256: item.media[0].clone(),
                priority: item.priority,
                started_at: Some(now),
                ended_at: Some(now),
                outcome: PlayOutcome::Played,
                reason: None,
                max_rms_dbfs: Some(-14),
                silent: false,
                relay: None,
            }),
        }],
    };
    dev.publish(&topic::events(&did), batch.seal(None).to_bytes(), false)
        .await;
    let cov = eventually("the play in the policy's coverage", || {
        let app = &app;
        let policy = policy.clone();
        async move {
            let (_, c) = common::json(app.get(&format!("/api/v1/policies/{policy}/coverage")).await).await;
            (c["stages"][2]["plays"].as_i64() == Some(1)).then_some(c)
        }
    })
    .await;
    assert_eq!(cov["stages"][2]["stage"], "in_force", "{cov}");
    assert_eq!(cov["stages"][2]["devices"], 1, "{cov}");
    assert_eq!(cov["links"][0]["ref_id"], json!(bulletin), "{cov}");
    let errors = d.browser_errors(&["favicon.ico"]).await;
    assert!(errors.is_empty(), "{errors:?}");
}
