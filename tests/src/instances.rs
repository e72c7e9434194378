//! Several `nguon-server` instances seen from outside (issue 14): an instance's `/readyz`, and
//! which one of them is the leader. Shared by the `ha` and `share_cluster` system tests.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::ServerProc;
use crate::net::eventually;

/// `/readyz` of the instance on `port`: status and JSON body; `None` when it does not answer.
pub async fn readyz(port: u16) -> Option<(u16, Value)> {
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().await.ok()?))
}

/// The index of the one running instance whose `/readyz` says leader (exactly one), within
/// `within`, and how long that took. Panics naming the leaders seen when there is not one.
pub async fn leader(servers: &[ServerProc], within: Duration) -> (usize, Duration) {
    let t = Instant::now();
    let ports: Vec<(usize, u16)> = servers
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_running())
        .map(|(i, s)| (i, s.http_port))
        .collect();
    let i = eventually("one leader", within, Duration::from_millis(100), || {
        let ports = ports.clone();
        async move {
            let mut leaders = Vec::new();
            for (i, p) in ports {
                if let Some((200, b)) = readyz(p).await
                    && b["role"] == "leader"
                {
                    leaders.push(i);
                }
            }
            match leaders.as_slice() {
                [one] => Ok(*one),
                other => Err(format!("leaders: {other:?}")),
            }
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    (i, t.elapsed())
}
