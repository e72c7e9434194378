//! The player: drives the pure [`queue::Queue`] (priority, preemption, quiet hours, missed items,
//! exactly-once reports) with real time and real I/O. It arms a timer for the queue's next wake-up
//! (re-armed whenever the manifest changes), prepares items a little before their start (media
//! verified in the cache, fetched if needed), starts plays on the sink (first packet decoded before
//! the start instant), passes pause / resume / stop to them, and writes what the queue reports:
//! proofs of play into the outbox, the item playing now into the store and the live status.
//!
//! A live relay (`live_start`) is a job like an item, at the live rank, whose input is the HTTP
//! stream instead of cached files: item id = session id, no schedule, no media, reported with
//! the session's priority (`live_start.priority`: an `emergency` session ranks above emergency
//! items). It cannot be paused: whatever preempts it (an emergency) interrupts it. It ends on `live_stop` or at the end of the
//! stream (`played`), on a network or decode error (`failed`), when a newer `live_start`
//! replaces it, or on `stop` (`interrupted`).
//!
//! A relay item (`ManifestItem::relay`, tiếp sóng) is a scheduled item whose input is an external
//! stream until its window's end (`sink::RelayInput`: reconnects, ICY metadata), followed by its
//! media as the fallback; like a live stream it is interrupted, not paused, when preempted.

pub mod fetch;
pub mod queue;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nguon_protocol::{
    Command, EventBody, Manifest, ManifestItem, MediaRef, OnPreempt, PlayOutcome, Priority, ProofOfPlay,
    QuietHours,
};
use tokio::sync::{Notify, mpsc, watch};
use uuid::Uuid;

use crate::amp::{Amp, Relay};
use crate::cache::Cache;
use crate::chan::{self, BoxReceiver, BoxSender};
use crate::clock::Clock;
use crate::report::{AgentEventKind, Reporter};
use crate::sink::{self, Ctrl, Input, PlayEvent, PlayHandle, PlayJob, RelayInput, Sink, StreamInput};
use crate::status::LiveStatus;
use crate::store::{PlayingMarker, Store};

use queue::{Action, Queue, Rules};

/// What the link hands to the player.
#[derive(Debug, Clone)]
pub enum PlayerInput {
    /// A verified, newly applied manifest.
    Manifest(Manifest),
    /// A verified command.
    Command {
        /// Envelope id.
        message_id: Uuid,
        /// The command.
        command: Command,
    },
}

/// Everything the player needs.
#[derive(Debug, Clone)]
pub struct PlayerCtx {
    /// Device clock.
    pub clock: Clock,
    /// Output.
    pub sink: Sink,
    /// The output's channels and fixed rate.
    pub format: sink::Format,
    /// Media cache.
    pub cache: Arc<Cache>,
    /// Reports.
    pub reporter: Arc<Reporter>,
    /// Store.
    pub store: Arc<Store>,
    /// Shared status.
    pub status: Arc<Mutex<LiveStatus>>,
    /// Telemetry-now signal (the `sync` command).
    pub sync: Arc<Notify>,
    /// Configured time zone.
    pub tz: chrono_tz::Tz,
    /// Configured quiet hours.
    pub quiet: Option<QuietHours>,
    /// How late a scheduled item may still start.
    pub grace: chrono::Duration,
    /// How long before its start an item is prepared.
    pub lead: Duration,
    /// The longest window over which a later item's media is fetched (`media.prefetch_spread_secs`).
    pub prefetch_spread: Duration,
    /// Silence threshold, dBFS (`audio.silence_dbfs`).
    pub silence_dbfs: f32,
    /// The amplifier relay (`[amplifier]`), if any.
    pub amp: Option<Arc<Relay>>,
}

/// What a play needs from the driver: its inputs and, for the null sink, its duration.
#[derive(Debug, Clone)]
struct Media {
    inputs: Vec<Input>,
    duration: Duration,
}

/// Media made ready for an item (or why not).
#[derive(Debug)]
struct Prepared {
    item: ManifestItem,
    adhoc: bool,
    result: Result<(Vec<PathBuf>, Duration), String>,
}

