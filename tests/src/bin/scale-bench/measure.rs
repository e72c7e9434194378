//! The measurements of `scale-bench run` (`--measure`, in the order given) and how each is taken
//! with the agents running: a province-wide dispatch, an emergency with the media not yet cached
//! or cached, and plain replays of the emergency's bytes. The raw fan-out (`raw`) needs the agents
//! stopped, so it comes last ([`check_order`]).

use std::time::{Duration, Instant};

use chrono::Utc;
use nguon_tests::api::{Api, field_str};
use nguon_tests::stats::{load_average, proc_sample, ticks_per_second};
use rumqttc::QoS;

use crate::report::Phase;
use crate::wire::{Children, Marks, now_ns, processing};

/// One measurement.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// A schedule on the province two hours ahead → each agent's receipt and ack of its manifest
    /// (the agents then fetch the schedule's media: it is cached afterwards).
    Dispatch,
    /// Emergency play-now on the province, the media not yet cached (fetched over HTTP).
    EmergencyCold,
    /// Emergency play-now on the province, the media cached by an earlier measurement.
    EmergencyWarm,
    /// The emergency's signed bytes published by a plain client on the root, three times.
    Replay,
    /// The agents stop; N plain subscribers take their place; the same bytes, three times.
    Raw,
}

impl Measure {
    /// The option's value.
    pub fn name(self) -> &'static str {
        match self {
            Measure::Dispatch => "dispatch",
            Measure::EmergencyCold => "emergency-cold",
            Measure::EmergencyWarm => "emergency-warm",
            Measure::Replay => "replay",
            Measure::Raw => "raw",
        }
    }

    /// Whether this is one of the emergencies.
    pub fn is_emergency(self) -> bool {
        matches!(self, Measure::EmergencyCold | Measure::EmergencyWarm)
    }
}

/// The default order: the emergencies first (the figures issue 14 asks for at the largest N),
/// cold while no measurement has made the agents fetch the clip.
pub const DEFAULT_ORDER: &str = "emergency-cold,emergency-warm,replay,dispatch,raw";

/// Whether the measurements can be taken in this order; the problem, named, if not.
pub fn check_order(m: &[Measure]) -> Result<(), String> {
    if m.is_empty() {
        return Err("--measure lists no measurement".into());
    }
    for (i, x) in m.iter().enumerate() {
        if m[..i].contains(x) {
            return Err(format!("--measure lists {} twice", x.name()));
        }
        let before = &m[..i];
        match x {
            Measure::EmergencyWarm
                if !before.contains(&Measure::Dispatch) && !before.contains(&Measure::EmergencyCold) =>
            {
                return Err(
                    "--measure: emergency-warm needs the media cached: put dispatch or emergency-cold before it"
                        .into(),
                );
            }
            Measure::EmergencyCold if before.contains(&Measure::Dispatch) => {
                return Err(
                    "--measure: emergency-cold after dispatch would not be cold (the dispatch makes the agents fetch the media)"
                        .into(),
                );
            }
            Measure::Replay | Measure::Raw if !before.iter().any(|b| b.is_emergency()) => {
                return Err(format!(
                    "--measure: {} publishes the emergency's bytes: put emergency-cold or emergency-warm before it",
                    x.name()
                ));
            }
            Measure::Raw if i + 1 != m.len() => {
                return Err("--measure: raw must be last (it needs the agents stopped)".into());
            }
            _ => {}
        }
    }
    Ok(())
}

/// CPU seconds of several processes so far.
pub fn cpu_s(pids: &[u32]) -> f64 {
    let ticks: u64 = pids
        .iter()
        .filter_map(|p| proc_sample(*p).ok())
        .map(|s| s.cpu_ticks)
        .sum();
    ticks as f64 / ticks_per_second() as f64
}

/// The processes whose CPU a measurement reports.
pub struct Pids {
    /// The agent processes.
    pub agents: Vec<u32>,
    /// The brokers.
    pub brokers: Vec<u32>,
    /// The server.
    pub server: u32,
}

impl Pids {
    fn cpu(&self) -> [f64; 3] {
        [cpu_s(&self.agents), cpu_s(&self.brokers), cpu_s(&[self.server])]
    }
}

/// What a measurement with the agents needs.
pub struct Ctx<'a> {
    /// The server's API.
    pub api: &'a Api,
    /// The agent processes.
    pub children: &'a mut Children,
    /// Whose CPU to report.
    pub pids: &'a Pids,
    /// The province's area code.
    pub province: &'a str,
    /// The approved clip.
    pub sha: &'a str,
    /// Agents.
    pub n: usize,
    /// Longest wait.
    pub wait: Duration,
}

