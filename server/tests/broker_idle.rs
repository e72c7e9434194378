//! Issue 11 item 4, written against what any embedded broker must do, seen from a socket: a
//! device that logs in and then goes silent is disconnected once its idle timeout passes (1.5 ×
//! the keep-alive it asked for, at most 1.5 × `mqtt_max_keepalive_secs`), also when it asked for
//! no keep-alive at all, which would otherwise hold a socket forever. The clients are raw TCP
//! sockets speaking MQTT 3.1.1 bytes, so the test depends on no broker's or client library's
//! internals (written for the gate in front of rumqttd, it holds for the gate in front of rmqtt
//! today). On an external broker (`NGUON_TEST_MQTT_URL`) the idle timeout is that broker's
//! configuration, so the test runs on the embedded one only.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common;
use crate::dispatch_support::{DEADLINE, area, device, uid};

/// An MQTT 3.1.1 CONNECT with a clean session, username = client id, and `keep_alive` seconds.
fn connect_packet(id: &str, password: &str, keep_alive: u16) -> Vec<u8> {
    let string = |s: &str, out: &mut Vec<u8>| {
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    let mut body = Vec::new();
    string("MQTT", &mut body);
    body.push(4); // protocol level 3.1.1
    body.push(0b1100_0010); // username, password, clean session
    body.extend_from_slice(&keep_alive.to_be_bytes());
    string(id, &mut body);
    string(id, &mut body);
    string(password, &mut body);
    let mut packet = vec![0x10];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        packet.push(byte);
        if len == 0 {
            break;
        }
    }
    packet.extend_from_slice(&body);
    packet
}

/// Read exactly `n` bytes, or `None` when the broker closed the socket first.
async fn read_n(s: &mut TcpStream, n: usize) -> Option<Vec<u8>> {
    let mut b = vec![0u8; n];
    match tokio::time::timeout(DEADLINE, s.read_exact(&mut b)).await {
        Ok(Ok(_)) => Some(b),
        Ok(Err(_)) => None,
        Err(_) => panic!("no answer from the broker within {DEADLINE:?}"),
    }
}

/// What happened to a device that logged in, proved its session alive, then went silent.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// The broker refused the CONNECT: a refusal code, or closed without a CONNACK (rumqttd, the
    /// embedded broker before rmqtt, closed a CONNECT without keep-alive that way).
    Refused(Option<u8>),
    /// The session was live (PINGREQ answered), then the broker closed the silent socket.
    ClosedWhenIdle,
}

async fn log_in_and_go_silent(target: SocketAddr, id: &str, password: &str, keep_alive: u16) -> Outcome {
    let mut s = TcpStream::connect(target).await.unwrap();
    s.write_all(&connect_packet(id, password, keep_alive))
        .await
        .unwrap();
    let Some(connack) = read_n(&mut s, 4).await else {
        return Outcome::Refused(None);
    };
    assert_eq!(connack[..2], [0x20, 0x02], "{id}: {connack:?}");
    if connack[3] != 0 {
        return Outcome::Refused(Some(connack[3]));
    }
    // Logged in and alive: a PINGREQ is answered.
    s.write_all(&[0xC0, 0x00]).await.unwrap();
    assert_eq!(read_n(&mut s, 2).await, Some(vec![0xD0, 0x00]), "{id}: PINGRESP");
    // Now silent. Without an idle timeout the socket stays open for good (the reported attack:
    // 19,980 such sockets exhausted the server's file descriptors); with one it is closed.
    let mut b = [0u8; 16];
    let r = tokio::time::timeout(DEADLINE, s.read(&mut b)).await;
    assert!(
        matches!(r, Ok(Ok(0)) | Ok(Err(_))),
        "{id} (keep-alive {keep_alive} s): still open after {DEADLINE:?} of silence: {r:?}"
    );
    Outcome::ClosedWhenIdle
}

#[tokio::test]
async fn a_logged_in_device_that_goes_silent_is_disconnected_after_its_idle_timeout() {
    if common::external_mqtt() {
        return;
    }
    // The shortest cap the configuration allows: no keep-alive is honoured beyond 10 s.
    let app = common::spawn_app_with(|s| s.mqtt_max_keepalive_secs = 10).await;
    let p = uid("p");
    area(&app, &p, None).await;
    let (short, none) = (uid("lc"), uid("lc"));
    device(&app, &short, &p, "idle-device-password-1", None).await;
    device(&app, &none, &p, "idle-device-password-2", None).await;
    let target = SocketAddr::from(([127, 0, 0, 1], app.mqtt_port));
    let (a, b) = tokio::join!(
        // Asked for 2 s: closed after about 3 s of silence.
        log_in_and_go_silent(target, &short, "idle-device-password-1", 2),
        // Asked for none (0 = "never time me out" in MQTT): bounded by the cap, or refused
        // (either way it cannot hold a socket).
        log_in_and_go_silent(target, &none, "idle-device-password-2", 0),
    );
    assert_eq!(a, Outcome::ClosedWhenIdle);
    assert!(
        matches!(b, Outcome::ClosedWhenIdle | Outcome::Refused(_)),
        "{b:?}"
    );
    // The broker still serves: the first device logs in again.
    let mut s = TcpStream::connect(target).await.unwrap();
    s.write_all(&connect_packet(&short, "idle-device-password-1", 30))
        .await
        .unwrap();
    assert_eq!(read_n(&mut s, 4).await, Some(vec![0x20, 0x02, 0x00, 0x00]));
}
