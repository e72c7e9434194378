//! One client connection through the gate: read the CONNECT before the deadline, check the
//! login, open a connection to the engine (rmqtt) for it, then relay packets both ways. Packets are framed
//! and parsed with rumqttc's `mqttbytes` (MQTT 3.1.1); a packet that passes is forwarded as the
//! exact bytes received. Only a SUBSCRIBE with refused filters and the SUBACK answering it are
//! rewritten.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use nguon_protocol::acl;
use rumqttc::mqttbytes::v4::{
    ConnAck, Connect, ConnectReturnCode, Login as MqttLogin, Publish, SubAck, Subscribe, SubscribeReasonCode,
};
use rumqttc::mqttbytes::{self, FixedHeader, PacketType, Protocol};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Shared;
use crate::mqtt::broker::Login;

/// The largest CONNECT: client id, login and a last will (a device's will is its state message).
const MAX_CONNECT: usize = acl::MAX_STATE + 4096;
/// The largest packet of the server's own user, and from the engine to any client.
const MAX_INTERNAL: usize = acl::MAX_PACKET + 64 * 1024;

/// Wait before asking the engine again after a ServiceUnavailable CONNACK.
const UPSTREAM_RETRY: Duration = Duration::from_millis(50);

/// How long the gate waits for the engine's CONNACK (the engine's own handshake timeout is 10 s;
/// under a reconnect storm the CONNECT deadline of the client may pass first, as before).
const CONNACK_WAIT: Duration = Duration::from_secs(30);

/// Why a direction of the relay ended.
#[derive(Debug)]
enum End {
    /// The peer closed the connection.
    Closed,
    /// The client sent DISCONNECT.
    Disconnected,
    /// Nothing from the client within its idle timeout.
    Idle,
    /// Read or write failed.
    Io(std::io::Error),
    /// Not MQTT 3.1.1, or a packet in the wrong place.
    Malformed(String),
    /// A device broke the ACL or a size limit (already logged).
    Refused,
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Closed => f.write_str("closed by the peer"),
            End::Disconnected => f.write_str("DISCONNECT"),
            End::Idle => f.write_str("idle past the keep-alive"),
            End::Io(e) => write!(f, "I/O: {e}"),
            End::Malformed(m) => write!(f, "malformed: {m}"),
            End::Refused => f.write_str("refused by the ACL or a size limit"),
        }
    }
}

impl From<std::io::Error> for End {
    fn from(e: std::io::Error) -> End {
        End::Io(e)
    }
}

/// One framed packet, or a packet larger than allowed.
enum Frame {
    Packet(FixedHeader, Bytes),
    TooLarge { len: usize, topic: Option<String> },
}

/// The topic of the PUBLISH at the start of `buf`, if enough of it is there (for the log).
fn publish_topic(buf: &[u8]) -> Option<String> {
    if buf.first()? >> 4 != 3 {
        return None;
    }
    let mut i = 1;
    while buf.get(i)? & 0x80 != 0 {
        i += 1;
        if i > 4 {
            return None;
        }
    }
    let len = usize::from(u16::from_be_bytes([*buf.get(i + 1)?, *buf.get(i + 2)?]));
    let t = buf.get(i + 3..i + 3 + len)?;
    Some(String::from_utf8_lossy(t).into_owned())
}

/// The next packet from `r` (bytes already read wait in `buf`), refusing any larger than `max`
/// before reading it.
async fn next_frame<R: AsyncRead + Unpin>(r: &mut R, buf: &mut BytesMut, max: usize) -> Result<Frame, End> {
    loop {
        match mqttbytes::check(buf.iter(), max) {
            Ok(h) => {
                let raw = buf.split_to(h.frame_length()).freeze();
                return Ok(Frame::Packet(h, raw));
            }
            Err(mqttbytes::Error::InsufficientBytes(n)) => {
                buf.reserve(n.clamp(4096, 1 << 20));
                if r.read_buf(buf).await? == 0 {
                    return Err(End::Closed);
                }
            }
            Err(mqttbytes::Error::PayloadSizeLimitExceeded(len)) => {
                return Ok(Frame::TooLarge {
                    len,
                    topic: publish_topic(buf),
                });
            }
            Err(e) => return Err(End::Malformed(e.to_string())),
        }
    }
}

async fn write<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> Result<(), End> {
    w.write_all(bytes).await?;
    w.flush().await?;
    Ok(())
}

async fn refuse_connect<W: AsyncWrite + Unpin>(w: &mut W, code: ConnectReturnCode) {
    let mut b = BytesMut::new();
    if ConnAck::new(code, false).write(&mut b).is_ok() {
        let _ = write(w, &b).await;
        let _ = w.shutdown().await;
    }
}