/// The dispatch of a province-wide change: a schedule on the province two hours ahead.
pub async fn dispatch(c: Ctx<'_>) -> anyhow::Result<Phase> {
    c.children.clear();
    let tz: chrono_tz::Tz = "Asia/Ho_Chi_Minh".parse().map_err(|_| anyhow::anyhow!("tz"))?;
    let at = (Utc::now() + chrono::Duration::hours(2)).with_timezone(&tz);
    let local = at.format("%Y-%m-%dT%H:%M:%S").to_string();
    let (load, c0) = (load_average(), c.pids.cpu());
    let (t0, tw) = (now_ns(), Instant::now());
    c.api
        .schedule_once("Lịch toàn tỉnh", c.sha, &[c.province], &local, "priority")
        .await?;
    let answered = tw.elapsed();
    let mut m = Marks::new(t0);
    let n = c.n;
    let complete = c
        .children
        .collect(&mut m, c.wait, |m| {
            m.desired.len() >= n && m.desired_acked.len() >= n
        })
        .await;
    let c1 = c.pids.cpu();
    Ok(Phase {
        kind: Measure::Dispatch,
        label: "dispatch of a province-wide change (a schedule on the province)".into(),
        answered,
        receipt: m.delays(&m.desired),
        ack: m.delays(&m.desired_acked),
        processing: processing(&m.desired, &m.desired_acked),
        first: Vec::new(),
        load,
        cpu: [0, 1, 2].map(|i| c1[i] - c0[i]),
        wall: tw.elapsed(),
        complete,
    })
}

/// An emergency play-now on the province.
pub async fn emergency(kind: Measure, c: Ctx<'_>) -> anyhow::Result<Phase> {
    c.children.settle(Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.children.clear();
    let (load, c0) = (load_average(), c.pids.cpu());
    let (t0, tw) = (now_ns(), Instant::now());
    let issued = c.api.emergency(c.province, c.sha, "Cảnh báo lũ quét").await?;
    let answered = tw.elapsed();
    let item = field_str(&issued, "command_id")?;
    let mut m = Marks::new(t0);
    let n = c.n;
    let complete = c
        .children
        .collect(&mut m, c.wait, |m| {
            m.area.len() >= n && m.acks(&item).len() >= n && m.firsts(&item).len() >= n
        })
        .await;
    let c1 = c.pids.cpu();
    let label = if kind == Measure::EmergencyCold {
        "cold (media fetched over HTTP)"
    } else {
        "warm (media cached)"
    };
    Ok(Phase {
        kind,
        label: format!("emergency play-now, {label}"),
        answered,
        receipt: m.delays(&m.area),
        ack: m.delays(m.acks(&item)),
        processing: processing(&m.area, m.acks(&item)),
        first: m.delays(m.firsts(&item)),
        load,
        cpu: [0, 1, 2].map(|i| c1[i] - c0[i]),
        wall: tw.elapsed(),
        complete,
    })
}

/// Publish `payload` once on the root from a plain client; each receiver's first receipt after it.
pub async fn publish_and_collect(
    children: &mut Children,
    port: u16,
    topic: &str,
    payload: &[u8],
    n: usize,
) -> anyhow::Result<Vec<Duration>> {
    let (c, poller) = nguon_tests::baseline::connected_publisher("scale-pub", "127.0.0.1", port).await?;
    children.clear();
    let t0 = now_ns();
    c.publish(topic, QoS::AtLeastOnce, false, payload.to_vec())
        .await?;
    let mut m = Marks::new(t0);
    children
        .collect(&mut m, Duration::from_secs(60), |m| m.area.len() >= n)
        .await;
    poller.abort();
    Ok(m.delays(&m.area))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    fn order(s: &str) -> Result<(), String> {
        let m: Vec<Measure> = s
            .split(',')
            .map(|x| Measure::from_str(x, false))
            .collect::<Result<_, _>>()?;
        check_order(&m)
    }

    #[test]
    fn the_default_order_and_emergency_first_are_accepted() {
        assert_eq!(order(DEFAULT_ORDER), Ok(()));
        assert_eq!(order("emergency-cold,replay,emergency-warm,dispatch,raw"), Ok(()));
        assert_eq!(order("dispatch,emergency-warm,replay"), Ok(()));
        assert_eq!(order("emergency-cold"), Ok(()));
    }

    #[test]
    fn orders_that_cannot_be_measured_are_refused_with_the_reason() {
        let e = order("emergency-warm,emergency-cold").unwrap_err();
        assert!(e.contains("emergency-warm needs the media cached"), "{e}");
        let e = order("dispatch,emergency-cold").unwrap_err();
        assert!(e.contains("would not be cold"), "{e}");
        let e = order("replay,emergency-cold").unwrap_err();
        assert!(e.contains("replay publishes the emergency's bytes"), "{e}");
        let e = order("emergency-cold,raw,dispatch").unwrap_err();
        assert!(e.contains("raw must be last"), "{e}");
        let e = order("emergency-cold,emergency-cold").unwrap_err();
        assert!(e.contains("emergency-cold twice"), "{e}");
        assert!(order("emergency-hot").is_err());
    }
}
