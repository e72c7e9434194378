//! Helpers for part B's black-box tests: areas, devices and approved media set up through the API
//! (media rows written directly: these tests are about dispatch, not upload), and a plain rumqttc
//! client acting as a device.
#![allow(dead_code)]

use std::time::Duration;

use nguon_protocol::{DeviceKey, DeviceState, PROTOCOL_VERSION};
use rumqttc::{AsyncClient, ConnectReturnCode, Event, LastWill, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::common::{TestApp, json as body, random_suffix};
use nguon_server::mqtt::broker::INTERNAL_USER;

/// Generous deadline for anything that crosses the broker.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Create an area (root when `parent` is None).
pub async fn area(app: &TestApp, code: &str, parent: Option<&str>) {
    let (s, b) = body(
        app.post_json(
            "/api/v1/areas",
            &json!({"code": code, "name": code, "parent": parent, "level": "commune"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "create area {code}: {b}");
}

/// Register a device with a password (and optionally a report-signing key).
pub async fn device(app: &TestApp, id: &str, area: &str, password: &str, key: Option<&DeviceKey>) {
    let mut req = json!({"id": id, "kind": "loudspeaker", "area": area, "password": password});
    if let Some(k) = key {
        req["public_key"] = Value::String(k.public_b64());
    }
    let (s, b) = body(app.post_json("/api/v1/devices", &req).await).await;
    assert_eq!(s, 201, "create device {id}: {b}");
}

/// A media row in the given status (random sha); returns the sha.
pub async fn media(app: &TestApp, status: &str, duration_ms: i64) -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).unwrap();
    let sha = hex::encode(b);
    let now = chrono::Utc::now().timestamp_millis();
    sqlx::query(
        "INSERT INTO media (sha256, filename, title, size, container, codec, sample_rate, channels, duration_ms, \
         status, status_note, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11, $12)",
    )
    .bind(sha.clone())
    .bind("clip.mp3")
    .bind("clip")
    .bind(12345_i64)
    .bind("mp3")
    .bind("mp3")
    .bind(22050_i64)
    .bind(1_i64)
    .bind(duration_ms)
    .bind(status)
    .bind(now)
    .bind(now)
    .execute(&app.state().store.pool)
    .await
    .expect("insert media");
    sha
}

/// One message a test device received.
#[derive(Debug, Clone)]
pub struct Msg {
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
}

/// A device connected to the broker.
pub struct TestDevice {
    /// Device id (= client id = username).
    pub id: String,
    /// The client.
    pub client: AsyncClient,
    /// Everything received.
    pub rx: mpsc::UnboundedReceiver<Msg>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestDevice {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connect as `id` with `password` (and a last will); `Err` names the refusal.
pub async fn connect(
    app: &TestApp,
    id: &str,
    password: &str,
    will: Option<LastWill>,
) -> Result<TestDevice, String> {
    connect_to(&app.mqtt_host, app.mqtt_port, id, password, will).await
}

/// A client that may read other devices' topics: the server's internal user on the embedded
/// broker (its gate refuses devices that), or a device registered in `area` on an external
/// broker without ACLs.
pub async fn connect_observer(app: &TestApp, area_code: &str) -> TestDevice {
    let cid = uid("obs");
    match &app.mqtt_internal_password {
        Some(pw) => connect_as(&app.mqtt_host, app.mqtt_port, &cid, INTERNAL_USER, pw, None).await,
        None => {
            device(app, &cid, area_code, "observer-password", None).await;
            connect(app, &cid, "observer-password", None).await
        }
    }
    .expect("observer connects")
}

/// Connect to a given broker address.
pub async fn connect_to(
    host: &str,
    port: u16,
    id: &str,
    password: &str,
    will: Option<LastWill>,
) -> Result<TestDevice, String> {
    connect_as(host, port, id, id, password, will).await
}

/// Connect with client id `id` as `user`.
pub async fn connect_as(
    host: &str,
    port: u16,
    id: &str,
    user: &str,
    password: &str,
    will: Option<LastWill>,
) -> Result<TestDevice, String> {
    let mut opts = MqttOptions::new(id, host, port);
    opts.set_credentials(user, password)
        .set_keep_alive(Duration::from_secs(5))
        .set_clean_session(true);
    opts.set_max_packet_size(16 * 1024 * 1024, 16 * 1024 * 1024);
    if let Some(w) = will {
        opts.set_last_will(w);
    }
    let (client, mut el) = AsyncClient::new(opts, 1000);
    let connack = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(a))) => return Ok(a.code),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    })
    .await
    .map_err(|_| "no CONNACK within 10 s".to_string())??;
    if connack != ConnectReturnCode::Success {
        return Err(format!("refused: {connack:?}"));
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = tx.send(Msg {
                        topic: p.topic.clone(),
                        payload: p.payload.to_vec(),
                    });
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    Ok(TestDevice {
        id: id.to_string(),
        client,
        rx,
        task,
    })
}

impl TestDevice {
    /// Subscribe at QoS 1.
    pub async fn subscribe(&self, filter: &str) {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .expect("subscribe");
    }
    /// Publish at QoS 1.
    pub async fn publish(&self, topic: &str, payload: Vec<u8>, retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await
            .expect("publish");
    }
    /// The next message on `topic` whose payload satisfies `pred`, within [`DEADLINE`].
    pub async fn next_on(&mut self, topic: &str, pred: impl Fn(&[u8]) -> bool) -> Msg {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let m = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("nothing matching on {topic} within {DEADLINE:?}"))
                .expect("device task ended");
            if m.topic == topic && pred(&m.payload) {
                return m;
            }
        }
    }
    /// Kill the connection without DISCONNECT (the broker then fires the last will).
    pub fn kill(self) {
        self.task.abort();
    }
}

