//! The leader lease (issue 14): of several instances sharing one database, one runs the singleton
//! duties (dispatcher, command sender, alarms, notifier, CAP feeds); the others serve HTTP and
//! ingest. [`run`] polls `store::lease` as a follower (every [`poll_every`]), takes the lease when
//! it is free, raises the signer's sequence floor to the largest number stored (so everything it
//! signs is numbered above whatever the previous leader could still publish), starts the duties,
//! renews every third of `ha.lease_ttl_secs`, and stops the duties the moment it cannot renew. At
//! a graceful stop it releases the lease, so a follower takes over at its next poll.
//!
//! [`Lease`] is the handle the duties hold: [`Lease::fence`] checks the epoch inside the
//! dispatcher's transaction that records manifests (a deposed leader writes nothing, so it has
//! nothing to publish), and [`Lease::valid`] is the local check before each publish: the lease is
//! trusted only until a quarter of its lifetime before it would expire, counted from when the
//! last renewal was sent, on this process's monotonic clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::mqtt::Signer;
use crate::store::lease::{self, LEADER};
use crate::store::{Conn, Store, now_ms};

/// A named duty of the leader.
pub type Duty = (&'static str, BoxFuture<'static, Result<()>>);

/// This instance's view of the leader lease (cloning shares it).
#[derive(Clone, Debug)]
pub struct Lease(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    holder: String,
    ttl: Duration,
    steal: bool,
    /// The epoch held, 0 as a follower.
    epoch: AtomicI64,
    valid_until: Mutex<Option<Instant>>,
}

impl Lease {
    /// The lease of `holder` (this instance's id) lasting `ttl`. `steal`: take it whatever its
    /// state (SQLite, where the file lock already excludes any other instance).
    pub fn new(holder: impl Into<String>, ttl: Duration, steal: bool) -> Lease {
        Lease(Arc::new(Inner {
            holder: holder.into(),
            ttl,
            steal,
            epoch: AtomicI64::new(0),
            valid_until: Mutex::new(None),
        }))
    }

    /// This instance's id in the lease.
    pub fn holder(&self) -> &str {
        &self.0.holder
    }

    /// The epoch held, `None` as a follower.
    pub fn epoch(&self) -> Option<i64> {
        Some(self.0.epoch.load(Ordering::SeqCst)).filter(|e| *e > 0)
    }

    /// Whether this instance may still act as leader now (local clock, with a margin of a
    /// quarter of the lifetime).
    pub fn valid(&self) -> bool {
        self.epoch().is_some() && lock(&self.0.valid_until).is_some_and(|t| Instant::now() < t)
    }

    /// The fence, inside the caller's write transaction before its writes: fails unless this
    /// instance still holds the lease in the database under its epoch.
    pub async fn fence(&self, conn: &mut Conn) -> Result<()> {
        let Some(epoch) = self.epoch().filter(|_| self.valid()) else {
            return Err(Error::internal(
                "not the leader (lease lost or expired); nothing written",
            ));
        };
        lease::fence(conn, LEADER, &self.0.holder, epoch, now_ms()).await
    }

    fn held(&self, epoch: i64, renewal_sent: Instant) {
        let trusted = self.0.ttl - self.0.ttl / 4;
        *lock(&self.0.valid_until) = Some(renewal_sent + trusted);
        self.0.epoch.store(epoch, Ordering::SeqCst);
    }

    fn lost(&self) {
        self.0.epoch.store(0, Ordering::SeqCst);
        *lock(&self.0.valid_until) = None;
    }

