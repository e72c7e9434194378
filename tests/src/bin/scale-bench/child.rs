//! The child processes of `scale-bench`: `agents` runs a slice of the plan's devices as real
//! agents (the fleet simulator, null sinks, stores on tmpfs) against one leaf broker; `raw` runs
//! the same number of plain rumqttc subscribers on one topic (the raw fan-out baseline). Both
//! write their stamps as [`Line`]s on stdout and stop on `quit` or the end of stdin.
//!
//! The agents' MQTT poll loops (where receipt is stamped) run on a runtime at normal priority and
//! everything else the agents do on a second runtime whose threads are scheduled as
//! `--processing` says (nice 10 by default, as in the one-process emergency bench; `SCHED_IDLE`;
//! or normal): thousands of agents share two cores here, a device has its own.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use nguon_agent::AgentEventKind;
use nguon_protocol::topic::Topic;
use nguon_protocol::{AreaCode, DeviceId, KeyPair};
use nguon_provision::DeviceKind;
use nguon_tests::fleet::{Fleet, FleetOptions, FleetPlan, SimDevice, SinkChoice};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

use crate::wire::{Line, instant_ns, now_ns};

/// Write the plan's devices (id, area, areas, password, key) one JSON object a line.
pub fn write_plan(plan: &FleetPlan, path: &Path) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for d in &plan.devices {
        let areas: Vec<&str> = d.areas.iter().map(|a| a.as_str()).collect();
        let v = serde_json::json!({
            "id": d.id.as_str(), "area": d.area.as_str(), "areas": areas,
            "password": d.password, "key": d.key.secret_b64(),
        });
        writeln!(out, "{v}")?;
    }
    out.flush()?;
    Ok(())
}

/// Devices `from..to` of a plan written by [`write_plan`].
fn read_plan(path: &Path, from: usize, to: usize) -> anyhow::Result<Vec<SimDevice>> {
    let f = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut out = Vec::with_capacity(to - from);
    for line in f.lines().skip(from).take(to - from) {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        let s = |k: &str| v[k].as_str().map(str::to_string).unwrap_or_default();
        let areas = v["areas"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>())
            .unwrap_or_default();
        out.push(SimDevice {
            id: DeviceId::parse(s("id")).map_err(|e| anyhow::anyhow!("{e}"))?,
            kind: DeviceKind::Loudspeaker,
            area: AreaCode::parse(s("area").as_str()).map_err(|e| anyhow::anyhow!("{e}"))?,
            areas: areas
                .into_iter()
                .map(|a| AreaCode::parse(a).map_err(|e| anyhow::anyhow!("{e}")))
                .collect::<anyhow::Result<_>>()?,
            password: s("password"),
            key: KeyPair::from_b64(&s("key")).map_err(|e| anyhow::anyhow!("{e}"))?,
            group: 0,
        });
    }
    Ok(out)
}

/// A line writer on its own thread (a full pipe never blocks a runtime worker), flushed whenever
/// nothing else is waiting.
fn writer() -> std_mpsc::Sender<Line> {
    let (tx, rx) = std_mpsc::channel::<Line>();
    std::thread::spawn(move || {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        while let Ok(l) = rx.recv() {
            let _ = writeln!(out, "{}", l.encode());
            while let Ok(l) = rx.try_recv() {
                let _ = writeln!(out, "{}", l.encode());
            }
            let _ = out.flush();
        }
    });
    tx
}

/// Resolves when stdin says `quit` or ends.
fn quit_signal() -> tokio::sync::oneshot::Receiver<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) if l.trim() == "quit" => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(());
    });
    rx
}

/// What an `agents` child runs.
pub struct AgentsChild {
    /// The plan file.
    pub plan: PathBuf,
    /// First device (index in the plan).
    pub from: usize,
    /// One past the last.
    pub to: usize,
    /// The leaf broker.
    pub broker: SocketAddr,
    /// nguon-server base URL.
    pub server: String,
    /// The server's public key.
    pub key: String,
    /// Stores under here.
    pub data: PathBuf,
    /// Heartbeat interval, seconds.
    pub heartbeat: u32,
    /// How the processing runtime's threads are scheduled.
    pub processing: crate::Processing,
}