/// A retained presence payload.
pub fn state_payload(id: &str, online: bool, session: u64) -> Vec<u8> {
    serde_json::to_vec(&DeviceState {
        v: PROTOCOL_VERSION,
        device: nguon_protocol::DeviceId::parse(id).unwrap(),
        online,
        session,
        at: chrono::Utc::now(),
        install: None,
    })
    .unwrap()
}

/// A presence report signed with the device key, as agents send it (and pre-sign their will).
pub fn state_report(id: &str, online: bool, session: u64, key: &DeviceKey) -> Vec<u8> {
    DeviceState {
        v: PROTOCOL_VERSION,
        device: nguon_protocol::DeviceId::parse(id).unwrap(),
        online,
        session,
        at: chrono::Utc::now(),
        install: None,
    }
    .seal(Some(key))
    .to_bytes()
}

/// A heartbeat signed with the device key; `manifest_version` serves as a marker.
pub fn heartbeat_report(id: &str, session: u64, manifest_version: u64, key: &DeviceKey) -> Vec<u8> {
    heartbeat(id, session, manifest_version)
        .seal(Some(key))
        .to_bytes()
}

/// A heartbeat of device `id`; `manifest_version` serves as a marker.
pub fn heartbeat(id: &str, session: u64, manifest_version: u64) -> nguon_protocol::Telemetry {
    nguon_protocol::Telemetry {
        v: PROTOCOL_VERSION,
        device: nguon_protocol::DeviceId::parse(id).unwrap(),
        at: chrono::Utc::now(),
        session,
        volume: 80,
        now_playing: None,
        manifest_version: Some(manifest_version),
        cache_bytes: 0,
        disk_free_bytes: 0,
        disk_total_bytes: None,
        clock_offset_ms: None,
        agent_version: "test".into(),
        uptime_s: 1,
        outbox_len: 0,
        broker: None,
        install: None,
    }
}

