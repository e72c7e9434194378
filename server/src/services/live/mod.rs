//! Live broadcast (issue 17): an operator opens a session for areas and devices at a priority
//! ([`open`]: role `operator`, every target in scope, the clash rule of `domain::live::clash`
//! checked and the session registered under one lock, so of two operators opening at once one
//! gets the 409 naming the other), then connects the microphone ([`attach`], the WebSocket of
//! `http::live`): at the first connection `live_start` goes to every target (recorded commands,
//! `services::commands::issue_built`) with the stream's URL; the samples it sends are encoded
//! once ([`encoder`]) and fanned out to every listener of `GET /live/{id}` ([`listen`]) and to a
//! recording file. The session ends ([`end`]) on stop, on a garbage frame, when the microphone
//! never connects within `domain::live::CONNECT_SECS`, or when its connection drops and does not
//! come back within `domain::live::GRACE_SECS`: listeners' streams end, `live_stop` goes to the
//! targets, the row is stamped with the reason and the recording is stored as media (a draft).
//!
//! The registry is in memory: one server process serves a session (a restart ends every
//! session; devices see their stream end).

pub mod encoder;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use nguon_protocol::{Command, Priority};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::domain::command::Issued;
use crate::domain::live::{self, CONNECT_SECS, GRACE_SECS, Live, LiveRequest};
use crate::domain::scope::{Caller, Role};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::services::auth::check_targets;
use crate::services::commands::{self, Target};
use crate::services::fanout::FanOut;
use crate::store::{self, audit, from_ms, live::SessionPlay, live::SessionRow, now_ms};

/// The sessions live on this server.
#[derive(Default)]
pub struct Registry {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
}

/// One live session.
pub struct Session {
    /// Id (the devices' `session_id`, the stream's path).
    pub id: String,
    /// Who opened it (only they may connect the microphone).
    pub caller: Caller,
    /// Its priority.
    pub priority: Priority,
    /// Title.
    pub title: String,
    /// The request's areas and devices (commands go to these).
    pub request: LiveRequest,
    /// The loudspeakers covered.
    pub devices: BTreeSet<String>,
    fan: FanOut,
    bytes: Arc<AtomicU64>,
    /// Bumped at each microphone connection and drop: a grace timer acts only if its generation
    /// is still current.
    generation: AtomicU64,
    attached: Mutex<bool>,
    started: Mutex<Vec<String>>,
    record: Arc<Mutex<std::fs::File>>,
    record_path: std::path::PathBuf,
}

/// The answer to `POST /api/v1/live`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Opened {
    /// Session id.
    pub id: String,
    /// The microphone's WebSocket path (`?rate=` the sample rate of the 16-bit mono PCM frames).
    pub ws: String,
    /// The stream devices play.
    pub stream_url: String,
    /// Loudspeakers covered.
    pub targets: usize,
    /// `priority` or `emergency`.
    pub priority: String,
}

/// A session as `GET /api/v1/live/{id}` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Status {
    /// The stored session.
    pub session: SessionRow,
    /// Still live.
    pub live: bool,
    /// Listeners of the stream now.
    pub listeners: usize,
    /// Devices playing the session now (their telemetry's `now_playing`, sent at the first
    /// sample).
    pub playing: Vec<String>,
    /// Each target's delivery state of `live_start` (pending, delivered, playing, played, …).
    pub devices: Vec<DeviceState>,
    /// Proofs of play, with the duration each device played.
    pub plays: Vec<SessionPlay>,
    /// The `live_start` commands.
    pub commands: Vec<String>,
}

/// One target's state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceState {
    /// Device id.
    pub device_id: String,
    /// `pending`/`delivered` (its `live_start` acked), `playing`, then its outcome.
    pub state: String,
}

