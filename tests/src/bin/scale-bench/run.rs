//! The coordinator of `scale-bench run`: brokers, server (SQLite, or a fresh PostgreSQL database
//! with `--database-url`), registration, the agent children, the measurements in the order of
//! `--measure`, then the raw children and the raw fan-out, all in one run, under the memory guard
//! ([`crate::guard`]): should the machine run short, the agents stop and the report says what was
//! measured.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nguon_tests::api::Api;
use nguon_tests::db::TestDatabase;
use nguon_tests::fleet::FleetPlan;
use nguon_tests::harness::{BrokerChoice, ServerProc};
use nguon_tests::mosquitto_tree::{MosquittoTree, leaves_for, shm_base};
use nguon_tests::stats::{Summary, load_average, proc_sample};
use rumqttc::QoS;

use crate::Processing;
use crate::guard::{Guard, Trip, mem_available_kib};
use crate::measure::{self, Ctx, DEFAULT_ORDER, Measure, Pids, check_order, publish_and_collect};
use crate::report::Figures;
use crate::wire::Children;

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
    /// Run the server on PostgreSQL: a fresh database is created on this URL's server (the URL's
    /// own database is not touched) and dropped at the end. SQLite when absent.
    #[arg(long)]
    pub database_url: Option<String>,
    /// How the agents' processing threads are scheduled beside their poll loops.
    #[arg(long, value_enum, default_value_t = Processing::Nice)]
    pub processing: Processing,
    /// The measurements, in order (comma-separated; `raw` last).
    #[arg(long, value_enum, value_delimiter = ',', default_value = DEFAULT_ORDER)]
    pub measure: Vec<Measure>,
    /// Stop the agents and write the report of what was measured when MemAvailable falls under
    /// this many GiB (at half of it, the agent processes are killed at once).
    #[arg(long, default_value_t = 1.5)]
    pub memory_guard_gib: f64,
    /// Also write the markdown report here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Run, print the report, write it to `--out`.
pub fn main(a: RunArgs) -> anyhow::Result<()> {
    check_order(&a.measure).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        a.memory_guard_gib > 0.0,
        "--memory-guard-gib must be above 0 (got {})",
        a.memory_guard_gib
    );
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

/// RSS of several processes (KiB).
fn rss_kib(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| proc_sample(*p).ok())
        .map(|s| s.rss_kib)
        .sum()
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

