//! The command sender: publishes the command outbox. `services::commands` records each command
//! unpublished and wakes it ([`Wake::commands`]); on that wake (or every [`TICK`]) it fails the
//! commands that expired unpublished (`store::commands::fail_expired`: never sent late), then
//! takes the due ones in issue order and, for each: gives it its sequence number once (stored
//! before the first publish, so a retry sends the same message and a device acts on it once),
//! signs it (`mqtt::outbound::command`), publishes it at QoS 1 with `Link::publish_confirmed` and
//! marks it published once the broker acked it (a CAP alert's command, target kind `alert`, goes
//! to each of its target devices' topics). While the link is down it waits for it; a publish
//! that is not confirmed (the link dropped, or no ack within `mqtt_ack_timeout_ms`) stops the
//! round (later commands are not sent before an earlier one) and the round is retried with a
//! backoff, sending the same message again.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::metrics::Metrics;
use crate::mqtt::{Link, Signer, outbound};
use crate::store::outbox::Wake;
use crate::store::{Store, commands, now_ms};
use crate::workers::Context;

/// How often the outbox is read without a wake (retries, expiry).
pub const TICK: Duration = Duration::from_secs(2);
/// Most commands sent in one round.
const ROUND: i64 = 500;
/// Longest wait between retries of a failing round.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What the command sender needs.
#[derive(Clone)]
pub struct Sender {
    /// The database.
    pub store: Store,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The server's MQTT connection.
    pub link: Link,
    /// The signing key and sequencer.
    pub signer: Signer,
    /// Woken by the command use case after a commit.
    pub wake: Wake,
}

impl From<&Context> for Sender {
    fn from(c: &Context) -> Sender {
        Sender {
            store: c.store.clone(),
            metrics: c.metrics.clone(),
            link: c.link.clone(),
            signer: c.signer.clone(),
            wake: c.wake.clone(),
        }
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Commands published and marked.
    pub published: usize,
    /// Commands failed (expired unpublished, or unreadable).
    pub failed: u64,
}

impl Sender {
    /// Fail the expired commands, then publish the due ones in issue order; stops at the first
    /// publish that fails (the error), leaving it and the later ones for the next round.
    pub async fn round(&self) -> Result<Round> {
        let mut round = Round {
            failed: commands::fail_expired(&self.store, now_ms()).await?,
            ..Round::default()
        };
        if round.failed > 0 {
            tracing::warn!(
                commands = round.failed,
                "commands expired before they could be published; they are not sent"
            );
        }
        for mut c in commands::pending(&self.store, now_ms(), ROUND).await? {
            if c.seq <= 0 {
                c.seq = self.signer.sequencer().next().min(i64::MAX as u64) as i64;
                commands::set_seq(&self.store, &c.id, c.seq).await?;
            }
            let messages = if c.target_kind == "alert" {
                // A CAP alert: the same message to each target device's topic.
                let devices = crate::store::cap::command_device_ids(&self.store, &c.id).await?;
                devices
                    .iter()
                    .map(|d| outbound::alert_command(&self.signer, &c, d))
                    .collect::<Result<Vec<_>>>()
            } else {
                outbound::command(&self.signer, &c).map(|m| vec![m])
            };
            let messages = match messages {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(command = %c.id, error = %e, "unreadable command; it is not sent");
                    commands::mark_failed(&self.store, &c.id, now_ms()).await?;
                    round.failed += 1;
                    continue;
                }
            };
            for m in messages {
                self.link.publish_confirmed(&m.topic, m.bytes, m.retain).await?;
            }
            commands::mark_published(&self.store, &c.id, now_ms()).await?;
            Metrics::inc(&self.metrics.commands_published);
            round.published += 1;
        }
        Ok(round)
    }

    /// Run until cancelled.
    pub async fn run(self, cancel: CancellationToken) -> Result<()> {
        let mut up = self.link.connected();
        let mut backoff = Duration::from_millis(200);
        // The first tick is immediate: leftovers of a previous run go out at start.
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = self.wake.commands_woken() => {}
                _ = tick.tick() => {}
                r = up.changed() => if r.is_err() { return Ok(()) },
            }
            if !*up.borrow_and_update() {
                // Nothing is handed to a link that is down: the outbox keeps the commands.
                match commands::fail_expired(&self.store, now_ms()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(
                        commands = n,
                        "commands expired while the MQTT link was down; they are not sent"
                    ),
                    Err(e) => tracing::warn!(error = %e, "cannot expire commands"),
                }
                continue;
            }
            match self.round().await {
                Ok(r) => {
                    backoff = Duration::from_millis(200);
                    if r.published > 0 {
                        tracing::debug!(published = r.published, "commands published");
                    }
                    if r.published as i64 >= ROUND {
                        self.wake.commands(); // more are waiting
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64,
                        "command round failed; the outbox keeps the commands, retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    // Retry without waiting for a wake.
                    self.wake.commands();
                }
            }
        }
    }
}
