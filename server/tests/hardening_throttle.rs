//! Issue 11 item 13: login and API throttling. Spraying many usernames from one address is
//! stopped by that address's budget (429 before any password is checked) while the real admin
//! logs in from another address; five bad passwords for a user from one address lock that user
//! there only; the API answers 429 past its per-address budget; and `X-Forwarded-For` counts
//! only from a configured trusted proxy (a client cannot spoof its way past the budget).

use std::net::IpAddr;

use crate::common::{self, TOKEN, TestApp, json as body};
use crate::console_support::{FormExt, hidden, set_cookie};

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(Some(ip.parse::<IpAddr>().unwrap()))
        .build()
        .unwrap()
}

async fn login_as(app: &TestApp, c: &reqwest::Client, user: &str, password: &str, xff: Option<&str>) -> u16 {
    let mut page = c.get(app.url("/console/login"));
    if let Some(x) = xff {
        page = page.header("x-forwarded-for", x);
    }
    let page = page.send().await.unwrap();
    let cookie = set_cookie(&page, "nguon_login_csrf").expect("login csrf cookie");
    let field = hidden(&page.text().await.unwrap(), "csrf");
    let mut r = c
        .post(app.url("/console/login"))
        .header("cookie", format!("nguon_login_csrf={cookie}"))
        .form_pairs(&[
            ("csrf", field.as_str()),
            ("username", user),
            ("password", password),
        ]);
    if let Some(x) = xff {
        r = r.header("x-forwarded-for", x);
    }
    r.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn spraying_usernames_from_one_address_gets_429_while_the_admin_logs_in_from_another() {
    let app = common::spawn_app_with(|s| {
        s.login_per_ip_per_minute = 5;
        s.login_per_minute = 1_000;
    })
    .await;
    let attacker = client_from("127.0.0.1");
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(login_as(&app, &attacker, &format!("user{i}"), "wrong-password-1", None).await);
    }
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    // The real admin, elsewhere, is not affected.
    let admin = client_from("127.0.0.2");
    assert_eq!(login_as(&app, &admin, "admin", TOKEN, None).await, 303);
}

#[tokio::test]
async fn a_user_locked_from_one_address_still_logs_in_from_another() {
    let app = common::spawn_app().await;
    let attacker = client_from("127.0.0.1");
    for _ in 0..5 {
        assert_eq!(
            login_as(&app, &attacker, "admin", "wrong-password-1", None).await,
            401
        );
    }
    assert_eq!(
        login_as(&app, &attacker, "admin", TOKEN, None).await,
        429,
        "locked there"
    );
    let admin = client_from("127.0.0.3");
    assert_eq!(
        login_as(&app, &admin, "admin", TOKEN, None).await,
        303,
        "not elsewhere"
    );
}

#[tokio::test]
async fn the_api_answers_429_past_the_per_address_budget() {
    let app = common::spawn_app_with(|s| s.api_per_ip_per_minute = 20).await;
    let busy = client_from("127.0.0.1");
    let mut codes = Vec::new();
    for _ in 0..25 {
        let r = busy
            .get(app.url("/api/v1/me"))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
            let (_, b) = body(r).await;
            assert_eq!(b["error"]["code"], "too_many_requests", "{b}");
        }
    }
    assert_eq!(&codes[..20], &[200; 20]);
    assert!(codes[20..].iter().all(|c| *c == 429), "{codes:?}");
    let other = client_from("127.0.0.4");
    let r = other
        .get(app.url("/api/v1/me"))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Devices' media and health checks are not API calls.
    assert_eq!(busy.get(app.url("/healthz")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn forwarded_for_counts_only_from_a_trusted_proxy() {
    // Without a trusted proxy a client cannot escape its budget by inventing addresses.
    let app = common::spawn_app_with(|s| s.login_per_ip_per_minute = 3).await;
    let c = client_from("127.0.0.1");
    let mut last = 0;
    for i in 0..5 {
        last = login_as(
            &app,
            &c,
            "nobody",
            "wrong-password-1",
            Some(&format!("198.51.100.{i}")),
        )
        .await;
    }
    assert_eq!(last, 429, "a spoofed X-Forwarded-For is ignored");

    // Behind a trusted proxy every forwarded client has its own budget.
    let app = common::spawn_app_with(|s| {
        s.login_per_ip_per_minute = 3;
        s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    for _ in 0..3 {
        assert_eq!(
            login_as(&app, &c, "nobody", "wrong-password-1", Some("198.51.100.1")).await,
            401
        );
    }
    assert_eq!(
        login_as(&app, &c, "nobody", "wrong-password-1", Some("198.51.100.1")).await,
        429
    );
    assert_eq!(
        login_as(&app, &c, "admin", TOKEN, Some("198.51.100.2")).await,
        303
    );
}
