//! The local store that survives `kill -9` and power loss: plain files in `storage.data_dir`,
//! each written to a temporary name, `fsync`ed, renamed into place and the directory `fsync`ed.
//!
//! - `state.json`: session counter, install id, replay state per (audience, stream), the last applied
//!   manifest with its envelope id, the occurrences already reported, the item playing now.
//! - `outbox/<uuid>.json`: one event per file, written before it is sent and deleted only when
//!   the server's signed receipt names it (see `link`).
//!
//! Files rather than SQLite: the fleet simulator runs 10,000 agents in one process and sqlx's
//! SQLite driver keeps a worker thread per connection; files need no thread and no cache.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use nguon_protocol::{Event, EventBody, Manifest};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AgentError;

/// Reported occurrences are forgotten this long after their start.
const HANDLED_RETENTION_DAYS: i64 = 14;

/// Replay state of one (audience, stream).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StreamState {
    /// Highest sequence accepted.
    pub seq: u64,
    /// Envelope ids accepted recently.
    pub recent_ids: VecDeque<Uuid>,
}

/// The manifest that was applied, with the envelope that carried it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AppliedManifest {
    /// Envelope id.
    pub message_id: Uuid,
    /// The manifest.
    pub manifest: Manifest,
}

/// An item whose first sample went out and whose outcome is not recorded yet.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PlayingMarker {
    /// Occurrence id.
    pub item_id: String,
    /// Schedule id.
    pub schedule_id: String,
    /// Scheduled instant.
    pub occurrence_at: DateTime<Utc>,
    /// First media file.
    pub sha256: String,
    /// Priority.
    pub priority: nguon_protocol::Priority,
    /// First sample.
    pub started_at: DateTime<Utc>,
}

/// Everything in `state.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// Connection session counter (incremented before every connection attempt).
    #[serde(default)]
    pub session: u64,
    /// This install's id: random, made when the data directory is first used (or by the first
    /// version that knows it), sent with presence and telemetry so that the server tells a
    /// reinstall (session counter back at 1) from a stale message.
    #[serde(default)]
    pub install_id: Option<String>,
    /// Replay state keyed by `"{audience}/{stream}"`.
    #[serde(default)]
    pub replay: BTreeMap<String, StreamState>,
    /// Last applied manifest.
    #[serde(default)]
    pub manifest: Option<AppliedManifest>,
    /// Occurrence ids already reported, with their scheduled instant.
    #[serde(default)]
    pub handled: BTreeMap<String, DateTime<Utc>>,
    /// The item playing when the state was written.
    #[serde(default)]
    pub playing: Option<PlayingMarker>,
    /// Volume set by command.
    #[serde(default)]
    pub volume: Option<u8>,
    /// Last time the broker accepted our connection or a server message was applied.
    #[serde(default)]
    pub last_contact: Option<DateTime<Utc>>,
}

/// The store of one agent.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    state: Mutex<State>,
    outbox: Mutex<HashMap<Uuid, Event>>,
    write_lock: tokio::sync::Mutex<()>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AgentError + '_ {
    move |e| AgentError::io(path, e)
}

/// Write `bytes` to `path` so that after a crash the file holds either the old or the new content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AgentError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// `fsync` a directory so a rename or delete in it is durable.
pub fn sync_dir(dir: &Path) -> Result<(), AgentError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

