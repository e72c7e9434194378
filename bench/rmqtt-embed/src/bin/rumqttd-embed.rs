//! rumqttd 0.20 configured exactly as nguon-server embeds it (server/src/mqtt/broker.rs `config`),
//! run alone so broker-bench can drive 10,000 clients at it: the server's own embedded broker caps
//! connections at 5,000 (`MAX_CONNECTIONS`) and needs every device registered in its database.
//!
//! Differences from the server: `max_connections` comes from `--max-connections` (default 20,000),
//! and the auth hook compares the password with `--device-password` / `--server-password` instead
//! of the server's credential cache (which, after a device's first login, is a SHA-256 of the
//! password and a hash-map look-up). rumqttd has no topic ACL hook, so there is none here.
//!
//! Usage: `rumqttd-embed --port 18831 --device-password pw --server-password spw`.

use std::collections::HashMap;
use std::net::SocketAddr;

fn main() -> anyhow::Result<()> {
    let mut port = 18831u16;
    let mut device_password = "device-pw".to_string();
    let mut server_user = "nguon-server".to_string();
    let mut server_password = "server-pw".to_string();
    let mut max_connections = 20_000usize;
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or_else(|| anyhow::anyhow!("{k} needs a value"));
        match k.as_str() {
            "--port" => port = v()?.parse()?,
            "--device-password" => device_password = v()?,
            "--server-user" => server_user = v()?,
            "--server-password" => server_password = v()?,
            "--max-connections" => max_connections = v()?.parse()?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let mut connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: 8 * 1024 * 1024,
        max_inflight_count: 500,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    connections.set_auth_handler(move |client_id: String, user: String, password: String| {
        let ok = if user == server_user {
            password == server_password
        } else {
            client_id == user && password == device_password
        };
        async move { ok }
    });
    let server = rumqttd::ServerSettings {
        name: "nguon-v4".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    let cfg = rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections,
            max_outgoing_packet_count: 500,
            max_segment_size: 32 * 1024 * 1024,
            max_segment_count: 8,
            ..Default::default()
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Default::default()
    };
    println!("listening {listen} pid {}", std::process::id());
    let mut broker = rumqttd::Broker::new(cfg);
    broker.start()?;
    Ok(())
}