/// Open a session for `req` as `caller`. 409 naming who is live when a session at the same or a
/// higher priority covers one of the same loudspeakers.
pub async fn open(state: &AppState, caller: &Caller, req: LiveRequest) -> Result<Opened> {
    caller.require(Role::Operator)?;
    req.check()?;
    let priority = req.priority()?;
    check_targets(state, caller, &req.areas, &req.devices).await?;
    for a in &req.areas {
        if !store::areas::exists(&state.store, a).await? {
            return Err(Error::NotFound(format!("area `{a}`")));
        }
    }
    for d in &req.devices {
        if store::devices::area_of(&state.store, d).await?.is_none() {
            return Err(Error::NotFound(format!("device `{d}`")));
        }
    }
    let areas = store::areas::subtree(&state.store, &req.areas).await?;
    let targets = store::commands::resolve_targets(&state.store, &areas, &req.devices).await?;
    if targets.is_empty() {
        return Err(Error::unprocessable(
            "no_loudspeakers",
            "these areas and devices have no enabled loudspeaker",
        ));
    }
    let devices: BTreeSet<String> = targets.into_iter().map(|t| t.device_id).collect();
    let id = uuid::Uuid::new_v4().to_string();
    let dir = state.settings.data_dir.join("live");
    std::fs::create_dir_all(&dir)?;
    let record_path = dir.join(format!("{id}.mp3"));
    let record = std::fs::File::create(&record_path)?;
    let title = req
        .title
        .clone()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| format!("Phát trực tiếp — {}", caller.username));
    let session = Arc::new(Session {
        id: id.clone(),
        caller: caller.clone(),
        priority,
        title: title.clone(),
        request: req.clone(),
        devices,
        fan: FanOut::new(256),
        bytes: Arc::new(AtomicU64::new(0)),
        generation: AtomicU64::new(0),
        attached: Mutex::new(false),
        started: Mutex::new(Vec::new()),
        record: Arc::new(Mutex::new(record)),
        record_path,
    });
    let refused = {
        let mut all = lock(&state.live.sessions);
        let refused = {
            let others: Vec<Live<'_>> = all
                .values()
                .map(|s| Live {
                    id: &s.id,
                    username: &s.caller.username,
                    priority: s.priority,
                    devices: &s.devices,
                })
                .collect();
            live::clash(&others, priority, &session.devices).map(|hit| {
                let shared = hit.devices.intersection(&session.devices).count();
                live::busy(hit, shared)
            })
        };
        if refused.is_none() {
            all.insert(id.clone(), session.clone());
        }
        refused
    };
    if let Some(err) = refused {
        let _ = std::fs::remove_file(&session.record_path);
        return Err(err);
    }
    let row = SessionRow {
        id: id.clone(),
        started_by: caller.username.clone(),
        title,
        priority: priority.as_str().to_string(),
        areas: req.areas.clone(),
        devices: req.devices.clone(),
        targets: session.devices.len() as i64,
        opened_at: from_ms(now_ms()),
        started_at: None,
        ended_at: None,
        end_reason: None,
        stream_bytes: 0,
        media_sha256: None,
    };
    let written = async {
        let mut tx = state.store.begin_write().await?;
        store::live::insert_in(&mut tx, &row).await?;
        audit::record(
            &mut tx,
            &caller.username,
            "live.open",
            &format!("live:{id}"),
            None,
            serde_json::to_value(&row).ok(),
        )
        .await?;
        tx.commit().await?;
        Ok::<_, Error>(())
    }
    .await;
    if let Err(e) = written {
        lock(&state.live.sessions).remove(&id);
        return Err(e);
    }
    // A session whose microphone never comes is ended.
    let (st, s) = (state.clone(), session.clone());
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(CONNECT_SECS)) => {
                if s.generation.load(Ordering::SeqCst) == 0 {
                    end(&st, &s, "never_connected").await;
                }
            }
            _ = s.fan.closed() => {}
        }
    });
    Ok(Opened {
        ws: format!("/api/v1/live/{id}/ws"),
        stream_url: stream_url(state, &id),
        targets: session.devices.len(),
        priority: priority.as_str().to_string(),
        id,
    })
}

