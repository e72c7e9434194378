//! The HTTP port's limits (issue 14: at 100,000 devices fetching media at once the server ran out
//! of file descriptors): an idle keep-alive connection, or one that never sends a request, is
//! closed after `server.keepalive_timeout_secs`; at `server.max_connections` a new connection
//! waits (in the listen backlog) until an open one closes, and is then served. Raw TCP clients,
//! so that nothing pools or closes connections behind the test's back.

use crate::common;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest the test waits for anything (a hang guard, not a measurement).
const GUARD: Duration = Duration::from_secs(60);

const REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: nguon\r\n\r\n";

/// Read one whole response (headers and its `Content-Length` body) from `s`.
async fn response(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .expect("a Content-Length");
            if buf.len() >= end + 4 + len {
                return text;
            }
        }
        let n = tokio::time::timeout(GUARD, s.read(&mut chunk))
            .await
            .expect("a response")
            .unwrap();
        assert!(n > 0, "closed before a whole response: {text}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Whether the server closes `s` (EOF) with nothing more sent.
async fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut chunk = [0u8; 64];
    matches!(tokio::time::timeout(GUARD, s.read(&mut chunk)).await, Ok(Ok(0)))
}

#[tokio::test]
async fn idle_keep_alive_and_silent_connections_are_closed_after_the_keepalive_timeout() {
    let app = common::spawn_app_with(|s| s.server.keepalive_timeout_secs = 1).await;
    let mut used = TcpStream::connect(app.addr).await.unwrap();
    used.write_all(REQUEST).await.unwrap();
    let r = response(&mut used).await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(
        closed_by_server(&mut used).await,
        "an idle keep-alive connection is closed"
    );
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    assert!(
        closed_by_server(&mut silent).await,
        "a connection that never sends a request is closed"
    );
    // The server still serves new connections.
    let mut again = TcpStream::connect(app.addr).await.unwrap();
    again.write_all(REQUEST).await.unwrap();
    assert!(response(&mut again).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn at_the_connection_cap_a_new_connection_is_served_once_an_open_one_closed() {
    let app = common::spawn_app_with(|s| {
        s.server.max_connections = 1;
        s.server.keepalive_timeout_secs = 1;
    })
    .await;
    let mut first = TcpStream::connect(app.addr).await.unwrap();
    first.write_all(REQUEST).await.unwrap();
    assert!(response(&mut first).await.starts_with("HTTP/1.1 200"));
    // `first` holds the one slot, kept alive; `second` waits until the idle timeout closes it.
    let mut second = TcpStream::connect(app.addr).await.unwrap();
    second.write_all(REQUEST).await.unwrap();
    let r = response(&mut second).await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    // So `first` was closed before `second` was accepted: its end is already here.
    let mut chunk = [0u8; 64];
    match first.try_read(&mut chunk) {
        Ok(0) => {}
        Ok(n) => panic!("{n} unexpected bytes on the first connection"),
        Err(e) => panic!(
            "the first connection is still open while the second was served: the cap of one did not hold ({e})"
        ),
    }
}
