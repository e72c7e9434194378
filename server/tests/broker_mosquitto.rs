//! Issue 11, item 3 on Mosquitto: a device retaining an oversized message on its own `state`
//! topic. A private Mosquitto runs with the files nguon-provision generates (`password_file`,
//! `acl_file`, `nguon.conf`), the server's link connects to it, and a device attacks. With the
//! generated `max_packet_size` Mosquitto refuses the 20 MB message; a 1 MB one (under the broker's
//! cap, over the state topic's) reaches the link, which drops it and keeps ingesting. Without the
//! cap (the broker config before), the link takes the 20 MB message once, drops it, and keeps
//! ingesting instead of looping on "payload size limit exceeded".

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use nguon_protocol::{DeviceId, topic};
use nguon_provision::credential::hash_password;
use nguon_provision::mosquitto::{self, BrokerUser};
use nguon_server::config::Secret;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

use crate::common::{self, TestApp};
use crate::dispatch_support::*;

struct Broker {
    child: Child,
    port: u16,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private Mosquitto on a free port with the generated files for `devices` (in area `area`).
async fn mosquitto(
    dir: &std::path::Path,
    server_pw: &str,
    devices: &[(&str, &str)],
    area: &str,
    capped: bool,
) -> Broker {
    let users: Vec<(String, String)> = devices
        .iter()
        .map(|(id, pw)| (id.to_string(), hash_password(pw)))
        .collect();
    let users: Vec<BrokerUser<'_>> = users
        .iter()
        .map(|(id, h)| BrokerUser {
            username: id,
            password_hash: h,
            areas: vec![area],
        })
        .collect();
    std::fs::write(
        dir.join("password_file"),
        mosquitto::password_file(&hash_password(server_pw), &users),
    )
    .unwrap();
    std::fs::write(dir.join("acl_file"), mosquitto::acl_file(&users)).unwrap();
    let port = common::free_port();
    let mut conf = mosquitto::conf(dir, port).replace(
        &format!("listener {port}\n"),
        &format!("listener {port} 127.0.0.1\n"),
    );
    assert!(conf.contains("max_packet_size 4194304\n"));
    if !capped {
        conf = conf.replace("max_packet_size 4194304\n", "");
    }
    // Running as root, Mosquitto would switch to its own user, which cannot read the temp dir.
    conf.push_str("user root\npersistence false\nlog_dest stderr\n");
    let path = dir.join("mosquitto.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new("/usr/sbin/mosquitto")
        .arg("-c")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("mosquitto.log")).unwrap(),
        ))
        .spawn()
        .expect("start mosquitto");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    eventually("mosquitto listening", || async {
        tokio::net::TcpStream::connect(addr).await.ok()
    })
    .await;
    Broker { child, port }
}

/// Publish once as `id` and wait until the broker acks or drops the connection; whether it acked.
async fn publish_once(port: u16, id: &str, pw: &str, topic: &str, payload: Vec<u8>) -> bool {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_credentials(id, pw).set_max_packet_size(32 << 20, 32 << 20);
    let (c, mut el) = AsyncClient::new(o, 10);
    c.publish(topic, QoS::AtLeastOnce, true, payload).await.unwrap();
    let r = tokio::time::timeout(DEADLINE, async {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => return true,
                Ok(Event::Incoming(Packet::ConnAck(a))) => {
                    assert_eq!(a.code, rumqttc::ConnectReturnCode::Success)
                }
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    })
    .await
    .expect("ack or disconnect");
    let _ = c.disconnect().await;
    r
}

async fn online_with(app: &TestApp, id: &str, session: u64) {
    eventually(&format!("{id} online with session {session}"), || async {
        let (_, d) = common::json(app.get(&format!("/api/v1/devices/{id}")).await).await;
        (d["online"] == true && d["session"] == session).then_some(())
    })
    .await;
}

async fn attack(capped: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (p, a, b) = (uid("p"), uid("lc-a"), uid("lc-b"));
    let broker = mosquitto(
        dir.path(),
        "server-password-1",
        &[(&a, "password-of-a"), (&b, "password-of-b")],
        &p,
        capped,
    )
    .await;
    let url = format!(
        "mqtt://{}:server-password-1@127.0.0.1:{}",
        mosquitto::SERVER_USER,
        broker.port
    );
    let app = common::spawn_app_with(|s| s.mqtt_url = Some(Secret::new(url))).await;
    area(&app, &p, None).await;
    device(&app, &a, &p, "password-of-a", None).await;
    device(&app, &b, &p, "password-of-b", None).await;
    let state_a = topic::state(&DeviceId::parse(&a).unwrap());
    let state_b = topic::state(&DeviceId::parse(&b).unwrap());

    // 20 MB retained on a's own state topic: the generated cap refuses it.
    let acked = publish_once(broker.port, &a, "password-of-a", &state_a, vec![b'{'; 20 << 20]).await;
    assert_eq!(acked, !capped, "20 MB accepted by the broker: {acked}");
    if capped {
        // 1 MB: under the broker's cap, over the state topic's limit; the link drops it.
        assert!(publish_once(broker.port, &a, "password-of-a", &state_a, vec![b'{'; 1 << 20]).await);
    }
    // (Uncapped, the 20 MB message stays retained: the link gets it at every subscription.)

    // The link still ingests, and on the uncapped broker the 20 MB message came and went once.
    assert!(
        publish_once(
            broker.port,
            &b,
            "password-of-b",
            &state_b,
            state_payload(&b, true, 4)
        )
        .await
    );
    online_with(&app, &b, 4).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    // And keeps doing so.
    assert!(
        publish_once(
            broker.port,
            &b,
            "password-of-b",
            &state_b,
            state_payload(&b, true, 5)
        )
        .await
    );
    online_with(&app, &b, 5).await;
}

#[tokio::test]
async fn on_mosquitto_with_the_generated_config_an_oversized_retained_state_does_not_stop_the_link() {
    attack(true).await;
}

#[tokio::test]
async fn on_mosquitto_without_a_packet_cap_the_link_drops_a_20_mb_retained_state_and_keeps_ingesting() {
    attack(false).await;
}
