//! Wakes across instances on PostgreSQL (issue 14): a request that commits outbox rows or
//! commands on a follower wakes its own (idle) workers through `outbox::Wake`; this relay sends the
//! wake to every instance with `NOTIFY nguon_wake` and hands the ones from other instances to the
//! local workers (the leader's dispatcher and command sender), so a change or an emergency
//! issued through any instance goes out at once, not at the leader's next tick. A lost
//! notification costs only that tick (the workers poll anyway); the listener reconnects by itself.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::store::Store;
use crate::store::outbox::Wake;

/// The PostgreSQL notification channel.
pub const CHANNEL: &str = "nguon_wake";

/// Relay until `cancel`: `outgoing` (from `Wake::attach_relay`) to the other instances, theirs to
/// `wake`. `url` is the PostgreSQL URL (the listener holds a connection of its own).
pub async fn run(
    store: Store,
    url: String,
    wake: Wake,
    mut outgoing: UnboundedReceiver<&'static str>,
    cancel: CancellationToken,
) -> Result<()> {
    let me = uuid::Uuid::new_v4().simple().to_string();
    loop {
        let listener = async {
            let mut l = PgListener::connect(&url).await?;
            l.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        };
        let mut listener = match listener.await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "wake relay: cannot listen; retrying in 1 s");
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                kind = outgoing.recv() => {
                    let Some(kind) = kind else { return Ok(()) };
                    let r = sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(CHANNEL)
                        .bind(format!("{kind} {me}"))
                        .execute(&store.pool)
                        .await;
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "wake relay: cannot notify the other instances");
                    }
                }
                n = listener.recv() => match n {
                    Ok(n) => {
                        if let Some((kind, from)) = n.payload().split_once(' ')
                            && from != me
                        {
                            wake.local(kind);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "wake relay: listener lost; reconnecting");
                        break;
                    }
                },
            }
        }
    }
}
