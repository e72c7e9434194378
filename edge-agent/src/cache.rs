//! The media cache, addressed by sha256: `cache/<sha256>` holds only verified files. Downloads go
//! to `cache/<sha256>.part` and resume from its length with an HTTP `Range` request; the whole
//! file is hashed before an atomic rename. Files are hashed again before every play, so a file
//! damaged on disk is deleted, reported and fetched again, never played. Eviction is least
//! recently used (file mtime, touched on use) under `storage.cache_max_mb`, and never removes a
//! file the look-ahead window needs. A fetch that fails for a reason that may pass (network,
//! 5xx, 408, 429) is tried again with exponential backoff and jitter ([`Cache::ensure_until`]).
//!
//! Sources (issue 14, "the storm"): a file named by a relative URL is fetched from the media
//! mirrors of `media.mirrors` (starting at the one the device id picks) and from the server last
//! (`MediaSection::media_bases`). Within one attempt a failing source (refused, 404, 5xx, wrong
//! bytes) hands over to the next; the source that last worked is asked first for
//! [`STICKY`], then the device's own first choice again. The sha256 check makes every source
//! untrusted alike.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use nguon_protocol::{EventBody, MediaRef};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::AgentError;
use crate::report::{AgentEventKind, Reporter};
use crate::store::sync_dir;

/// Bytes written between two `fsync`s of a `.part` file.
const SYNC_EVERY: u64 = 1 << 20;

/// The longest wait between two attempts at a media file.
pub const RETRY_MAX: Duration = Duration::from_secs(60);

/// How long a device keeps asking the source that worked after its first choice failed.
pub const STICKY: Duration = Duration::from_secs(300);

/// The wait before retry `attempt` (0-based) of a media fetch: random between half and all of
/// 0.5 s · 2^attempt, at most [`RETRY_MAX`] (the link's reconnect backoff), so that a fleet whose
/// server failed does not come back in step.
pub fn retry_wait(attempt: u32) -> Duration {
    crate::link::backoff::backoff(attempt, RETRY_MAX)
}

/// One cached file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// Content hash (the file name).
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Last use.
    pub used: SystemTime,
}

/// The cache of one agent.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    max_bytes: u64,
    base_url: String,
    /// Where media files are fetched from, in the device's order (mirrors, then the server).
    bases: Vec<String>,
    /// The source that worked after the first choice failed, and since when.
    preferred: Mutex<Option<(usize, Instant)>>,
    http: reqwest::Client,
    reporter: Arc<Reporter>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Whether a string is a lowercase hex sha256 (and therefore a safe file name).
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Hash a file.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

async fn hash_async(path: PathBuf) -> std::io::Result<String> {
    tokio::task::spawn_blocking(move || sha256_file(&path))
        .await
        .map_err(std::io::Error::other)?
}

/// The files in a cache directory (verified files only; `.part` excluded).
pub fn list(dir: &Path) -> Vec<CacheEntry> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !is_sha256(&name) {
                continue;
            }
            if let Ok(m) = e.metadata() {
                v.push(CacheEntry {
                    sha256: name,
                    size: m.len(),
                    used: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                });
            }
        }
    }
    v
}

