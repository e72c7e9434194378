//! The memory guard of `scale-bench run`: the machine is shared, and at 100,000 agents the
//! simulator alone holds about 10 GiB, so the run must never take the machine's last memory.
//! A task reads `MemAvailable` from `/proc/meminfo` every 250 ms. When it falls under the limit
//! the guard trips: the coordinator's waits end at once, it asks the agent processes to stop
//! (`quit` on their stdin) and writes the report of what was measured. Should memory keep falling
//! to half the limit before they are gone, the guard `SIGKILL`s the processes it watches itself.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

/// Why and when the guard tripped.
#[derive(Debug, Clone)]
pub struct Trip {
    /// `MemAvailable` when it tripped (KiB).
    pub available_kib: u64,
    /// Wall-clock time (UTC, `HH:MM:SS`).
    pub at: String,
    /// Load average then.
    pub load: String,
    /// Whether memory fell to half the limit and the guard killed the watched processes.
    pub killed: bool,
}

/// The guard: a background task and what it saw.
pub struct Guard {
    limit_kib: u64,
    tx: Arc<watch::Sender<Option<Trip>>>,
    pids: Arc<Mutex<Vec<u32>>>,
    lowest_kib: Arc<Mutex<u64>>,
    task: tokio::task::JoinHandle<()>,
}

/// `MemAvailable` of /proc/meminfo (KiB).
pub fn mem_available_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

impl Guard {
    /// Start watching: trip when `MemAvailable` < `limit_kib`.
    pub fn start(limit_kib: u64) -> Guard {
        let tx = Arc::new(watch::channel(None::<Trip>).0);
        let pids: Arc<Mutex<Vec<u32>>> = Arc::default();
        let lowest_kib = Arc::new(Mutex::new(u64::MAX));
        let (t, p, low) = (tx.clone(), pids.clone(), lowest_kib.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                let avail = mem_available_kib();
                {
                    let mut l = low.lock().expect("lowest");
                    *l = (*l).min(avail);
                }
                if avail >= limit_kib {
                    continue;
                }
                let killed = avail < limit_kib / 2;
                if killed {
                    for pid in p.lock().expect("pids").iter() {
                        // SAFETY: kill takes no pointers; the pids are this run's own children.
                        unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
                    }
                }
                t.send_if_modified(|trip| match trip {
                    Some(tr) if tr.killed || !killed => false,
                    _ => {
                        let first = trip.as_ref().map(|tr| tr.at.clone());
                        *trip = Some(Trip {
                            available_kib: avail,
                            at: first.unwrap_or_else(|| chrono::Utc::now().format("%H:%M:%S").to_string()),
                            load: nguon_tests::stats::load_average(),
                            killed,
                        });
                        true
                    }
                });
            }
        });
        Guard {
            limit_kib,
            tx,
            pids,
            lowest_kib,
            task,
        }
    }

    /// The processes to kill should memory fall to half the limit (replaces the previous set).
    pub fn watch_pids(&self, pids: Vec<u32>) {
        *self.pids.lock().expect("pids") = pids;
    }

    /// A receiver that changes when the guard trips (for the coordinator's waits).
    pub fn subscribe(&self) -> watch::Receiver<Option<Trip>> {
        self.tx.subscribe()
    }

    /// The trip, if it tripped.
    pub fn tripped(&self) -> Option<Trip> {
        self.tx.borrow().clone()
    }

    /// Watch again after a trip (the next phase runs once memory is back).
    pub fn rearm(&self) {
        self.tx.send_replace(None);
    }

    /// The limit (KiB).
    pub fn limit_kib(&self) -> u64 {
        self.limit_kib
    }

    /// The lowest `MemAvailable` seen so far (KiB).
    pub fn lowest_kib(&self) -> u64 {
        *self.lowest_kib.lock().expect("lowest")
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Resolves when the guard behind `rx` has tripped (at once if it already has).
pub async fn tripped(rx: &mut watch::Receiver<Option<Trip>>) {
    if rx.wait_for(|t| t.is_some()).await.is_err() {
        // The guard is gone: it cannot trip any more.
        std::future::pending::<()>().await;
    }
}
