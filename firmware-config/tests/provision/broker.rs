//! The generated `password_file` and `acl_file` in a private Mosquitto (random loopback port,
//! killed on drop; the machine's own broker is never touched), with Lào Cai's size: 1,650 devices
//! in 84 communes. Devices log in with their passwords, wrong passwords are refused, and a device
//! can neither read another device's desired state nor publish on its events topic.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nguon_provision::{bulk, sample};
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, QoS, SubscribeReasonCode,
};
use tokio::sync::mpsc;

use crate::util::{Workspace, passwords};

const WAIT: Duration = Duration::from_secs(15);

/// A private Mosquitto; killed when dropped.
struct Broker {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Broker {
    fn start(dir: &Path, password_file: &Path, acl_file: &Path) -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // When tests run as root, Mosquitto would drop to the `mosquitto` user and then fail to
        // read the 0600 files; stay root in that case.
        let user = if unsafe { libc::geteuid() } == 0 {
            "user root\n"
        } else {
            ""
        };
        let cfg = dir.join("mosquitto.conf");
        std::fs::write(
            &cfg,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\nacl_file {}\n\
                 set_tcp_nodelay true\npersistence false\n{user}",
                password_file.display(),
                acl_file.display()
            ),
        )
        .unwrap();
        let log = dir.join("mosquitto.log");
        let child = Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start /usr/sbin/mosquitto");
        let mut b = Broker { child, port, log };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = b.child.try_wait().unwrap() {
                panic!("mosquitto exited ({status}): {}", b.log());
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return b;
            }
            assert!(Instant::now() < deadline, "mosquitto did not listen: {}", b.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An MQTT client whose event loop runs in its own task and forwards packets (or the error that
/// ended it).
struct Client {
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Result<Packet, String>>,
}

impl Client {
    /// Connect and wait for the ConnAck; `Err` carries the refusal.
    async fn connect(port: u16, user: &str, password: &str) -> Result<Client, ConnectionError> {
        let mut opts = MqttOptions::new(format!("{user}-{}", rand_suffix()), "127.0.0.1", port);
        opts.set_credentials(user, password);
        opts.set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(opts, 100);
        let first = tokio::time::timeout(WAIT, async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => return Ok(ack),
                    Ok(_) => continue,
                    Err(e) => return Err(e),
                }
            }
        })
        .await
        .expect("ConnAck or refusal before the deadline")?;
        assert_eq!(first.code, ConnectReturnCode::Success);
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(p)) => {
                        if tx.send(Ok(p)).is_err() {
                            return;
                        }
                    }
                    Ok(Event::Outgoing(_)) => {}
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                }
            }
        });
        Ok(Client { client, rx })
    }

    /// Wait for the first packet `f` accepts; every packet seen on the way is kept in `seen`.
    async fn until<T>(&mut self, seen: &mut Vec<Packet>, mut f: impl FnMut(&Packet) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let p = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("deadline passed; seen {seen:?}"))
                .expect("event loop running")
                .unwrap_or_else(|e| panic!("connection ended: {e}; seen {seen:?}"));
            if let Some(t) = f(&p) {
                return t;
            }
            seen.push(p);
        }
    }

    async fn subscribe(&mut self, topic: &str) -> SubscribeReasonCode {
        self.client.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
        let mut seen = Vec::new();
        self.until(&mut seen, |p| match p {
            Packet::SubAck(s) => Some(s.return_codes[0]),
            _ => None,
        })
        .await
    }

    async fn publish(&mut self, topic: &str, payload: &str, retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.as_bytes().to_vec())
            .await
            .unwrap();
        let mut seen = Vec::new();
        self.until(&mut seen, |p| matches!(p, Packet::PubAck(_)).then_some(()))
            .await;
    }
}

fn rand_suffix() -> u32 {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).unwrap();
    u32::from_le_bytes(b)
}