/// Serve one accepted connection until either side closes, the client breaks a rule, or its
/// device's credential changes.
pub(super) async fn run<S>(stream: S, peer: SocketAddr, deadline: Instant, shared: &Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (mut cr, mut cw) = tokio::io::split(stream);
    let mut cbuf = BytesMut::with_capacity(4096);
    let connect = match tokio::time::timeout_at(deadline, next_frame(&mut cr, &mut cbuf, MAX_CONNECT)).await {
        Err(_) => {
            tracing::debug!(%peer, "mqtt gate: no CONNECT before the deadline; closed");
            return;
        }
        Ok(Ok(Frame::Packet(h, raw))) if matches!(h.packet_type(), Ok(PacketType::Connect)) => {
            match Connect::read(h, raw) {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "mqtt gate: malformed CONNECT; closed");
                    return;
                }
            }
        }
        Ok(other) => {
            let why = match other {
                Ok(Frame::TooLarge { len, .. }) => format!("a first packet of {len} bytes"),
                Ok(Frame::Packet(..)) => "a first packet other than CONNECT".into(),
                Err(e) => e.to_string(),
            };
            tracing::debug!(%peer, why, "mqtt gate: no valid CONNECT; closed");
            return;
        }
    };
    if connect.protocol != Protocol::V4 {
        refuse_connect(&mut cw, ConnectReturnCode::RefusedProtocolVersion).await;
        return;
    }
    let Some(login) = connect.login.clone() else {
        tracing::info!(%peer, client_id = %connect.client_id, "mqtt gate: CONNECT without a login refused");
        refuse_connect(&mut cw, ConnectReturnCode::BadUserNamePassword).await;
        return;
    };
    let checked = tokio::time::timeout_at(
        deadline,
        shared
            .credentials
            .check(&connect.client_id, &login.username, &login.password),
    );
    let Ok(Some(who)) = checked.await else {
        refuse_connect(&mut cw, ConnectReturnCode::NotAuthorized).await;
        return;
    };
    if let (Login::Device { id, .. }, Some(will)) = (&who, &connect.last_will) {
        let ok = acl::may_publish(id, &will.topic).is_some_and(|limit| will.message.len() <= limit);
        if !ok {
            tracing::warn!(device = %id, topic = %will.topic, size = will.message.len(),
                "mqtt gate: last will outside the device's state topic or over its size limit; refused");
            refuse_connect(&mut cw, ConnectReturnCode::NotAuthorized).await;
            return;
        }
    }
    let registration = shared.credentials.register(&who);
    let cancel = registration.as_ref().map(|(_, c)| c.clone()).unwrap_or_default();
    let mut forwarded = connect.clone();
    if let Login::Device { id, .. } = &who {
        forwarded.login = Some(MqttLogin::new(id.as_str(), shared.credentials.gate_password()));
    }
    let Some((mut ur, mut uw, ubuf)) = connect_upstream(shared, &forwarded, &mut cw, deadline).await else {
        return;
    };
    let idle = shared.idle_timeout(connect.keep_alive);
    let pending = Mutex::new(HashMap::new());
    let (local_tx, local_rx) = mpsc::channel(16);
    let up = client_to_upstream(&mut cr, cbuf, &mut uw, &who, idle, &pending, local_tx);
    let down = upstream_to_client(&mut ur, ubuf, &mut cw, &pending, local_rx);
    let client = connect.client_id.as_str();
    tokio::select! {
        end = up => match end {
            End::Closed | End::Disconnected => tracing::debug!(%peer, client, "mqtt gate: client left"),
            End::Idle => tracing::info!(%peer, client, idle_secs = idle.as_secs(), "mqtt gate: client silent past its keep-alive; closed"),
            End::Refused => {}
            e => tracing::debug!(%peer, client, end = %e, "mqtt gate: client connection ended"),
        },
        end = down => tracing::debug!(%peer, client, end = %end, "mqtt gate: broker side ended"),
        _ = cancel.cancelled() => tracing::info!(%peer, client, "mqtt gate: session revoked; closed"),
    }
    drop(registration);
}