impl Store {
    /// Open (creating if needed) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Arc<Store>, AgentError> {
        let outbox_dir = data_dir.join("outbox");
        std::fs::create_dir_all(&outbox_dir).map_err(io(&outbox_dir))?;
        let cache_dir = data_dir.join("cache");
        std::fs::create_dir_all(&cache_dir).map_err(io(&cache_dir))?;
        let state_path = data_dir.join("state.json");
        let mut state: State = match std::fs::read(&state_path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| AgentError::Store(format!("{}: {e}", state_path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(AgentError::io(&state_path, e)),
        };
        if state.install_id.is_none() {
            // Written with the session counter, before the first connection.
            state.install_id = Some(Uuid::new_v4().simple().to_string());
        }
        let mut outbox = HashMap::new();
        for entry in std::fs::read_dir(&outbox_dir).map_err(io(&outbox_dir))? {
            let entry = entry.map_err(io(&outbox_dir))?;
            let p = entry.path();
            if p.extension().and_then(|e| e.to_str()) != Some("json") {
                // A `.tmp` left by a crash mid-write: the event was never recorded.
                let _ = std::fs::remove_file(&p);
                continue;
            }
            match std::fs::read(&p)
                .ok()
                .and_then(|b| serde_json::from_slice::<Event>(&b).ok())
            {
                Some(ev) => {
                    // A proof of play in the outbox is a reported occurrence, even if the crash
                    // came before `state.json` said so.
                    if let EventBody::Play(p) = &ev.body {
                        state.handled.insert(p.item_id.clone(), p.occurrence_at);
                    }
                    outbox.insert(ev.id, ev);
                }
                None => {
                    tracing::warn!(file = %p.display(), "unreadable outbox entry removed");
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
        Ok(Arc::new(Store {
            dir: data_dir.to_path_buf(),
            state: Mutex::new(state),
            outbox: Mutex::new(outbox),
            write_lock: tokio::sync::Mutex::new(()),
        }))
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A copy of the state.
    pub fn snapshot(&self) -> State {
        self.state.lock().expect("state lock").clone()
    }

    /// Read something from the state without copying it all.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.state.lock().expect("state lock"))
    }

    /// Change the state and write it durably before returning.
    pub async fn modify<R>(&self, f: impl FnOnce(&mut State) -> R) -> Result<R, AgentError> {
        let _w = self.write_lock.lock().await;
        let (r, bytes) = {
            let mut s = self.state.lock().expect("state lock");
            let r = f(&mut s);
            (r, serde_json::to_vec(&*s).expect("state serialises"))
        };
        let path = self.dir.join("state.json");
        tokio::task::spawn_blocking(move || write_atomic(&path, &bytes))
            .await
            .map_err(|e| AgentError::Store(e.to_string()))??;
        Ok(r)
    }

    /// Record an event durably in the outbox.
    pub async fn outbox_put(&self, event: Event) -> Result<(), AgentError> {
        let path = self.dir.join("outbox").join(format!("{}.json", event.id));
        let bytes = serde_json::to_vec(&event).expect("event serialises");
        tokio::task::spawn_blocking(move || write_atomic(&path, &bytes))
            .await
            .map_err(|e| AgentError::Store(e.to_string()))??;
        self.outbox.lock().expect("outbox lock").insert(event.id, event);
        Ok(())
    }

    /// Remove events the broker has acknowledged.
    pub async fn outbox_remove(&self, ids: Vec<Uuid>) -> Result<(), AgentError> {
        {
            let mut o = self.outbox.lock().expect("outbox lock");
            for id in &ids {
                o.remove(id);
            }
        }
        let dir = self.dir.join("outbox");
        tokio::task::spawn_blocking(move || {
            for id in ids {
                let p = dir.join(format!("{id}.json"));
                match std::fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(AgentError::io(p, e)),
                }
            }
            sync_dir(&dir)
        })
        .await
        .map_err(|e| AgentError::Store(e.to_string()))?
    }

    /// Events waiting, oldest first.
    pub fn outbox_events(&self) -> Vec<Event> {
        let mut v: Vec<Event> = self
            .outbox
            .lock()
            .expect("outbox lock")
            .values()
            .cloned()
            .collect();
        v.sort_by_key(|e| (e.at, e.id));
        v
    }

    /// Whether an event is still in the outbox.
    pub fn outbox_contains(&self, id: &Uuid) -> bool {
        self.outbox.lock().expect("outbox lock").contains_key(id)
    }

    /// Number of events waiting.
    pub fn outbox_len(&self) -> usize {
        self.outbox.lock().expect("outbox lock").len()
    }

    /// Record a proof of play: first the event in the outbox, then the occurrence as handled.
    /// A crash in between is repaired by [`Store::open`], which treats proofs in the outbox as
    /// handled occurrences.
    pub async fn record_play(&self, event: Event) -> Result<(), AgentError> {
        let (item_id, at) = match &event.body {
            EventBody::Play(p) => (p.item_id.clone(), p.occurrence_at),
            _ => return self.outbox_put(event).await,
        };
        self.outbox_put(event).await?;
        self.modify(|s| {
            s.handled.insert(item_id.clone(), at);
            if s.playing.as_ref().is_some_and(|p| p.item_id == item_id) {
                s.playing = None;
            }
            let horizon = Utc::now() - chrono::Duration::days(HANDLED_RETENTION_DAYS);
            s.handled.retain(|_, t| *t > horizon);
        })
        .await
    }

    /// Whether an occurrence was already reported.
    pub fn is_handled(&self, item_id: &str) -> bool {
        self.read(|s| s.handled.contains_key(item_id))
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_install_id_is_made_once_per_data_directory() {
        let a = tempfile::tempdir().unwrap();
        let s = super::Store::open(a.path()).unwrap();
        let id = s.read(|st| st.install_id.clone()).expect("an install id");
        s.modify(|st| st.session += 1).await.unwrap();
        drop(s);
        let again = super::Store::open(a.path()).unwrap();
        assert_eq!(again.read(|st| st.install_id.clone()), Some(id.clone()));
        // A reinstall: a fresh data directory, a new id.
        let b = tempfile::tempdir().unwrap();
        let fresh = super::Store::open(b.path()).unwrap();
        assert_ne!(fresh.read(|st| st.install_id.clone()), Some(id));
    }
}