fn publish_on(p: &Packet, topic: &str) -> Option<String> {
    match p {
        Packet::Publish(m) if m.topic == topic => Some(String::from_utf8_lossy(&m.payload).to_string()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_province_of_1650_devices_gets_broker_files_that_isolate_each_device() {
    let ws = Workspace::new(&sample::station_csv(1650, 84));
    let report = bulk(&ws.options()).unwrap();
    assert_eq!(report.created.len(), 1650);
    assert_eq!(report.counts.values().map(|c| c.created).sum::<usize>(), 1650);
    let out = ws.out();
    let pw = passwords(&out);
    assert_eq!(pw.len(), 1650);
    let server_pw = std::fs::read_to_string(out.join("secrets/server-mqtt-password")).unwrap();
    let server_pw = server_pw.trim();
    let broker = Broker::start(
        ws.dir.path(),
        &out.join("mosquitto/password_file"),
        &out.join("mosquitto/acl_file"),
    );
    let (a, b) = ("lc-08001-0001", "lc-08002-0001");

    // Log in with the generated password; a wrong one is refused.
    let mut dev_a = Client::connect(broker.port, a, &pw[a])
        .await
        .expect("device A logs in");
    match Client::connect(broker.port, a, "not-the-password").await {
        Err(ConnectionError::ConnectionRefused(code)) => assert!(
            matches!(
                code,
                ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized
            ),
            "{code:?}"
        ),
        Err(e) => panic!("expected a refusal, got {e}"),
        Ok(_) => panic!("a wrong password was accepted"),
    }
    assert!(
        Client::connect(broker.port, "lc-09999-0001", &pw[a])
            .await
            .is_err(),
        "unknown user refused"
    );
    let mut server = Client::connect(broker.port, "nguon-server", server_pw)
        .await
        .expect("server logs in");

    // Desired state: retained, one per device; only the owner reads it.
    let desired = |id: &str| format!("nguon/v1/d/{id}/desired");
    server.publish(&desired(b), "for B", true).await;
    server.publish(&desired(a), "for A", true).await;
    let mut dev_b = Client::connect(broker.port, b, &pw[b])
        .await
        .expect("device B logs in");
    assert!(matches!(
        dev_b.subscribe(&desired(b)).await,
        SubscribeReasonCode::Success(_)
    ));
    let mut seen = Vec::new();
    assert_eq!(
        dev_b.until(&mut seen, |p| publish_on(p, &desired(b))).await,
        "for B"
    );

    let code = dev_a.subscribe(&desired(b)).await;
    assert!(matches!(
        dev_a.subscribe(&desired(a)).await,
        SubscribeReasonCode::Success(_)
    ));
    // Retained messages follow each SubAck in order, so once A's own arrives, B's would have too.
    let mut seen = Vec::new();
    assert_eq!(
        dev_a.until(&mut seen, |p| publish_on(p, &desired(a))).await,
        "for A"
    );
    assert!(
        seen.iter().all(|p| publish_on(p, &desired(b)).is_none()),
        "A read B's desired state (suback {code:?}): {seen:?}"
    );

    // Area commands: A reads its commune's, not another commune's.
    let area = |code: &str| format!("nguon/v1/a/{code}/cmd");
    assert!(matches!(
        dev_a.subscribe(&area("08001")).await,
        SubscribeReasonCode::Success(_)
    ));
    dev_a.subscribe(&area("08002")).await;
    server.publish(&area("08002"), "commune 08002", false).await;
    server.publish(&area("08001"), "commune 08001", false).await;
    let mut seen = Vec::new();
    assert_eq!(
        dev_a.until(&mut seen, |p| publish_on(p, &area("08001"))).await,
        "commune 08001"
    );
    assert!(
        seen.iter().all(|p| publish_on(p, &area("08002")).is_none()),
        "{seen:?}"
    );

    // Events: A cannot publish on B's topic; its own arrive.
    let events = |id: &str| format!("nguon/v1/d/{id}/events");
    assert!(matches!(
        server.subscribe("nguon/v1/d/+/events").await,
        SubscribeReasonCode::Success(_)
    ));
    dev_a.publish(&events(b), "forged by A", false).await;
    dev_a.publish(&events(a), "from A", false).await;
    let mut seen = Vec::new();
    assert_eq!(
        server.until(&mut seen, |p| publish_on(p, &events(a))).await,
        "from A"
    );
    assert!(
        seen.iter().all(|p| publish_on(p, &events(b)).is_none()),
        "forged event delivered: {seen:?}"
    );

    // A device cannot write its own desired state either.
    dev_a.publish(&desired(a), "self-made", true).await;
    let mut again = Client::connect(broker.port, a, &pw[a]).await.unwrap();
    again.subscribe(&desired(a)).await;
    let mut seen = Vec::new();
    assert_eq!(
        again.until(&mut seen, |p| publish_on(p, &desired(a))).await,
        "for A"
    );
    drop(broker);
}