/// Forward `connect` to the engine and pass its CONNACK to the client; `None` once the client has
/// been answered with a refusal. rmqtt answers ServiceUnavailable while it still tears down the
/// same client id's previous session (a device reconnecting at once, or after a revocation): that
/// answer is retried on a new connection while the client's CONNECT deadline allows, and passed
/// on to the device only after that. Returns the
/// engine's halves and the bytes already read after the CONNACK.
async fn connect_upstream<W: AsyncWrite + Unpin>(
    shared: &Shared,
    connect: &Connect,
    cw: &mut W,
    deadline: Instant,
) -> Option<(OwnedReadHalf, OwnedWriteHalf, BytesMut)> {
    let mut packet = BytesMut::new();
    if connect.write(&mut packet).is_err() {
        refuse_connect(cw, ConnectReturnCode::ServiceUnavailable).await;
        return None;
    }
    loop {
        let upstream = match tokio::time::timeout_at(deadline, TcpStream::connect(shared.upstream)).await {
            Ok(Ok(s)) => s,
            other => {
                tracing::warn!(upstream = %shared.upstream, result = ?other.map(|r| r.map(|_| ())),
                    "mqtt gate: cannot reach the embedded broker");
                refuse_connect(cw, ConnectReturnCode::ServiceUnavailable).await;
                return None;
            }
        };
        let _ = upstream.set_nodelay(true);
        let (mut ur, mut uw) = upstream.into_split();
        if write(&mut uw, &packet).await.is_err() {
            refuse_connect(cw, ConnectReturnCode::ServiceUnavailable).await;
            return None;
        }
        let mut buf = BytesMut::with_capacity(4096);
        let (h, raw) = match tokio::time::timeout(CONNACK_WAIT, next_frame(&mut ur, &mut buf, MAX_INTERNAL))
            .await
        {
            Ok(Ok(Frame::Packet(h, raw))) if matches!(h.packet_type(), Ok(PacketType::ConnAck)) => (h, raw),
            other => {
                tracing::warn!(client = %connect.client_id, result = ?other.map(|r| r.map(|_| ())),
                    "mqtt gate: no CONNACK from the embedded broker");
                refuse_connect(cw, ConnectReturnCode::ServiceUnavailable).await;
                return None;
            }
        };
        let busy =
            ConnAck::read(h, raw.clone()).is_ok_and(|a| a.code == ConnectReturnCode::ServiceUnavailable);
        if busy && Instant::now() + UPSTREAM_RETRY < deadline {
            tracing::debug!(client = %connect.client_id, "mqtt gate: engine busy with the previous session; retrying");
            tokio::time::sleep(UPSTREAM_RETRY).await;
            continue;
        }
        if write(cw, &raw).await.is_err() {
            return None;
        }
        return Some((ur, uw, buf));
    }
}

/// Client → engine: frame, check and forward.
async fn client_to_upstream<R, W>(
    cr: &mut R,
    mut buf: BytesMut,
    uw: &mut W,
    who: &Login,
    idle: Duration,
    pending: &Mutex<HashMap<u16, Vec<bool>>>,
    local: mpsc::Sender<SubAck>,
) -> End
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let max = match who {
        Login::Internal => MAX_INTERNAL,
        Login::Device { .. } => acl::MAX_DEVICE_PACKET,
    };
    loop {
        let frame = match tokio::time::timeout(idle, next_frame(cr, &mut buf, max)).await {
            Err(_) => return End::Idle,
            Ok(Err(e)) => return e,
            Ok(Ok(f)) => f,
        };
        let (h, raw) = match frame {
            Frame::Packet(h, raw) => (h, raw),
            Frame::TooLarge { len, topic } => {
                let device = match who {
                    Login::Device { id, .. } => id.as_str(),
                    Login::Internal => "(server)",
                };
                tracing::warn!(
                    device,
                    topic = topic.as_deref().unwrap_or("?"),
                    size = len,
                    max,
                    "mqtt gate: packet over the device limit dropped; device disconnected"
                );
                return End::Refused;
            }
        };
        let Login::Device { id, areas, .. } = who else {
            if let Err(e) = write(uw, &raw).await {
                return e;
            }
            continue;
        };
        match h.packet_type() {
            Ok(PacketType::Publish) => {
                let p = match Publish::read(h, raw.clone()) {
                    Ok(p) => p,
                    Err(e) => return End::Malformed(e.to_string()),
                };
                match acl::may_publish(id, &p.topic) {
                    None => {
                        tracing::warn!(device = %id, topic = %p.topic, size = p.payload.len(), retain = p.retain,
                            "mqtt gate: publish outside the device's own report topics dropped; device disconnected");
                        return End::Refused;
                    }
                    Some(limit) if p.payload.len() > limit => {
                        tracing::warn!(device = %id, topic = %p.topic, size = p.payload.len(), limit,
                            "mqtt gate: publish over its topic's size limit dropped; device disconnected");
                        return End::Refused;
                    }
                    Some(_) => {}
                }
            }
            Ok(PacketType::Subscribe) => {
                let s = match Subscribe::read(h, raw.clone()) {
                    Ok(s) => s,
                    Err(e) => return End::Malformed(e.to_string()),
                };
                let mask: Vec<bool> = s
                    .filters
                    .iter()
                    .map(|f| acl::may_subscribe(id, areas, &f.path))
                    .collect();
                if !mask.iter().all(|ok| *ok) {
                    for f in s.filters.iter().zip(&mask).filter(|(_, ok)| !**ok) {
                        tracing::warn!(device = %id, filter = %f.0.path, "mqtt gate: subscription refused (SUBACK 0x80)");
                    }
                    let allowed: Vec<_> = s
                        .filters
                        .iter()
                        .zip(&mask)
                        .filter(|(_, ok)| **ok)
                        .map(|(f, _)| f.clone())
                        .collect();
                    if allowed.is_empty() {
                        let codes = vec![SubscribeReasonCode::Failure; mask.len()];
                        if local.send(SubAck::new(s.pkid, codes)).await.is_err() {
                            return End::Closed;
                        }
                        continue;
                    }
                    pending
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(s.pkid, mask);
                    let mut b = BytesMut::new();
                    let narrowed = Subscribe {
                        pkid: s.pkid,
                        filters: allowed,
                    };
                    if let Err(e) = narrowed.write(&mut b) {
                        return End::Malformed(e.to_string());
                    }
                    if let Err(e) = write(uw, &b).await {
                        return e;
                    }
                    continue;
                }
            }
            Ok(PacketType::Connect) => return End::Malformed("a second CONNECT".into()),
            Ok(PacketType::Disconnect) => {
                let _ = write(uw, &raw).await;
                return End::Disconnected;
            }
            Ok(_) => {}
            Err(e) => return End::Malformed(e.to_string()),
        }
        if let Err(e) = write(uw, &raw).await {
            return e;
        }
    }
}

