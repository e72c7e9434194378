//! `broker-bench`: the same figures for any MQTT broker (shared/BROKERS.md, issue 11 "Broker"),
//! so candidates for nguon's embedded broker are compared in one run on one machine.
//!
//! ```sh
//! broker-bench --url mqtt://127.0.0.1:18830 --pid 1234 --clients 1000 \
//!     --device-password device-pw --server-password server-pw [--acl-check]
//! ```
//!
//! N simulated devices (`bench-00000`…, username = client id = device id), one rumqttc event loop
//! each, all in this process; QoS 1, 512-byte payloads. Each round (`--rounds`, medians printed):
//! - connect + subscribe all: each device subscribes to its own `nguon/v1/d/{id}/cmd` and the shared
//!   `nguon/v1/a/{area}/cmd`; at most `--window` connections are between TCP connect and SUBACK at
//!   once (Mosquitto's listen backlog is 100). Time until the last SUBACK.
//! - one publish to all: one message on the area topic; time until the last device has it (p99 too).
//! - one message per device topic: N messages, one per `d/{id}/cmd`; time until the last arrives.
//!   The first round publishes on topics the broker has not seen yet.
//! - retained read: N retained messages on `d/{id}/desired` (set once, as the server user); then
//!   each round N fresh connections subscribe to their own `desired`; time until the last has it.
//! - reconnect storm (`--storms`): all N devices drop their connection and reconnect at once, no
//!   window; time until all are subscribed again, how many saw a failed attempt, how many never
//!   came back within `--case-timeout`, and the broker's RSS after each storm.
//!
//! With `--pid`, the broker's VmRSS is sampled every 50 ms from /proc and VmHWM read at the end.
//! A case still running after `--case-timeout` (120 s) is stopped and printed as "> 120 s".
//! `--acl-check` (needs credentials) first tries what one device must not be able to do and
//! prints whether the broker delivered it, with a positive control that must be delivered.
//! No figure here is asserted: this prints, it does not test.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use nguon_tests::stats::{Summary, ms};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeReasonCode};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

const PAYLOAD: usize = 512;

/// Broker benchmark: connect, fan-out, per-device topics, retained read, reconnect storm, memory.
#[derive(Parser, Debug, Clone)]
#[command(about)]
struct Args {
    /// Broker URL, `mqtt://host:port`.
    #[arg(long)]
    url: String,
    /// Broker process id, for peak RSS from /proc/<pid>/status.
    #[arg(long)]
    pid: Option<u32>,
    /// Number of simulated devices.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Rounds per case (medians are printed).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Reconnect storms.
    #[arg(long, default_value_t = 3)]
    storms: usize,
    /// Connections in progress at once while connecting (not in the storm).
    #[arg(long, default_value_t = 100)]
    window: usize,
    /// Password of every device (username = device id); none: anonymous.
    #[arg(long)]
    device_password: Option<String>,
    /// Username of the publisher (the server).
    #[arg(long, default_value = "nguon-server")]
    server_user: String,
    /// Password of the publisher; none: anonymous.
    #[arg(long)]
    server_password: Option<String>,
    /// Area code of the shared topic.
    #[arg(long, default_value = "08003")]
    area: String,
    /// Seconds before a case is stopped.
    #[arg(long, default_value_t = 120)]
    case_timeout: u64,
    /// Check that one device cannot write another's or an area's topics (needs credentials).
    #[arg(long)]
    acl_check: bool,
    /// Name printed with the results.
    #[arg(long, default_value = "broker")]
    label: String,
}

fn device(i: usize) -> String {
    format!("bench-{i:05}")
}

/// What a client task reports.
#[derive(Debug)]
enum Kind {
    /// SUBACK received; `false` if a filter was refused.
    Ready(bool),
    /// A message with this tag (first 8 bytes of the payload).
    Msg { tag: u64, retain: bool },
    /// A connection attempt failed.
    Failed,
}

#[derive(Debug)]
struct Ev {
    i: usize,
    kind: Kind,
    at: Instant,
}

fn payload(tag: u64) -> Vec<u8> {
    let mut p = vec![b'x'; PAYLOAD];
    p[..8].copy_from_slice(&tag.to_be_bytes());
    p
}

