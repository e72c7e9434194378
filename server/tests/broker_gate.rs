//! Issue 11, the embedded broker's gate, attacked with real sockets and real MQTT clients: one
//! device publishing to an area or another device's topics, oversized retained messages, reading
//! another device's topics, an idle-socket flood, a revoked device's live session, and the TLS
//! listener. Each test reproduces the attack first run on the code before the gate (see the
//! CHANGELOG) and shows it refused. On an external broker (`NGUON_TEST_MQTT_URL`) the gate is not
//! there, so these tests only run on the embedded one.

use std::net::SocketAddr;
use std::time::Duration;

use nguon_protocol::{DeviceId, Signed, topic};
use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, EventLoop, MqttOptions, Packet, QoS, SubscribeReasonCode,
};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::common::{self, TestApp};
use crate::dispatch_support::*;

/// What a raw client saw.
#[derive(Debug)]
enum Seen {
    Msg(String, Vec<u8>),
    SubAck(Vec<SubscribeReasonCode>),
    PubAck,
    /// The connection ended (or was refused), with the error.
    Down(String),
}

/// A device client whose every event (including the connection's end) the test sees.
struct Raw {
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn options(host: &str, port: u16, id: &str, password: &str) -> MqttOptions {
    let mut o = MqttOptions::new(id, host, port);
    o.set_credentials(id, password)
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true)
        .set_max_packet_size(32 << 20, 32 << 20);
    o
}

/// Connect; `Err` with the refusal when the broker does not accept.
async fn raw_with(opts: MqttOptions) -> Result<Raw, String> {
    let (client, mut el) = AsyncClient::new(opts, 100);
    first_connack(&mut el).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let seen = match el.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => Seen::Msg(p.topic.clone(), p.payload.to_vec()),
                Ok(Event::Incoming(Packet::SubAck(a))) => Seen::SubAck(a.return_codes),
                Ok(Event::Incoming(Packet::PubAck(_))) => Seen::PubAck,
                Ok(_) => continue,
                Err(e) => {
                    let _ = tx.send(Seen::Down(e.to_string()));
                    return;
                }
            };
            if tx.send(seen).is_err() {
                return;
            }
        }
    });
    Ok(Raw { client, rx, task })
}

async fn first_connack(el: &mut EventLoop) -> Result<(), String> {
    tokio::time::timeout(DEADLINE, async {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(a))) if a.code == ConnectReturnCode::Success => {
                    return Ok(());
                }
                Ok(Event::Incoming(Packet::ConnAck(a))) => return Err(format!("refused: {:?}", a.code)),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    })
    .await
    .map_err(|_| "no CONNACK".to_string())?
}

async fn raw(app: &TestApp, id: &str, password: &str) -> Result<Raw, String> {
    raw_with(options(&app.mqtt_host, app.mqtt_port, id, password)).await
}

impl Raw {
    /// The next event, within [`DEADLINE`].
    async fn next(&mut self) -> Seen {
        tokio::time::timeout(DEADLINE, self.rx.recv())
            .await
            .expect("an event within the deadline")
            .unwrap_or(Seen::Down("event task ended".into()))
    }
    /// Wait until the connection ends; the messages seen before.
    async fn until_down(&mut self) -> (String, Vec<Seen>) {
        let mut before = Vec::new();
        loop {
            match self.next().await {
                Seen::Down(e) => return (e, before),
                s => before.push(s),
            }
        }
    }
    /// The SUBACK codes for subscribing to `filter`, and the messages seen before it.
    async fn subscribe(&mut self, filter: &str) -> Vec<SubscribeReasonCode> {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .expect("queue subscribe");
        loop {
            match self.next().await {
                Seen::SubAck(codes) => return codes,
                Seen::Down(e) => panic!("connection lost while subscribing to {filter}: {e}"),
                _ => {}
            }
        }
    }
    /// The next message on `topic`, failing on any message on a topic in `forbidden` first.
    async fn message_on(&mut self, topic: &str, forbidden: &[&str]) -> Vec<u8> {
        loop {
            match self.next().await {
                Seen::Msg(t, p) if t == topic => return p,
                Seen::Msg(t, _) => assert!(!forbidden.contains(&t.as_str()), "received a message on {t}"),
                Seen::Down(e) => panic!("connection lost waiting on {topic}: {e}"),
                _ => {}
            }
        }
    }
}

/// An app with the embedded broker (these tests attack the gate), or `None` on an external one.
async fn gated_app(tweak: impl FnOnce(&mut nguon_server::Settings)) -> Option<TestApp> {
    if common::external_mqtt() {
        eprintln!("skipped: the gate fronts the embedded broker only");
        return None;
    }
    Some(common::spawn_app_with(tweak).await)
}

