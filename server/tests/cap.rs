//! CAP 1.2 intake (issue 12 §4) against the real server: bad inputs each get their 4xx and issue
//! nothing (counted in the command table); a trusted Alert targets exactly the loudspeakers
//! inside its polygon plus those of the area whose geocode it names; Test and Exercise alerts do
//! not play (an Exercise only where an area takes exercises); an untrusted sender waits for an
//! approver; an Update keeps the alert id and replaces its command; a Cancel stops it; the CAP
//! document nguon serves reads back as CAP 1.2; every change is audited with its caller.

use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::common::{self, TestApp};
use crate::dispatch_support::{area, uid};

const TRUSTED: &str = "canhbao@nchmf.gov.vn";

/// Square polygon around (21.0, 105.8) ± 0.1°.
const POLYGON: &str = "20.9,105.7 20.9,105.9 21.1,105.9 21.1,105.7 20.9,105.7";

struct Doc<'a> {
    identifier: &'a str,
    sender: &'a str,
    status: &'a str,
    msg_type: &'a str,
    references: Option<String>,
    expires: chrono::DateTime<Utc>,
    area: String,
}

impl Doc<'_> {
    fn xml(&self) -> String {
        let refs = self
            .references
            .as_ref()
            .map(|r| format!("<references>{r}</references>"))
            .unwrap_or_default();
        let tz = chrono::FixedOffset::east_opt(7 * 3600).unwrap();
        let f = |t: chrono::DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%dT%H:%M:%S%:z").to_string();
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{}</identifier>
  <sender>{}</sender>
  <sent>{}</sent>
  <status>{}</status>
  <msgType>{}</msgType>
  <scope>Public</scope>
  {refs}
  <info>
    <language>vi-VN</language>
    <category>Met</category>
    <event>Lũ quét</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Observed</certainty>
    <expires>{}</expires>
    <headline>Cảnh báo lũ quét</headline>
    <instruction>Di chuyển lên vùng cao.</instruction>
    {}
  </info>
</alert>"#,
            self.identifier,
            self.sender,
            f(Utc::now()),
            self.status,
            self.msg_type,
            f(self.expires),
            self.area
        )
    }
}

fn doc<'a>(identifier: &'a str, area: String) -> Doc<'a> {
    Doc {
        identifier,
        sender: TRUSTED,
        status: "Actual",
        msg_type: "Alert",
        references: None,
        expires: Utc::now() + Duration::hours(1),
        area,
    }
}

fn polygon_area() -> String {
    format!("<area><areaDesc>Vùng trũng</areaDesc><polygon>{POLYGON}</polygon></area>")
}

pub(crate) async fn post(app: &TestApp, xml: &str) -> (u16, Value) {
    common::json(
        app.post_raw("/api/v1/alerts/cap", "application/cap+xml", xml.to_string())
            .await,
    )
    .await
}

pub(crate) async fn device_at(app: &TestApp, id: &str, area: &str, pos: Option<(f64, f64)>) {
    let mut req = json!({"id": id, "kind": "loudspeaker", "area": area, "password": "cap-test-password"});
    if let Some((lat, lon)) = pos {
        req["lat"] = lat.into();
        req["lon"] = lon.into();
    }
    let (s, b) = common::json(app.post_json("/api/v1/devices", &req).await).await;
    assert_eq!(s, 201, "{b}");
}

async fn commands(app: &TestApp) -> usize {
    nguon_server::store::commands::recent(&app.state().store, 10_000)
        .await
        .unwrap()
        .len()
}

