//! The coordinator of `scale-bench run`: brokers, server, registration, the agent children, the
//! measurements in order (dispatch, emergency cold and warm, plain replays), then the raw
//! children and the raw fan-out, all in one run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use nguon_tests::api::Api;
use nguon_tests::fleet::FleetPlan;
use nguon_tests::harness::{BrokerChoice, ServerProc};
use nguon_tests::mosquitto_tree::{MosquittoTree, leaves_for, shm_base};
use nguon_tests::stats::{Summary, load_average, proc_sample, ticks_per_second};
use rumqttc::QoS;

use crate::report::{Figures, Phase};
use crate::wire::{Children, Marks, now_ns, processing};

/// `scale-bench run` options.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Number of agents.
    #[arg(long, default_value_t = 10_000)]
    pub agents: usize,
    /// Agent processes (0: one per 5,000 agents, rounded up to a multiple of the leaves).
    #[arg(long, default_value_t = 0)]
    pub processes: usize,
    /// Leaf brokers (0: one per 15,000 agents).
    #[arg(long, default_value_t = 0)]
    pub leaves: usize,
    /// Agents' heartbeat interval, seconds.
    #[arg(long, default_value_t = 300)]
    pub heartbeat: u32,
    /// Longest wait for each measurement, seconds.
    #[arg(long, default_value_t = 180)]
    pub wait_secs: u64,
    /// Also write the markdown report here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Run, print the report, write it to `--out`.
pub fn main(a: RunArgs) -> anyhow::Result<()> {
    nguon_tests::net::raise_fd_limit();
    if std::env::var_os("NGUON_TEST_BIN_DIR").is_none() {
        let dir = nguon_tests::process::target_dir().join("release");
        anyhow::ensure!(
            dir.join("nguon-server").is_file(),
            "build the release server first: cargo build --release -p nguon-tests -p nguon-server --bins"
        );
        // SAFETY: set before any thread is started.
        unsafe { std::env::set_var("NGUON_TEST_BIN_DIR", dir) };
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let text = rt.block_on(run(a.clone()))?;
    println!("{text}");
    if let Some(p) = a.out {
        std::fs::write(p, &text)?;
    }
    Ok(())
}

/// CPU seconds of several processes so far.
fn cpu_s(pids: &[u32]) -> f64 {
    let ticks: u64 = pids
        .iter()
        .filter_map(|p| proc_sample(*p).ok())
        .map(|s| s.cpu_ticks)
        .sum();
    ticks as f64 / ticks_per_second() as f64
}

/// RSS of several processes (KiB).
fn rss_kib(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| proc_sample(*p).ok())
        .map(|s| s.rss_kib)
        .sum()
}