/// An area with two devices; returns (area, a, b).
async fn two_devices(app: &TestApp) -> (String, String, String) {
    let p = uid("p");
    area(app, &p, None).await;
    let a = uid("lc-a");
    let b = uid("lc-b");
    device(app, &a, &p, "password-of-a", None).await;
    device(app, &b, &p, "password-of-b", None).await;
    (p, a, b)
}

fn did(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

#[tokio::test]
async fn a_device_cannot_publish_on_an_area_or_another_devices_topics_and_the_area_still_gets_commands() {
    let Some(app) = gated_app(|_| {}).await else {
        return;
    };
    let (p, a, b) = two_devices(&app).await;
    let area_topic = topic::area_cmd(&nguon_protocol::AreaCode::parse(&p).unwrap());

    // The attack of issue 11: a 5 MB retained message on the area's command topic.
    let mut attacker = raw(&app, &a, "password-of-a").await.unwrap();
    attacker
        .client
        .publish(&area_topic, QoS::AtLeastOnce, true, vec![b'x'; 5 << 20])
        .await
        .unwrap();
    let (why, seen) = attacker.until_down().await;
    assert!(
        !seen.iter().any(|s| matches!(s, Seen::PubAck)),
        "the broker acked: {seen:?}"
    );
    eprintln!("attacker disconnected: {why}");
    // A small one, and writes on the other device's topics: each ends the attacker's session.
    let b_id = did(&b);
    for t in [
        area_topic.clone(),
        topic::state(&b_id),
        topic::desired(&b_id),
        topic::cmd(&b_id),
    ] {
        let mut attacker = raw(&app, &a, "password-of-a").await.unwrap();
        attacker
            .client
            .publish(&t, QoS::AtLeastOnce, true, b"forged".to_vec())
            .await
            .unwrap();
        let (_, seen) = attacker.until_down().await;
        assert!(
            !seen.iter().any(|s| matches!(s, Seen::PubAck)),
            "publish on {t} acked"
        );
    }

    // Device b follows the area: nothing forged is retained there, and the server's next area
    // command is the first message b receives on it, signed by the server.
    let mut dev = raw(&app, &b, "password-of-b").await.unwrap();
    assert_eq!(
        dev.subscribe(&area_topic).await,
        vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    let manifest_topic = topic::desired(&b_id);
    assert_eq!(
        dev.subscribe(&manifest_topic).await,
        vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    let manifest = dev.message_on(&manifest_topic, &[&area_topic]).await;
    Signed::from_bytes(&manifest)
        .unwrap()
        .verify(&app.server_key())
        .expect("b's manifest is the server's");
    let (s, body) = common::json(
        app.post_json(&format!("/api/v1/areas/{p}/commands"), &json!({"action": "sync"}))
            .await,
    )
    .await;
    assert!(s < 300, "area command: {s} {body}");
    let cmd = dev.message_on(&area_topic, &[]).await;
    Signed::from_bytes(&cmd)
        .expect("a signed envelope")
        .verify(&app.server_key())
        .expect("the first area command b receives is the server's");
}

#[tokio::test]
async fn an_oversized_retained_state_is_dropped_and_the_server_still_ingests_other_devices() {
    let Some(app) = gated_app(|_| {}).await else {
        return;
    };
    let (_, a, b) = two_devices(&app).await;
    // 6 MB: over the state topic's limit and what the gate reads from a device, but under the
    // 8 MiB of rumqttd (the embedded broker before rmqtt), which on the code before the gate
    // retained it and handed it to the server's link.
    for size in [6 << 20, nguon_protocol::acl::MAX_STATE + 1] {
        let mut attacker = raw(&app, &a, "password-of-a").await.unwrap();
        attacker
            .client
            .publish(topic::state(&did(&a)), QoS::AtLeastOnce, true, vec![b'{'; size])
            .await
            .unwrap();
        let (_, seen) = attacker.until_down().await;
        assert!(
            !seen.iter().any(|s| matches!(s, Seen::PubAck)),
            "{size}-byte state acked"
        );
    }
    // The server's link is unaffected: it ingests b's state, and the health check passes.
    let dev = connect(&app, &b, "password-of-b", None).await.unwrap();
    dev.publish(&topic::state(&did(&b)), state_payload(&b, true, 7), true)
        .await;
    eventually("b online", || async {
        let (_, d) = common::json(app.get(&format!("/api/v1/devices/{b}")).await).await;
        (d["online"] == true && d["session"] == 7).then_some(())
    })
    .await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    // A legitimate state from a is taken as before.
    let dev_a = connect(&app, &a, "password-of-a", None).await.unwrap();
    dev_a
        .publish(&topic::state(&did(&a)), state_payload(&a, true, 3), true)
        .await;
    eventually("a online", || async {
        let (_, d) = common::json(app.get(&format!("/api/v1/devices/{a}")).await).await;
        (d["online"] == true && d["session"] == 3).then_some(())
    })
    .await;
}

#[tokio::test]
async fn subscribing_to_another_devices_topics_gets_a_suback_failure_and_nothing() {
    let Some(app) = gated_app(|_| {}).await else {
        return;
    };
    let (p, a, b) = two_devices(&app).await;
    let other = uid("p-other");
    area(&app, &other, None).await;
    let mut dev = raw(&app, &a, "password-of-a").await.unwrap();
    let b_id = did(&b);
    let forbidden = [
        topic::desired(&b_id),
        topic::cmd(&b_id),
        topic::receipt(&b_id),
        topic::state(&b_id),
        topic::area_cmd(&nguon_protocol::AreaCode::parse(&other).unwrap()),
        "nguon/v1/d/+/desired".to_string(),
        "#".to_string(),
    ];
    for f in &forbidden {
        assert_eq!(
            dev.subscribe(f).await,
            vec![SubscribeReasonCode::Failure],
            "subscribe {f}"
        );
    }
    // One SUBSCRIBE with an allowed and a refused filter: the codes keep their places.
    dev.client
        .subscribe_many([
            rumqttc::SubscribeFilter::new(topic::desired(&b_id), QoS::AtLeastOnce),
            rumqttc::SubscribeFilter::new(topic::desired(&did(&a)), QoS::AtLeastOnce),
        ])
        .await
        .unwrap();
    let codes = loop {
        match dev.next().await {
            Seen::SubAck(c) => break c,
            Seen::Down(e) => panic!("lost: {e}"),
            _ => {}
        }
    };
    assert_eq!(
        codes,
        vec![
            SubscribeReasonCode::Failure,
            SubscribeReasonCode::Success(QoS::AtLeastOnce)
        ]
    );
    // Its own retained manifest arrives; b's (retained too) never does.
    let refs: Vec<&str> = forbidden.iter().map(String::as_str).collect();
    let mine = dev.message_on(&topic::desired(&did(&a)), &refs).await;
    Signed::from_bytes(&mine)
        .unwrap()
        .verify(&app.server_key())
        .unwrap();
    let area_topic = topic::area_cmd(&nguon_protocol::AreaCode::parse(&p).unwrap());
    assert_eq!(
        dev.subscribe(&area_topic).await,
        vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
}

#[tokio::test]
async fn disabling_a_device_or_changing_its_password_closes_its_live_session() {
    let Some(app) = gated_app(|_| {}).await else {
        return;
    };
    let (_, a, _) = two_devices(&app).await;
    let mut dev = raw(&app, &a, "password-of-a").await.unwrap();
    dev.subscribe(&topic::desired(&did(&a))).await;

    // A new password: the live session ends; the old password is refused, the new one works.
    let (s, body) = common::json(
        app.patch_json(
            &format!("/api/v1/devices/{a}"),
            &json!({"password": "new-password-of-a"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let (why, _) = dev.until_down().await;
    eprintln!("session after the password change: {why}");
    assert!(
        raw(&app, &a, "password-of-a").await.is_err(),
        "old password accepted"
    );
    let mut dev = raw(&app, &a, "new-password-of-a").await.unwrap();
    dev.subscribe(&topic::desired(&did(&a))).await;

    // Disabled: the live session ends and no login is accepted.
    let (s, body) = common::json(
        app.patch_json(&format!("/api/v1/devices/{a}"), &json!({"enabled": false}))
            .await,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    dev.until_down().await;
    let refused = raw(&app, &a, "new-password-of-a")
        .await
        .err()
        .expect("disabled device refused");
    assert!(
        refused.contains("NotAuthorized") || refused.contains("refused"),
        "{refused}"
    );
}

/// Open `n` TCP connections from `source` that never send anything; the ones the gate closed at
/// once (EOF within `wait`) and the ones still open.
async fn flood(
    target: SocketAddr,
    source: [u8; 4],
    n: usize,
    wait: Duration,
) -> (usize, Vec<tokio::net::TcpStream>) {
    let mut open = Vec::new();
    for _ in 0..n {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind(SocketAddr::from((source, 0))).unwrap();
        open.push(s.connect(target).await.expect("TCP connect"));
    }
    let checks = open.into_iter().map(|mut s| async move {
        let mut b = [0u8; 16];
        match tokio::time::timeout(wait, s.read(&mut b)).await {
            Ok(_) => None,
            Err(_) => Some(s),
        }
    });
    let results = futures::future::join_all(checks).await;
    let closed = results.iter().filter(|r| r.is_none()).count();
    let held = results.into_iter().flatten().collect();
    (closed, held)
}

#[tokio::test]
async fn an_idle_socket_flood_is_capped_per_address_and_in_total_and_a_device_still_connects() {
    let Some(app) = gated_app(|s| {
        s.mqtt_max_connections = 120;
        s.mqtt_max_connections_per_ip = 50;
        // Long enough that no flood socket times out during the test.
        s.mqtt_connect_timeout_ms = 120_000;
    })
    .await
    else {
        return;
    };
    let (_, a, _) = two_devices(&app).await;
    let target = SocketAddr::from(([127, 0, 0, 1], app.mqtt_port));
    let mut dev = raw(&app, &a, "password-of-a").await.unwrap();

    // 100 idle sockets from each of three addresses: 50 held per address, then the total (120,
    // the device included) caps the third.
    let wait = Duration::from_secs(2);
    let (closed2, held2) = flood(target, [127, 0, 0, 2], 100, wait).await;
    let (closed3, held3) = flood(target, [127, 0, 0, 3], 100, wait).await;
    let (closed4, held4) = flood(target, [127, 0, 0, 4], 100, wait).await;
    assert_eq!((held2.len(), closed2), (50, 50));
    assert_eq!((held3.len(), closed3), (50, 50));
    assert_eq!((held4.len(), closed4), (19, 81));

    // The connected device still works, and so does the HTTP side.
    let mine = topic::desired(&did(&a));
    assert_eq!(
        dev.subscribe(&mine).await,
        vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    dev.message_on(&mine, &[]).await;
    assert_eq!(app.get("/healthz").await.status(), 200);

    // Freed slots are reusable.
    drop((held2, held3, held4));
    eventually("a second device session", || async {
        raw(&app, &a, "password-of-a").await.ok()
    })
    .await;
}

#[tokio::test]
async fn a_socket_that_never_sends_connect_is_closed_after_the_deadline() {
    let Some(app) = gated_app(|s| s.mqtt_connect_timeout_ms = 500).await else {
        return;
    };
    let target = SocketAddr::from(([127, 0, 0, 1], app.mqtt_port));
    let mut socks = Vec::new();
    for _ in 0..20 {
        socks.push(tokio::net::TcpStream::connect(target).await.unwrap());
    }
    // On the code before the gate these stayed open for good.
    for mut s in socks {
        let mut b = [0u8; 16];
        let r = tokio::time::timeout(DEADLINE, s.read(&mut b)).await;
        assert!(
            matches!(r, Ok(Ok(0)) | Ok(Err(_))),
            "still open after {DEADLINE:?}: {r:?}"
        );
    }
    // A half-sent CONNECT is closed the same way.
    let mut s = tokio::net::TcpStream::connect(target).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut s, &[0x10, 0x20, 0x00])
        .await
        .unwrap();
    let mut b = [0u8; 4];
    let r = tokio::time::timeout(DEADLINE, s.read(&mut b)).await;
    assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "{r:?}");
}

#[tokio::test]
async fn a_device_connects_over_the_tls_listener_and_plain_mqtt_on_that_port_fails() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_path = dir.path().join("mqtt.crt");
    let key_path = dir.path().join("mqtt.key");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let tls_port = common::free_port();
    let Some(app) = gated_app(|s| {
        s.mqtt_tls_addr = Some(SocketAddr::from(([127, 0, 0, 1], tls_port)));
        s.mqtt_tls_cert = Some(cert_path.clone());
        s.mqtt_tls_key = Some(key_path.clone());
    })
    .await
    else {
        return;
    };
    let (_, a, _) = two_devices(&app).await;

    // An agent-like client that trusts the certificate, over TLS (ring provider).
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut opts = options("localhost", tls_port, &a, "password-of-a");
    opts.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Rustls(std::sync::Arc::new(config)),
    ));
    let mut dev = raw_with(opts).await.expect("TLS connect");
    let mine = topic::desired(&did(&a));
    assert_eq!(
        dev.subscribe(&mine).await,
        vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    let manifest = dev.message_on(&mine, &[]).await;
    Signed::from_bytes(&manifest)
        .unwrap()
        .verify(&app.server_key())
        .unwrap();
    // The ACL holds on TLS too.
    assert_eq!(dev.subscribe("#").await, vec![SubscribeReasonCode::Failure]);

    // Plain MQTT on the TLS port gets no CONNACK.
    let plain = raw_with(options("127.0.0.1", tls_port, &a, "password-of-a")).await;
    assert!(plain.is_err(), "plain MQTT accepted on the TLS port");
    // And the plain port still serves.
    raw(&app, &a, "password-of-a").await.unwrap();
}
