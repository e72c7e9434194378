//! Several `nguon-server` instances and broker nodes seen from outside (issue 14): an instance's
//! `/readyz` and metrics, which instance is the leader, and which broker node each agent is on.
//! Shared by the `ha`, `share_cluster`, `cluster_tls` and `broker_cluster` system tests.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{AgentProc, ServerProc};
use crate::net::eventually;

/// The counter or gauge `name` of the instance on `port` (`/metrics`, admin token); `None` when
/// it does not answer or has no such line.
pub async fn metric(port: u16, name: &str) -> Option<u64> {
    let text = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .bearer_auth(crate::harness::TOKEN)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

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

/// The index in `urls` of agent `a`'s latest broker connection, from its log.
pub fn node_of(a: &AgentProc, urls: &[String]) -> Option<usize> {
    let log = a.log();
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("connected to the broker"))?;
    urls.iter().position(|u| line.contains(u.as_str()))
}

/// Wait (30 s at most) until every agent's latest connection is to a node other than
/// `urls[dead]`; how long that took, or an error naming the agents still there.
pub async fn agents_leave(agents: &[AgentProc], urls: &[String], dead: usize) -> Result<Duration, String> {
    let t = Instant::now();
    eventually(
        "agents off the killed node",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async move {
            let stuck: Vec<String> = agents
                .iter()
                .filter(|a| node_of(a, urls).is_none_or(|n| n == dead))
                .map(|a| a.device.id.to_string())
                .collect();
            if stuck.is_empty() {
                Ok(())
            } else {
                Err(format!("still on node {dead}: {stuck:?}"))
            }
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(t.elapsed())
}