/// The player of one agent.
pub struct Player {
    ctx: PlayerCtx,
    queue: Queue<Media>,
    media: HashMap<String, MediaRef>,
    plays: HashMap<u64, PlayHandle>,
    prep_tx: BoxSender<Prepared>,
    prep_rx: BoxReceiver<Prepared>,
    play_tx: BoxSender<PlayEvent>,
    play_rx: BoxReceiver<PlayEvent>,
    /// Catch-up messages acked since the start.
    acked: HashSet<Uuid>,
    /// The amplifier relay, while running.
    amp: Option<Amp>,
    /// The task fetching the last manifest's media ([`fetch::run`]); a new manifest replaces it.
    prefetch: Option<tokio::task::AbortHandle>,
}

/// How long the media of a play-now command without a window is tried for (backoff between
/// attempts) before it is reported `failed`.
const ADHOC_FETCH_FOR: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// An emergency or priority message (a play-now command, id = the command id) with a validity
/// window: the server tracks it per device.
fn is_tracked_message(item: &ManifestItem) -> bool {
    // A play-now with a window, or a live session (no media: the console lists who is live).
    item.schedule_id.is_empty() && (item.play_until.is_some() || item.media.is_empty())
}

impl Player {
    /// A player (not yet running).
    pub fn new(ctx: PlayerCtx) -> Self {
        let (prep_tx, prep_rx) = chan::unbounded();
        let (play_tx, play_rx) = chan::unbounded();
        let queue = Queue::new(Rules {
            grace: ctx.grace,
            lead: chrono::Duration::from_std(ctx.lead).unwrap_or_default(),
            quiet: ctx.quiet.clone(),
            tz: ctx.tz,
            silence_dbfs: ctx.silence_dbfs,
        });
        Self {
            ctx,
            queue,
            media: HashMap::new(),
            plays: HashMap::new(),
            prep_tx,
            prep_rx,
            play_tx,
            play_rx,
            acked: HashSet::new(),
            amp: None,
            prefetch: None,
        }
    }

    /// Run until `shutdown` turns true. The work done per input is boxed (`Box::pin`): the task
    /// of an idle agent then holds only the loop's state, not the largest of those futures, for
    /// one allocation per input (issue 14: memory per idle agent).
    pub async fn run(
        mut self,
        mut inputs: mpsc::Receiver<Box<PlayerInput>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        // An item that was playing when the agent died is reported interrupted, once.
        let marker = self.ctx.store.read(|s| s.playing.clone());
        if let Some(p) = marker
            && !self.ctx.store.is_handled(&p.item_id)
        {
            let pop = ProofOfPlay {
                item_id: p.item_id,
                schedule_id: p.schedule_id,
                occurrence_at: p.occurrence_at,
                sha256: p.sha256,
                priority: p.priority,
                started_at: Some(p.started_at),
                ended_at: None,
                outcome: PlayOutcome::Interrupted,
                reason: Some("the agent stopped during play (restart or power loss)".into()),
                max_rms_dbfs: None,
                silent: false,
                relay: None,
            };
            Box::pin(self.report(pop)).await;
        }
        if let Some(m) = self.ctx.store.read(|s| s.manifest.clone()) {
            let actions = Box::pin(self.apply_manifest(m.manifest)).await;
            Box::pin(self.perform(actions)).await;
        }
        self.amp = self.ctx.amp.clone().map(Amp::start);
        // Without the link (its task ended) the player plays on what it has until the shutdown:
        // it ends only when told to, so a dead link is reported as the link's end, not as ours.
        let mut linked = true;
        loop {
            let amp_wake = self.update_amp();
            let wake = [self.queue.next_wake(), amp_wake]
                .into_iter()
                .flatten()
                .min()
                .map(|t| self.ctx.clock.instant_at(t));
            let actions = tokio::select! {
                _ = shutdown.changed() => break,
                i = inputs.recv(), if linked => match i.map(|i| *i) {
                    Some(PlayerInput::Manifest(m)) => Box::pin(self.apply_manifest(m)).await,
                    Some(PlayerInput::Command { message_id, command }) => Box::pin(self.command(message_id, command)).await,
                    None => {
                        tracing::warn!("the link is gone; playing on what is scheduled until the shutdown");
                        linked = false;
                        Vec::new()
                    }
                },
                Some(p) = self.prep_rx.recv() => self.on_prepared(*p),
                Some(e) = self.play_rx.recv() => self.on_play_event(*e),
                _ = sleep_until_opt(wake) => self.queue.tick(self.ctx.clock.now()),
            };
            // The status first: a report's observers may read it.
            self.ctx.status.lock().expect("status").now_playing = self.queue.now_playing();
            Box::pin(self.perform(actions)).await;
        }
        for play in self.plays.values() {
            play.send(Ctrl::Stop);
        }
        if let Some(f) = self.prefetch.take() {
            f.abort();
        }
        if let Some(amp) = self.amp.take() {
            amp.close().await;
        }
    }

