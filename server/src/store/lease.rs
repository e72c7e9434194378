//! The `leader_lease` table (migration 0170): which instance holds a lease, under which fencing
//! epoch, until when. Every change is one conditional `UPDATE` judged on the row as it is when the
//! statement runs (PostgreSQL re-reads a row another transaction just changed; SQLite writes one at
//! a time), so of two instances trying at once exactly one gets a lease. On SQLite each of these
//! writes takes its turn ahead of the process's queued writers (`Store::first_turn`): a renewal
//! waits for the transaction holding the database and at most one more, never for the whole queue
//! (ingest and the dispatcher keep theirs short). Times are unix ms of the writer's clock:
//! instances must keep their clocks in step (NTP), as the signed messages' expiry already
//! requires. `workers::leader` drives it.

use sqlx::Row;

use crate::error::{Error, Result};
use crate::store::{Conn, Store};

/// The lease of the scheduler/dispatcher leader.
pub const LEADER: &str = "leader";

/// A lease obtained by [`acquire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquired {
    /// The new fencing epoch (one more than the previous holder's).
    pub epoch: i64,
    /// The previous holder, `''` if none.
    pub previous: String,
    /// Whether the previous holder let its lease lapse (it did not release it, and it was not this
    /// instance): a failover.
    pub failover: bool,
}

/// The lease row as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    /// Holder (`''` never held).
    pub holder: String,
    /// Fencing epoch.
    pub epoch: i64,
    /// Unix ms; 0 once released.
    pub expires_at: i64,
}

/// Read the lease.
pub async fn current(store: &Store, name: &str) -> Result<Current> {
    let r = sqlx::query("SELECT holder, epoch, expires_at FROM leader_lease WHERE name = $1")
        .bind(name)
        .fetch_one(&store.pool)
        .await?;
    Ok(Current {
        holder: r.try_get("holder")?,
        epoch: r.try_get("epoch")?,
        expires_at: r.try_get("expires_at")?,
    })
}

/// Take the lease for `holder` until `now + ttl_ms` when it is free: released or expired at
/// `now`, or held by `holder` itself (an instance restarted under the same id), or whatever its
/// state when `steal` (SQLite, where the data-directory lock already makes this process the only
/// one). `None`: another instance holds it.
pub async fn acquire(
    store: &Store,
    name: &str,
    holder: &str,
    now: i64,
    ttl_ms: i64,
    steal: bool,
) -> Result<Option<Acquired>> {
    let before = current(store, name).await?;
    let free = steal || before.expires_at < now || before.holder == holder;
    if !free {
        return Ok(None);
    }
    // Conditional on the epoch read: a concurrent acquisition makes this one update nothing.
    let _turn = store.first_turn().await?;
    let done = sqlx::query(
        "UPDATE leader_lease SET holder = $1, epoch = epoch + 1, expires_at = $2, acquired_at = $3 \
         WHERE name = $4 AND epoch = $5",
    )
    .bind(holder)
    .bind(now + ttl_ms)
    .bind(now)
    .bind(name)
    .bind(before.epoch)
    .execute(&store.pool)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(None);
    }
    Ok(Some(Acquired {
        epoch: before.epoch + 1,
        failover: before.expires_at != 0 && !before.holder.is_empty() && before.holder != holder,
        previous: before.holder,
    }))
}

/// Extend the lease held by `holder` under `epoch` to `now + ttl_ms`. `false`: it is no longer
/// this holder's (taken over, or expired and taken).
pub async fn renew(
    store: &Store,
    name: &str,
    holder: &str,
    epoch: i64,
    now: i64,
    ttl_ms: i64,
) -> Result<bool> {
    let _turn = store.first_turn().await?;
    let done = sqlx::query(
        "UPDATE leader_lease SET expires_at = $1 WHERE name = $2 AND holder = $3 AND epoch = $4 AND expires_at >= $5",
    )
    .bind(now + ttl_ms)
    .bind(name)
    .bind(holder)
    .bind(epoch)
    .bind(now)
    .execute(&store.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Give the lease up (at a graceful stop) so a follower takes it at its next poll.
pub async fn release(store: &Store, name: &str, holder: &str, epoch: i64) -> Result<bool> {
    let _turn = store.first_turn().await?;
    let done =
        sqlx::query("UPDATE leader_lease SET expires_at = 0 WHERE name = $1 AND holder = $2 AND epoch = $3")
            .bind(name)
            .bind(holder)
            .bind(epoch)
            .execute(&store.pool)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// The fence, inside the caller's write transaction and before its writes: fails unless `holder`
/// still holds the lease under `epoch` at `now`. On PostgreSQL the row stays locked until the
/// transaction ends, so an acquisition waits for it and then sees the writes.
pub async fn fence(conn: &mut Conn, name: &str, holder: &str, epoch: i64, now: i64) -> Result<()> {
    let done = sqlx::query(
        "UPDATE leader_lease SET expires_at = expires_at WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > $4",
    )
    .bind(name)
    .bind(holder)
    .bind(epoch)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(Error::internal(format!(
            "fenced: `{holder}` no longer holds the {name} lease under epoch {epoch}; nothing written"
        )))
    }
}