/// `MemAvailable` of /proc/meminfo (KiB).
fn mem_available_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// `nguon_devices_online` from the server's `/metrics`.
async fn online(api: &Api) -> i64 {
    let Ok(r) = reqwest::get(format!("{}/metrics", api.base())).await else {
        return -1;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("nguon_devices_online "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1)
}

/// CPU of the agents, the brokers and the server over one measurement.
struct Cpu {
    at: [f64; 3],
}

impl Cpu {
    fn sample(agents: &[u32], brokers: &[u32], server: u32) -> Cpu {
        Cpu {
            at: [cpu_s(agents), cpu_s(brokers), cpu_s(&[server])],
        }
    }
    fn since(&self, later: &Cpu) -> [f64; 3] {
        [0, 1, 2].map(|i| later.at[i] - self.at[i])
    }
}

async fn run(a: RunArgs) -> anyhow::Result<String> {
    let n_req = a.agents;
    let leaves = if a.leaves > 0 {
        a.leaves
    } else {
        leaves_for(n_req, 15_000)
    };
    let k = if a.processes > 0 {
        a.processes
    } else {
        n_req.div_ceil(5000).max(1).div_ceil(leaves) * leaves
    };
    let wait = Duration::from_secs(a.wait_secs);
    println!("== {n_req} agents in {k} processes on {leaves} leaf brokers");
    let dir = tempfile::Builder::new()
        .prefix("nguon-scale-")
        .tempdir_in(shm_base())?;
    let tree = MosquittoTree::start(&dir.path().join("brokers"), leaves).await?;
    let server = ServerProc::start_with(
        dir.path(),
        BrokerChoice::External(tree.root_url()),
        &[("RUST_LOG", "warn,rumqttc=error")],
    )
    .await?;
    let api = server.api.clone();
    let key = api.server_key().await?;
    let province = format!("p{}", nguon_tests::net::random_suffix());
    let plan = FleetPlan::province("s", &province, n_req.div_ceil(100), 100.min(n_req), 0);
    let n = plan.devices.len();
    let t = Instant::now();
    let reg = plan.registry();
    for chunk in reg.devices.chunks(1000) {
        let mut part = reg.clone();
        part.devices = chunk.to_vec();
        if let Err(e) = api.import_fleet(&part).await {
            anyhow::bail!("fleet import: {e:#}\n--- server log ---\n{}", server.log_tail(40));
        }
    }
    let register = t.elapsed();
    println!("registered {n} devices in {:.1} s", register.as_secs_f64());
    let clip = nguon_tests::audio::tone_clip(&dir.path().join("media"), "siren", 1.0)?;
    let sha = api.upload_approved(&clip, "Cảnh báo khẩn cấp").await?;
    let plan_file = dir.path().join("plan.jsonl");
    crate::child::write_plan(&plan, &plan_file)?;
    drop(plan);
    let exe = std::env::current_exe()?;
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs)?;
    let split = |c: usize| (c * n / k, (c + 1) * n / k);
    let args: Vec<Vec<String>> = (0..k)
        .map(|c| {
            let (from, to) = split(c);
            vec![
                "agents".into(),
                "--plan".into(),
                plan_file.display().to_string(),
                "--from".into(),
                from.to_string(),
                "--to".into(),
                to.to_string(),
                "--broker".into(),
                tree.leaf(c % leaves).to_string(),
                "--server".into(),
                api.base().to_string(),
                "--key".into(),
                key.clone(),
                "--data".into(),
                dir.path().join(format!("agents{c}")).display().to_string(),
                "--heartbeat".into(),
                a.heartbeat.to_string(),
            ]
        })
        .collect();
    let t = Instant::now();
    let mut children = Children::spawn(&exe, args, &logs)?;
    let (started, subscribed, _) = children.ready(Duration::from_secs(1800)).await?;
    let connect = t.elapsed();
    println!(
        "{started} agents started, {subscribed} subscribed in {:.1} s",
        connect.as_secs_f64()
    );
    let t = Instant::now();
    let mut seen = online(&api).await;
    while seen < n as i64 && t.elapsed() < Duration::from_secs(300) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        seen = online(&api).await;
    }
    let online_after = t.elapsed();
    println!(
        "server sees {seen} online ({:.1} s later)",
        online_after.as_secs_f64()
    );
    let settled = children.settle(Duration::from_secs(120)).await;
    let (agents, brokers, srv) = (children.pids(), tree.pids(), server.pid());
    let mut f = Figures {
        n,
        processes: k,
        leaves,
        register,
        connect,
        subscribed,
        online: seen,
        online_after,
        settled,
        agents_rss_kib: rss_kib(&agents),
        brokers_rss_kib: rss_kib(&brokers),
        server_rss_kib: rss_kib(&[srv]),
        mem_available_kib: mem_available_kib(),
        load_connected: load_average(),
        ..Figures::default()
    };
    // A spy on the root measures the payload of the area command.
    let area_topic = format!("nguon/v1/a/{province}/cmd");
    let spy = Spy::start(tree.root().port(), &area_topic).await?;

    // Dispatch of a province-wide change: a schedule on the province two hours ahead.
    children.clear();
    let tz: chrono_tz::Tz = "Asia/Ho_Chi_Minh".parse().map_err(|_| anyhow::anyhow!("tz"))?;
    let at = (Utc::now() + chrono::Duration::hours(2)).with_timezone(&tz);
    let local = at.format("%Y-%m-%dT%H:%M:%S").to_string();
    let (load, c0) = (load_average(), Cpu::sample(&agents, &brokers, srv));
    let (t0, tw) = (now_ns(), Instant::now());
    api.schedule_once("Lịch toàn tỉnh", &sha, &[province.as_str()], &local, "priority")
        .await?;
    let answered = tw.elapsed();
    let mut m = Marks::new(t0);
    let complete = m
        .collect(&mut children.rx, wait, |m| {
            m.desired.len() >= n && m.desired_acked.len() >= n
        })
        .await;
    f.dispatch = Phase {
        label: "dispatch of a province-wide change (a schedule on the province)".into(),
        answered,
        receipt: m.delays(&m.desired),
        ack: m.delays(&m.desired_acked),
        processing: processing(&m.desired, &m.desired_acked),
        first: Vec::new(),
        load,
        cpu: c0.since(&Cpu::sample(&agents, &brokers, srv)),
        wall: tw.elapsed(),
        complete,
    };
    println!("{}", f.dispatch.line());

    for label in ["cold (media fetched over HTTP)", "warm (media cached)"] {
        children.settle(Duration::from_secs(60)).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        children.clear();
        let (load, c0) = (load_average(), Cpu::sample(&agents, &brokers, srv));
        let (t0, tw) = (now_ns(), Instant::now());
        let issued = api.emergency(&province, &sha, "Cảnh báo lũ quét").await?;
        let answered = tw.elapsed();
        let item = issued
            .get("command_id")
            .and_then(|v| v.as_str())
            .context("command_id in the answer")?
            .to_string();
        let mut m = Marks::new(t0);
        let complete = m
            .collect(&mut children.rx, wait, |m| {
                m.area.len() >= n && m.acks(&item).len() >= n && m.firsts(&item).len() >= n
            })
            .await;
        let p = Phase {
            label: format!("emergency play-now, {label}"),
            answered,
            receipt: m.delays(&m.area),
            ack: m.delays(m.acks(&item)),
            processing: processing(&m.area, m.acks(&item)),
            first: m.delays(m.firsts(&item)),
            load,
            cpu: c0.since(&Cpu::sample(&agents, &brokers, srv)),
            wall: tw.elapsed(),
            complete,
        };
        println!("{}", p.line());
        f.emergencies.push(p);
    }
    let payload = spy.take();
    anyhow::ensure!(!payload.is_empty(), "the spy saw no emergency on {area_topic}");
    f.payload = payload.len();
    f.load_replay = load_average();
    for _ in 0..3 {
        children.settle(Duration::from_secs(60)).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let l = publish_and_collect(&mut children, tree.root().port(), &area_topic, &payload, n).await?;
        println!("plain publish → agent receipt: {}", Summary::of(&l));
        f.replays.push(Summary::of(&l));
    }
    children.stop(Duration::from_secs(120)).await;

    // The raw fan-out: the same split over the same leaves, plain subscribers.
    let raw_topic = format!("nguon/v1/a/r{}/cmd", nguon_tests::net::random_suffix());
    let args: Vec<Vec<String>> = (0..k)
        .map(|c| {
            let (from, to) = split(c);
            vec![
                "raw".into(),
                "--broker".into(),
                tree.leaf(c % leaves).to_string(),
                "--from".into(),
                from.to_string(),
                "--to".into(),
                to.to_string(),
                "--topic".into(),
                raw_topic.clone(),
            ]
        })
        .collect();
    let t = Instant::now();
    let mut raw = Children::spawn(&exe, args, &logs)?;
    let (_, raw_subscribed, _) = raw.ready(Duration::from_secs(1200)).await?;
    f.raw_connect = t.elapsed();
    f.raw_subscribed = raw_subscribed;
    f.load_raw = load_average();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let l = publish_and_collect(&mut raw, tree.root().port(), &raw_topic, &payload, n).await?;
        println!("raw publish → subscriber receipt: {}", Summary::of(&l));
        f.raw.push(Summary::of(&l));
    }
    raw.stop(Duration::from_secs(60)).await;
    drop(server);
    drop(tree);
    Ok(crate::report::markdown(&f))
}