/// `n` loudspeakers `{prefix}-0000`, `{prefix}-0001`, … spread over `areas` in turn, written
/// straight to the registry in one transaction: no outbox row, no notification, no credentials.
pub async fn bulk_devices(app: &TestApp, prefix: &str, areas: &[String], n: usize) {
    let now = chrono::Utc::now().timestamp_millis();
    let mut tx = app.state().store.pool.begin().await.unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
        let mut sql = String::from(
            "INSERT INTO devices (id, kind, area, name, enabled, created_at, updated_at) VALUES ",
        );
        let mut q = Vec::new();
        for (k, i) in chunk.iter().enumerate() {
            if k > 0 {
                sql.push(',');
            }
            let b = k * 5;
            sql.push_str(&format!(
                "(${}, 'loudspeaker', ${}, ${}, 1, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5
            ));
            q.push((format!("{prefix}-{i:04}"), areas[i % areas.len()].clone()));
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, a) in q {
            query = query.bind(id.clone()).bind(a).bind(id).bind(now).bind(now);
        }
        query.execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// On a shared external broker (`NGUON_TEST_MQTT_URL`), clear the retained messages of `topics`
/// (a bulk test's manifests) so later runs do not receive them; nothing on the embedded broker.
pub async fn clear_retained(app: &TestApp, area: &str, topics: &[String]) {
    if !crate::common::external_mqtt() {
        return;
    }
    // A client id of its own: reusing an observer's would make the two take over each other.
    let cid = uid("cleaner");
    device(app, &cid, area, "cleaner-password", None).await;
    let mut cleaner = connect(app, &cid, "cleaner-password", None).await.unwrap();
    for t in topics {
        cleaner.publish(t, Vec::new(), true).await;
    }
    // The broker handles one client's publishes in order: once this comes back, all are done.
    let done = format!("nguon-test/{}/cleaned", uid("c"));
    cleaner.subscribe(&done).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    cleaner.publish(&done, b"done".to_vec(), false).await;
    cleaner.next_on(&done, |_| true).await;
}

/// Poll `f` until it returns `Some`, or panic with `what` after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A metric value from `/metrics`.
pub async fn metric(app: &TestApp, name: &str) -> u64 {
    let text = app.get("/metrics").await.text().await.unwrap_or_default();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name)
                .and_then(|r| r.trim().parse::<u64>().ok())
                .filter(|_| true)
        })
        .unwrap_or(0)
}

/// The manifest in `bytes`, which must be a correctly signed, fresh message for device `id`.
pub fn open_manifest(app: &TestApp, id: &str, bytes: &[u8]) -> nguon_protocol::Manifest {
    let msg = nguon_protocol::ServerMessage::open(
        bytes,
        &app.server_key(),
        &nguon_protocol::Audience::Device(nguon_protocol::DeviceId::parse(id).unwrap()),
        chrono::Utc::now(),
        chrono::Duration::seconds(60),
    )
    .expect("a correctly signed manifest for this device");
    match msg.body {
        nguon_protocol::ServerBody::Desired(m) => m,
        other => panic!("not a manifest: {other:?}"),
    }
}

/// Whether `bytes` is a manifest with an item of schedule `schedule_id` (signature not checked).
pub fn has_item(bytes: &[u8], schedule_id: &str) -> bool {
    let Ok(env) = nguon_protocol::Signed::from_bytes(bytes) else {
        return false;
    };
    let Ok(msg) = env.parse_payload::<nguon_protocol::ServerMessage>() else {
        return false;
    };
    matches!(msg.body, nguon_protocol::ServerBody::Desired(m) if m.items.iter().any(|i| i.schedule_id == schedule_id))
}

/// A unique id safe on a shared broker.
pub fn uid(prefix: &str) -> String {
    format!("{prefix}-{}", random_suffix())
}

/// A daily 06:00 schedule of `sha` on the whole `province` ("Toàn tỉnh"); returns its id.
pub async fn province_schedule(app: &TestApp, province: &str, sha: &str) -> String {
    let (s, b) = body(
        app.post_json(
            "/api/v1/schedules",
            &json!({"title": "Toàn tỉnh", "media": [sha], "targets": {"areas": [province]},
                    "rule": {"kind": "cron", "cron": "0 6 * * *"}}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    b["schedule"]["id"].as_str().unwrap().to_string()
}
