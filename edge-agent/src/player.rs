//! The player: arms a timer for the next scheduled start (re-armed whenever the manifest
//! changes), prepares items a little before their start (media verified in the cache, first
//! packet decoded), and runs a priority queue after Circular 39 plus live:
//! emergency > live > priority > normal. A higher item preempts a lower one, which is paused and
//! resumed afterwards or stopped and reported interrupted (per item, `on_preempt`); equal
//! priorities queue in start order; quiet hours suppress only `normal` items. Every occurrence
//! ends in exactly one proof of play.
//!
//! A live relay (`live_start`) is a job like an item, at the live rank, whose input is the HTTP
//! stream instead of cached files: item id = session id, no schedule, no media, reported with
//! priority `priority` (the protocol has no live priority). It cannot be paused: whatever
//! preempts it (an emergency) interrupts it. It ends on `live_stop` or at the end of the
//! stream (`played`), on a network or decode error (`failed`), when a newer `live_start`
//! replaces it, or on `stop` (`interrupted`).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use nguon_protocol::{
    Command, Manifest, ManifestItem, MediaRef, NowPlaying, OnPreempt, PlayOutcome, Priority, ProofOfPlay,
    QuietHours,
};
use tokio::sync::{Notify, mpsc, watch};
use uuid::Uuid;

use crate::cache::Cache;
use crate::clock::Clock;
use crate::report::{AgentEventKind, Reporter};
use crate::sink::{self, Ctrl, Input, PlayEvent, PlayHandle, PlayJob, Sink, StreamInput};
use crate::status::LiveStatus;
use crate::store::{PlayingMarker, Store};

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
}

#[derive(Debug, Clone)]
struct Job {
    item: ManifestItem,
    inputs: Vec<Input>,
    duration: Duration,
    adhoc: bool,
    /// A live relay session (rank [`Priority::LIVE_RANK`]).
    live: bool,
}

impl Job {
    fn rank(&self) -> u8 {
        if self.live {
            Priority::LIVE_RANK
        } else {
            self.item.priority.rank()
        }
    }

    /// How reports name what preempted another item.
    fn label(&self) -> String {
        if self.live {
            format!("live session {}", self.item.id)
        } else {
            format!("{} item {}", self.item.priority.as_str(), self.item.id)
        }
    }
}

#[derive(Debug)]
struct Run {
    job: Job,
    handle: PlayHandle,
    start: Instant,
    first: Option<DateTime<Utc>>,
    preempted: bool,
    stop_reason: Option<String>,
    requeue: bool,
}

#[derive(Debug)]
enum Waiting {
    Fresh(Job),
    Paused(u64),
}

#[derive(Debug)]
struct Prepared {
    item: ManifestItem,
    adhoc: bool,
    result: Result<(Vec<PathBuf>, Duration), String>,
}

/// The player of one agent.
pub struct Player {
    ctx: PlayerCtx,
    pending: Vec<ManifestItem>,
    media: HashMap<String, MediaRef>,
    quiet: Option<QuietHours>,
    tz: chrono_tz::Tz,
    runs: HashMap<u64, Run>,
    current: Option<u64>,
    armed: Vec<u64>,
    waiting: Vec<Waiting>,
    preparing: HashSet<String>,
    next_token: u64,
    prep_tx: mpsc::UnboundedSender<Prepared>,
    prep_rx: mpsc::UnboundedReceiver<Prepared>,
    play_tx: mpsc::UnboundedSender<PlayEvent>,
    play_rx: mpsc::UnboundedReceiver<PlayEvent>,
}

impl Player {
    /// A player (not yet running).
    pub fn new(ctx: PlayerCtx) -> Self {
        let (prep_tx, prep_rx) = mpsc::unbounded_channel();
        let (play_tx, play_rx) = mpsc::unbounded_channel();
        Self {
            quiet: ctx.quiet.clone(),
            tz: ctx.tz,
            ctx,
            pending: Vec::new(),
            media: HashMap::new(),
            runs: HashMap::new(),
            current: None,
            armed: Vec::new(),
            waiting: Vec::new(),
            preparing: HashSet::new(),
            next_token: 1,
            prep_tx,
            prep_rx,
            play_tx,
            play_rx,
        }
    }