/// The report's sentence about a trip of the memory guard.
fn trip_note(t: &Trip, during: &str, limit_kib: u64) -> String {
    format!(
        "The memory guard stopped the run {during}: MemAvailable {:.2} GiB < {:.2} GiB at {} UTC (load average {}); {}",
        t.available_kib as f64 / 1024.0 / 1024.0,
        limit_kib as f64 / 1024.0 / 1024.0,
        t.at,
        t.load,
        if t.killed {
            "memory kept falling to half the limit and the agent processes were killed."
        } else {
            "the agents were asked to stop; what follows is what had been measured."
        }
    )
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
    let guard = Guard::start((a.memory_guard_gib * 1024.0 * 1024.0) as u64);
    let measures: Vec<&str> = a.measure.iter().map(|m| m.name()).collect();
    println!(
        "== {n_req} agents in {k} processes on {leaves} leaf brokers; processing {}; measuring {}",
        a.processing.name(),
        measures.join(",")
    );
    let dir = tempfile::Builder::new()
        .prefix("nguon-scale-")
        .tempdir_in(shm_base())?;
    let tree = MosquittoTree::start(&dir.path().join("brokers"), leaves).await?;
    let (db, database) = match &a.database_url {
        Some(u) => (TestDatabase::fresh_postgres(u).await?, "PostgreSQL"),
        None => (TestDatabase::sqlite(), "SQLite"),
    };
    let mut server = ServerProc::prepare_on(
        dir.path(),
        BrokerChoice::External(tree.root_url()),
        db,
        &[("RUST_LOG", "warn,rumqttc=error")],
    )?;
    server.launch().await?;
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
    println!(
        "registered {n} devices in {:.1} s ({database})",
        register.as_secs_f64()
    );
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
                "--processing".into(),
                a.processing.name().into(),
            ]
        })
        .collect();
    let mut f = Figures {
        n,
        processes: k,
        leaves,
        register,
        database: database.into(),
        processing: match a.processing {
            Processing::Idle => "`SCHED_IDLE` (`--processing idle`)".into(),
            Processing::Nice => "nice 10 (`--processing nice`)".into(),
            Processing::Normal => "normal priority (`--processing normal`)".into(),
        },
        measures: format!("`--measure {}`", measures.join(",")),
        ..Figures::default()
    };
    let t = Instant::now();
    let mut children = Children::spawn(&exe, args, &logs, guard.subscribe())?;
    guard.watch_pids(children.pids());
    let ready = children.ready(Duration::from_secs(1800)).await;
    f.connect = t.elapsed();
    let (started, subscribed, _) = match ready {
        Ok(r) => r,
        Err(e) => {
            let Some(trip) = guard.tripped() else {
                return Err(e);
            };
            children.stop(Duration::from_secs(30)).await;
            f.stopped = Some(trip_note(&trip, "while the agents connected", guard.limit_kib()));
            f.guard_kib = (guard.limit_kib(), guard.lowest_kib());
            return Ok(crate::report::markdown(&f));
        }
    };
    println!(
        "{started} agents started, {subscribed} subscribed in {:.1} s",
        f.connect.as_secs_f64()
    );
    let t = Instant::now();
    let mut seen = online(&api).await;
    while seen < n as i64 && t.elapsed() < Duration::from_secs(300) && guard.tripped().is_none() {
        tokio::time::sleep(Duration::from_secs(2)).await;
        seen = online(&api).await;
    }
    f.online_after = t.elapsed();
    println!(
        "server sees {seen} online ({:.1} s later)",
        f.online_after.as_secs_f64()
    );
    f.settled = children.settle(Duration::from_secs(120)).await;
    let pids = Pids {
        agents: children.pids(),
        brokers: tree.pids(),
        server: server.pid(),
    };
    f.subscribed = subscribed;
    f.online = seen;
    f.agents_rss_kib = rss_kib(&pids.agents);
    f.brokers_rss_kib = rss_kib(&pids.brokers);
    f.server_rss_kib = rss_kib(&[pids.server]);
    f.mem_available_kib = mem_available_kib();
    f.load_connected = load_average();
    // A spy on the root keeps the payload of the area command.
    let area_topic = format!("nguon/v1/a/{province}/cmd");
    let spy = Spy::start(tree.root().port(), &area_topic).await?;
    for m in &a.measure {
        if let Some(trip) = guard.tripped() {
            f.stopped = Some(trip_note(
                &trip,
                &format!("before {}", m.name()),
                guard.limit_kib(),
            ));
            break;
        }
        let ctx = Ctx {
            api: &api,
            children: &mut children,
            pids: &pids,
            province: &province,
            sha: &sha,
            n,
            wait,
        };
        // A failed measurement (e.g. the server refusing connections at 100,000) ends the
        // measurements; the report of the others is still written.
        let taken = match m {
            Measure::Dispatch => Some(measure::dispatch(ctx).await),
            Measure::EmergencyCold | Measure::EmergencyWarm => Some(measure::emergency(*m, ctx).await),
            Measure::Replay | Measure::Raw => None,
        };
        match (m, taken) {
            (_, Some(Ok(p))) => {
                f.phases.push(p);
                f.payload = spy.last().len();
            }
            (_, Some(Err(e))) => {
                f.stopped = Some(format!("{} failed, the run stopped there: {e:#}", m.name()));
                break;
            }
            (Measure::Replay, None) => {
                let payload = spy.last();
                anyhow::ensure!(!payload.is_empty(), "the spy saw no emergency on {area_topic}");
                f.load_replay = load_average();
                for _ in 0..3 {
                    children.settle(Duration::from_secs(60)).await;
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    if guard.tripped().is_some() {
                        break;
                    }
                    let l = publish_and_collect(&mut children, tree.root().port(), &area_topic, &payload, n)
                        .await?;
                    println!("plain publish → agent receipt: {}", Summary::of(&l));
                    f.replays.push(Summary::of(&l));
                }
            }
            (_, None) => break,
        }
        if let Some(p) = f.phases.last().filter(|p| p.kind == *m) {
            println!("{}", p.line());
        }
        if let Some(trip) = guard.tripped() {
            f.stopped = Some(trip_note(
                &trip,
                &format!("during {}", m.name()),
                guard.limit_kib(),
            ));
            break;
        }
    }
    let tripped = guard.tripped().is_some();
    children
        .stop(Duration::from_secs(if tripped { 30 } else { 120 }))
        .await;
    let payload = spy.last();
    drop(spy);
    // The raw fan-out: the same split over the same leaves, plain subscribers. After a trip only
    // once the agents' memory is back (the guard, re-armed, still watches).
    let room = mem_available_kib() > 2 * guard.limit_kib();
    if a.measure.last() == Some(&Measure::Raw) && !payload.is_empty() && (!tripped || room) {
        guard.rearm();
        measure_raw(&mut f, &exe, &logs, &tree, &guard, &payload, split, k, leaves).await?;
        if let (Some(trip), None) = (guard.tripped(), &f.stopped) {
            f.stopped = Some(trip_note(&trip, "during raw", guard.limit_kib()));
        }
    }
    f.guard_kib = (guard.limit_kib(), guard.lowest_kib());
    drop(server);
    drop(tree);
    Ok(crate::report::markdown(&f))
}

/// The raw fan-out: N plain subscribers in the agents' split over the same leaves, the same bytes
/// published on the root three times.
#[allow(clippy::too_many_arguments)]
async fn measure_raw(
    f: &mut Figures,
    exe: &Path,
    logs: &Path,
    tree: &MosquittoTree,
    guard: &Guard,
    payload: &[u8],
    split: impl Fn(usize) -> (usize, usize),
    k: usize,
    leaves: usize,
) -> anyhow::Result<()> {
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
    let mut raw = Children::spawn(exe, args, logs, guard.subscribe())?;
    guard.watch_pids(raw.pids());
    let ready = raw.ready(Duration::from_secs(1200)).await;
    f.raw_connect = t.elapsed();
    match ready {
        Ok((_, subscribed, _)) => f.raw_subscribed = subscribed,
        Err(e) if guard.tripped().is_some() => {
            eprintln!("raw subscribers: {e:#}");
            raw.stop(Duration::from_secs(30)).await;
            return Ok(());
        }
        Err(e) => return Err(e),
    }
    f.load_raw = load_average();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        if guard.tripped().is_some() {
            break;
        }
        let l = publish_and_collect(&mut raw, tree.root().port(), &raw_topic, payload, f.n).await?;
        println!("raw publish → subscriber receipt: {}", Summary::of(&l));
        f.raw.push(Summary::of(&l));
    }
    raw.stop(Duration::from_secs(60)).await;
    Ok(())
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

    /// The last message seen.
    fn last(&self) -> Vec<u8> {
        self.last.lock().expect("spy").clone()
    }
}

impl Drop for Spy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
