//! The line protocol between `scale-bench` and its child processes, and the coordinator's side of
//! it: each child writes one text line per stamp on its stdout (wall-clock nanoseconds since the
//! Unix epoch: every process shares this machine's clock, so stamps from different children
//! compare), the coordinator merges them into one channel and [`Marks`] keeps each device's first
//! stamp of each kind at or after an instant. The coordinator writes `quit` on a child's stdin (or
//! closes it) to stop it.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, watch};

use crate::guard::{Trip, tripped};

/// Wall-clock now, nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// The wall-clock stamp of a past `Instant`.
pub fn instant_ns(at: Instant) -> i64 {
    now_ns() - Instant::now().saturating_duration_since(at).as_nanos() as i64
}

/// One line from a child. `dev` is the device's index in the whole plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// Every agent (or raw subscriber) of the child started; how many subscribed; its RSS.
    Ready {
        agents: usize,
        connected: usize,
        rss_kib: u64,
    },
    /// A publish on an area command topic read by the link (before verification).
    Area { dev: usize, ns: i64 },
    /// A publish on the device's `desired` topic read by the link (before verification).
    Desired { dev: usize, ns: i64 },
    /// The agent acknowledged message `id` (its observer event).
    Acked { dev: usize, id: String, ns: i64 },
    /// The agent acknowledged a manifest it had read on its `desired` topic.
    DesiredAcked { dev: usize, ns: i64 },
    /// The first sample of `item` reached the (null) sink.
    First { dev: usize, item: String, ns: i64 },
    /// Agents connected now and events waiting in their outboxes.
    Status { connected: usize, outbox: usize },
}

impl Line {
    /// The text form (one line, no newline).
    pub fn encode(&self) -> String {
        match self {
            Line::Ready {
                agents,
                connected,
                rss_kib,
            } => format!("READY {agents} {connected} {rss_kib}"),
            Line::Area { dev, ns } => format!("R {dev} {ns}"),
            Line::Desired { dev, ns } => format!("D {dev} {ns}"),
            Line::Acked { dev, id, ns } => format!("A {dev} {id} {ns}"),
            Line::DesiredAcked { dev, ns } => format!("M {dev} {ns}"),
            Line::First { dev, item, ns } => format!("F {dev} {item} {ns}"),
            Line::Status { connected, outbox } => format!("S {connected} {outbox}"),
        }
    }

    /// Parse [`Line::encode`]'s form; `None` for anything else (log lines).
    pub fn parse(s: &str) -> Option<Line> {
        let p: Vec<&str> = s.split_whitespace().collect();
        let n = |i: usize| p.get(i).and_then(|v| v.parse::<i64>().ok());
        let u = |i: usize| n(i).map(|v| v as usize);
        Some(match *p.first()? {
            "READY" => Line::Ready {
                agents: u(1)?,
                connected: u(2)?,
                rss_kib: n(3)? as u64,
            },
            "R" => Line::Area {
                dev: u(1)?,
                ns: n(2)?,
            },
            "D" => Line::Desired {
                dev: u(1)?,
                ns: n(2)?,
            },
            "A" => Line::Acked {
                dev: u(1)?,
                id: p.get(2)?.to_string(),
                ns: n(3)?,
            },
            "M" => Line::DesiredAcked {
                dev: u(1)?,
                ns: n(2)?,
            },
            "F" => Line::First {
                dev: u(1)?,
                item: p.get(2)?.to_string(),
                ns: n(3)?,
            },
            "S" => Line::Status {
                connected: u(1)?,
                outbox: u(2)?,
            },
            _ => return None,
        })
    }
}

/// Each device's first stamp of each kind at or after `t0`.
#[derive(Debug, Default)]
pub struct Marks {
    /// The instant the measurement starts from (wall-clock ns).
    pub t0: i64,
    /// Area command receipts.
    pub area: HashMap<usize, i64>,
    /// Manifest receipts.
    pub desired: HashMap<usize, i64>,
    /// Manifest acks.
    pub desired_acked: HashMap<usize, i64>,
    /// Acks by message id.
    pub acked: HashMap<String, HashMap<usize, i64>>,
    /// First samples by item id.
    pub first: HashMap<String, HashMap<usize, i64>>,
    none: HashMap<usize, i64>,
}

impl Marks {
    /// Nothing yet, from `t0`.
    pub fn new(t0: i64) -> Marks {
        Marks {
            t0,
            ..Marks::default()
        }
    }

    fn add(&mut self, l: Line) {
        let keep = |m: &mut HashMap<usize, i64>, dev: usize, ns: i64, t0: i64| {
            if ns >= t0 {
                m.entry(dev).or_insert(ns);
            }
        };
        let t0 = self.t0;
        match l {
            Line::Area { dev, ns } => keep(&mut self.area, dev, ns, t0),
            Line::Desired { dev, ns } => keep(&mut self.desired, dev, ns, t0),
            Line::DesiredAcked { dev, ns } => keep(&mut self.desired_acked, dev, ns, t0),
            Line::Acked { dev, id, ns } => keep(self.acked.entry(id).or_default(), dev, ns, t0),
            Line::First { dev, item, ns } => keep(self.first.entry(item).or_default(), dev, ns, t0),
            Line::Ready { .. } | Line::Status { .. } => {}
        }
    }

    /// The delays from `t0` of one kind of stamp.
    pub fn delays(&self, m: &HashMap<usize, i64>) -> Vec<Duration> {
        m.values()
            .map(|ns| Duration::from_nanos((ns - self.t0).max(0) as u64))
            .collect()
    }

