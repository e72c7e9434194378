//! The write turns of SQLite inside this process ([`WriteGate`]). SQLite has one writer at a
//! time, and a writer waiting for the lock polls it from its busy handler: nothing orders the
//! waiters, so under a stream of writes (ingest storing 100,000 acks, the dispatcher recording
//! manifests) one of them can lose every poll until its busy timeout, which is how the leader
//! lease's renewal failed with `database is locked` at 100,000 devices (docs/benchmarks.md).
//!
//! So every write transaction of the process takes a turn here before `BEGIN IMMEDIATE`, first
//! come first served ([`WriteGate::turn`]), and a few short writes that must not wait behind the
//! queue (the lease's renewal, taking and release: `store::lease`) take a turn ahead of it
//! ([`WriteGate::first`]): they wait for the transaction that holds the lock and at most one more.
//! Two FIFO mutexes do it: ordinary writers queue on `lane` and then, one at a time, on `lock`,
//! where a first-turn writer queues directly. PostgreSQL has row locks and needs no gate.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::error::{Error, Result};

/// How long a writer waits for its turn: SQLite's own busy timeout (`store::Store::connect`).
pub const TURN_TIMEOUT: Duration = Duration::from_secs(10);

/// The queue of SQLite writers of this process (cloning shares it).
#[derive(Debug, Clone, Default)]
pub struct WriteGate {
    lane: Arc<Mutex<()>>,
    lock: Arc<Mutex<()>>,
}

/// A writer's turn: held until its transaction ends (dropped with it).
#[derive(Debug)]
pub struct Turn(#[allow(dead_code)] OwnedMutexGuard<()>);

impl WriteGate {
    /// An ordinary writer's turn, after every writer that asked before it.
    pub async fn turn(&self) -> Result<Turn> {
        within(async {
            let _lane = self.lane.lock().await;
            // Holding `lane` while queued here keeps at most one ordinary writer on `lock`.
            Turn(self.lock.clone().lock_owned().await)
        })
        .await
    }

    /// A turn ahead of the queue: after the writer holding the lock and at most one ordinary
    /// writer. For short writes only, or the queue behind them starves.
    pub async fn first(&self) -> Result<Turn> {
        within(async { Turn(self.lock.clone().lock_owned().await) }).await
    }
}

async fn within(wait: impl Future<Output = Turn>) -> Result<Turn> {
    tokio::time::timeout(TURN_TIMEOUT, wait).await.map_err(|_| {
        Error::internal(format!(
            "database busy: no write turn within {} s (SQLite writes one transaction at a time)",
            TURN_TIMEOUT.as_secs()
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::WriteGate;

    /// Let every spawned task run until it waits (single-threaded runtime).
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_first_turn_goes_ahead_of_the_queued_writers() {
        let gate = WriteGate::default();
        let order = Arc::new(Mutex::new(Vec::new()));
        let holder = gate.turn().await.unwrap();
        let mut tasks = Vec::new();
        for name in ["w1", "w2", "w3", "w4"] {
            let (gate, order) = (gate.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _t = gate.turn().await.unwrap();
                order.lock().unwrap().push(name);
                tokio::task::yield_now().await;
            }));
            settle().await;
        }
        let (g, o) = (gate.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let _t = g.first().await.unwrap();
            o.lock().unwrap().push("lease");
        }));
        settle().await;
        assert!(order.lock().unwrap().is_empty(), "all wait for the holder");
        drop(holder);
        for t in tasks {
            t.await.unwrap();
        }
        // w1 was already queued on the lock; the first turn comes right after it, before the
        // three that queued before it asked.
        assert_eq!(*order.lock().unwrap(), ["w1", "lease", "w2", "w3", "w4"]);
    }

    #[tokio::test]
    async fn ordinary_turns_are_first_come_first_served() {
        let gate = WriteGate::default();
        let order = Arc::new(Mutex::new(Vec::new()));
        let holder = gate.turn().await.unwrap();
        let mut tasks = Vec::new();
        for n in 0..6 {
            let (gate, order) = (gate.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _t = gate.turn().await.unwrap();
                order.lock().unwrap().push(n);
            }));
            settle().await;
        }
        drop(holder);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4, 5]);
    }
}