/// Publish `payload` once on the root from a plain client; each receiver's first receipt after it.
async fn publish_and_collect(
    children: &mut Children,
    port: u16,
    topic: &str,
    payload: &[u8],
    n: usize,
) -> anyhow::Result<Vec<std::time::Duration>> {
    let (c, poller) = nguon_tests::baseline::connected_publisher("scale-pub", "127.0.0.1", port).await?;
    children.clear();
    let t0 = now_ns();
    c.publish(topic, QoS::AtLeastOnce, false, payload.to_vec())
        .await?;
    let mut m = Marks::new(t0);
    m.collect(&mut children.rx, Duration::from_secs(60), |m| m.area.len() >= n)
        .await;
    poller.abort();
    Ok(m.delays(&m.area))
}

/// Remembers the last message on one topic of the root.
struct Spy {
    last: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Spy {
    async fn start(port: u16, topic: &str) -> anyhow::Result<Spy> {
        use rumqttc::{AsyncClient, Event, MqttOptions, Packet};
        let last = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut o = MqttOptions::new(
            format!("spy-{}", nguon_tests::net::random_suffix()),
            "127.0.0.1",
            port,
        );
        o.set_max_packet_size(4 << 20, 4 << 20);
        let (c, mut el) = AsyncClient::new(o, 16);
        c.subscribe(topic, QoS::AtLeastOnce).await?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let l = last.clone();
        let task = tokio::spawn(async move {
            let _c = c;
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        *l.lock().expect("spy") = p.payload.to_vec();
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), rx.recv()).await?;
        Ok(Spy { last, task })
    }

    fn take(self) -> Vec<u8> {
        self.task.abort();
        self.last.lock().expect("spy").clone()
    }
}