    /// Switch the amplifier relay for what the queue holds now; when to look again.
    fn update_amp(&mut self) -> Option<chrono::DateTime<chrono::Utc>> {
        let amp = self.amp.as_mut()?;
        let now = self.ctx.clock.now();
        let (switch, wake) = amp.state.step(self.queue.next_sound(now), now);
        amp.switch(switch);
        wake
    }

    /// Carry out what the queue decided.
    async fn perform(&mut self, actions: Vec<Action<Media>>) {
        for a in actions {
            match a {
                Action::Prepare { item, adhoc } => self.prepare(item, adhoc),
                Action::Arm {
                    token,
                    item,
                    payload,
                    at,
                } => {
                    // At its instant; one that starts at once waits for the amplifier's pre-roll.
                    let start = match (at, self.amp.as_mut()) {
                        (Some(t), _) => self.ctx.clock.instant_at(t),
                        (None, Some(amp)) => {
                            let (switch, ready) = amp.state.ready_at(self.ctx.clock.now());
                            amp.switch(switch);
                            self.ctx.clock.instant_at(ready)
                        }
                        (None, None) => Instant::now(),
                    };
                    let until = item.relay.as_ref().map(|r| self.ctx.clock.instant_at(r.until));
                    let job = PlayJob {
                        token,
                        gain: item.volume.min(100) as f32 / 100.0,
                        until,
                        item,
                        inputs: payload.inputs,
                        duration: payload.duration,
                        start,
                        format: self.ctx.format,
                    };
                    let handle = sink::spawn(&self.ctx.sink, job, self.ctx.clock, self.play_tx.clone());
                    self.plays.insert(token, handle);
                }
                Action::Pause(t) => self.control(t, Ctrl::Pause, "paused for a higher priority"),
                Action::Resume(t) => self.control(t, Ctrl::Resume, "resumed"),
                Action::Stop(t) => self.control(t, Ctrl::Stop, "stopping"),
                Action::Finish(t) => self.control(t, Ctrl::Finish, "finishing"),
                Action::Playing { item, at } => {
                    self.ctx.reporter.observe(AgentEventKind::FirstSample {
                        item_id: item.id.clone(),
                        at,
                    });
                    if is_tracked_message(&item) {
                        // Telemetry now: its `now_playing` is how the server sees it playing.
                        self.ctx.sync.notify_one();
                    }
                    let marker = PlayingMarker {
                        sha256: item.media.first().cloned().unwrap_or_default(),
                        item_id: item.id,
                        schedule_id: item.schedule_id,
                        occurrence_at: item.starts_at,
                        priority: item.priority,
                        started_at: at,
                    };
                    if let Err(e) = self.ctx.store.modify(|s| s.playing = Some(marker)).await {
                        tracing::error!(error = %e, "cannot store playing marker");
                    }
                }
                Action::Report(pop) => self.report(pop).await,
            }
        }
    }

    fn control(&self, token: u64, ctrl: Ctrl, what: &str) {
        if let Some(item) = self.queue.item(token) {
            tracing::info!(item = %item.id, "{what}");
        }
        if let Some(play) = self.plays.get(&token) {
            play.send(ctrl);
        }
    }