/// Engine → client: forward, answering refused filters in SUBACKs, and send the gate's own
/// SUBACKs.
async fn upstream_to_client<R, W>(
    ur: &mut R,
    mut buf: BytesMut,
    cw: &mut W,
    pending: &Mutex<HashMap<u16, Vec<bool>>>,
    mut local: mpsc::Receiver<SubAck>,
) -> End
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        let frame = tokio::select! {
            f = next_frame(ur, &mut buf, MAX_INTERNAL) => f,
            Some(ack) = local.recv() => {
                let mut b = BytesMut::new();
                if let Err(e) = ack.write(&mut b) {
                    return End::Malformed(e.to_string());
                }
                if let Err(e) = write(cw, &b).await {
                    return e;
                }
                continue;
            }
        };
        let (h, raw) = match frame {
            Ok(Frame::Packet(h, raw)) => (h, raw),
            Ok(Frame::TooLarge { len, topic }) => {
                return End::Malformed(format!("{len}-byte packet from the broker on {topic:?}"));
            }
            Err(e) => return e,
        };
        if matches!(h.packet_type(), Ok(PacketType::SubAck)) {
            let ack = match SubAck::read(h, raw.clone()) {
                Ok(a) => a,
                Err(e) => return End::Malformed(e.to_string()),
            };
            let mask = pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&ack.pkid);
            if let Some(mask) = mask {
                let mut granted = ack.return_codes.into_iter();
                let codes = mask
                    .iter()
                    .map(|ok| match ok {
                        true => granted.next().unwrap_or(SubscribeReasonCode::Failure),
                        false => SubscribeReasonCode::Failure,
                    })
                    .collect();
                let mut b = BytesMut::new();
                if let Err(e) = SubAck::new(ack.pkid, codes).write(&mut b) {
                    return End::Malformed(e.to_string());
                }
                if let Err(e) = write(cw, &b).await {
                    return e;
                }
                continue;
            }
        }
        if let Err(e) = write(cw, &raw).await {
            return e;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_topic_of_an_oversized_publish_is_read_from_its_first_bytes() {
        let mut b = BytesMut::new();
        let mut p = Publish::new("nguon/v1/d/x/state", rumqttc::QoS::AtLeastOnce, vec![0u8; 300]);
        p.pkid = 1;
        p.write(&mut b).unwrap();
        assert_eq!(publish_topic(&b[..40]).as_deref(), Some("nguon/v1/d/x/state"));
        assert_eq!(publish_topic(&b[..10]), None);
        assert_eq!(publish_topic(&[0x10, 0]), None);
    }
}
