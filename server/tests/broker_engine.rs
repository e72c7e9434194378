//! Issue 11, the embedded broker's engine (rmqtt) behind the gate: what a local process that
//! bypasses the gate and connects to the engine's internal port meets. Its auth hook admits only
//! the server's internal user and the gate's forwarded sessions; its ACL hooks apply the gate's
//! topic table again; its retained store keeps retained messages (rmqtt's core would drop them)
//! up to a payload cap. The broker is started as nguon-server starts it, on a fresh SQLite store
//! with two devices.

use std::net::SocketAddr;
use std::time::Duration;

use nguon_protocol::{AreaCode, DeviceId, topic};
use nguon_server::mqtt::broker::{self, INTERNAL_USER};
use nguon_server::{Settings, Store};
use rumqttc::{AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet, QoS, SubscribeReasonCode};
use tokio::sync::mpsc;

const DEADLINE: Duration = Duration::from_secs(20);

#[derive(Debug)]
enum Seen {
    Msg(String, Vec<u8>),
    SubAck(Vec<SubscribeReasonCode>),
    PubAck,
    Down(String),
}

struct Client {
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connect to `addr`; `Err` with the refusal.
async fn connect(addr: SocketAddr, id: &str, user: &str, password: &str) -> Result<Client, String> {
    let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    o.set_credentials(user, password)
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true)
        .set_max_packet_size(16 << 20, 16 << 20);
    let (client, mut el) = AsyncClient::new(o, 100);
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
    .map_err(|_| "no CONNACK".to_string())??;
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
    Ok(Client { client, rx, task })
}

/// A gate-forwarded session of `id` (its id with the gate's password). Right after the engine
/// ended that device's previous session, rmqtt answers ServiceUnavailable while it still holds the
/// old session's entry (`try_lock` in its handshake): retry that refusal for up to 5 s.
async fn forwarded(addr: SocketAddr, id: &str, gate_pw: &str) -> Client {
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match connect(addr, id, id, gate_pw).await {
            Ok(c) => return c,
            Err(e) if e.contains("ServiceUnavailable") && tokio::time::Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{id} through the gate's password: {e}"),
        }
    }
}

impl Client {
    async fn next(&mut self) -> Seen {
        tokio::time::timeout(DEADLINE, self.rx.recv())
            .await
            .expect("an event within the deadline")
            .unwrap_or(Seen::Down("event task ended".into()))
    }
    async fn subscribe(&mut self, filter: &str) -> Vec<SubscribeReasonCode> {
        self.client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        loop {
            match self.next().await {
                Seen::SubAck(c) => return c,
                Seen::Down(e) => panic!("lost while subscribing to {filter}: {e}"),
                _ => {}
            }
        }
    }
    /// The first message received (on any topic).
    async fn first_message(&mut self) -> (String, Vec<u8>) {
        loop {
            match self.next().await {
                Seen::Msg(t, p) => return (t, p),
                Seen::Down(e) => panic!("lost waiting for a message: {e}"),
                _ => {}
            }
        }
    }
    /// The engine refused the publish just sent: the session ends without a PUBACK.
    async fn expect_refused(&mut self, what: &str) {
        loop {
            match self.next().await {
                Seen::Down(_) => return,
                Seen::PubAck => panic!("the engine acked a device's publish on {what}"),
                _ => {}
            }
        }
    }
    async fn publish_acked(&mut self, t: &str, retain: bool, payload: Vec<u8>) {
        self.client
            .publish(t, QoS::AtLeastOnce, retain, payload)
            .await
            .unwrap();
        loop {
            match self.next().await {
                Seen::PubAck => return,
                Seen::Down(e) => panic!("lost publishing on {t}: {e}"),
                _ => {}
            }
        }
    }
}

