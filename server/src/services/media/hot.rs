//! Approved media files held in memory (issue 14, "the storm"): an emergency makes every device
//! fetch the same clip at once, and each request opened, stat'ed and read the file through
//! tokio's blocking thread pool (one hop per call: 10,000 requests at once meant thousands of
//! blocking tasks on two cores). An approved file of at most an eighth of the budget is read once
//! (one load at a time: the first request reads it, the others wait and share it) and served
//! from memory by every later request, like nginx's `open_file_cache` with the bytes.
//!
//! A content address never changes its bytes, so nothing held is ever stale; the budget
//! (`server.media_memory_mb`, 0 turns this off) is kept by dropping the least recently served
//! files. Drafts and other private files are always read from disk.

use std::path::Path;
use std::sync::Mutex;

use bytes::Bytes;
use hashlink::LinkedHashMap;

use super::files::{self, MediaFile};
use crate::domain::media::is_sha;
use crate::error::Result;

/// The files held, within a byte budget.
#[derive(Debug)]
pub struct HotFiles {
    budget: u64,
    held: Mutex<Held>,
    loading: tokio::sync::Mutex<()>,
}

/// The files, least recently served first, and their bytes in all.
#[derive(Debug, Default)]
struct Held {
    files: LinkedHashMap<String, Bytes>,
    bytes: u64,
}

impl HotFiles {
    /// Hold at most `budget` bytes (0: nothing is held).
    pub fn new(budget: u64) -> HotFiles {
        HotFiles {
            budget,
            held: Mutex::new(Held::default()),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    /// The largest file held.
    pub fn max_file(&self) -> u64 {
        self.budget / 8
    }

    /// Bytes held now.
    pub fn held_bytes(&self) -> u64 {
        self.held.lock().map(|h| h.bytes).unwrap_or(0)
    }

    fn get(&self, sha: &str) -> Option<Bytes> {
        let mut held = self.held.lock().ok()?;
        held.files.to_back(sha).cloned()
    }

    fn put(&self, sha: &str, bytes: Bytes) {
        let Ok(mut held) = self.held.lock() else { return };
        if let Some(old) = held.files.remove(sha) {
            held.bytes -= old.len() as u64;
        }
        while held.bytes + bytes.len() as u64 > self.budget {
            let Some((_, oldest)) = held.files.pop_front() else {
                break;
            };
            held.bytes -= oldest.len() as u64;
        }
        held.bytes += bytes.len() as u64;
        held.files.insert(sha.to_string(), bytes);
    }

    /// The approved file of content address `sha` under `data_dir`: from memory, or read into it
    /// when it fits, else opened on disk; `None` when it is not stored.
    pub async fn open(&self, data_dir: &Path, sha: &str) -> Result<Option<MediaFile>> {
        if !is_sha(sha) {
            return Ok(None);
        }
        if let Some(b) = self.get(sha) {
            return Ok(Some(MediaFile::memory(b)));
        }
        if self.budget == 0 {
            return files::open(data_dir, sha).await;
        }
        let _one_load = self.loading.lock().await;
        if let Some(b) = self.get(sha) {
            return Ok(Some(MediaFile::memory(b)));
        }
        let Some(file) = files::open(data_dir, sha).await? else {
            return Ok(None);
        };
        if file.len > self.max_file() {
            return Ok(Some(file));
        }
        let bytes = file.read_all().await?;
        self.put(sha, bytes.clone());
        Ok(Some(MediaFile::memory(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_within_an_eighth_of_the_budget_are_held_and_the_least_recently_served_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let media = dir.path().join("media");
        std::fs::create_dir_all(&media).unwrap();
        let sha = |n: u8| format!("{n:02x}").repeat(32);
        for n in 1..=10u8 {
            std::fs::write(media.join(sha(n)), vec![n; 100]).unwrap();
        }
        std::fs::write(media.join(sha(11)), vec![11; 101]).unwrap();
        let hot = HotFiles::new(800);
        let bytes = |f: Option<MediaFile>| async move { f.unwrap().read_all().await.unwrap() };
        assert_eq!(
            bytes(hot.open(dir.path(), &sha(1)).await.unwrap()).await.as_ref(),
            &[1u8; 100][..]
        );
        // Held: the bytes are served even once the file is gone from disk.
        std::fs::remove_file(media.join(sha(1))).unwrap();
        assert_eq!(
            bytes(hot.open(dir.path(), &sha(1)).await.unwrap()).await.len(),
            100
        );
        // Over an eighth of the budget: not held.
        assert_eq!(
            bytes(hot.open(dir.path(), &sha(11)).await.unwrap()).await.len(),
            101
        );
        assert_eq!(hot.held_bytes(), 100);
        // Beyond the budget the least recently served go: 1 was served first.
        for n in 2..=10u8 {
            hot.open(dir.path(), &sha(n)).await.unwrap().unwrap();
        }
        assert_eq!(hot.held_bytes(), 800);
        assert!(hot.get(&sha(1)).is_none() && hot.get(&sha(2)).is_none() && hot.get(&sha(10)).is_some());
        assert!(hot.open(dir.path(), &sha(1)).await.unwrap().is_none());
        assert!(hot.open(dir.path(), "../media").await.unwrap().is_none());
        // A budget of 0 holds nothing.
        let off = HotFiles::new(0);
        assert_eq!(
            bytes(off.open(dir.path(), &sha(3)).await.unwrap()).await.len(),
            100
        );
        assert_eq!(off.held_bytes(), 0);
    }
}