async fn tracked_devices(app: &TestApp, alert: &str) -> (String, Vec<String>) {
    let (s, r) = common::json(app.get(&format!("/api/v1/alerts/{alert}")).await).await;
    assert_eq!(s, 200, "{r}");
    let mut ids: Vec<String> = r["tracking"]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["device_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    (r["id"].as_str().unwrap().to_string(), ids)
}

#[tokio::test]
async fn bad_cap_inputs_each_get_their_4xx_and_issue_nothing() {
    let app = common::spawn_app_with(|s| s.cap.trusted_senders = vec![TRUSTED.into()]).await;
    let p = uid("p");
    area(&app, &p, None).await;
    device_at(&app, &uid("lc"), &p, Some((21.0, 105.8))).await;
    let before = commands(&app).await;
    let good = doc("HN-OK-1", polygon_area()).xml();

    let r = app
        .post_raw("/api/v1/alerts/cap", "application/json", good.clone())
        .await;
    assert_eq!(r.status(), 415);
    let r = app
        .post_raw("/api/v1/alerts/cap", "text/plain", good.clone())
        .await;
    assert_eq!(r.status(), 415);

    let cases: Vec<(String, u16, &str, &str)> = vec![
        (
            good.replace("<identifier>HN-OK-1</identifier>", ""),
            422,
            "invalid_cap",
            "/alert/identifier",
        ),
        (
            good.replace("<status>Actual</status>", "<status>Real</status>"),
            422,
            "invalid_cap",
            "/alert/status",
        ),
        (
            good.replace(
                "20.9,105.7 20.9,105.9 21.1,105.9 21.1,105.7 20.9,105.7",
                "20.9,105.7 20.9,105.9 21.1,105.9",
            ),
            422,
            "invalid_cap",
            "/alert/info[1]/area[1]/polygon[1]",
        ),
        (
            good.replace("20.9,105.7 20.9,105.9", "NaN,105.7 20.9,105.9"),
            422,
            "invalid_cap",
            "/alert/info[1]/area[1]/polygon[1]",
        ),
        (
            good.replace(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                "<?xml version=\"1.0\"?><!DOCTYPE alert [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>",
            )
            .replace("Lũ quét</event>", "&x;</event>"),
            422,
            "invalid_cap",
            "/",
        ),
        (
            {
                let mut d = doc("HN-OLD", polygon_area());
                d.expires = Utc::now() - Duration::minutes(1);
                d.xml()
            },
            422,
            "expired",
            "",
        ),
        (
            {
                let mut d = doc("HN-UPD-NOREF", polygon_area());
                d.msg_type = "Update";
                d.xml()
            },
            422,
            "invalid_cap",
            "/alert/references",
        ),
        ("x".repeat(1_100_000), 413, "too_large", ""),
    ];
    for (xml, status, code, path) in cases {
        let (s, b) = post(&app, &xml).await;
        assert_eq!(s, status, "{b}");
        assert_eq!(b["error"]["code"], code, "{b}");
        assert!(
            b["error"]["message"].as_str().unwrap().starts_with(path),
            "{b} names {path}"
        );
    }
    assert_eq!(commands(&app).await, before, "no bad input issued anything");

    // The good one is issued once; the same identifier and sender again is a 409.
    let (s, b) = post(&app, &good).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(commands(&app).await, before + 1);
    let (s, b) = post(&app, &good).await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(commands(&app).await, before + 1);
}

#[tokio::test]
async fn polygon_and_geocode_targeting_update_cancel_and_approval() {
    let app = common::spawn_app_with(|s| s.cap.trusted_senders = vec![TRUSTED.into()]).await;
    let (p, g) = (uid("p"), uid("g"));
    area(&app, &p, None).await;
    area(&app, &g, None).await;
    let (in1, in2, out, nopos, geo) = (uid("in"), uid("in"), uid("out"), uid("np"), uid("geo"));
    device_at(&app, &in1, &p, Some((21.0, 105.8))).await;
    device_at(&app, &in2, &p, Some((20.95, 105.85))).await;
    device_at(&app, &out, &p, Some((21.2, 105.8))).await;
    device_at(&app, &nopos, &p, None).await;
    device_at(&app, &geo, &g, None).await;
    let (s, b) = common::json(
        app.put_json(
            &format!("/api/v1/areas/{g}/cap"),
            &json!({"geocodes": ["ISO3166-2=VN-02"]}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = common::json(
        app.put_json(&format!("/api/v1/areas/{g}/cap"), &json!({"geocodes": ["VN-02"]}))
            .await,
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (422, Some("invalid_geocode")),
        "{b}"
    );

    let areas = format!(
        "{}<area><areaDesc>Lào Cai</areaDesc><geocode><valueName>ISO3166-2</valueName><value>VN-02</value></geocode></area>",
        polygon_area()
    );
    let (s, a) = post(&app, &doc("HN-A-1", areas.clone()).xml()).await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(a["state"], "issued");
    assert_eq!(a["targets"]["devices"], 3, "{a}");
    let mut want_areas = vec![p.clone(), g.clone()];
    want_areas.sort();
    assert_eq!(a["targets"]["areas"], json!(want_areas));
    let id = a["id"].as_str().unwrap().to_string();
    let (cmd1, devices) = tracked_devices(&app, &id).await;
    let mut want = vec![in1.clone(), in2.clone(), geo.clone()];
    want.sort();
    assert_eq!(
        devices, want,
        "exactly the loudspeakers inside the polygon and of the geocoded area"
    );
    let (_, c) = common::json(app.get(&format!("/api/v1/commands/{cmd1}")).await).await;
    assert_eq!(c["command"]["item"]["priority"], "emergency", "{c}");
    assert_eq!(
        c["command"]["item"]["media"].as_array().unwrap().len(),
        2,
        "chime then speech"
    );

    // Test never plays; Exercise plays only where an area takes exercises.
    let before = commands(&app).await;
    let mut t = doc("HN-T-1", polygon_area());
    t.status = "Test";
    let (s, b) = post(&app, &t.xml()).await;
    assert_eq!((s, b["state"].as_str()), (201, Some("not_played")), "{b}");
    let mut x = doc("HN-X-1", areas.clone());
    x.status = "Exercise";
    let (s, b) = post(&app, &x.xml()).await;
    assert_eq!((s, b["state"].as_str()), (201, Some("not_played")), "{b}");
    assert_eq!(commands(&app).await, before);
    let (s, _) = common::json(
        app.put_json(
            &format!("/api/v1/areas/{g}/cap"),
            &json!({"geocodes": ["ISO3166-2=VN-02"], "exercise": true}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200);
    let mut x = doc("HN-X-2", areas.clone());
    x.status = "Exercise";
    let (s, b) = post(&app, &x.xml()).await;
    assert_eq!((s, b["state"].as_str()), (201, Some("issued")), "{b}");
    assert_eq!(
        b["targets"]["devices"], 1,
        "only the area that takes exercises: {b}"
    );

    // Update: same alert id, a new command on the new targets, the old one cancelled.
    let first_sent = {
        let (_, m) = common::json(app.get(&format!("/api/v1/alerts/{id}/messages")).await).await;
        m[0]["sent"].as_str().unwrap().to_string()
    };
    let mut u = doc("HN-A-1-U1", polygon_area());
    u.msg_type = "Update";
    u.references = Some(format!("{TRUSTED},HN-A-1,{first_sent}"));
    let (s, b) = post(&app, &u.xml()).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["id"], id.as_str(), "an Update continues the same alert");
    let (cmd2, devices) = tracked_devices(&app, &id).await;
    assert_ne!(cmd2, cmd1);
    let mut want = vec![in1.clone(), in2.clone()];
    want.sort();
    assert_eq!(devices, want);
    let (_, old) = common::json(app.get(&format!("/api/v1/commands/{cmd1}")).await).await;
    assert_eq!(old["tracking"]["counts"]["cancelled"], 3, "{old}");

    // Cancel: a stop to the current targets, the play-now cancelled for each.
    let mut c = doc("HN-A-1-C", polygon_area());
    c.msg_type = "Cancel";
    c.references = Some(format!("{TRUSTED},HN-A-1,{first_sent}"));
    let (s, b) = post(&app, &c.xml()).await;
    assert_eq!(s, 201, "{b}");
    let stop = b["command_id"].as_str().unwrap();
    let (_, st) = common::json(app.get(&format!("/api/v1/commands/{stop}")).await).await;
    assert_eq!(st["action"], "stop", "{st}");
    assert_eq!(st["command"]["item_id"], cmd2.as_str());
    let (_, cur) = common::json(app.get(&format!("/api/v1/commands/{cmd2}")).await).await;
    assert_eq!(cur["tracking"]["counts"]["cancelled"], 2, "{cur}");
    let (_, msgs) = common::json(app.get(&format!("/api/v1/alerts/{id}/messages")).await).await;
    let states: Vec<&str> = msgs
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["replaced", "cancelled", "issued"], "{msgs}");

    // An untrusted sender waits for an approver; approving issues it, audited with the caller.
    let mut w = doc("HN-W-1", polygon_area());
    w.sender = "someone@example.org";
    let (s, b) = post(&app, &w.xml()).await;
    assert_eq!((s, b["state"].as_str()), (202, Some("pending_approval")), "{b}");
    assert!(b["command_id"].is_null());
    let (_, pending) = common::json(app.get("/api/v1/alerts?state=pending_approval").await).await;
    let mid = pending[0]["id"].as_str().unwrap().to_string();
    let (s, b) = common::json(
        app.post_json(&format!("/api/v1/alerts/messages/{mid}/approve"), &json!({}))
            .await,
    )
    .await;
    assert_eq!((s, b["state"].as_str()), (201, Some("issued")), "{b}");
    let (s, _) = common::json(
        app.post_json(&format!("/api/v1/alerts/messages/{mid}/approve"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(s, 409, "decided once");
    let audit = nguon_server::store::audit::search(&app.state().store, &Default::default(), 1000)
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    for a in ["cap.issued", "cap.received", "cap.approved", "area.cap"] {
        assert!(actions.contains(&a), "{a} audited: {actions:?}");
    }

    // CAP out: the alert's document and a console-style emergency's both read back as CAP 1.2;
    // no Ack before delivery reached the threshold.
    let r = app.get(&format!("/api/v1/alerts/{id}.cap")).await;
    assert_eq!(r.status(), 200);
    let xml = r.text().await.unwrap();
    assert_eq!(
        nguon_server::domain::cap::parse(xml.as_bytes())
            .unwrap()
            .msg_type
            .as_str(),
        "Cancel"
    );
    let r = app.get(&format!("/api/v1/alerts/{cmd1}.cap")).await;
    assert_eq!(r.status(), 200, "a CAP alert's command is an emergency too");
    let parsed = nguon_server::domain::cap::parse(r.text().await.unwrap().as_bytes()).unwrap();
    assert_eq!(parsed.identifier, cmd1);
    let r = app.get(&format!("/api/v1/alerts/{id}/ack")).await;
    assert_eq!(r.status(), 404, "nobody has played it");
}

/// A local HTTP server: an Atom feed of three items (a valid CAP alert, an invalid one, and the
/// valid one's URL again), and the documents, counting how often each is fetched.
async fn feed_server(valid: String) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::routing::get;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let fetched = std::sync::Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let feed = format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <id>urn:test:cap-feed</id><title>Cảnh báo</title><updated>2026-12-03T07:00:00Z</updated>
  <entry><id>urn:test:1</id><title>Lũ</title><updated>2026-12-03T07:00:00Z</updated>
    <link rel="alternate" type="application/cap+xml" href="{base}/cap/1.xml"/></entry>
  <entry><id>urn:test:2</id><title>Hỏng</title><updated>2026-12-03T07:00:00Z</updated>
    <link href="{base}/cap/2.xml"/></entry>
  <entry><id>urn:test:3</id><title>Lũ (lại)</title><updated>2026-12-03T07:00:00Z</updated>
    <link type="application/cap+xml" href="{base}/cap/1.xml"/></entry>
</feed>"#
    );
    let f2 = fetched.clone();
    let app = axum::Router::new()
        .route("/feed.xml", get(move || async move { feed }))
        .route(
            "/cap/1.xml",
            get(move || async move {
                f2.fetch_add(1, Ordering::SeqCst);
                valid
            }),
        )
        .route("/cap/2.xml", get(|| async { "<alert>not CAP</alert>" }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("{base}/feed.xml"), fetched)
}

#[tokio::test]
async fn a_polled_feed_is_ingested_like_a_post_once_per_item() {
    let p = uid("p");
    let valid = doc("FEED-1", polygon_area()).xml();
    let (url, fetched) = feed_server(valid).await;
    let app = common::spawn_app_with(|s| {
        s.cap.trusted_senders = vec![TRUSTED.into()];
        s.cap.feeds = vec![url.clone()];
        s.cap.poll_interval_s = 1;
    })
    .await;
    area(&app, &p, None).await;
    device_at(&app, &uid("in"), &p, Some((21.0, 105.8))).await;
    let got = crate::dispatch_support::eventually("the feed's alert", || async {
        let (_, all) = common::json(app.get("/api/v1/alerts").await).await;
        all.as_array()
            .unwrap()
            .iter()
            .find(|m| m["identifier"] == "FEED-1")
            .cloned()
    })
    .await;
    assert_eq!(got["received_by"], "cap-feed");
    assert_eq!(got["sender"], TRUSTED);
    // Let a few more rounds pass: still one message, and its URL is not fetched every round.
    let n = fetched.load(std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(3_500)).await;
    let (_, all) = common::json(app.get("/api/v1/alerts").await).await;
    let count = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["identifier"] == "FEED-1")
        .count();
    assert_eq!(count, 1, "deduplicated by identifier and sender");
    assert_eq!(
        fetched.load(std::sync::atomic::Ordering::SeqCst),
        n,
        "a received item is not fetched again"
    );
    let audit = nguon_server::store::audit::search(&app.state().store, &Default::default(), 1000)
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.actor == "cap-feed" && e.action.starts_with("cap."))
    );
}

#[tokio::test]
async fn the_console_lists_renders_and_approves_alerts_and_sets_an_areas_geocodes() {
    use crate::console_admin::{get_page, post_form};
    use crate::console_support::{client, login, user};
    let app = common::spawn_app().await;
    let p = uid("p");
    area(&app, &p, None).await;
    device_at(&app, &uid("in"), &p, Some((21.0, 105.8))).await;
    let name = app.unique("duyet");
    user(&app, &name, "admin", &[], "mat-khau-quan-tri-1").await;
    let s = login(&app, &client(), &name, "mat-khau-quan-tri-1").await;

    // The area form sets geocodes and the exercise flag.
    let r = post_form(
        &app,
        &s,
        &format!("/console/areas/{p}/cap"),
        &[("geocodes", "ISO3166-2=VN-02\nSAME=006109"), ("exercise", "on")],
        true,
    )
    .await;
    assert_eq!(r.status(), 303);
    let (_, c) = common::json(app.get(&format!("/api/v1/areas/{p}/cap")).await).await;
    assert_eq!(
        c,
        json!({"geocodes": ["ISO3166-2=VN-02", "SAME=006109"], "exercise": true, "languages": ["vi"]})
    );
    let (st, html) = get_page(&app, &s.cookie, "/console/areas").await;
    assert_eq!(st, 200);
    assert!(html.contains("SAME=006109"), "the form shows the geocodes");

    // An untrusted alert waits: listed, rendered, approved from the console.
    let (st, b) = post(&app, &doc("CONSOLE-1", polygon_area()).xml()).await;
    assert_eq!((st, b["state"].as_str()), (202, Some("pending_approval")), "{b}");
    let (_, pending) = common::json(app.get("/api/v1/alerts?state=pending_approval").await).await;
    let mid = pending[0]["id"].as_str().unwrap().to_string();
    for page in ["/console/alerts", "/console/approvals"] {
        let (st, html) = get_page(&app, &s.cookie, page).await;
        assert_eq!(st, 200, "{page}");
        assert!(
            html.contains(&format!("/console/alerts/{mid}")),
            "{page} links the waiting alert"
        );
    }
    let (st, html) = get_page(&app, &s.cookie, &format!("/console/alerts/{mid}")).await;
    assert_eq!(st, 200);
    assert!(
        html.contains("Cảnh báo lũ quét") && html.contains("Di chuyển lên vùng cao."),
        "{html}"
    );
    assert!(html.contains("Chờ phê duyệt") && html.contains("cap-approve"));
    let r = post_form(&app, &s, &format!("/console/alerts/{mid}/approve"), &[], true).await;
    assert_eq!(r.status(), 303);
    let (_, html) = get_page(&app, &s.cookie, &format!("/console/alerts/{mid}")).await;
    assert!(
        html.contains("Đã phát lệnh") && !html.contains("cap-approve"),
        "{html}"
    );
    let r = post_form(&app, &s, &format!("/console/alerts/{mid}/reject"), &[], false).await;
    assert_eq!(r.status(), 403, "without the CSRF token");
}
