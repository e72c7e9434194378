//! The player's queue as pure state, in the style of rumqttc's `state.rs`: no I/O, no timers, no
//! clock. Every input is an event with the device time it happened at (a manifest, a timer tick,
//! media made ready, a play's first sample or end, a command) and every decision comes back as a
//! list of [`Action`]s for the driver ([`super::Player`]) to carry out: prepare media, arm a play,
//! pause / resume / stop / finish one, record what is playing, report a proof of play.
//!
//! The rules it keeps:
//! - **Rank**: emergency live (4) > emergency (3) > live (2) > priority (1) > normal (0): a live
//!   session ranks by the priority its `live_start` carries. An item preempts the current
//!   one (and any armed ones) only if its rank is strictly higher; otherwise it waits, and waiting
//!   items start in order of rank, then start time, when the player is free.
//! - **Preemption**: the preempted item is paused and resumed later (`on_preempt = "resume"`,
//!   reported `resumed`) or stopped (`interrupt`, reported `interrupted`, "preempted by …"). A live
//!   relay is always interrupted.
//! - **Quiet hours** (in the device time zone) skip `normal` items only.
//! - **Late policy**: a scheduled item reached more than the grace period after its start is
//!   reported `missed`, and one whose media was ready only after that `failed` — unless the item
//!   carries `play_until` (emergency and priority messages: their validity window) and that instant
//!   has not passed: then it plays from the beginning at once, and a play whose first sample went
//!   out more than the grace period after the start is reported `played_late`. Play-now commands
//!   and live sessions have no grace period.
//! - **Cancelled**: ids a manifest lists as `cancelled` are stopped if they play, dropped if they
//!   wait (reported interrupted) and never started afterwards, from a manifest or a command.
//! - **Silence**: a play's loudness (from the sink's meter) goes with its report; one that went to
//!   its end with every 1-second window below `silence_dbfs` is reported `silent`.
//! - **Exactly once**: every occurrence id produces at most one [`Action::Report`]; ids the driver
//!   says are already handled (reported before a restart) and ids already active are ignored.
//!
//! The payload `P` is whatever the driver needs to play a job (the verified files and duration, or
//! a live stream); the queue only carries it from [`Queue::prepared`] to [`Action::Arm`].

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use nguon_protocol::{
    Manifest, ManifestItem, NowPlaying, OnPreempt, PlayOutcome, Priority, ProofOfPlay, QuietHours,
};

use crate::sink::PlayEnd;

