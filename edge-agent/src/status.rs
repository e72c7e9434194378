//! What the agent knows about itself right now (shared by the player and the link for
//! telemetry), and the offline `nguon-agent status` report read from the store on disk.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};
use nguon_protocol::NowPlaying;

use crate::cache;
use crate::store::State;

/// Live status of a running agent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveStatus {
    /// Connected to the broker.
    pub connected: bool,
    /// Current session counter.
    pub session: u64,
    /// Volume 0–100.
    pub volume: u8,
    /// What is playing.
    pub now_playing: Option<NowPlaying>,
    /// Version of the applied manifest.
    pub manifest_version: Option<u64>,
    /// Last clock offset estimate (device − server), ms.
    pub clock_offset_ms: Option<i64>,
    /// Last contact with the broker.
    pub last_contact: Option<DateTime<Utc>>,
    /// The broker connected to (`mqtt://host:port`), or last tried.
    pub broker: Option<String>,
}

/// Space on the file system holding `path` (statvfs): bytes free to an unprivileged process
/// (`f_bavail`) and the file system's size; `None` when it cannot be read.
pub fn disk_space(path: &Path) -> Option<DiskSpace> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` is a properly sized out-parameter.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return None;
        }
        let frsize = st.f_frsize as u64;
        Some(DiskSpace {
            free: (st.f_bavail as u64).saturating_mul(frsize),
            total: (st.f_blocks as u64).saturating_mul(frsize),
        })
    }
}

/// Free and total bytes of a file system ([`disk_space`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    /// Bytes free to an unprivileged process.
    pub free: u64,
    /// Size of the file system.
    pub total: u64,
}

/// The text printed by `nguon-agent status`, read from the data directory without the agent.
pub fn render(data_dir: &Path, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let state: State = std::fs::read(data_dir.join("state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let _ = writeln!(out, "data dir: {}", data_dir.display());
    let _ = writeln!(out, "session: {}", state.session);
    let _ = writeln!(
        out,
        "last contact: {}",
        state
            .last_contact
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| "never".into())
    );
    match &state.manifest {
        Some(m) => {
            let _ = writeln!(
                out,
                "manifest: version {} (message {}), window {} – {}",
                m.manifest.version, m.message_id, m.manifest.window_start, m.manifest.window_end
            );
            let mut next: Vec<_> = m
                .manifest
                .items
                .iter()
                .filter(|i| i.starts_at >= now && !state.handled.contains_key(&i.id))
                .collect();
            next.sort_by_key(|i| i.starts_at);
            let _ = writeln!(out, "next items ({}):", next.len());
            for i in next.iter().take(20) {
                let _ = writeln!(
                    out,
                    "  {}  {:<9}  {}  {}",
                    i.starts_at.to_rfc3339(),
                    i.priority.as_str(),
                    i.id,
                    i.title
                );
            }
        }
        None => {
            let _ = writeln!(out, "manifest: none applied");
        }
    }
    let outbox = std::fs::read_dir(data_dir.join("outbox"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().extension().and_then(|x| x.to_str()) == Some("json"))
                .count()
        })
        .unwrap_or(0);
    let _ = writeln!(out, "outbox: {outbox} event(s) waiting");
    let mut entries = cache::list(&data_dir.join("cache"));
    entries.sort_by_key(|e| std::cmp::Reverse(e.used));
    let total: u64 = entries.iter().map(|e| e.size).sum();
    let _ = writeln!(out, "cache: {} file(s), {} bytes", entries.len(), total);
    for e in entries {
        let used: DateTime<Utc> = e.used.into();
        let _ = writeln!(out, "  {}  {:>10}  used {}", e.sha256, e.size, used.to_rfc3339());
    }
    out
}