fn tag_of(p: &[u8]) -> u64 {
    p.get(..8)
        .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
        .unwrap_or(0)
}

struct Target {
    host: String,
    port: u16,
}

fn parse_url(url: &str) -> anyhow::Result<Target> {
    let rest = url.strip_prefix("mqtt://").context("expected mqtt://host:port")?;
    let (host, port) = rest.rsplit_once(':').context("expected mqtt://host:port")?;
    Ok(Target {
        host: host.to_string(),
        port: port.parse().context("port")?,
    })
}

fn options(t: &Target, id: &str, user: Option<(&str, &str)>) -> MqttOptions {
    let mut o = MqttOptions::new(id, t.host.clone(), t.port);
    o.set_keep_alive(Duration::from_secs(60))
        .set_clean_session(true)
        .set_max_packet_size(64 * 1024, 64 * 1024);
    if let Some((u, p)) = user {
        o.set_credentials(u, p);
    }
    o
}

/// One simulated device: poll its event loop forever, subscribe after each CONNACK, report.
async fn run_client(
    i: usize,
    opts: MqttOptions,
    subs: Vec<String>,
    tx: UnboundedSender<Ev>,
    mut permit: Option<OwnedSemaphorePermit>,
) {
    let (client, mut el) = AsyncClient::new(opts, 16);
    el.network_options.set_connection_timeout(10);
    let filters: Vec<_> = subs
        .iter()
        .map(|s| rumqttc::SubscribeFilter::new(s.clone(), QoS::AtLeastOnce))
        .collect();
    loop {
        match el.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                let _ = client.try_subscribe_many(filters.clone());
            }
            Ok(Event::Incoming(Packet::SubAck(s))) => {
                let ok = s
                    .return_codes
                    .iter()
                    .all(|c| matches!(c, SubscribeReasonCode::Success(_)));
                permit.take();
                let _ = tx.send(Ev {
                    i,
                    kind: Kind::Ready(ok),
                    at: Instant::now(),
                });
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let kind = Kind::Msg {
                    tag: tag_of(&p.payload),
                    retain: p.retain,
                };
                let _ = tx.send(Ev {
                    i,
                    kind,
                    at: Instant::now(),
                });
            }
            Ok(_) => {}
            Err(_) => {
                let _ = tx.send(Ev {
                    i,
                    kind: Kind::Failed,
                    at: Instant::now(),
                });
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// A set of connected devices; dropping it drops every connection (no DISCONNECT).
struct Fleet {
    tasks: Vec<JoinHandle<()>>,
    rx: UnboundedReceiver<Ev>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

struct Bench {
    args: Args,
    target: Target,
    rss: Option<Arc<AtomicU64>>,
    timeout: Duration,
}

/// Outcome of waiting for N devices.
struct Wait {
    /// Time from the start to the last device (None: not all within the timeout).
    last: Option<Duration>,
    /// Per-device latencies of those that made it.
    each: Vec<Duration>,
    /// Devices with at least one failed connection attempt.
    failed: usize,
    /// Devices whose subscription was (partly) refused.
    refused: usize,
}

impl Wait {
    fn show(&self, n: usize, limit: Duration) -> String {
        match self.last {
            Some(d) => ms(d),
            None => format!("> {} s ({}/{n} done)", limit.as_secs(), self.each.len()),
        }
    }
}

impl Bench {
    fn device_user(&self, i: usize) -> Option<(String, String)> {
        self.args.device_password.as_ref().map(|p| (device(i), p.clone()))
    }

    fn area_topic(&self) -> String {
        format!("nguon/v1/a/{}/cmd", self.args.area)
    }

    /// Start N devices subscribing to `subs(i)`; `window` limits connections in progress.
    fn spawn(&self, subs: impl Fn(usize) -> Vec<String>, window: Option<usize>) -> Fleet {
        let (tx, rx) = unbounded_channel();
        let sem = window.map(|w| Arc::new(Semaphore::new(w)));
        let n = self.args.clients;
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let id = device(i);
            let user = self.device_user(i);
            let opts = options(
                &self.target,
                &id,
                user.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
            );
            let (tx, subs, sem) = (tx.clone(), subs(i), sem.clone());
            tasks.push(tokio::spawn(async move {
                let permit = match sem {
                    Some(s) => Some(s.acquire_owned().await.expect("semaphore")),
                    None => None,
                };
                run_client(i, opts, subs, tx, permit).await
            }));
        }
        Fleet { tasks, rx }
    }

    /// Wait until every device reported `done` (counted once each), or the timeout.
    async fn wait(&self, fleet: &mut Fleet, start: Instant, done: impl Fn(&Kind) -> bool) -> Wait {
        let n = self.args.clients;
        let deadline = start + self.timeout;
        let mut seen = HashSet::with_capacity(n);
        let mut failed = HashSet::new();
        let (mut each, mut refused) = (Vec::with_capacity(n), 0);
        let mut last = None;
        while seen.len() < n {
            let ev = match tokio::time::timeout_at(deadline.into(), fleet.rx.recv()).await {
                Ok(Some(ev)) => ev,
                _ => break,
            };
            match ev.kind {
                Kind::Failed => {
                    failed.insert(ev.i);
                }
                Kind::Ready(false) => refused += 1,
                _ => {}
            }
            if done(&ev.kind) && seen.insert(ev.i) {
                each.push(ev.at - start);
                last = Some(ev.at - start);
            }
        }
        Wait {
            last: if seen.len() == n { last } else { None },
            each,
            failed: failed.len(),
            refused,
        }
    }

    fn device_subs(&self) -> impl Fn(usize) -> Vec<String> + use<> {
        let area = self.area_topic();
        move |i| vec![format!("nguon/v1/d/{}/cmd", device(i)), area.clone()]
    }

    /// The publisher (the server's connection): a client and a channel of PUBACK counts.
    async fn publisher(
        &self,
        name: &str,
    ) -> anyhow::Result<(AsyncClient, JoinHandle<()>, UnboundedReceiver<()>)> {
        let user = self
            .args
            .server_password
            .as_deref()
            .map(|p| (self.args.server_user.as_str(), p));
        let mut o = options(&self.target, name, user);
        o.set_inflight(100);
        let (client, mut el) = AsyncClient::new(o, 1024);
        let (tx, mut rx) = unbounded_channel();
        let (ack_tx, ack_rx) = unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = tx.send(());
                    }
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        let _ = ack_tx.send(());
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .context("publisher: no CONNACK within 30 s")?;
        Ok((client, task, ack_rx))
    }

    fn rss_now(&self) -> Option<u64> {
        self.args.pid.and_then(|p| proc_kib(p, "VmRSS:"))
    }
}

/// A `Vm*:` line of /proc/<pid>/status, in KiB.
fn proc_kib(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

fn median(v: &[Option<Duration>]) -> String {
    let mut ok: Vec<Duration> = v.iter().flatten().copied().collect();
    if ok.len() < v.len() {
        return format!("> limit ({} of {} rounds finished)", ok.len(), v.len());
    }
    ok.sort();
    ok.get(ok.len() / 2).map(|d| ms(*d)).unwrap_or_else(|| "-".into())
}

fn show_all(v: &[Option<Duration>]) -> String {
    v.iter()
        .map(|d| d.map(ms).unwrap_or_else(|| "timeout".into()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let target = parse_url(&args.url)?;
    let rss = args.pid.map(|pid| {
        let peak = Arc::new(AtomicU64::new(0));
        let p = peak.clone();
        tokio::spawn(async move {
            loop {
                if let Some(k) = proc_kib(pid, "VmRSS:") {
                    p.fetch_max(k, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        peak
    });
    let timeout = Duration::from_secs(args.case_timeout);
    let b = Bench {
        args,
        target,
        rss,
        timeout,
    };
    let n = b.args.clients;
    println!(
        "# broker-bench {} url={} clients={n} rounds={} storms={} window={} load={} rss_start={}",
        b.args.label,
        b.args.url,
        b.args.rounds,
        b.args.storms,
        b.args.window,
        nguon_tests::stats::load_average(),
        b.rss_now().map(mib).unwrap_or_else(|| "-".into())
    );
    if b.args.acl_check {
        acl_check(&b).await?;
    }
    let (publ, _pt, mut acks) = b.publisher("bench-publisher").await?;
    let mut tag = 1u64;

    // Connect, one-to-all, per-device topic.
    let (mut conn, mut fan, mut per) = (Vec::new(), Vec::new(), Vec::new());
    let mut fan_p99 = Vec::new();
    for r in 0..b.args.rounds {
        let start = Instant::now();
        let mut fleet = b.spawn(b.device_subs(), Some(b.args.window));
        let w = b.wait(&mut fleet, start, |k| matches!(k, Kind::Ready(_))).await;
        println!(
            "round {r}: connect+subscribe {} (failed attempts {}, refused subscriptions {}) load {} rss {}",
            w.show(n, b.timeout),
            w.failed,
            w.refused,
            nguon_tests::stats::load_average(),
            b.rss_now().map(mib).unwrap_or_default()
        );
        conn.push(w.last);
        if w.last.is_none() {
            break;
        }
        tag += 1;
        let t = tag;
        let start = Instant::now();
        publ.publish(b.area_topic(), QoS::AtLeastOnce, false, payload(t))
            .await?;
        let w = b
            .wait(
                &mut fleet,
                start,
                |k| matches!(k, Kind::Msg { tag, .. } if *tag == t),
            )
            .await;
        let s = Summary::of(&w.each);
        println!(
            "round {r}: one publish to all {} (p99 {}) load {}",
            w.show(n, b.timeout),
            ms(s.p99),
            nguon_tests::stats::load_average()
        );
        fan.push(w.last);
        fan_p99.push(Some(s.p99));
        tag += 1;
        let t = tag;
        let start = Instant::now();
        for i in 0..n {
            let topic = format!("nguon/v1/d/{}/cmd", device(i));
            publ.publish(topic, QoS::AtLeastOnce, false, payload(t)).await?;
        }
        let w = b
            .wait(
                &mut fleet,
                start,
                |k| matches!(k, Kind::Msg { tag, .. } if *tag == t),
            )
            .await;
        println!(
            "round {r}: one message per device topic {} load {}",
            w.show(n, b.timeout),
            nguon_tests::stats::load_average()
        );
        per.push(w.last);
        drop(fleet);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    // Retained messages: set once, then read by fresh connections each round.
    tag += 1;
    let rt = tag;
    while acks.try_recv().is_ok() {}
    let start = Instant::now();
    for i in 0..n {
        let topic = format!("nguon/v1/d/{}/desired", device(i));
        publ.publish(topic, QoS::AtLeastOnce, true, payload(rt)).await?;
    }
    let mut got = 0;
    while got < n {
        match tokio::time::timeout(b.timeout, acks.recv()).await {
            Ok(Some(())) => got += 1,
            _ => bail!("retained set: only {got}/{n} PUBACKs within {:?}", b.timeout),
        }
    }
    println!(
        "set {n} retained messages (all PUBACKs) {} rss {}",
        ms(start.elapsed()),
        b.rss_now().map(mib).unwrap_or_default()
    );
    let mut ret = Vec::new();
    for r in 0..b.args.rounds {
        let start = Instant::now();
        let subs = |i: usize| vec![format!("nguon/v1/d/{}/desired", device(i))];
        let mut fleet = b.spawn(subs, Some(b.args.window));
        let w = b
            .wait(
                &mut fleet,
                start,
                |k| matches!(k, Kind::Msg { tag, retain: true } if *tag == rt),
            )
            .await;
        println!(
            "round {r}: each device reads its retained message {} (failed attempts {}) load {}",
            w.show(n, b.timeout),
            w.failed,
            nguon_tests::stats::load_average()
        );
        ret.push(w.last);
        drop(fleet);
        tokio::time::sleep(Duration::from_secs(2)).await;
        if w.last.is_none() {
            break;
        }
    }

    // Reconnect storm.
    let mut storm = Vec::new();
    let (mut storm_failed, mut storm_lost) = (Vec::new(), Vec::new());
    let mut storm_rss = Vec::new();
    let start = Instant::now();
    let mut fleet = b.spawn(b.device_subs(), Some(b.args.window));
    let w = b.wait(&mut fleet, start, |k| matches!(k, Kind::Ready(_))).await;
    println!(
        "storm: fleet connected {} rss {}",
        w.show(n, b.timeout),
        b.rss_now().map(mib).unwrap_or_default()
    );
    if w.last.is_some() {
        for s in 0..b.args.storms {
            drop(fleet);
            let start = Instant::now();
            fleet = b.spawn(b.device_subs(), None);
            let w = b.wait(&mut fleet, start, |k| matches!(k, Kind::Ready(_))).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            let rss = b.rss_now();
            println!(
                "storm {s}: all reconnected+subscribed {} failed attempts {} never back {} load {} rss {}",
                w.show(n, b.timeout),
                w.failed,
                n - w.each.len(),
                nguon_tests::stats::load_average(),
                rss.map(mib).unwrap_or_default()
            );
            storm.push(w.last);
            storm_failed.push(w.failed);
            storm_lost.push(n - w.each.len());
            storm_rss.push(rss);
        }
    }
    drop(fleet);

    let peak = b.rss.as_ref().map(|p| p.load(Ordering::Relaxed));
    let hwm = b.args.pid.and_then(|p| proc_kib(p, "VmHWM:"));
    println!(
        "\n## {} at {n} clients (medians of {} rounds; load at end {})",
        b.args.label,
        b.args.rounds,
        nguon_tests::stats::load_average()
    );
    println!("| case | median | rounds |\n|---|---|---|");
    println!(
        "| connect + subscribe all | {} | {} |",
        median(&conn),
        show_all(&conn)
    );
    println!(
        "| one publish to all (last receive) | {} (p99 {}) | {} |",
        median(&fan),
        median(&fan_p99),
        show_all(&fan)
    );
    println!(
        "| one message per device topic (last receive; round 0 = new topics) | {} | {} |",
        median(&per),
        show_all(&per)
    );
    println!(
        "| each device reads its own retained message | {} | {} |",
        median(&ret),
        show_all(&ret)
    );
    println!(
        "| reconnect storm: all back + subscribed | {} | {}; failed attempts {:?}; never back {:?} |",
        median(&storm),
        show_all(&storm),
        storm_failed,
        storm_lost
    );
    let storm_rss: Vec<String> = storm_rss.iter().map(|r| r.map(mib).unwrap_or_default()).collect();
    println!(
        "| broker RSS | peak {} (VmHWM {}) | after each storm: {} |",
        peak.map(mib).unwrap_or_else(|| "-".into()),
        hwm.map(mib).unwrap_or_else(|| "-".into()),
        storm_rss.join(", ")
    );
    Ok(())
}

/// What one device must not be able to do, tried against the broker, with a positive control.
async fn acl_check(b: &Bench) -> anyhow::Result<()> {
    let pw = b
        .args
        .device_password
        .clone()
        .context("--acl-check needs --device-password")?;
    let (attacker, victim) = ("acl-attacker", "acl-victim");
    let area = b.area_topic();
    let victim_desired = format!("nguon/v1/d/{victim}/desired");
    // The server retains a manifest for the victim before the attacker arrives.
    let t_secret = 0xA0u64;
    let (publ, pt, _) = b.publisher("acl-server-pub").await?;
    publ.publish(victim_desired.clone(), QoS::AtLeastOnce, true, payload(t_secret))
        .await?;
    let (tx, mut rx) = unbounded_channel();
    // The victim device: its own desired topic and its area.
    let vo = options(&b.target, victim, Some((victim, &pw)));
    let v = tokio::spawn(run_client(
        1,
        vo,
        vec![victim_desired.clone(), area.clone()],
        tx.clone(),
        None,
    ));
    // The server's ingest subscription (superuser), to see the attacker's allowed state.
    let so = options(
        &b.target,
        "acl-server",
        b.args
            .server_password
            .as_deref()
            .map(|p| (b.args.server_user.as_str(), p)),
    );
    let s = tokio::spawn(run_client(
        2,
        so,
        vec!["nguon/v1/d/+/state".into()],
        tx.clone(),
        None,
    ));
    // The attacker also tries to read the victim's topic.
    let ao = options(&b.target, attacker, Some((attacker, &pw)));
    let (ac, mut ael) = AsyncClient::new(ao, 16);
    let a_state = format!("nguon/v1/d/{attacker}/state");
    let mut ready = 0;
    let mut read_secret = false;
    let mut sub_granted = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    // Wait for both observers' SUBACKs and the attacker's CONNACK + SUBACK.
    while ready < 2 || sub_granted.is_none() {
        if Instant::now() > deadline {
            bail!("acl check: clients did not connect (is the device password right?)");
        }
        tokio::select! {
            Some(ev) = rx.recv() => if let Kind::Ready(_) = ev.kind { ready += 1 },
            r = ael.poll() => match r {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    ac.try_subscribe(victim_desired.clone(), QoS::AtLeastOnce)?;
                }
                Ok(Event::Incoming(Packet::Publish(p))) => read_secret |= tag_of(&p.payload) == t_secret,
                Ok(Event::Incoming(Packet::SubAck(s))) => {
                    sub_granted = Some(s.return_codes.iter().all(|c| matches!(c, SubscribeReasonCode::Success(_))));
                }
                Ok(_) => {}
                Err(e) => bail!("acl check: attacker connection: {e}"),
            },
        }
    }
    let (t_area, t_other, t_own) = (0xA1u64, 0xA2u64, 0xA3u64);
    ac.publish(area.clone(), QoS::AtLeastOnce, true, payload(t_area))
        .await?;
    ac.publish(victim_desired.clone(), QoS::AtLeastOnce, true, payload(t_other))
        .await?;
    ac.publish(a_state, QoS::AtLeastOnce, false, payload(t_own))
        .await?;
    let (mut got_area, mut got_other, mut got_own) = (false, false, false);
    let end = Instant::now() + Duration::from_secs(3);
    loop {
        tokio::select! {
            Some(ev) = rx.recv() => if let Kind::Msg { tag, .. } = ev.kind {
                got_area |= tag == t_area;
                got_other |= tag == t_other;
                got_own |= tag == t_own && ev.i == 2;
            },
            r = ael.poll() => match r {
                Ok(Event::Incoming(Packet::Publish(p))) => read_secret |= tag_of(&p.payload) == t_secret,
                Ok(_) => {}
                Err(_) => break,
            },
            _ = tokio::time::sleep_until(end.into()) => break,
        }
    }
    // A fresh victim connection: did anything the attacker wrote stay retained?
    v.abort();
    let (tx2, mut rx2) = unbounded_channel();
    let vo = options(&b.target, victim, Some((victim, &pw)));
    let v2 = tokio::spawn(run_client(
        1,
        vo,
        vec![victim_desired.clone(), area.clone()],
        tx2,
        None,
    ));
    let mut retained = false;
    let end = Instant::now() + Duration::from_secs(3);
    while let Ok(Some(ev)) = tokio::time::timeout_at(end.into(), rx2.recv()).await {
        if let Kind::Msg { tag, .. } = ev.kind {
            retained |= tag == t_area || tag == t_other;
        }
    }
    v2.abort();
    s.abort();
    let yes = |b: bool| if b { "YES" } else { "no" };
    println!(
        "acl: device subscribes to another device's desired topic: SUBACK grants it {}",
        yes(sub_granted == Some(true))
    );
    println!(
        "acl: device received another device's retained manifest: {}",
        yes(read_secret)
    );
    println!(
        "acl: device's publish on the area command topic delivered to others: {}",
        yes(got_area)
    );
    println!(
        "acl: device's publish on another device's desired topic delivered: {}",
        yes(got_other)
    );
    println!(
        "acl: either one still retained for a fresh subscriber: {}",
        yes(retained)
    );
    println!(
        "acl: (control) device's publish on its own state topic delivered to the server: {}",
        yes(got_own)
    );
    // Clear what the attacker may have retained so the benchmark below starts clean.
    publ.publish(area, QoS::AtLeastOnce, true, Vec::<u8>::new())
        .await?;
    publ.publish(victim_desired, QoS::AtLeastOnce, true, Vec::<u8>::new())
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    pt.abort();
    Ok(())
}