fn stream_url(state: &AppState, id: &str) -> String {
    format!("{}/live/{id}", state.public_url)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The live session `id`, 404 when it is not live.
pub fn get(state: &AppState, id: &str) -> Result<Arc<Session>> {
    lock(&state.live.sessions)
        .get(id)
        .cloned()
        .ok_or_else(|| Error::NotFound(format!("live session `{id}`")))
}

/// A microphone connection: the encoder the WebSocket feeds, and the session.
pub struct Attached {
    /// The session.
    pub session: Arc<Session>,
    /// The encoder (dropping its sender ends it).
    pub encoder: encoder::Running,
    generation: u64,
}

/// The checks of [`attach`] without attaching (answered as HTTP before a WebSocket upgrade).
pub fn may_attach(state: &AppState, caller: &Caller, id: &str, rate: u32) -> Result<()> {
    caller.require(Role::Operator)?;
    live::check_rate(rate)?;
    let session = get(state, id)?;
    if session.caller.user_id != caller.user_id {
        return Err(Error::Forbidden(format!(
            "live session `{id}` belongs to `{}`; only they may speak in it",
            session.caller.username
        )));
    }
    if *lock(&session.attached) {
        return Err(Error::Conflict(format!(
            "live session `{id}` already has a microphone connected"
        )));
    }
    Ok(())
}

/// Connect the microphone of session `id` (its opener only: 403 for anyone else; 409 while
/// another connection is attached), at `rate` Hz. At the first connection the targets get
/// `live_start`.
pub async fn attach(state: &AppState, caller: &Caller, id: &str, rate: u32) -> Result<Attached> {
    may_attach(state, caller, id, rate)?;
    let session = get(state, id)?;
    {
        let mut a = lock(&session.attached);
        if *a {
            return Err(Error::Conflict(format!(
                "live session `{id}` already has a microphone connected"
            )));
        }
        *a = true;
    }
    let generation = session.generation.fetch_add(1, Ordering::SeqCst) + 1;
    let enc = match encoder::start(
        rate,
        session.fan.sender(),
        session.record.clone(),
        session.bytes.clone(),
    ) {
        Ok(e) => e,
        Err(e) => {
            *lock(&session.attached) = false;
            return Err(e);
        }
    };
    if generation == 1 {
        store::live::started(&state.store, id, now_ms()).await?;
        let url = stream_url(state, id);
        let mut ids = Vec::new();
        for t in targets_of(&session.request) {
            let cmd = Command::LiveStart {
                url: url.clone(),
                session_id: id.to_string(),
                priority: session.priority,
            };
            match commands::issue_built(state, &session.caller, t, cmd).await {
                Ok(Issued { command_id, .. }) => ids.push(command_id),
                Err(e) => tracing::warn!(session = id, error = %e, "live_start not recorded"),
            }
        }
        *lock(&session.started) = ids;
    }
    Ok(Attached {
        session,
        encoder: enc,
        generation,
    })
}

fn targets_of(req: &LiveRequest) -> Vec<Target> {
    req.areas
        .iter()
        .cloned()
        .map(Target::Area)
        .chain(req.devices.iter().cloned().map(Target::Device))
        .collect()
}

/// How a microphone connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detach {
    /// The operator stopped (text message `stop`).
    Stop,
    /// A frame that is not 16-bit mono PCM (named): the session ends.
    Garbage(String),
    /// The connection dropped: the session ends unless it comes back within the grace period.
    Dropped,
    /// The session was ended elsewhere (`DELETE`, the server).
    Ended,
    /// The server could not keep up (the encoder's queue stayed full): the session ends.
    Failed(String),
}

/// The microphone's connection ended as `how`.
pub async fn detach(state: &AppState, a: Attached, how: Detach) {
    let Attached {
        session,
        encoder,
        generation,
    } = a;
    drop(encoder.tx);
    let _ = tokio::task::spawn_blocking(move || encoder.thread.join()).await;
    *lock(&session.attached) = false;
    match how {
        Detach::Stop => end(state, &session, "stopped").await,
        Detach::Garbage(why) => end(state, &session, &format!("bad_frame: {why}")).await,
        Detach::Failed(why) => end(state, &session, &format!("failed: {why}")).await,
        Detach::Ended => {}
        Detach::Dropped => {
            let (st, s) = (state.clone(), session.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(GRACE_SECS)) => {
                        if s.generation.load(Ordering::SeqCst) == generation && !*lock(&s.attached) {
                            end(&st, &s, "operator_gone").await;
                        }
                    }
                    _ = s.fan.closed() => {}
                }
            });
        }
    }
}

/// Stop session `id` (`DELETE /api/v1/live/{id}`): its opener, or an operator whose scope covers
/// every target of it.
pub async fn stop(state: &AppState, caller: &Caller, id: &str) -> Result<()> {
    caller.require(Role::Operator)?;
    let s = get(state, id)?;
    if s.caller.user_id != caller.user_id {
        check_targets(state, caller, &s.request.areas, &s.request.devices).await?;
    }
    end(state, &s, &format!("stopped by {}", caller.username)).await;
    Ok(())
}