/// The rules a queue applies.
#[derive(Debug, Clone)]
pub struct Rules {
    /// A scheduled item more than this late is reported `missed` instead of played.
    pub grace: Duration,
    /// How long before its start an item is prepared.
    pub lead: Duration,
    /// Quiet hours (replaced by a manifest's settings).
    pub quiet: Option<QuietHours>,
    /// Time zone of the quiet hours (replaced by a manifest's settings).
    pub tz: chrono_tz::Tz,
    /// A play that went to its end with its loudest 1-second window below this (dBFS) is
    /// reported `silent`.
    pub silence_dbfs: f32,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action<P> {
    /// Make the item's media ready, then call [`Queue::prepared`] with the result.
    Prepare {
        /// The item.
        item: ManifestItem,
        /// A play-now command (no grace period, starts as soon as ready).
        adhoc: bool,
    },
    /// Start a play that writes its first sample at `at` (at once when `None`); its first sample
    /// and end come back through [`Queue::first_sample`] and [`Queue::ended`].
    Arm {
        /// The play's token.
        token: u64,
        /// The item.
        item: ManifestItem,
        /// What the driver prepared for it.
        payload: P,
        /// When the first sample is due.
        at: Option<DateTime<Utc>>,
    },
    /// Hold a play (preempted; it will be resumed).
    Pause(u64),
    /// Continue a held play.
    Resume(u64),
    /// Stop a play for good.
    Stop(u64),
    /// Stop a play for good, counting it as complete if it started (`live_stop`).
    Finish(u64),
    /// A play's first sample went out: record the item as playing (for a restart after a crash).
    Playing {
        /// The item.
        item: ManifestItem,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record this proof of play.
    Report(ProofOfPlay),
}

/// Something to play, ready.
#[derive(Debug, Clone)]
struct Job<P> {
    item: ManifestItem,
    payload: P,
    /// Starts as soon as possible rather than at `item.starts_at`.
    adhoc: bool,
    /// A live relay session (rank [`Priority::live_rank`] of its priority).
    live: bool,
}

impl<P> Job<P> {
    fn rank(&self) -> u8 {
        if self.live {
            self.item.priority.live_rank()
        } else {
            self.item.priority.rank()
        }
    }

    /// How reports name what preempted another item.
    fn label(&self) -> String {
        if self.live && self.item.priority == Priority::Emergency {
            format!("emergency live session {}", self.item.id)
        } else if self.live {
            format!("live session {}", self.item.id)
        } else {
            format!("{} item {}", self.item.priority.as_str(), self.item.id)
        }
    }
}

/// A play that was armed: waiting for its start, playing, or held.
#[derive(Debug)]
struct Run<P> {
    job: Job<P>,
    /// When its first sample is due.
    start: DateTime<Utc>,
    first: Option<DateTime<Utc>>,
    preempted: bool,
    stop_reason: Option<String>,
    /// Stopped only to make room for a higher item; it waits again and is not reported.
    requeue: bool,
}

#[derive(Debug)]
enum Waiting<P> {
    /// Not started yet.
    Fresh(Job<P>),
    /// A held play (its token).
    Paused(u64),
}

/// The player's queue of one agent.
#[derive(Debug)]
pub struct Queue<P> {
    rules: Rules,
    /// Items of the manifest not yet due, by start.
    pending: Vec<ManifestItem>,
    runs: HashMap<u64, Run<P>>,
    current: Option<u64>,
    armed: Vec<u64>,
    waiting: Vec<Waiting<P>>,
    /// Items whose media is being made ready, with when their first sample is due (the
    /// preparation time for one that starts at once).
    preparing: HashMap<String, DateTime<Utc>>,
    /// Ids reported by this queue (pruned to the manifest's ids when a manifest arrives; the
    /// driver's `handled` covers earlier ones).
    reported: HashSet<String>,
    /// Ids the last manifest says are cancelled.
    cancelled: HashSet<String>,
    /// Messages whose replays a `stop` ended ([`repeat`]).
    stopped: HashSet<String>,
    /// Replays of play-now commands, kept across manifests until due ([`repeat`]).
    replays: Vec<ManifestItem>,
    next_token: u64,
}

impl<P: Clone> Queue<P> {
    /// An empty queue.
    pub fn new(rules: Rules) -> Self {
        Self {
            rules,
            pending: Vec::new(),
            runs: HashMap::new(),
            current: None,
            armed: Vec::new(),
            waiting: Vec::new(),
            preparing: HashMap::new(),
            reported: HashSet::new(),
            cancelled: HashSet::new(),
            stopped: HashSet::new(),
            replays: Vec::new(),
            next_token: 1,
        }
    }

    /// Items of the manifest that are not due yet, by start.
    pub fn pending(&self) -> &[ManifestItem] {
        &self.pending
    }

    /// The tokens of every armed, playing or held play.
    pub fn tokens(&self) -> Vec<u64> {
        self.runs.keys().copied().collect()
    }

    /// The item of a play.
    pub fn item(&self, token: u64) -> Option<&ManifestItem> {
        self.runs.get(&token).map(|r| &r.job.item)
    }

    /// Media of every armed, playing or held play (never evicted from the cache).
    pub fn media_in_use(&self) -> HashSet<String> {
        self.runs
            .values()
            .flat_map(|r| r.job.item.media.iter().cloned())
            .collect()
    }

    /// What is playing now (once its first sample went out).
    pub fn now_playing(&self) -> Option<NowPlaying> {
        let r = self.runs.get(&self.current?)?;
        Some(NowPlaying {
            item_id: r.job.item.id.clone(),
            sha256: r.job.item.media.first().cloned().unwrap_or_default(),
            priority: r.job.item.priority,
            started_at: r.first?,
        })
    }

    /// When [`Queue::tick`] has something to do next: the next item's start minus the lead, or
    /// an armed play's start.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        let next = self.pending.first().map(|i| i.starts_at - self.rules.lead);
        self.armed
            .iter()
            .filter_map(|t| self.runs.get(t).map(|r| r.start))
            .chain(next)
            .min()
    }

    /// When the next first sample is due, for the amplifier relay: `now` (or earlier) for what
    /// plays, is held or waits, the start of what is armed or being prepared, else the start of
    /// the next pending item that would sound (quiet hours skip `normal` items). `None`: nothing.
    pub fn next_sound(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let runs = self
            .runs
            .iter()
            .filter(|(_, r)| !r.requeue)
            .map(|(t, r)| if self.armed.contains(t) { r.start } else { now });
        let waiting = (!self.waiting.is_empty()).then_some(now);
        let pending = self
            .pending
            .iter()
            .find(|i| !(i.priority == Priority::Normal && self.in_quiet_hours(i.starts_at)))
            .map(|i| i.starts_at);
        runs.chain(self.preparing.values().copied())
            .chain(waiting)
            .chain(pending)
            .min()
    }

    /// A verified manifest replaces the pending items; `handled` says which ids were reported
    /// already (before a restart). Its settings replace the quiet hours and time zone. The ids it
    /// lists as cancelled are stopped or dropped (the returned actions) and never started again.
    pub fn manifest(&mut self, m: &Manifest, handled: impl Fn(&str) -> bool) -> Vec<Action<P>> {
        if let Some(q) = &m.settings.quiet_hours {
            self.rules.quiet = Some(q.clone());
        }
        if let Some(tz) = m.settings.time_zone.as_deref().and_then(|t| t.parse().ok()) {
            self.rules.tz = tz;
        }
        let items = self.with_replays(&m.items);
        let ids: HashSet<&str> = items.iter().map(|i| i.id.as_str()).collect();
        self.reported.retain(|id| ids.contains(id.as_str()));
        self.cancelled = m.cancelled.iter().cloned().collect();
        let active = self.active_ids();
        self.pending = items
            .iter()
            .filter(|i| {
                !active.contains(&i.id)
                    && !self.reported.contains(&i.id)
                    && !self.is_cancelled(&i.id)
                    && !handled(&i.id)
            })
            .cloned()
            .collect();
        self.pending.sort_by_key(|i| i.starts_at);
        let mut out = Vec::new();
        if !self.cancelled.is_empty() {
            let hit: HashSet<String> = self
                .runs
                .values()
                .map(|r| r.job.item.id.clone())
                .chain(self.waiting.iter().filter_map(|w| match w {
                    Waiting::Fresh(j) => Some(j.item.id.clone()),
                    Waiting::Paused(_) => None,
                }))
                .filter(|id| self.is_cancelled(id))
                .collect();
            let mut tokens: Vec<u64> = Vec::new();
            for (token, run) in &mut self.runs {
                if hit.contains(&run.job.item.id) && !run.requeue && run.stop_reason.is_none() {
                    run.stop_reason = Some("cancelled by the server".into());
                    tokens.push(*token);
                }
            }
            tokens.sort_unstable();
            out.extend(tokens.into_iter().map(Action::Stop));
            self.drop_waiting(
                |j| hit.contains(&j.item.id),
                "cancelled before it started",
                &mut out,
            );
        }
        out
    }

    /// Time passed: items whose preparation time came are made due, armed plays whose start came
    /// take over (preempting the current one).
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<Action<P>> {
        let mut out = Vec::new();
        while self
            .pending
            .first()
            .is_some_and(|i| i.starts_at - self.rules.lead <= now)
        {
            let item = self.pending.remove(0);
            self.due(item, false, now, &mut out);
        }
        let lead = self.rules.lead;
        self.replays.retain(|r| r.starts_at - lead > now);
        let ready: Vec<u64> = self
            .armed
            .iter()
            .copied()
            .filter(|t| self.runs.get(t).is_some_and(|r| r.start <= now))
            .collect();
        for t in ready {
            self.promote(t, &mut out);
        }
        out
    }

    /// A play-now command; `handled`: its id was reported already.
    pub fn play_now(&mut self, item: ManifestItem, handled: bool, now: DateTime<Utc>) -> Vec<Action<P>> {
        let mut out = Vec::new();
        if !handled && !self.is_cancelled(&item.id) {
            self.due(item, true, now, &mut out);
        }
        out
    }

    /// The media of a [`Action::Prepare`]d item is ready (`Ok`) or cannot be had (`Err`, reason).
    pub fn prepared(
        &mut self,
        item: ManifestItem,
        adhoc: bool,
        result: Result<P, String>,
        now: DateTime<Utc>,
    ) -> Vec<Action<P>> {
        let mut out = Vec::new();
        self.preparing.remove(&item.id);
        if self.is_cancelled(&item.id) {
            let reason = Some("cancelled before it started".to_string());
            self.report(&item, None, None, PlayOutcome::Interrupted, reason, &mut out);
            return out;
        }
        let payload = match result {
            Ok(p) => p,
            Err(reason) => {
                self.report(&item, None, None, PlayOutcome::Failed, Some(reason), &mut out);
                return out;
            }
        };
        let mut adhoc = adhoc;
        if !adhoc && now - item.starts_at > self.rules.grace && self.may_play_late(&item, now) {
            // Late inside its window: it plays from the beginning at once.
            adhoc = true;
        }
        if !adhoc && now - item.starts_at > self.rules.grace {
            let late = (now - item.starts_at).num_seconds();
            let reason = format!("media was not ready until {late} s after the start");
            self.report(&item, None, None, PlayOutcome::Failed, Some(reason), &mut out);
            return out;
        }
        let job = Job {
            item,
            payload,
            adhoc,
            live: false,
        };
        self.offer(job, now, &mut out);
        out
    }

    /// A play wrote its first sample. One still armed takes over now: its start came, even if
    /// the driver's timer for it has not fired yet.
    pub fn first_sample(&mut self, token: u64, at: DateTime<Utc>) -> Vec<Action<P>> {
        let mut out = Vec::new();
        if self.armed.contains(&token) {
            self.promote(token, &mut out);
        }
        let Some(run) = self.runs.get_mut(&token) else {
            return out;
        };
        run.first = Some(at);
        out.push(Action::Playing {
            item: run.job.item.clone(),
            at,
        });
        out
    }

    /// A play ended: it is reported (unless it was only stopped to wait again) and the next
    /// waiting job starts.
    pub fn ended(&mut self, token: u64, end: &PlayEnd, now: DateTime<Utc>) -> Vec<Action<P>> {
        let mut out = Vec::new();
        let Some(run) = self.runs.remove(&token) else {
            return out;
        };
        self.armed.retain(|t| *t != token);
        self.waiting
            .retain(|w| !matches!(w, Waiting::Paused(t) if *t == token));
        if self.current == Some(token) {
            self.current = None;
        }
        if !run.requeue {
            let started = end.first_sample.or(run.first);
            let (outcome, reason) = if let Some(err) = &end.error {
                (PlayOutcome::Failed, Some(err.clone()))
            } else if end.completed {
                if run.preempted || end.paused {
                    (PlayOutcome::Resumed, None)
                } else if self.started_late(&run.job.item, started) {
                    (PlayOutcome::PlayedLate, None)
                } else {
                    (PlayOutcome::Played, None)
                }
            } else {
                let reason = run.stop_reason.unwrap_or_else(|| "stopped".into());
                (PlayOutcome::Interrupted, Some(reason))
            };
            let ended = started.map(|_| end.ended_at);
            self.report(&run.job.item, started, ended, outcome, reason, &mut out);
            if let (Some(relay), Some(Action::Report(pop))) = (&end.relay, out.last_mut()) {
                if relay.failed && matches!(outcome, PlayOutcome::Played | PlayOutcome::PlayedLate) {
                    let why = relay.error.as_deref().unwrap_or("no audio");
                    pop.reason = Some(format!("relay stream failed ({why}); the fallback played"));
                }
                pop.relay = Some(relay.clone());
            }
            if let (Some(level), Some(Action::Report(pop))) = (end.level, out.last_mut()) {
                let sounded = matches!(
                    outcome,
                    PlayOutcome::Played | PlayOutcome::PlayedLate | PlayOutcome::Resumed
                );
                pop.max_rms_dbfs = Some(level.max_rms_dbfs.floor() as i32);
                pop.silent = sounded && level.max_rms_dbfs < self.rules.silence_dbfs;
            }
        }
        self.start_next(now, &mut out);
        out
    }

    /// The `stop` command: stops the plays named (all when `None`), live sessions included, and
    /// drops waiting items of that name (reported interrupted). Pending items are not touched.
    pub fn stop(&mut self, item_id: Option<&str>) -> Vec<Action<P>> {
        let mut out = Vec::new();
        let base = |id: &str| nguon_protocol::replay_of(id).map_or(id, |(b, _)| b).to_string();
        let hit = |id: &str| item_id.is_none_or(|x| x == id || x == base(id));
        for (token, run) in &mut self.runs {
            if hit(&run.job.item.id) && !run.requeue {
                run.stop_reason = Some("stopped by command".into());
                out.push(Action::Stop(*token));
            }
        }
        out.sort_by_key(|a| match a {
            Action::Stop(t) => *t,
            _ => 0,
        });
        let reason = "stopped by command before it started";
        self.drop_waiting(|j| hit(&j.item.id), reason, &mut out);
        self.stop_replays(item_id);
        out
    }

    /// `live_start`: a live session (`item.id` = session id) at the live rank of
    /// `item.priority` ([`Priority::live_rank`]), replacing any
    /// earlier session. An empty, active or `handled` session id does nothing.
    pub fn live_start(
        &mut self,
        item: ManifestItem,
        payload: P,
        handled: bool,
        now: DateTime<Utc>,
    ) -> Vec<Action<P>> {
        let mut out = Vec::new();
        if item.id.is_empty()
            || handled
            || self.reported.contains(&item.id)
            || self.active_ids().contains(&item.id)
        {
            return out;
        }
        let reason = format!("replaced by live session {}", item.id);
        self.end_live(|_| true, &reason, false, &mut out);
        let job = Job {
            item,
            payload,
            adhoc: true,
            live: true,
        };
        self.offer(job, now, &mut out);
        out
    }

    /// `live_stop`: the session ends as a complete play (`played`); one that has not started is
    /// dropped and reported interrupted. No actions when no such session is running.
    pub fn live_stop(&mut self, session_id: &str) -> Vec<Action<P>> {
        let mut out = Vec::new();
        let reason = "stopped by live_stop before its first sample";
        self.end_live(|id| id == session_id, reason, true, &mut out);
        out
    }

    fn active_ids(&self) -> HashSet<String> {
        let mut s: HashSet<String> = self.preparing.keys().cloned().collect();
        s.extend(self.runs.values().map(|r| r.job.item.id.clone()));
        for w in &self.waiting {
            if let Waiting::Fresh(j) = w {
                s.insert(j.item.id.clone());
            }
        }
        s
    }

    /// The late policy: an item with `play_until` may still start at `now` until that instant.
    fn may_play_late(&self, item: &ManifestItem, now: DateTime<Utc>) -> bool {
        item.play_until.is_some_and(|u| now <= u)
    }

    /// A play of an item with a window whose first sample went out more than the grace period
    /// after its start is reported `played_late`.
    fn started_late(&self, item: &ManifestItem, first: Option<DateTime<Utc>>) -> bool {
        item.play_until.is_some() && first.is_some_and(|f| f - item.starts_at > self.rules.grace)
    }

    fn in_quiet_hours(&self, t: DateTime<Utc>) -> bool {
        self.rules
            .quiet
            .as_ref()
            .is_some_and(|q| q.contains(t.with_timezone(&self.rules.tz).time()))
    }

    /// Report an occurrence, once.
    fn report(
        &mut self,
        item: &ManifestItem,
        started: Option<DateTime<Utc>>,
        ended: Option<DateTime<Utc>>,
        outcome: PlayOutcome,
        reason: Option<String>,
        out: &mut Vec<Action<P>>,
    ) {
        if !self.reported.insert(item.id.clone()) {
            return;
        }
        out.push(Action::Report(ProofOfPlay {
            item_id: item.id.clone(),
            schedule_id: item.schedule_id.clone(),
            occurrence_at: item.starts_at,
            sha256: repeat::reported_media(item),
            priority: item.priority,
            started_at: started,
            ended_at: ended,
            outcome,
            reason,
            max_rms_dbfs: None,
            silent: false,
            relay: None,
        }));
    }

    /// An item reached its preparation time (or arrived as play-now).
    fn due(&mut self, item: ManifestItem, adhoc: bool, now: DateTime<Utc>, out: &mut Vec<Action<P>>) {
        if self.reported.contains(&item.id) || self.active_ids().contains(&item.id) {
            return;
        }
        let late = now - item.starts_at > self.rules.grace;
        if late && item.play_until.is_some_and(|u| now > u) {
            let reason = format!(
                "its window ended {} s ago before the agent could play it",
                (now - item.play_until.unwrap_or(now)).num_seconds()
            );
            self.report(&item, None, None, PlayOutcome::Missed, Some(reason), out);
            return;
        }
        // Late inside its window: prepared now and played from the beginning as soon as ready.
        let adhoc = adhoc || (late && self.may_play_late(&item, now));
        if !adhoc && late {
            let late = (now - item.starts_at).num_seconds();
            let reason = format!("start passed {late} s ago while the agent was not running");
            self.report(&item, None, None, PlayOutcome::Missed, Some(reason), out);
            return;
        }
        if item.priority == Priority::Normal && self.in_quiet_hours(item.starts_at) {
            self.report(&item, None, None, PlayOutcome::SkippedQuietHours, None, out);
            return;
        }
        let at = if adhoc { now } else { item.starts_at };
        self.preparing.insert(item.id.clone(), at);
        out.push(Action::Prepare { item, adhoc });
    }

    /// A ready job arms at once if it outranks what plays and what is armed (those armed go back
    /// to waiting), otherwise it waits.
    fn offer(&mut self, job: Job<P>, now: DateTime<Utc>, out: &mut Vec<Action<P>>) {
        let rank = job.rank();
        let current = self.current.and_then(|t| self.runs.get(&t)).map(|r| r.job.rank());
        let armed = self
            .armed
            .iter()
            .filter_map(|t| self.runs.get(t))
            .map(|r| r.job.rank())
            .max();
        if current.is_none_or(|r| rank > r) && armed.is_none_or(|r| rank > r) {
            for t in std::mem::take(&mut self.armed) {
                if let Some(r) = self.runs.get_mut(&t) {
                    r.requeue = true;
                    out.push(Action::Stop(t));
                    self.waiting.push(Waiting::Fresh(r.job.clone()));
                }
            }
            self.arm(job, now, out);
        } else {
            self.waiting.push(Waiting::Fresh(job));
        }
    }

    fn arm(&mut self, job: Job<P>, now: DateTime<Utc>, out: &mut Vec<Action<P>>) {
        let token = self.next_token;
        self.next_token += 1;
        let at = (!job.adhoc).then_some(job.item.starts_at);
        out.push(Action::Arm {
            token,
            item: job.item.clone(),
            payload: job.payload.clone(),
            at,
        });
        self.runs.insert(
            token,
            Run {
                job,
                start: at.unwrap_or(now),
                first: None,
                preempted: false,
                stop_reason: None,
                requeue: false,
            },
        );
        self.armed.push(token);
    }

    /// An armed play's start came: it becomes current; the current one is paused or stopped.
    fn promote(&mut self, token: u64, out: &mut Vec<Action<P>>) {
        self.armed.retain(|t| *t != token);
        let Some(by) = self.runs.get(&token).map(|r| r.job.label()) else {
            return;
        };
        if let Some(c) = self.current.take()
            && let Some(run) = self.runs.get_mut(&c)
        {
            // A stream (live or relay) cannot be held: it is interrupted.
            if run.job.item.on_preempt == OnPreempt::Resume && !run.job.live && run.job.item.relay.is_none() {
                run.preempted = true;
                out.push(Action::Pause(c));
                self.waiting.push(Waiting::Paused(c));
            } else {
                run.stop_reason = Some(format!("preempted by {by}"));
                out.push(Action::Stop(c));
            }
        }
        self.current = Some(token);
    }

    /// When nothing plays or is armed, the best waiting job starts: highest rank, then earliest
    /// start.
    fn start_next(&mut self, now: DateTime<Utc>, out: &mut Vec<Action<P>>) {
        if self.current.is_some() || !self.armed.is_empty() {
            return;
        }
        let key = |w: &Waiting<P>| -> (u8, Reverse<DateTime<Utc>>) {
            let job = match w {
                Waiting::Fresh(j) => j,
                Waiting::Paused(t) => match self.runs.get(t) {
                    Some(r) => &r.job,
                    None => return (0, Reverse(DateTime::<Utc>::MAX_UTC)),
                },
            };
            (job.rank(), Reverse(job.item.starts_at))
        };
        let Some(i) = (0..self.waiting.len()).max_by_key(|i| key(&self.waiting[*i])) else {
            return;
        };
        match self.waiting.remove(i) {
            Waiting::Fresh(mut job) => {
                // It waited behind a higher or equal item: start it now (or at its start).
                job.adhoc = job.item.starts_at <= now;
                self.arm(job, now, out);
            }
            Waiting::Paused(t) => {
                out.push(Action::Resume(t));
                self.current = Some(t);
            }
        }
    }

    /// Stop the live sessions whose id matches: running ones with `reason` (with `as_finish` they
    /// end as a complete play, `reason` applying only if they had not started), waiting ones are
    /// dropped and reported interrupted.
    fn end_live(
        &mut self,
        matches: impl Fn(&str) -> bool,
        reason: &str,
        as_finish: bool,
        out: &mut Vec<Action<P>>,
    ) {
        let mut tokens: Vec<u64> = Vec::new();
        for (token, run) in &mut self.runs {
            if run.job.live && !run.requeue && matches(&run.job.item.id) {
                run.stop_reason = Some(reason.to_string());
                tokens.push(*token);
            }
        }
        tokens.sort_unstable();
        out.extend(tokens.into_iter().map(|t| {
            if as_finish {
                Action::Finish(t)
            } else {
                Action::Stop(t)
            }
        }));
        self.drop_waiting(|j| j.live && matches(&j.item.id), reason, out);
    }

    /// Drop the waiting (not yet started) jobs `which` selects, each reported interrupted.
    fn drop_waiting(&mut self, which: impl Fn(&Job<P>) -> bool, reason: &str, out: &mut Vec<Action<P>>) {
        let mut dropped = Vec::new();
        self.waiting.retain(|w| match w {
            Waiting::Fresh(j) if which(j) => {
                dropped.push(j.item.clone());
                false
            }
            _ => true,
        });
        for item in dropped {
            self.report(
                &item,
                None,
                None,
                PlayOutcome::Interrupted,
                Some(reason.to_string()),
                out,
            );
        }
    }
}

mod repeat;
#[cfg(test)]
mod tests;