/// Run an `agents` child until told to quit.
pub fn run_agents(c: AgentsChild) -> anyhow::Result<()> {
    nguon_tests::net::raise_fd_limit();
    let net = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("child-net")
        .enable_all()
        .build()?;
    let processing = c.processing;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(move || processing.apply_to_this_thread())
        .max_blocking_threads(4)
        .enable_all()
        .build()?;
    let out = writer();
    let handle = net.handle().clone();
    rt.block_on(async move {
        let devices = read_plan(&c.plan, c.from, c.to)?;
        let plan = FleetPlan {
            areas: Vec::new(),
            devices,
        };
        let mut opts = FleetOptions::new(c.broker, &c.server, &c.key, &c.data);
        opts.sink = SinkChoice::Null;
        opts.heartbeat_secs = c.heartbeat;
        opts.keep_alive_secs = 120;
        opts.batch = 100;
        opts.batch_timeout = Duration::from_secs(60);
        opts.network = Some(handle.clone());
        // 64 events of headroom per agent (a command yields fewer than ten) instead of 256: the
        // slots are allocated up front, in every one of up to 100,000 agents.
        opts.observer_capacity = 64;
        let (atx, mut arx) = mpsc::unbounded_channel::<(usize, Instant)>();
        let (dtx, mut drx) = mpsc::unbounded_channel::<(usize, Instant)>();
        opts.area_receipts = Some(atx);
        opts.desired_receipts = Some(dtx);
        let from = c.from;
        // The receipts are forwarded from the poll loops' runtime: their lines must not wait
        // behind the processing (the stamps would be right, but late for the coordinator).
        let o = out.clone();
        handle.spawn(async move {
            while let Some((d, at)) = arx.recv().await {
                let _ = o.send(Line::Area {
                    dev: from + d,
                    ns: instant_ns(at),
                });
            }
        });
        let o = out.clone();
        handle.spawn(async move {
            while let Some((d, at)) = drx.recv().await {
                let _ = o.send(Line::Desired {
                    dev: from + d,
                    ns: instant_ns(at),
                });
            }
        });
        let mut fleet = Fleet::start(&plan, opts).await?;
        let mut events = fleet.events();
        let o = out.clone();
        tokio::spawn(async move {
            // Manifests verified on a `desired` topic, so their acks can be told apart.
            let mut manifests: HashSet<uuid::Uuid> = HashSet::new();
            while let Some(ev) = events.recv().await {
                let dev = from + ev.device;
                let ns = ev.event.at.timestamp_nanos_opt().unwrap_or_else(now_ns);
                let line = match ev.event.kind {
                    AgentEventKind::MessageVerified { message_id, topic } => {
                        if matches!(Topic::parse(&topic), Some(Topic::Desired(_))) {
                            manifests.insert(message_id);
                        }
                        continue;
                    }
                    AgentEventKind::Acked { message_id, .. } if manifests.remove(&message_id) => {
                        Line::DesiredAcked { dev, ns }
                    }
                    AgentEventKind::Acked { message_id, .. } => Line::Acked {
                        dev,
                        id: message_id.to_string(),
                        ns,
                    },
                    AgentEventKind::FirstSample { item_id, at } => Line::First {
                        dev,
                        item: item_id,
                        ns: at.timestamp_nanos_opt().unwrap_or(ns),
                    },
                    _ => continue,
                };
                let _ = o.send(line);
            }
        });
        let rss = nguon_tests::stats::proc_sample(0).map(|s| s.rss_kib).unwrap_or(0);
        let _ = out.send(Line::Ready {
            agents: fleet.len(),
            connected: fleet.connected_once(),
            rss_kib: rss,
        });
        let mut quit = quit_signal();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = &mut quit => break,
                _ = tick.tick() => {
                    let _ = out.send(Line::Status {
                        connected: fleet.connected_now(),
                        outbox: fleet.outbox_total(),
                    });
                }
            }
        }
        fleet.shutdown().await;
        anyhow::Ok(())
    })?;
    rt.shutdown_timeout(Duration::from_secs(5));
    net.shutdown_timeout(Duration::from_secs(5));
    // Let the writer thread flush.
    std::thread::sleep(Duration::from_millis(200));
    Ok(())
}

/// Run a `raw` child: subscribers `from..to` on `broker`, QoS 1 on `topic`, until told to quit.
pub fn run_raw(broker: SocketAddr, from: usize, to: usize, topic: String) -> anyhow::Result<()> {
    nguon_tests::net::raise_fd_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let out = writer();
    rt.block_on(async move {
        let run = nguon_tests::net::random_suffix();
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
        let mut clients = Vec::new();
        let mut subscribed = 0usize;
        for start in (from..to).step_by(100) {
            let end = (start + 100).min(to);
            for i in start..end {
                let mut o =
                    MqttOptions::new(format!("raw-{run}-{i}"), broker.ip().to_string(), broker.port());
                o.set_keep_alive(Duration::from_secs(120));
                let (c, mut el) = AsyncClient::new(o, 16);
                let (client, topic, ready, out) = (c.clone(), topic.clone(), ready_tx.clone(), out.clone());
                tokio::spawn(async move {
                    loop {
                        match el.poll().await {
                            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                                let _ = client.subscribe(topic.clone(), QoS::AtLeastOnce).await;
                            }
                            Ok(Event::Incoming(Packet::SubAck(_))) => {
                                let _ = ready.send(());
                            }
                            Ok(Event::Incoming(Packet::Publish(_))) => {
                                let _ = out.send(Line::Area { dev: i, ns: now_ns() });
                            }
                            Ok(_) => {}
                            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                        }
                    }
                });
                clients.push(c);
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            let want = end - from;
            while subscribed < want {
                match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
                    Ok(Some(())) => subscribed += 1,
                    _ => break,
                }
            }
        }
        let rss = nguon_tests::stats::proc_sample(0).map(|s| s.rss_kib).unwrap_or(0);
        let _ = out.send(Line::Ready {
            agents: to - from,
            connected: subscribed,
            rss_kib: rss,
        });
        let _ = quit_signal().await;
        for c in &clients {
            let _ = c.try_disconnect();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    std::thread::sleep(Duration::from_millis(200));
    Ok(())
}