    /// Acks of `id`, or an empty map.
    pub fn acks(&self, id: &str) -> &HashMap<usize, i64> {
        self.acked.get(id).unwrap_or(&self.none)
    }

    /// First samples of `item`, or an empty map.
    pub fn firsts(&self, item: &str) -> &HashMap<usize, i64> {
        self.first.get(item).unwrap_or(&self.none)
    }
}

/// Per device, `done - received` (devices with both stamps): the agent's processing time.
pub fn processing(received: &HashMap<usize, i64>, done: &HashMap<usize, i64>) -> Vec<Duration> {
    done.iter()
        .filter_map(|(d, end)| {
            let start = received.get(d)?;
            Some(Duration::from_nanos((end - start).max(0) as u64))
        })
        .collect()
}

/// The running children, their merged lines, and their latest status lines.
pub struct Children {
    procs: Vec<Child>,
    stdins: Vec<Option<ChildStdin>>,
    /// Every line but `Status`, from every child.
    rx: mpsc::UnboundedReceiver<Line>,
    status: Arc<Mutex<Vec<(usize, usize)>>>,
    guard: watch::Receiver<Option<Trip>>,
}

impl Children {
    /// Start one `exe` per argument list; stderr goes to `<logs>/child<i>.log`. Every wait ends
    /// early when the memory guard behind `guard` trips.
    pub fn spawn(
        exe: &Path,
        args: Vec<Vec<String>>,
        logs: &Path,
        guard: watch::Receiver<Option<Trip>>,
    ) -> anyhow::Result<Children> {
        let (tx, rx) = mpsc::unbounded_channel();
        let status = Arc::new(Mutex::new(vec![(0, 0); args.len()]));
        let mut procs = Vec::new();
        let mut stdins = Vec::new();
        for (i, a) in args.into_iter().enumerate() {
            let log = std::fs::File::create(logs.join(format!("child{i}.log")))?;
            let mut child = Command::new(exe)
                .args(a)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()?;
            let out = child.stdout.take().expect("piped stdout");
            stdins.push(child.stdin.take());
            let (tx, status) = (tx.clone(), status.clone());
            tokio::spawn(async move {
                let mut lines = BufReader::new(out).lines();
                while let Ok(Some(s)) = lines.next_line().await {
                    match Line::parse(&s) {
                        Some(Line::Status { connected, outbox }) => {
                            status.lock().expect("status")[i] = (connected, outbox);
                        }
                        Some(l) => {
                            let _ = tx.send(l);
                        }
                        None => {}
                    }
                }
            });
            procs.push(child);
        }
        Ok(Children {
            procs,
            stdins,
            rx,
            status,
            guard,
        })
    }

    /// Wait for every child's `READY` (other lines are dropped); (agents, subscribed, RSS KiB).
    pub async fn ready(&mut self, within: Duration) -> anyhow::Result<(usize, usize, u64)> {
        let deadline = tokio::time::Instant::now() + within;
        let (mut k, mut agents, mut connected, mut rss) = (0, 0, 0, 0);
        let mut guard = self.guard.clone();
        while k < self.procs.len() {
            let next = tokio::select! {
                l = tokio::time::timeout_at(deadline, self.rx.recv()) => l,
                _ = tripped(&mut guard) => anyhow::bail!("the memory guard tripped: {k} of {} children ready", self.procs.len()),
            };
            match next {
                Ok(Some(Line::Ready {
                    agents: a,
                    connected: c,
                    rss_kib,
                })) => {
                    k += 1;
                    agents += a;
                    connected += c;
                    rss += rss_kib;
                }
                Ok(Some(_)) => {}
                Ok(None) => anyhow::bail!("a child ended before it was ready"),
                Err(_) => anyhow::bail!("{k} of {} children ready after {within:?}", self.procs.len()),
            }
        }
        Ok((agents, connected, rss))
    }

    /// Read lines into `m` until `done(m)`, `within` passed or the memory guard tripped; whether
    /// `done` held.
    pub async fn collect(&mut self, m: &mut Marks, within: Duration, done: impl Fn(&Marks) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        let mut guard = self.guard.clone();
        while !done(m) {
            tokio::select! {
                l = tokio::time::timeout_at(deadline, self.rx.recv()) => match l {
                    Ok(Some(l)) => m.add(l),
                    _ => return false,
                },
                _ = tripped(&mut guard) => return false,
            }
        }
        true
    }

    /// Drop every line read so far.
    pub fn clear(&mut self) {
        while self.rx.try_recv().is_ok() {}
    }

    /// Sum of the latest status lines: (connected now, events waiting in outboxes).
    pub fn status(&self) -> (usize, usize) {
        let s = self.status.lock().expect("status");
        s.iter().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    }

    /// Wait until no outbox holds an event (or `within` passed); whether they all drained.
    pub async fn settle(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        // Status lines come every second: let one arrive after whatever was just sent.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        while Instant::now() < deadline && self.guard.borrow().is_none() {
            if self.status().1 == 0 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        false
    }

    /// Process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.procs.iter().filter_map(|c| c.id()).collect()
    }

    /// Ask every child to stop, wait up to `within` for them all, kill the rest.
    pub async fn stop(mut self, within: Duration) {
        for s in self.stdins.iter_mut() {
            if let Some(mut s) = s.take() {
                let _ = s.write_all(b"quit\n").await;
            }
        }
        let deadline = tokio::time::Instant::now() + within;
        futures::future::join_all(self.procs.iter_mut().map(|c| async move {
            if tokio::time::timeout_at(deadline, c.wait()).await.is_err() {
                let _ = c.kill().await;
            }
        }))
        .await;
    }
}