    /// Run until `shutdown` turns true.
    pub async fn run(mut self, mut inputs: mpsc::Receiver<PlayerInput>, mut shutdown: watch::Receiver<bool>) {
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
            };
            self.report(pop).await;
        }
        if let Some(m) = self.ctx.store.read(|s| s.manifest.clone()) {
            self.apply_manifest(m.manifest);
        }
        loop {
            let wake = self.next_wake();
            tokio::select! {
                _ = shutdown.changed() => break,
                i = inputs.recv() => match i {
                    Some(PlayerInput::Manifest(m)) => self.apply_manifest(m),
                    Some(PlayerInput::Command { message_id, command }) => self.command(message_id, command).await,
                    None => break,
                },
                Some(p) = self.prep_rx.recv() => self.on_prepared(p).await,
                Some(e) = self.play_rx.recv() => self.on_play_event(e).await,
                _ = sleep_until_opt(wake) => self.on_timer().await,
            }
        }
        for run in self.runs.values() {
            run.handle.send(Ctrl::Stop);
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        let mut w = self.pending.first().map(|i| {
            let lead = chrono::Duration::from_std(self.ctx.lead).unwrap_or_default();
            self.ctx.clock.instant_at(i.starts_at - lead)
        });
        for t in &self.armed {
            if let Some(r) = self.runs.get(t) {
                w = Some(w.map_or(r.start, |w: Instant| w.min(r.start)));
            }
        }
        w
    }

    fn active_ids(&self) -> HashSet<String> {
        let mut s = self.preparing.clone();
        for r in self.runs.values() {
            s.insert(r.job.item.id.clone());
        }
        for w in &self.waiting {
            if let Waiting::Fresh(j) = w {
                s.insert(j.item.id.clone());
            }
        }
        s
    }

    fn apply_manifest(&mut self, m: Manifest) {
        self.media = m.media.iter().map(|r| (r.sha256.clone(), r.clone())).collect();
        if let Some(q) = &m.settings.quiet_hours {
            self.quiet = Some(q.clone());
        }
        if let Some(tz) = m.settings.time_zone.as_deref().and_then(|t| t.parse().ok()) {
            self.tz = tz;
        }
        {
            let mut st = self.ctx.status.lock().expect("status");
            st.manifest_version = Some(m.version);
            if let Some(v) = m.settings.volume {
                st.volume = v;
            }
        }
        let active = self.active_ids();
        let store = &self.ctx.store;
        self.pending = m
            .items
            .iter()
            .filter(|i| !active.contains(&i.id) && !store.is_handled(&i.id))
            .cloned()
            .collect();
        self.pending.sort_by_key(|i| i.starts_at);
        tracing::info!(
            version = m.version,
            pending = self.pending.len(),
            "manifest applied"
        );
        // Fetch what the window needs now, then trim the cache without touching it.
        let needed: Vec<MediaRef> = {
            let mut seen = HashSet::new();
            self.pending
                .iter()
                .flat_map(|i| i.media.iter())
                .filter(|s| seen.insert((*s).clone()))
                .filter_map(|s| self.media.get(s).cloned())
                .collect()
        };
        let mut protect: HashSet<String> = m.items.iter().flat_map(|i| i.media.clone()).collect();
        for r in self.runs.values() {
            protect.extend(r.job.item.media.iter().cloned());
        }
        let cache = self.ctx.cache.clone();
        tokio::spawn(async move {
            for r in needed {
                if let Err(e) = cache.ensure(&r).await {
                    tracing::warn!(error = %e, "prefetch failed");
                }
            }
            cache.evict(&protect);
        });
    }

    async fn command(&mut self, _message_id: Uuid, command: Command) {
        match command {
            Command::PlayNow { item, media } => {
                for r in media {
                    self.media.insert(r.sha256.clone(), r);
                }
                self.due(item, true).await;
            }
            Command::Stop { item_id } => {
                let hit = |id: &str| item_id.as_deref().is_none_or(|x| x == id);
                for run in self.runs.values_mut() {
                    if hit(&run.job.item.id) && !run.requeue {
                        run.stop_reason = Some("stopped by command".into());
                        run.handle.send(Ctrl::Stop);
                    }
                }
                let mut dropped = Vec::new();
                self.waiting.retain(|w| match w {
                    Waiting::Fresh(j) if hit(&j.item.id) => {
                        dropped.push(j.item.clone());
                        false
                    }
                    _ => true,
                });
                for item in dropped {
                    let pop = self.pop(
                        &item,
                        None,
                        None,
                        PlayOutcome::Interrupted,
                        Some("stopped by command before it started".into()),
                    );
                    self.report(pop).await;
                }
            }
            Command::Volume { level } => {
                let level = level.min(100);
                self.ctx.status.lock().expect("status").volume = level;
                if let Err(e) = self.ctx.store.modify(|s| s.volume = Some(level)).await {
                    tracing::error!(error = %e, "cannot store volume");
                }
            }
            Command::Sync => self.ctx.sync.notify_one(),
            Command::LiveStart { url, session_id } => self.live_start(url, session_id).await,
            Command::LiveStop { session_id } => self.live_stop(&session_id).await,
        }
    }

    /// Start relaying a live stream at the live rank; an earlier live session is replaced.
    async fn live_start(&mut self, url: String, session_id: String) {
        if session_id.is_empty() {
            tracing::warn!("live_start without a session id; ignored");
            return;
        }
        if self.ctx.store.is_handled(&session_id) || self.active_ids().contains(&session_id) {
            tracing::info!(session = %session_id, "live session already started; ignored");
            return;
        }
        let reason = format!("replaced by live session {session_id}");
        self.end_live(|_| true, &reason, false).await;
        let url = self.ctx.cache.resolve(&url);
        let volume = self.ctx.status.lock().expect("status").volume.min(100);
        let item = ManifestItem {
            id: session_id,
            schedule_id: String::new(),
            title: format!("live {url}"),
            starts_at: self.ctx.clock.now(),
            priority: Priority::Priority,
            volume,
            media: Vec::new(),
            repeat: 1,
            on_preempt: OnPreempt::Interrupt,
        };
        tracing::info!(session = %item.id, %url, "live relay requested");
        let input = Input::Stream(StreamInput::new(url, self.ctx.cache.http().clone()));
        self.offer(Job {
            item,
            inputs: vec![input],
            duration: Duration::MAX,
            adhoc: true,
            live: true,
        });
    }

    /// End the live session `session_id` (reported `played`); one that has not started yet is
    /// dropped and reported `interrupted`.
    async fn live_stop(&mut self, session_id: &str) {
        if !self
            .end_live(
                |id| id == session_id,
                "stopped by live_stop before its first sample",
                true,
            )
            .await
        {
            tracing::info!(session = %session_id, "live_stop for a session that is not running; nothing to do");
        }
    }

    /// Stop the live sessions whose id matches: running ones are interrupted with `reason` (with
    /// `as_stop` they end as a complete play, `reason` only applying if they had not started),
    /// waiting ones are dropped and reported interrupted. Whether any matched.
    async fn end_live(&mut self, matches: impl Fn(&str) -> bool, reason: &str, as_stop: bool) -> bool {
        let mut hit = false;
        for run in self.runs.values_mut() {
            if run.job.live && !run.requeue && matches(&run.job.item.id) {
                hit = true;
                run.stop_reason = Some(reason.to_string());
                run.handle.send(if as_stop { Ctrl::Finish } else { Ctrl::Stop });
            }
        }
        let mut dropped = Vec::new();
        self.waiting.retain(|w| match w {
            Waiting::Fresh(j) if j.live && matches(&j.item.id) => {
                dropped.push(j.item.clone());
                false
            }
            _ => true,
        });
        for item in dropped {
            hit = true;
            let pop = self.pop(
                &item,
                None,
                None,
                PlayOutcome::Interrupted,
                Some(reason.to_string()),
            );
            self.report(pop).await;
        }
        hit
    }

    async fn on_timer(&mut self) {
        let lead = chrono::Duration::from_std(self.ctx.lead).unwrap_or_default();
        let now = self.ctx.clock.now();
        while self.pending.first().is_some_and(|i| i.starts_at - lead <= now) {
            let item = self.pending.remove(0);
            self.due(item, false).await;
        }
        let now_i = Instant::now();
        let ready: Vec<u64> = self
            .armed
            .iter()
            .copied()
            .filter(|t| self.runs.get(t).is_some_and(|r| r.start <= now_i))
            .collect();
        for t in ready {
            self.promote(t);
        }
    }

    fn in_quiet_hours(&self, t: DateTime<Utc>) -> bool {
        self.quiet
            .as_ref()
            .is_some_and(|q| q.contains(t.with_timezone(&self.tz).time()))
    }

    fn pop(
        &self,
        item: &ManifestItem,
        started: Option<DateTime<Utc>>,
        ended: Option<DateTime<Utc>>,
        outcome: PlayOutcome,
        reason: Option<String>,
    ) -> ProofOfPlay {
        ProofOfPlay {
            item_id: item.id.clone(),
            schedule_id: item.schedule_id.clone(),
            occurrence_at: item.starts_at,
            sha256: item.media.first().cloned().unwrap_or_default(),
            priority: item.priority,
            started_at: started,
            ended_at: ended,
            outcome,
            reason,
        }
    }

    async fn report(&self, pop: ProofOfPlay) {
        tracing::info!(item = %pop.item_id, outcome = pop.outcome.as_str(), reason = pop.reason.as_deref().unwrap_or(""), "proof of play");
        if let Err(e) = self.ctx.reporter.play(pop).await {
            tracing::error!(error = %e, "cannot record proof of play");
        }
    }

    /// An item reached its preparation time (or arrived as play-now).
    async fn due(&mut self, item: ManifestItem, adhoc: bool) {
        if self.ctx.store.is_handled(&item.id) || self.active_ids().contains(&item.id) {
            return;
        }
        let now = self.ctx.clock.now();
        if !adhoc && now - item.starts_at > self.ctx.grace {
            let late = (now - item.starts_at).num_seconds();
            let pop = self.pop(
                &item,
                None,
                None,
                PlayOutcome::Missed,
                Some(format!(
                    "start passed {late} s ago while the agent was not running"
                )),
            );
            self.report(pop).await;
            return;
        }
        if item.priority == Priority::Normal && self.in_quiet_hours(item.starts_at) {
            let pop = self.pop(&item, None, None, PlayOutcome::SkippedQuietHours, None);
            self.report(pop).await;
            return;
        }
        self.preparing.insert(item.id.clone());
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
                    files.push(cache.ensure(r).await.map_err(|e| e.to_string())?);
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

    async fn on_prepared(&mut self, p: Prepared) {
        self.preparing.remove(&p.item.id);
        let (files, duration) = match p.result {
            Ok(x) => x,
            Err(reason) => {
                let pop = self.pop(&p.item, None, None, PlayOutcome::Failed, Some(reason));
                self.report(pop).await;
                return;
            }
        };
        let now = self.ctx.clock.now();
        if !p.adhoc && now - p.item.starts_at > self.ctx.grace {
            let late = (now - p.item.starts_at).num_seconds();
            let pop = self.pop(
                &p.item,
                None,
                None,
                PlayOutcome::Failed,
                Some(format!("media was not ready until {late} s after the start")),
            );
            self.report(pop).await;
            return;
        }
        self.offer(Job {
            item: p.item,
            inputs: files.into_iter().map(Input::File).collect(),
            duration,
            adhoc: p.adhoc,
            live: false,
        });
    }

    fn offer(&mut self, job: Job) {
        let rank = job.rank();
        let cur = self.current.and_then(|t| self.runs.get(&t)).map(|r| r.job.rank());
        let armed_max = self
            .armed
            .iter()
            .filter_map(|t| self.runs.get(t))
            .map(|r| r.job.rank())
            .max();
        if cur.is_none_or(|r| rank > r) && armed_max.is_none_or(|r| rank > r) {
            for t in std::mem::take(&mut self.armed) {
                if let Some(r) = self.runs.get_mut(&t) {
                    r.requeue = true;
                    r.handle.send(Ctrl::Stop);
                    self.waiting.push(Waiting::Fresh(r.job.clone()));
                }
            }
            self.arm(job);
        } else {
            self.waiting.push(Waiting::Fresh(job));
        }
    }

    fn arm(&mut self, job: Job) {
        let token = self.next_token;
        self.next_token += 1;
        let start = if job.adhoc {
            Instant::now()
        } else {
            self.ctx.clock.instant_at(job.item.starts_at)
        };
        let pj = PlayJob {
            token,
            item: job.item.clone(),
            inputs: job.inputs.clone(),
            duration: job.duration,
            start,
            gain: job.item.volume.min(100) as f32 / 100.0,
        };
        let handle = sink::spawn(&self.ctx.sink, pj, self.ctx.clock, self.play_tx.clone());
        self.runs.insert(
            token,
            Run {
                job,
                handle,
                start,
                first: None,
                preempted: false,
                stop_reason: None,
                requeue: false,
            },
        );
        self.armed.push(token);
    }

    fn promote(&mut self, token: u64) {
        self.armed.retain(|t| *t != token);
        let Some(by) = self
            .runs
            .get(&token)
            .map(|r| (r.job.item.id.clone(), r.job.label()))
        else {
            return;
        };
        let (by_id, by_label) = by;
        if let Some(c) = self.current.take()
            && let Some(run) = self.runs.get_mut(&c)
        {
            if run.job.item.on_preempt == OnPreempt::Resume {
                run.handle.send(Ctrl::Pause);
                run.preempted = true;
                self.waiting.push(Waiting::Paused(c));
                tracing::info!(item = %run.job.item.id, by = %by_id, "paused for a higher priority");
            } else {
                run.stop_reason = Some(format!("preempted by {by_label}"));
                run.handle.send(Ctrl::Stop);
                tracing::info!(item = %run.job.item.id, by = %by_id, "interrupted by a higher priority");
            }
        }
        self.current = Some(token);
        self.set_now_playing();
    }

    fn set_now_playing(&self) {
        let np = self.current.and_then(|t| self.runs.get(&t)).and_then(|r| {
            r.first.map(|at| NowPlaying {
                item_id: r.job.item.id.clone(),
                sha256: r.job.item.media.first().cloned().unwrap_or_default(),
                priority: r.job.item.priority,
                started_at: at,
            })
        });
        self.ctx.status.lock().expect("status").now_playing = np;
    }

    async fn on_play_event(&mut self, e: PlayEvent) {
        match e {
            PlayEvent::FirstSample { token, at } => {
                let Some(run) = self.runs.get_mut(&token) else {
                    return;
                };
                run.first = Some(at);
                let item = run.job.item.clone();
                self.ctx.reporter.observe(AgentEventKind::FirstSample {
                    item_id: item.id.clone(),
                    at,
                });
                self.set_now_playing();
                let marker = PlayingMarker {
                    item_id: item.id.clone(),
                    schedule_id: item.schedule_id.clone(),
                    occurrence_at: item.starts_at,
                    sha256: item.media.first().cloned().unwrap_or_default(),
                    priority: item.priority,
                    started_at: at,
                };
                if let Err(e) = self.ctx.store.modify(|s| s.playing = Some(marker)).await {
                    tracing::error!(error = %e, "cannot store playing marker");
                }
            }
            PlayEvent::Ended { token, end } => {
                let Some(run) = self.runs.remove(&token) else {
                    return;
                };
                self.armed.retain(|t| *t != token);
                self.waiting
                    .retain(|w| !matches!(w, Waiting::Paused(t) if *t == token));
                if self.current == Some(token) {
                    self.current = None;
                    self.set_now_playing();
                }
                if !run.requeue {
                    let started = end.first_sample.or(run.first);
                    let (outcome, reason) = if let Some(err) = end.error {
                        (PlayOutcome::Failed, Some(err))
                    } else if end.completed {
                        if run.preempted || end.paused {
                            (PlayOutcome::Resumed, None)
                        } else {
                            (PlayOutcome::Played, None)
                        }
                    } else {
                        (
                            PlayOutcome::Interrupted,
                            Some(run.stop_reason.unwrap_or_else(|| "stopped".into())),
                        )
                    };
                    let ended = started.map(|_| end.ended_at);
                    let pop = self.pop(&run.job.item, started, ended, outcome, reason);
                    self.report(pop).await;
                }
                self.start_next();
            }
        }
    }

    fn start_next(&mut self) {
        if self.current.is_some() || !self.armed.is_empty() || self.waiting.is_empty() {
            return;
        }
        let key = |w: &Waiting| -> (u8, std::cmp::Reverse<DateTime<Utc>>) {
            let job = match w {
                Waiting::Fresh(j) => j,
                Waiting::Paused(t) => match self.runs.get(t) {
                    Some(r) => &r.job,
                    None => return (0, std::cmp::Reverse(DateTime::<Utc>::MAX_UTC)),
                },
            };
            (job.rank(), std::cmp::Reverse(job.item.starts_at))
        };
        let Some(i) = (0..self.waiting.len()).max_by_key(|i| key(&self.waiting[*i])) else {
            return;
        };
        match self.waiting.remove(i) {
            Waiting::Fresh(mut job) => {
                // It waited behind a higher or equal item: start it now (or at its start).
                job.adhoc = job.item.starts_at <= self.ctx.clock.now();
                self.arm(job);
            }
            Waiting::Paused(t) => {
                if let Some(r) = self.runs.get(&t) {
                    r.handle.send(Ctrl::Resume);
                    tracing::info!(item = %r.job.item.id, "resumed");
                }
                self.current = Some(t);
                self.set_now_playing();
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