/// End `session` (once): listeners' streams end, `live_stop` to the targets, the row stamped,
/// the recording stored as media.
pub async fn end(state: &AppState, session: &Arc<Session>, reason: &str) {
    if lock(&state.live.sessions).remove(&session.id).is_none() {
        return;
    }
    session.fan.end();
    let id = &session.id;
    tracing::info!(session = %id, reason, "live session ends");
    let started = !lock(&session.started).is_empty();
    if started {
        for t in targets_of(&session.request) {
            let cmd = Command::LiveStop {
                session_id: id.clone(),
            };
            if let Err(e) = commands::issue_built(state, &session.caller, t, cmd).await {
                tracing::warn!(session = %id, error = %e, "live_stop not recorded");
            }
        }
    }
    let bytes = session.bytes.load(Ordering::Relaxed) as i64;
    let stamped = async {
        let mut tx = state.store.begin_write().await?;
        store::live::ended_in(&mut tx, id, now_ms(), reason, bytes).await?;
        audit::record(
            &mut tx,
            &session.caller.username,
            "live.end",
            &format!("live:{id}"),
            None,
            Some(serde_json::json!({"reason": reason, "stream_bytes": bytes})),
        )
        .await?;
        tx.commit().await?;
        Ok::<_, Error>(())
    }
    .await;
    if let Err(e) = stamped {
        tracing::error!(session = %id, error = %e, "live session end not recorded");
    }
    // The recording: kept as a draft in the library (a replay goes through review).
    if bytes > 0 {
        let name = format!("live-{id}.mp3");
        match crate::services::media::ingest_file(state, &session.record_path, &name, Some(&session.title))
            .await
        {
            Ok((m, _)) => {
                if let Err(e) = store::live::recorded(&state.store, id, &m.sha256).await {
                    tracing::warn!(session = %id, error = %e, "live recording not linked");
                }
            }
            Err(e) => tracing::warn!(session = %id, error = %e, "live recording not stored"),
        }
    }
    let _ = tokio::fs::remove_file(&session.record_path).await;
}

/// The stream of session `id` for one listener, from the next frame on; it ends with the session
/// (`services::fanout`).
pub fn listen(
    state: &AppState,
    id: &str,
) -> Result<impl Stream<Item = std::result::Result<Bytes, std::io::Error>> + use<>> {
    Ok(get(state, id)?.fan.listen())
}

/// Whether the session `id` has ended (for the WebSocket loop).
pub fn ended(session: &Session) -> CancellationToken {
    session.fan.ended()
}

/// Session `id` with its devices' states and proofs of play, for an operator whose scope covers
/// its targets.
pub async fn status(state: &AppState, caller: &Caller, id: &str) -> Result<Status> {
    caller.require(Role::Operator)?;
    let row = store::live::get(&state.store, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("live session `{id}`")))?;
    check_targets(state, caller, &row.areas, &row.devices).await?;
    let live = get(state, id).ok();
    let commands: Vec<String> = match &live {
        Some(s) => lock(&s.started).clone(),
        None => Vec::new(),
    };
    let mut by: HashMap<String, String> = HashMap::new();
    for c in &commands {
        if let Ok(r) = commands::report(state, c).await {
            for t in &r.tracking.targets {
                let st = serde_json::to_value(t.state).ok();
                let st = st.as_ref().and_then(|v| v.as_str()).unwrap_or("pending");
                by.insert(t.device_id.clone(), st.to_string());
            }
        }
    }
    if live.is_some() {
        for d in store::live::now_playing(&state.store, id).await? {
            by.insert(d, "playing".into());
        }
    }
    let plays = store::live::plays(&state.store, id).await?;
    for p in &plays {
        by.insert(p.device_id.clone(), p.outcome.clone());
    }
    let mut devices: Vec<DeviceState> = by
        .into_iter()
        .map(|(device_id, state)| DeviceState { device_id, state })
        .collect();
    devices.sort_by(|a, b| a.device_id.cmp(&b.device_id));
    Ok(Status {
        live: live.is_some(),
        listeners: live.as_ref().map_or(0, |s| s.fan.listeners()),
        playing: devices
            .iter()
            .filter(|d| d.state == "playing")
            .map(|d| d.device_id.clone())
            .collect(),
        devices,
        plays,
        commands,
        session: row,
    })
}

/// The sessions live now whose targets the caller's scope covers: (id, who, priority, title).
pub fn active(state: &AppState, caller: &Caller) -> Vec<(String, String, String, String)> {
    let all = lock(&state.live.sessions);
    let mut out: Vec<_> = all
        .values()
        .filter(|s| s.request.areas.iter().all(|a| caller.in_scope(a)))
        .map(|s| {
            (
                s.id.clone(),
                s.caller.username.clone(),
                s.priority.as_str().to_string(),
                s.title.clone(),
            )
        })
        .collect();
    out.sort();
    out
}