#[tokio::test]
async fn the_engine_refuses_logins_and_topics_the_gate_would_and_keeps_retained_messages_under_its_cap() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        mqtt_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        ..Settings::default()
    };
    let store = Store::connect(&settings.database_url()).await.unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    sqlx::query("INSERT INTO areas (code, name, parent, level, created_at, updated_at) VALUES ($1, $1, NULL, 'province', $2, $2)")
        .bind("eng-p")
        .bind(now)
        .execute(&store.pool)
        .await
        .unwrap();
    let hash = nguon_provision::credential::hash_password("device-password");
    for id in ["eng-a", "eng-b"] {
        sqlx::query(
            "INSERT INTO devices (id, kind, area, name, enabled, credential_hash, created_at, updated_at) \
             VALUES ($1, 'loudspeaker', 'eng-p', $1, 1, $2, $3, $3)",
        )
        .bind(id)
        .bind(hash.clone())
        .bind(now)
        .execute(&store.pool)
        .await
        .unwrap();
    }
    let b = broker::start(&settings, &store).await.unwrap();
    let internal = b.internal_addr().unwrap();
    let gate_pw = b.credentials().unwrap().gate_password().to_string();
    let server_pw = b.internal_password().unwrap().to_string();
    let (a, b_id) = (
        DeviceId::parse("eng-a").unwrap(),
        DeviceId::parse("eng-b").unwrap(),
    );
    let area_topic = topic::area_cmd(&AreaCode::parse("eng-p").unwrap());

    // Logins: a device's own password is for the gate, not the engine; a wrong internal password,
    // a client id other than the user, and the gate's password for another user are refused.
    for (id, user, pw) in [
        ("eng-a", "eng-a", "device-password"),
        ("srv", INTERNAL_USER, "not-the-password"),
        ("eng-b", "eng-a", gate_pw.as_str()),
    ] {
        let r = connect(internal, id, user, pw).await;
        assert!(r.is_err(), "{id}/{user} logged in on the internal port");
    }

    // A gate-forwarded session of device a (its id with the gate's password), gate bypassed.
    let mut dev = forwarded(internal, "eng-a", &gate_pw).await;
    for f in [
        topic::desired(&b_id),
        topic::state(&b_id),
        "nguon/v1/d/+/desired".to_string(),
        "#".to_string(),
    ] {
        assert_eq!(
            dev.subscribe(&f).await,
            vec![SubscribeReasonCode::Failure],
            "subscribe {f}"
        );
    }
    assert_eq!(
        dev.subscribe(&topic::desired(&a)).await,
        vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    assert_eq!(
        dev.subscribe(&area_topic).await,
        vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    // A retained publish on the area's command topic: refused, the session ended.
    dev.client
        .publish(&area_topic, QoS::AtLeastOnce, true, b"forged".to_vec())
        .await
        .unwrap();
    dev.expect_refused("its area's command topic").await;
    // Writes on the other device's topics, and an oversized state on its own: each refused and
    // the session ended.
    for (t, size) in [
        (topic::state(&b_id), 16),
        (topic::receipt(&b_id), 16),
        (topic::desired(&b_id), 16),
        (topic::state(&a), nguon_protocol::acl::MAX_STATE + 1),
    ] {
        let mut dev = forwarded(internal, "eng-a", &gate_pw).await;
        dev.client
            .publish(&t, QoS::AtLeastOnce, true, vec![b'{'; size])
            .await
            .unwrap();
        dev.expect_refused(&format!("{t} ({size} bytes)")).await;
    }
    // Its own state within the limit is taken (the refusals above are the ACL's, not a blanket).
    let mut dev = forwarded(internal, "eng-a", &gate_pw).await;
    dev.publish_acked(&topic::state(&a), true, b"{}".to_vec()).await;
    // Bytes that are not MQTT: the connection is closed and the engine keeps serving.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(internal).await.unwrap();
        s.write_all(&[0xff; 64]).await.unwrap();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(DEADLINE, s.read(&mut buf)).await;
        assert!(
            matches!(n, Ok(Ok(0)) | Ok(Err(_))),
            "garbage on the internal port was not closed: {n:?}"
        );
    }

    // The server's user: a retained manifest for a is kept and served; one over the cap is not
    // kept; nothing forged is retained on the area topic.
    let mut server = connect(internal, "eng-server", INTERNAL_USER, &server_pw)
        .await
        .unwrap();
    server
        .publish_acked(&topic::desired(&a), true, b"manifest-of-a".to_vec())
        .await;
    let big = topic::desired(&b_id);
    server
        .publish_acked(&big, true, vec![b'x'; nguon_protocol::acl::MAX_PACKET + 1])
        .await;
    let mut dev = forwarded(internal, "eng-a", &gate_pw).await;
    assert_eq!(
        dev.subscribe(&topic::desired(&a)).await,
        vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    assert_eq!(
        dev.first_message().await,
        (topic::desired(&a), b"manifest-of-a".to_vec()),
        "the retained manifest is kept and served"
    );
    let mut watcher = connect(internal, "eng-watch", INTERNAL_USER, &server_pw)
        .await
        .unwrap();
    watcher.subscribe(&big).await;
    watcher.subscribe(&area_topic).await;
    server.publish_acked(&area_topic, false, b"marker".to_vec()).await;
    assert_eq!(
        watcher.first_message().await,
        (area_topic.clone(), b"marker".to_vec()),
        "neither the oversized retained manifest nor the forged area command was kept"
    );
}
