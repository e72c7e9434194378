//! Reports: events into the durable outbox (then a nudge to the link to send them), and local
//! observations for an embedding program ([`crate::AgentEvent`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use nguon_protocol::{Event, EventBody, ProofOfPlay};
use tokio::sync::{Notify, broadcast};
use uuid::Uuid;

use crate::clock::Clock;
use crate::error::AgentError;
use crate::store::Store;

/// Something that happened inside an agent, for observers (tests, the fleet simulator).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentEvent {
    /// Device clock when it happened.
    pub at: DateTime<Utc>,
    /// What.
    pub kind: AgentEventKind,
}

/// The kinds of [`AgentEvent`].
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEventKind {
    /// The broker accepted the connection.
    Connected {
        /// Session counter of this connection.
        session: u64,
    },
    /// The broker acknowledged the subscriptions of this connection: from now on commands
    /// published to the device's and its areas' topics reach it.
    Subscribed {
        /// Session counter of this connection.
        session: u64,
    },
    /// The connection was lost (or could not be made).
    Disconnected {
        /// Why.
        reason: String,
    },
    /// A server message passed signature, expiry, audience and replay checks.
    MessageVerified {
        /// Envelope id.
        message_id: Uuid,
        /// Topic.
        topic: String,
    },
    /// A server message was refused.
    MessageRejected {
        /// Envelope id, when readable.
        message_id: Option<Uuid>,
        /// Topic.
        topic: String,
        /// Why.
        reason: String,
    },
    /// A manifest or command was acknowledged.
    Acked {
        /// Envelope id.
        message_id: Uuid,
        /// Applied or not.
        ok: bool,
    },
    /// The first sample of an item reached the output.
    FirstSample {
        /// Occurrence id.
        item_id: String,
        /// Wall time of the first sample (device clock).
        at: DateTime<Utc>,
    },
    /// An item ended (or was skipped, missed, failed).
    ItemEnded {
        /// Occurrence id.
        item_id: String,
        /// The outcome.
        outcome: nguon_protocol::PlayOutcome,
    },
    /// A manifest was applied and the fetch of one of its media files planned
    /// (`player::fetch`): at once, or spread over a window.
    MediaFetchPlanned {
        /// The file.
        sha256: String,
        /// When its fetch starts (device clock).
        start: DateTime<Utc>,
        /// How long after the manifest was applied that is (zero: at once).
        delay: std::time::Duration,
        /// Fetched at once (an emergency, a message with a window, an item prepared within 30 s).
        urgent: bool,
    },
    /// A media file is in the cache and verified.
    MediaReady {
        /// The file.
        sha256: String,
    },
    /// A media file failed download or verification.
    MediaError {
        /// The file.
        sha256: String,
        /// Why.
        reason: String,
    },
    /// The server's receipt named these events: they left the outbox.
    EventsDelivered {
        /// Their ids.
        ids: Vec<Uuid>,
    },
}

/// Writes events to the outbox and tells observers.
#[derive(Debug)]
pub struct Reporter {
    store: Arc<Store>,
    clock: Clock,
    flush: Arc<Notify>,
    observer: Option<broadcast::Sender<AgentEvent>>,
}

impl Reporter {
    /// A reporter over a store.
    pub fn new(store: Arc<Store>, clock: Clock, observer: Option<broadcast::Sender<AgentEvent>>) -> Self {
        Self {
            store,
            clock,
            flush: Arc::new(Notify::new()),
            observer,
        }
    }

    /// Notified whenever the outbox grows.
    pub fn flush_signal(&self) -> Arc<Notify> {
        self.flush.clone()
    }

    /// Tell observers.
    pub fn observe(&self, kind: AgentEventKind) {
        if let Some(o) = &self.observer {
            let _ = o.send(AgentEvent {
                at: self.clock.now(),
                kind,
            });
        }
    }

    fn event(&self, body: EventBody) -> Event {
        Event {
            id: Uuid::new_v4(),
            at: self.clock.now(),
            body,
        }
    }

    /// Record an event for the server.
    pub async fn report(&self, body: EventBody) -> Result<(), AgentError> {
        self.store.outbox_put(self.event(body)).await?;
        self.flush.notify_one();
        Ok(())
    }

    /// Record a proof of play (and the occurrence as handled), then tell observers.
    pub async fn play(&self, pop: ProofOfPlay) -> Result<(), AgentError> {
        let item_id = pop.item_id.clone();
        let outcome = pop.outcome;
        self.store.record_play(self.event(EventBody::Play(pop))).await?;
        self.flush.notify_one();
        self.observe(AgentEventKind::ItemEnded { item_id, outcome });
        Ok(())
    }
}