    /// Apply a manifest: the queue takes its items (the returned actions stop what it cancels),
    /// each emergency or priority message it carries for catch-up is acked once by its id (the
    /// server counts the device as reached), and its media is prefetched.
    async fn apply_manifest(&mut self, m: Manifest) -> Vec<Action<Media>> {
        self.media = m.media.iter().map(|r| (r.sha256.clone(), r.clone())).collect();
        {
            let mut st = self.ctx.status.lock().expect("status");
            st.manifest_version = Some(m.version);
            if let Some(v) = m.settings.volume {
                st.volume = v;
            }
        }
        let store = self.ctx.store.clone();
        let actions = self.queue.manifest(&m, |id| store.is_handled(id));
        let catch_up: Vec<Uuid> = m
            .items
            .iter()
            .filter(|i| is_tracked_message(i) && !store.is_handled(&i.id))
            .filter_map(|i| Uuid::parse_str(&i.id).ok())
            .filter(|id| self.acked.insert(*id))
            .collect();
        for id in catch_up {
            let ack = EventBody::Ack {
                message_id: id,
                ok: true,
                manifest_version: Some(m.version),
                reason: None,
            };
            if let Err(e) = self.ctx.reporter.report(ack).await {
                tracing::error!(error = %e, "cannot record an ack");
            }
        }
        tracing::info!(
            version = m.version,
            pending = self.queue.pending().len(),
            "manifest applied"
        );
        // Fetch what the pending items need, spread over time, and trim the cache without
        // touching it.
        let plan = fetch::plan(
            self.queue.pending(),
            &self.media,
            self.ctx.clock.now(),
            self.ctx.lead,
            self.ctx.prefetch_spread,
            fetch::uniform,
        );
        for f in &plan {
            self.ctx.reporter.observe(AgentEventKind::MediaFetchPlanned {
                sha256: f.media.sha256.clone(),
                start: f.at,
                delay: f.delay,
                urgent: f.urgent,
            });
        }
        let mut protect: HashSet<String> = m.items.iter().flat_map(|i| i.media.clone()).collect();
        protect.extend(self.queue.pending().iter().flat_map(|i| i.media.iter().cloned()));
        protect.extend(self.queue.media_in_use());
        if let Some(old) = self.prefetch.take() {
            old.abort();
        }
        let task = tokio::spawn(fetch::run(plan, self.ctx.cache.clone(), self.ctx.clock, protect));
        self.prefetch = Some(task.abort_handle());
        actions
    }

    async fn command(&mut self, _message_id: Uuid, command: Command) -> Vec<Action<Media>> {
        let now = self.ctx.clock.now();
        match command {
            Command::PlayNow { item, media } => {
                for r in media {
                    self.media.insert(r.sha256.clone(), r);
                }
                let handled = self.ctx.store.is_handled(&item.id);
                let store = self.ctx.store.clone();
                self.queue.add_replays(&item, |id| store.is_handled(id));
                self.queue.play_now(item, handled, now)
            }
            Command::Stop { item_id } => self.queue.stop(item_id.as_deref()),
            Command::Volume { level } => {
                let level = level.min(100);
                self.ctx.status.lock().expect("status").volume = level;
                if let Err(e) = self.ctx.store.modify(|s| s.volume = Some(level)).await {
                    tracing::error!(error = %e, "cannot store volume");
                }
                Vec::new()
            }
            Command::Sync => {
                self.ctx.sync.notify_one();
                Vec::new()
            }
            Command::LiveStart {
                url,
                session_id,
                priority,
            } => self.live_start(url, session_id, priority),
            Command::LiveStop { session_id } => {
                let actions = self.queue.live_stop(&session_id);
                if actions.is_empty() {
                    tracing::info!(session = %session_id, "live_stop for a session that is not running; nothing to do");
                }
                actions
            }
        }
    }

    /// Relay a live stream at the live rank of its priority; an earlier live session is replaced.
    fn live_start(&mut self, url: String, session_id: String, priority: Priority) -> Vec<Action<Media>> {
        if session_id.is_empty() {
            tracing::warn!("live_start without a session id; ignored");
            return Vec::new();
        }
        let url = self.ctx.cache.resolve(&url);
        let volume = self.ctx.status.lock().expect("status").volume.min(100);
        let now = self.ctx.clock.now();
        let item = ManifestItem {
            id: session_id,
            schedule_id: String::new(),
            title: format!("live {url}"),
            starts_at: now,
            // A live session is never `normal` (the server refuses it): such a one ranks as `priority`.
            priority: priority.max(Priority::Priority),
            volume,
            media: Vec::new(),
            repeat: 1,
            on_preempt: OnPreempt::Interrupt,
            play_until: None,
            repetition: None,
            relay: None,
        };
        let handled = self.ctx.store.is_handled(&item.id);
        let media = Media {
            inputs: vec![Input::Stream(StreamInput::new(
                url.clone(),
                self.ctx.cache.http().clone(),
            ))],
            duration: Duration::MAX,
        };
        let session = item.id.clone();
        let actions = self.queue.live_start(item, media, handled, now);
        if actions.is_empty() {
            tracing::info!(%session, "live session already started; ignored");
        } else {
            tracing::info!(%session, %url, "live relay requested");
        }
        actions
    }

