//! Alarms and notifications (issue 12 §6) with the real `nguon-server` and `nguon-agent`
//! binaries as processes: an agent is killed (`kill -9`), the server raises the offline alarm
//! (a short threshold in the test's environment), and the notifications reach a local webhook
//! receiver (whose first answer is a 500, so the retry is proven; the HMAC signature is checked
//! here with the `hmac` crate, not with the server's code) and a local SMTP sink (written in this
//! crate, `nguon_tests::sinks`, spoken to by lettre).

use std::time::Duration;

use hmac::{Hmac, Mac};
use nguon_tests::api::is_online;
use nguon_tests::fleet::FleetPlan;
use nguon_tests::harness::{AgentProc, BrokerChoice, ServerProc};
use nguon_tests::net::{eventually, random_suffix};
use nguon_tests::sinks::{SmtpSink, WebhookReceiver};
use serde_json::{Value, json};
use sha2::Sha256;

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_reaches_a_webhook_and_an_smtp_sink() {
    nguon_tests::init_crypto();
    let mut hook = WebhookReceiver::start(1).await;
    let mut smtp = SmtpSink::start().await;
    let dir = tempfile::Builder::new().prefix("nguon-alarm-").tempdir().unwrap();
    let port = smtp.addr.port().to_string();
    let server = ServerProc::start_with(
        dir.path(),
        BrokerChoice::from_env(),
        &[
            ("NGUON_ALARMS_OFFLINE_AFTER_S", "5"),
            ("NGUON_ALARMS_EVALUATE_EVERY_S", "1"),
            ("NGUON_ALARMS_WEBHOOK_BACKOFF_MS", "200"),
            ("NGUON_SMTP_HOST", "127.0.0.1"),
            ("NGUON_SMTP_PORT", &port),
            ("NGUON_SMTP_FROM", "Nguồn cảnh báo <canh-bao@nguon.test>"),
        ],
    )
    .await
    .expect("server starts");
    let tag = random_suffix();
    let province = format!("t{tag}");
    let plan = FleetPlan::province(&tag[..6], &province, 1, 1, 0);
    server
        .api
        .import_fleet(&plan.registry())
        .await
        .expect("fleet import");
    let key = server.server_key().await.expect("server key");
    let device = plan.devices[0].clone();
    let id = device.id.to_string();
    let mut agent = AgentProc::start(dir.path(), &device, server.broker.addr(), server.api.base(), &key)
        .await
        .expect("agent starts");
    let api = server.api.clone();
    eventually(
        "the agent online",
        Duration::from_secs(60),
        Duration::from_millis(250),
        || {
            let (api, id) = (api.clone(), id.clone());
            async move {
                let d = api.devices().await.map_err(|e| e.to_string())?;
                d.iter()
                    .any(|d| d["id"] == id.as_str() && is_online(d))
                    .then_some(())
                    .ok_or_else(|| "offline".to_string())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", agent.log_tail(30)));

    let secret = "bi-mat-cua-tinh-0123456789";
    let sub = server
        .api
        .post(
            "/api/v1/alarm-subscriptions",
            &json!({"area": province, "role": "operator", "channel": "webhook", "target": hook.url,
                    "secret": secret, "kinds": ["device_offline"]}),
        )
        .await
        .expect("webhook subscription");
    assert!(sub.get("secret").is_some(), "{sub}");
    server
        .api
        .post(
            "/api/v1/alarm-subscriptions",
            &json!({"area": province, "role": "approver", "channel": "email", "target": "truc-ban@tinh.test",
                    "kinds": ["device_offline"]}),
        )
        .await
        .expect("email subscription");

    agent.kill9();

    // The webhook: a 500 first, then the same signed body again, answered 200.
    let mut got = Vec::new();
    while got.len() < 2 {
        let r = tokio::time::timeout(WAIT, hook.rx.recv())
            .await
            .unwrap_or_else(|_| panic!("webhook attempts so far: {got:?}\n{}", server.log_tail(40)))
            .expect("receiver running");
        got.push(r);
    }
    assert_eq!((got[0].status, got[1].status), (500, 200));
    assert_eq!(got[0].body, got[1].body, "a retry sends the same alarm");
    for r in &got {
        assert!(r.request_line.starts_with("POST /hook"), "{}", r.request_line);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&r.body);
        let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(r.header("x-nguon-signature"), Some(want.as_str()));
    }
    let alarm: Value = serde_json::from_slice(&got[1].body).expect("JSON alarm");
    assert_eq!(alarm["kind"], "device_offline", "{alarm}");
    assert_eq!(alarm["subject_id"], id.as_str(), "{alarm}");
    // The device's registered area: the plan's first commune (`{province}001`).
    assert_eq!(alarm["area"], format!("{province}001"), "{alarm}");

    // The mail, through lettre to the sink.
    let mail = tokio::time::timeout(WAIT, smtp.rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no mail\n{}", server.log_tail(40)))
        .expect("sink running");
    assert_eq!(mail.from, "canh-bao@nguon.test");
    assert_eq!(mail.to, ["truc-ban@tinh.test"]);
    assert!(mail.data.contains("device_offline"), "{}", mail.data);
    assert!(mail.data.contains(&id), "{}", mail.data);

    // Both attempts of the webhook are recorded with the alarm.
    let aid = alarm["id"].as_str().unwrap().to_string();
    let n = eventually(
        "the attempts recorded",
        Duration::from_secs(30),
        Duration::from_millis(250),
        || {
            let (api, aid) = (api.clone(), aid.clone());
            async move {
                let n = api
                    .get(&format!("/api/v1/alarms/{aid}/notifications"))
                    .await
                    .map_err(|e| e.to_string())?;
                let done = n
                    .as_array()
                    .is_some_and(|a| a.len() == 2 && a.iter().all(|d| d["state"] == "sent"));
                if done { Ok(n) } else { Err(format!("{n}")) }
            }
        },
    )
    .await
    .expect("both sent");
    let webhook = n
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel"] == "webhook")
        .unwrap();
    assert_eq!(webhook["statuses"], json!([500, 200]), "{n}");
    assert_eq!(webhook["attempts"], 2, "{n}");
}
