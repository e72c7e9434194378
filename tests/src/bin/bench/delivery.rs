//! The emergency benchmark's split of the agents' latency (issue 12): broker *delivery* apart from
//! the agent's *processing CPU* per command, with the raw fan-out of the same bytes.
//!
//! - Delivery: the instant each agent's link reads the publish from the broker, before anything is
//!   verified (the agent's [`nguon_agent::ReceiveHook`], which the fleet sets only here). Measured
//!   from the API call for the real emergencies, and from a plain client's publish of the same
//!   signed bytes (the agents read it and refuse it as a replay), which is what the raw baseline
//!   measures for N plain subscribers.
//! - Processing CPU per command: this process's CPU time (`getrusage`, every thread: the agents'
//!   tasks and blocking pool, and the simulator's own forwarding) during a burst of one `stop`
//!   command to the N agents (nothing playing: verify, replay check, durable state write, hand to
//!   the player, ack written to the outbox and published, then the server's receipt verified and
//!   the outbox file removed), minus the idle rate over the same wall time, divided by N. No
//!   media fetch, decode or play is in it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use nguon_agent::AgentEventKind;
use nguon_tests::api::Api;
use nguon_tests::fleet::{Fleet, FleetEvent};
use rumqttc::QoS;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

/// Area-command receipts reported by the agents' receive hooks: (device index, instant).
pub struct Receipts {
    rx: UnboundedReceiver<(usize, Instant)>,
}

impl Receipts {
    /// The sender for [`nguon_tests::fleet::FleetOptions::area_receipts`], and its receiver.
    pub fn new() -> (UnboundedSender<(usize, Instant)>, Receipts) {
        let (tx, rx) = mpsc::unbounded_channel();
        (tx, Receipts { rx })
    }

    /// Forget every receipt so far.
    pub fn clear(&mut self) {
        while self.rx.try_recv().is_ok() {}
    }

    /// Each agent's first receipt at or after `t0`, as a delay from `t0`, once `n` agents have one
    /// or `within` passed.
    pub async fn since(&mut self, t0: Instant, n: usize, within: Duration) -> Vec<Duration> {
        let mut first: HashMap<usize, Duration> = HashMap::new();
        let deadline = tokio::time::Instant::now() + within;
        while first.len() < n {
            let Ok(Some((d, at))) = tokio::time::timeout_at(deadline, self.rx.recv()).await else {
                break;
            };
            if at >= t0 {
                first.entry(d).or_insert(at - t0);
            }
        }
        first.into_values().collect()
    }
}

/// Wait until no agent has an event waiting for the server's receipt (or `within` passed);
/// whether they all drained.
pub async fn settle(fleet: &Fleet, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if fleet.outbox_total() == 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// The processing burst's figures.
pub struct Processing {
    /// CPU of the burst minus the idle rate, per agent.
    pub per_command: Duration,
    /// This process's CPU over the burst.
    pub burst: Duration,
    /// The idle share subtracted.
    pub idle: Duration,
    /// Wall time from the API call until every ack was receipted.
    pub wall: Duration,
    /// Agents that acked.
    pub acked: usize,
    /// Whether every outbox drained (acks receipted by the server) within the window.
    pub drained: bool,
}

/// One `stop` command to the province's N agents, nothing playing; `idle_rate` is this process's
/// CPU seconds per wall second with the agents idle.
pub async fn processing(
    api: &Api,
    province: &str,
    fleet: &Fleet,
    events: &mut UnboundedReceiver<FleetEvent>,
    n: usize,
    idle_rate: f64,
) -> anyhow::Result<Processing> {
    settle(fleet, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    while events.try_recv().is_ok() {}
    let c0 = nguon_tests::stats::self_cpu();
    let t0 = Instant::now();
    let issued = api
        .post(
            &format!("/api/v1/areas/{province}/commands"),
            &serde_json::json!({"action": "stop"}),
        )
        .await?;
    let id = issued
        .get("command_id")
        .and_then(|v| v.as_str())
        .context("command_id in the answer")?
        .to_string();
    let mut acked = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while acked.len() < n {
        let Ok(Some(ev)) = tokio::time::timeout_at(deadline, events.recv()).await else {
            break;
        };
        if let AgentEventKind::Acked { message_id, .. } = ev.event.kind
            && message_id.to_string() == id
        {
            acked.insert(ev.device);
        }
    }
    let drained = settle(fleet, Duration::from_secs(60)).await;
    let burst = nguon_tests::stats::self_cpu().saturating_sub(c0);
    let wall = t0.elapsed();
    let idle = Duration::from_secs_f64(idle_rate * wall.as_secs_f64());
    Ok(Processing {
        per_command: burst.saturating_sub(idle) / n.max(1) as u32,
        burst,
        idle,
        wall,
        acked: acked.len(),
        drained,
    })
}

/// Publish `payload` on `topic` once from a plain client and return each agent's publish →
/// receipt delay (the agents refuse it afterwards: it is a replay).
pub async fn replay(
    net: &tokio::runtime::Handle,
    port: u16,
    topic: &str,
    payload: &[u8],
    receipts: &mut Receipts,
    n: usize,
) -> anyhow::Result<Vec<Duration>> {
    // Connected from a task on `net`, so the publisher's poll loop runs there too.
    let (c, poller) = net
        .spawn(nguon_tests::baseline::connected_publisher(
            "replay",
            "127.0.0.1",
            port,
        ))
        .await??;
    receipts.clear();
    let t0 = Instant::now();
    c.publish(topic, QoS::AtLeastOnce, false, payload.to_vec())
        .await?;
    let got = receipts.since(t0, n, Duration::from_secs(60)).await;
    poller.abort();
    Ok(got)
}