    fn ttl_ms(&self) -> i64 {
        self.0.ttl.as_millis() as i64
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How often a follower tries the lease: every second, or a third of the lifetime if shorter.
pub fn poll_every(ttl: Duration) -> Duration {
    (ttl / 3).min(Duration::from_secs(1))
}

/// Run the lease until `cancel`: follower polls, then `duties(token)` while leader (stopped with
/// `token` when the lease is lost, then polling again). A duty that ends on its own ends this task
/// with its result (the supervisor then stops the server, as before the lease existed).
pub async fn run<F>(
    lease: Lease,
    store: Store,
    metrics: Arc<Metrics>,
    signer: Signer,
    duties: F,
    cancel: CancellationToken,
) -> Result<()>
where
    F: Fn(CancellationToken) -> Vec<Duty> + Send,
{
    let ttl_ms = lease.ttl_ms();
    loop {
        // Follower.
        let acquired = loop {
            let sent = Instant::now();
            match lease::acquire(&store, LEADER, lease.holder(), now_ms(), ttl_ms, lease.0.steal).await {
                Ok(Some(a)) => break (a, sent),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "leader lease: cannot read or take the lease"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(poll_every(lease.0.ttl)) => {}
            }
        };
        let (a, sent) = acquired;
        // Everything this leader signs is numbered above what any earlier leader stored (and so
        // could publish: a deposed leader publishes only what it recorded under its epoch).
        match crate::store::manifests::largest_seq(&store).await {
            Ok(Some(floor)) => signer.sequencer().raise_floor(floor),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "leader lease: cannot read the sequence floor; releasing");
                let _ = lease::release(&store, LEADER, lease.holder(), a.epoch).await;
                continue;
            }
        }
        lease.held(a.epoch, sent);
        metrics.leader_epoch.store(a.epoch, Ordering::Relaxed);
        metrics.is_leader.store(1, Ordering::Relaxed);
        if a.failover {
            Metrics::inc(&metrics.leader_failovers);
        }
        Metrics::inc(&metrics.leader_acquired);
        tracing::info!(
            holder = lease.holder(),
            epoch = a.epoch,
            previous = %a.previous,
            failover = a.failover,
            "leader lease taken: starting the leader's duties"
        );
        let token = cancel.child_token();
        let mut tasks: JoinSet<(&'static str, Result<()>)> = JoinSet::new();
        for (name, fut) in duties(token.clone()) {
            tasks.spawn(async move { (name, fut.await) });
        }
        let mut renew = tokio::time::interval(lease.0.ttl / 3);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        renew.tick().await;
        let ended: Option<Result<()>> = loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break None,
                _ = renew.tick() => {
                    let sent = Instant::now();
                    match lease::renew(&store, LEADER, lease.holder(), a.epoch, now_ms(), ttl_ms).await {
                        Ok(true) => lease.held(a.epoch, sent),
                        Ok(false) => {
                            tracing::error!(epoch = a.epoch, "leader lease lost (taken over or expired); stopping the leader's duties");
                            break Some(Ok(()));
                        }
                        Err(e) if lease.valid() => tracing::warn!(error = %e, "leader lease: renewal failed; retrying"),
                        Err(e) => {
                            tracing::error!(error = %e, "leader lease: renewal failed and the lease expired; stopping the leader's duties");
                            break Some(Ok(()));
                        }
                    }
                }
                Some(r) = tasks.join_next() => {
                    // A duty that ends because of the stop is not a failure.
                    if cancel.is_cancelled() {
                        break None;
                    }
                    let r = match r {
                        Ok((name, r)) => {
                            tracing::warn!(task = name, result = ?r, "leader duty ended");
                            r
                        }
                        Err(e) => Err(Error::internal_from("leader duty panicked", e)),
                    };
                    break Some(r.and(Err(Error::internal("a leader duty ended"))));
                }
            }
        };
        // Stop the duties before anyone else may act: lost lease or stop.
        lease.lost();
        metrics.is_leader.store(0, Ordering::Relaxed);
        token.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(r) = tasks.join_next().await {
                if let Ok((name, r)) = r {
                    tracing::info!(task = name, result = ?r, "leader duty stopped");
                }
            }
        })
        .await;
        tasks.abort_all();
        match ended {
            None => {
                match lease::release(&store, LEADER, lease.holder(), a.epoch).await {
                    Ok(true) => tracing::info!(epoch = a.epoch, "leader lease released"),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "leader lease: cannot release; it expires by itself")
                    }
                }
                return Ok(());
            }
            Some(Err(e)) => {
                let _ = lease::release(&store, LEADER, lease.holder(), a.epoch).await;
                return Err(e);
            }
            Some(Ok(())) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Lease, poll_every};

    #[test]
    fn a_lease_is_trusted_until_a_quarter_of_its_lifetime_before_it_expires() {
        let l = Lease::new("a", Duration::from_millis(400), false);
        assert!(!l.valid());
        assert_eq!(l.epoch(), None);
        l.held(3, std::time::Instant::now());
        assert!(l.valid());
        assert_eq!(l.epoch(), Some(3));
        std::thread::sleep(Duration::from_millis(320));
        assert!(
            !l.valid(),
            "300 ms after the renewal was sent it is no longer trusted"
        );
        l.lost();
        assert_eq!(l.epoch(), None);
        assert_eq!(poll_every(Duration::from_secs(5)), Duration::from_secs(1));
        assert_eq!(poll_every(Duration::from_secs(2)), Duration::from_secs(2) / 3);
    }
}