impl Cache {
    /// A cache in `dir`: other URLs resolve against `base_url` (the server), media files are
    /// fetched from `bases` in order (empty: the server alone).
    pub fn new(
        dir: PathBuf,
        max_bytes: u64,
        base_url: String,
        bases: Vec<String>,
        http: reqwest::Client,
        reporter: Arc<Reporter>,
    ) -> Self {
        let bases = if bases.is_empty() {
            vec![base_url.clone()]
        } else {
            bases
        };
        Self {
            dir,
            max_bytes,
            base_url,
            bases,
            preferred: Mutex::new(None),
            http,
            reporter,
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// Where a verified file lives.
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(sha256)
    }

    /// Bytes used by verified files.
    pub fn usage(&self) -> u64 {
        list(&self.dir).iter().map(|e| e.size).sum()
    }

    fn lock_for(&self, sha: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .expect("cache locks")
            .entry(sha.to_string())
            .or_default()
            .clone()
    }

    /// The URLs to try for `m`, with the index of their source: an absolute URL as given; a
    /// relative one on each source, from the preferred one ([`STICKY`]) round.
    fn urls(&self, m: &MediaRef) -> Vec<(Option<usize>, String)> {
        if m.url.starts_with("http://") || m.url.starts_with("https://") {
            return vec![(None, m.url.clone())];
        }
        let n = self.bases.len();
        let start = match *self.preferred.lock().expect("cache preferred") {
            Some((i, since)) if since.elapsed() < STICKY && i < n => i,
            _ => 0,
        };
        (0..n)
            .map(|k| (start + k) % n)
            .map(|i| (Some(i), join(&self.bases[i], &m.url)))
            .collect()
    }

    /// Remember the source that worked (none: the device's first choice).
    fn worked(&self, source: Option<usize>) {
        let Some(i) = source else { return };
        let mut p = self.preferred.lock().expect("cache preferred");
        *p = match *p {
            _ if i == 0 => None,
            Some((j, since)) if j == i => Some((j, since)),
            _ => Some((i, Instant::now())),
        };
    }

    /// A URL as given (absolute) or relative to `server.base_url`.
    pub fn resolve(&self, url: &str) -> String {
        if url.starts_with("http://") || url.starts_with("https://") {
            url.to_string()
        } else {
            join(&self.base_url, url)
        }
    }

    /// The agent's HTTP client (also used for live streams).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Make sure a verified copy of `m` is in the cache (hashing the cached copy, fetching it
    /// if absent or damaged) and return its path. A failure is reported (`media_error`).
    pub async fn ensure(&self, m: &MediaRef) -> Result<PathBuf, AgentError> {
        let r = self.fetch(m).await;
        if let Err(e) = &r {
            self.failed(&m.sha256, e).await;
        }
        r
    }

    /// [`Cache::ensure`], trying again after a transient failure ([`AgentError::is_transient`])
    /// with exponential backoff and jitter ([`retry_wait`]) as long as the next attempt would
    /// start before `until`. Only the last failure is reported.
    pub async fn ensure_until(&self, m: &MediaRef, until: Instant) -> Result<PathBuf, AgentError> {
        let mut attempt = 0;
        loop {
            let e = match self.fetch(m).await {
                Ok(p) => return Ok(p),
                Err(e) => e,
            };
            let wait = retry_wait(attempt);
            if !e.is_transient() || Instant::now() + wait >= until {
                self.failed(&m.sha256, &e).await;
                return Err(e);
            }
            tracing::warn!(sha256 = %m.sha256, error = %e, wait_ms = wait.as_millis() as u64, "media fetch failed; trying again");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// One attempt at a verified copy of `m` (hashing the cached copy, fetching it if absent or
    /// damaged), its path; a failure is not reported (see [`Cache::failed`]), a damaged cached
    /// file is.
    pub async fn fetch(&self, m: &MediaRef) -> Result<PathBuf, AgentError> {
        let sha = m.sha256.as_str();
        if !is_sha256(sha) {
            return Err(AgentError::Media {
                sha256: sha.to_string(),
                reason: "not a lowercase hex sha256".into(),
            });
        }
        let lock = self.lock_for(sha);
        let _g = lock.lock().await;
        let path = self.path(sha);
        if path.exists() {
            match hash_async(path.clone()).await {
                Ok(h) if h == sha => {
                    touch(&path);
                    return Ok(path);
                }
                Ok(h) => {
                    let reason = format!("cached file failed verification (sha256 {h}); fetching again");
                    tracing::warn!(sha256 = sha, "{reason}");
                    let _ = std::fs::remove_file(&path);
                    self.media_error(sha, reason).await;
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&path);
                    self.media_error(sha, format!("cached file unreadable ({e}); fetching again"))
                        .await;
                }
            }
        }
        self.download(m).await?;
        self.reporter.observe(AgentEventKind::MediaReady {
            sha256: sha.to_string(),
        });
        Ok(path)
    }

    /// Report that `sha` could not be had: a `media_error` event and the observers.
    pub async fn failed(&self, sha: &str, e: &AgentError) {
        self.media_error(sha, e.to_string()).await;
    }

    async fn media_error(&self, sha: &str, reason: String) {
        self.reporter.observe(AgentEventKind::MediaError {
            sha256: sha.to_string(),
            reason: reason.clone(),
        });
        if let Err(e) = self
            .reporter
            .report(EventBody::MediaError {
                sha256: sha.to_string(),
                reason,
            })
            .await
        {
            tracing::error!(error = %e, "cannot record media error");
        }
    }

    /// Fetch `m` from its sources in turn until one gives the right bytes; the last failure.
    async fn download(&self, m: &MediaRef) -> Result<(), AgentError> {
        let urls = self.urls(m);
        let mut last = None;
        for (k, (source, url)) in urls.iter().enumerate() {
            match self.download_from(m, url).await {
                Ok(()) => {
                    self.worked(*source);
                    return Ok(());
                }
                Err(e) => {
                    if k + 1 < urls.len() {
                        tracing::warn!(sha256 = %m.sha256, %url, error = %e, "media source failed; trying the next");
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.expect("a file has at least one source"))
    }

    async fn download_from(&self, m: &MediaRef, url: &str) -> Result<(), AgentError> {
        let sha = &m.sha256;
        let merr = |reason: String| AgentError::Media {
            sha256: sha.clone(),
            reason,
        };
        let part = self.dir.join(format!("{sha}.part"));
        let mut have = tokio::fs::metadata(&part).await.map(|m| m.len()).unwrap_or(0);
        if have > m.size {
            let _ = tokio::fs::remove_file(&part).await;
            have = 0;
        }
        let url = url.to_string();
        if have < m.size || m.size == 0 {
            let mut req = self.http.get(&url);
            if have > 0 {
                req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
            }
            let mut resp = req.send().await?;
            let status = resp.status();
            let append = if status == reqwest::StatusCode::PARTIAL_CONTENT {
                true
            } else if status.is_success() {
                have = 0;
                false
            } else if status == reqwest::StatusCode::RANGE_NOT_SATISFIABLE {
                true
            } else {
                return Err(AgentError::MediaStatus {
                    sha256: sha.clone(),
                    url,
                    status: status.as_u16(),
                });
            };
            tracing::info!(sha256 = %sha, from = have, %url, "downloading");
            let mut f = tokio::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(append)
                .truncate(!append)
                .open(&part)
                .await
                .map_err(|e| AgentError::io(&part, e))?;
            let mut since_sync = 0u64;
            if status != reqwest::StatusCode::RANGE_NOT_SATISFIABLE {
                while let Some(chunk) = resp.chunk().await? {
                    have += chunk.len() as u64;
                    if have > m.size && m.size > 0 {
                        drop(f);
                        let _ = tokio::fs::remove_file(&part).await;
                        return Err(merr(format!("server sent more than {} bytes", m.size)));
                    }
                    f.write_all(&chunk).await.map_err(|e| AgentError::io(&part, e))?;
                    since_sync += chunk.len() as u64;
                    if since_sync >= SYNC_EVERY {
                        f.sync_data().await.map_err(|e| AgentError::io(&part, e))?;
                        since_sync = 0;
                    }
                }
            }
            f.sync_all().await.map_err(|e| AgentError::io(&part, e))?;
        }
        let h = hash_async(part.clone())
            .await
            .map_err(|e| AgentError::io(&part, e))?;
        if &h != sha {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(merr(format!("downloaded file has sha256 {h}; discarded")));
        }
        let path = self.path(sha);
        tokio::fs::rename(&part, &path)
            .await
            .map_err(|e| AgentError::io(&path, e))?;
        let dir = self.dir.clone();
        let _ = tokio::task::spawn_blocking(move || sync_dir(&dir)).await;
        tracing::info!(sha256 = %sha, bytes = have, "media verified and cached");
        Ok(())
    }

    /// Remove least recently used files until the cache fits, keeping everything in `protect`.
    pub fn evict(&self, protect: &HashSet<String>) -> Vec<String> {
        let mut entries = list(&self.dir);
        let mut total: u64 = entries.iter().map(|e| e.size).sum();
        entries.sort_by_key(|e| e.used);
        let mut removed = Vec::new();
        for e in entries {
            if total <= self.max_bytes {
                break;
            }
            if protect.contains(&e.sha256) {
                continue;
            }
            if std::fs::remove_file(self.path(&e.sha256)).is_ok() {
                total -= e.size;
                tracing::info!(sha256 = %e.sha256, bytes = e.size, "evicted from cache");
                removed.push(e.sha256);
            }
        }
        removed
    }
}

/// `path` on `base`.
fn join(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
}

fn touch(path: &Path) {
    if let Ok(f) = std::fs::File::options().append(true).open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}