    async fn report(&self, pop: ProofOfPlay) {
        tracing::info!(item = %pop.item_id, outcome = pop.outcome.as_str(), reason = pop.reason.as_deref().unwrap_or(""), "proof of play");
        if let Err(e) = self.ctx.reporter.play(pop).await {
            tracing::error!(error = %e, "cannot record proof of play");
        }
    }

    /// Make an item's media ready in the cache (fetched if absent or damaged), off the loop. A
    /// transient failure is tried again while the item can still play: a scheduled item until its
    /// grace period ends, a message until its window ends, a play-now without a window for
    /// [`ADHOC_FETCH_FOR`].
    fn prepare(&self, item: ManifestItem, adhoc: bool) {
        let now = self.ctx.clock.now();
        let until = match (adhoc, item.play_until) {
            (_, Some(end)) => end.max(item.starts_at + self.ctx.grace),
            (false, None) => item.starts_at + self.ctx.grace,
            (true, None) => now + ADHOC_FETCH_FOR,
        };
        let until = self.ctx.clock.instant_at(until);
        let refs: Result<Vec<MediaRef>, String> = item
            .media
            .iter()
            .map(|s| {
                self.media
                    .get(s)
                    .cloned()
                    .ok_or_else(|| format!("media {s} is not listed in the manifest"))
            })
            .collect();
        let cache = self.ctx.cache.clone();
        let tx = self.prep_tx.clone();
        tokio::spawn(async move {
            let result = async {
                let refs = refs?;
                let mut files = Vec::new();
                let mut ms = 0u64;
                for r in &refs {
                    files.push(cache.ensure_until(r, until).await.map_err(|e| e.to_string())?);
                    ms += r.duration_ms;
                }
                let repeat = item.repeat.max(1) as usize;
                let one = files.clone();
                for _ in 1..repeat {
                    files.extend(one.iter().cloned());
                }
                Ok((files, Duration::from_millis(ms * repeat as u64)))
            }
            .await;
            let _ = tx.send(Prepared { item, adhoc, result });
        });
    }

    fn on_prepared(&mut self, p: Prepared) -> Vec<Action<Media>> {
        let now = self.ctx.clock.now();
        let relay = p.item.relay.clone();
        let result = p.result.map(|(files, duration)| match relay {
            // A relay: its stream until the window's end, then (if it fails) the fallback.
            Some(r) => {
                let url = self.ctx.cache.resolve(&r.url);
                let input = RelayInput::new(
                    url,
                    self.ctx.cache.http().clone(),
                    self.ctx.clock.instant_at(r.until),
                    Duration::from_secs(u64::from(r.fallback_after_s.max(1))),
                );
                let mut inputs = vec![Input::Relay(input)];
                inputs.extend(files.into_iter().map(Input::File));
                let left = (r.until - now.max(p.item.starts_at)).to_std().unwrap_or_default();
                Media {
                    inputs,
                    duration: left,
                }
            }
            None => Media {
                inputs: files.into_iter().map(Input::File).collect(),
                duration,
            },
        });
        self.queue.prepared(p.item, p.adhoc, result, self.ctx.clock.now())
    }

    fn on_play_event(&mut self, e: PlayEvent) -> Vec<Action<Media>> {
        match e {
            PlayEvent::FirstSample { token, at } => self.queue.first_sample(token, at),
            PlayEvent::Ended { token, end } => {
                self.plays.remove(&token);
                self.queue.ended(token, &end, self.ctx.clock.now())
            }
        }
    }
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}
