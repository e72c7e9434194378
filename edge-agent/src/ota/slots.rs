//! The agent's binaries on disk (A/B with a history of one), in `<data_dir>/bin/`:
//!
//! - `agent-<version>`: an installed, verified binary (mode 0755);
//! - `current` → `agent-<version>`: what the launcher runs (absent: the packaged binary itself);
//! - `previous` → `agent-<version>`: what ran before the last installation (absent: the
//!   packaged binary), where a rollback goes;
//! - `trial.json`: the version installed last, not yet confirmed: its rollout, the deadline of its
//!   confirmation and how many times the launcher started it;
//! - `reports.json`: update reports written where no outbox is open (by the launcher), moved into
//!   the outbox by the next agent that starts;
//! - `refused`: sha256 of builds never to install again (they rolled back or failed their checks).
//!
//! Every switch is atomic: a new symlink is made beside the old one and renamed over it, and the
//! directory is synced. Plain `std::fs`, so the launcher uses it before any runtime exists.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use nguon_protocol::UpdateState;
use serde::{Deserialize, Serialize};

/// Starts of a trial version after which, unconfirmed, it is rolled back.
pub const MAX_TRIAL_STARTS: u32 = 3;

/// A version on trial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trial {
    /// The rollout that installed it.
    pub rollout: String,
    /// Its version.
    pub version: String,
    /// Its build's sha256.
    pub sha256: String,
    /// It must confirm itself before this instant.
    pub deadline: DateTime<Utc>,
    /// How many times the launcher started it.
    pub starts: u32,
}

/// An update report waiting for an outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReport {
    /// The rollout.
    pub rollout: String,
    /// The version concerned.
    pub version: String,
    /// The step.
    pub state: UpdateState,
    /// Why.
    pub reason: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// The `bin` directory of a data directory.
#[derive(Debug, Clone)]
pub struct Slots {
    dir: PathBuf,
}

fn sync(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl Slots {
    /// The slots of `data_dir` (`<data_dir>/bin`, created when first written).
    pub fn new(data_dir: &Path) -> Slots {
        Slots {
            dir: data_dir.join("bin"),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of an installed version.
    pub fn binary(&self, version: &str) -> PathBuf {
        self.dir.join(format!("agent-{version}"))
    }

    fn write_atomic(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.dir.join(name))?;
        sync(&self.dir)
    }

    fn read_json<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Option<T> {
        let bytes = std::fs::read(self.dir.join(name)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn remove(&self, name: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => sync(&self.dir).or(Ok(())),
        }
    }

    /// The version a link (`current`, `previous`) points to; `None` when absent (the packaged
    /// binary).
    pub fn link(&self, name: &str) -> Option<String> {
        let target = std::fs::read_link(self.dir.join(name)).ok()?;
        let file = target.file_name()?.to_str()?;
        file.strip_prefix("agent-").map(str::to_string)
    }

    /// Point `name` at `version` (`None`: remove it), atomically.
    pub fn set_link(&self, name: &str, version: Option<&str>) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let Some(v) = version else {
            return self.remove(name);
        };
        let tmp = self.dir.join(format!(".{name}.link"));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(format!("agent-{v}"), &tmp)?;
        std::fs::rename(&tmp, self.dir.join(name))?;
        sync(&self.dir)
    }

    /// The version on trial, if any.
    pub fn trial(&self) -> Option<Trial> {
        self.read_json("trial.json")
    }

    /// Write the trial.
    pub fn set_trial(&self, t: &Trial) -> std::io::Result<()> {
        self.write_atomic("trial.json", &serde_json::to_vec(t).expect("trial serialises"))
    }

    /// The trial is over (confirmed or rolled back).
    pub fn end_trial(&self) -> std::io::Result<()> {
        self.remove("trial.json")
    }

    /// Reports waiting for an outbox.
    pub fn pending(&self) -> Vec<PendingReport> {
        self.read_json("reports.json").unwrap_or_default()
    }

    /// Add a report for the next agent to send.
    pub fn push_pending(&self, r: PendingReport) -> std::io::Result<()> {
        let mut all = self.pending();
        all.push(r);
        self.write_atomic(
            "reports.json",
            &serde_json::to_vec(&all).expect("reports serialise"),
        )
    }

    /// The reports were moved into an outbox.
    pub fn clear_pending(&self) -> std::io::Result<()> {
        self.remove("reports.json")
    }

    /// Whether a build was refused before.
    pub fn is_refused(&self, sha256: &str) -> bool {
        std::fs::read_to_string(self.dir.join("refused")).is_ok_and(|s| s.lines().any(|l| l.trim() == sha256))
    }

    /// Never install this build again.
    pub fn refuse(&self, sha256: &str) -> std::io::Result<()> {
        if self.is_refused(sha256) {
            return Ok(());
        }
        let mut s = std::fs::read_to_string(self.dir.join("refused")).unwrap_or_default();
        s.push_str(sha256);
        s.push('\n');
        self.write_atomic("refused", s.as_bytes())
    }

    /// Make `version` (already written at [`Slots::binary`]) current on trial: `previous` takes
    /// what `current` was, then the trial is written, then `current` switches.
    pub fn install(&self, trial: &Trial) -> std::io::Result<()> {
        let was = self.link("current");
        self.set_link("previous", was.as_deref())?;
        self.set_trial(trial)?;
        self.set_link("current", Some(&trial.version))
    }

    /// Go back from the trial to `previous`: `current` switches back, the build is refused and
    /// its binary removed, the trial ends and a `rolled_back` report waits for the next agent.
    pub fn roll_back(&self, trial: &Trial, reason: String, now: DateTime<Utc>) -> std::io::Result<()> {
        let previous = self.link("previous");
        self.set_link("current", previous.as_deref())?;
        self.refuse(&trial.sha256)?;
        self.push_pending(PendingReport {
            rollout: trial.rollout.clone(),
            version: trial.version.clone(),
            state: UpdateState::RolledBack,
            reason: Some(reason),
            at: now,
        })?;
        self.end_trial()?;
        if previous.as_deref() != Some(trial.version.as_str()) {
            let _ = std::fs::remove_file(self.binary(&trial.version));
        }
        Ok(())
    }

    /// Remove installed binaries other than `current` and `previous` (after a confirmation).
    pub fn prune(&self) {
        let keep: Vec<String> = ["current", "previous"]
            .iter()
            .filter_map(|l| self.link(l))
            .map(|v| format!("agent-{v}"))
            .collect();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("agent-") && !keep.contains(&name) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// What the launcher does at a start, decided from the slots (see [`super::launch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run the packaged binary itself.
    RunSelf,
    /// Run this installed version.
    Run(String),
}

/// The launcher's decision at a start, after counting the start of a trial and rolling back a
/// trial past its deadline or its [`MAX_TRIAL_STARTS`].
pub fn decide(slots: &Slots, now: DateTime<Utc>) -> std::io::Result<Decision> {
    if let Some(mut t) = slots.trial() {
        t.starts += 1;
        if now > t.deadline {
            let why = format!(
                "version {} did not confirm itself before {} ({} starts)",
                t.version,
                t.deadline.format("%Y-%m-%dT%H:%M:%SZ"),
                t.starts - 1
            );
            slots.roll_back(&t, why, now)?;
        } else if t.starts > MAX_TRIAL_STARTS {
            let why = format!(
                "version {} was started {MAX_TRIAL_STARTS} times without confirming itself",
                t.version
            );
            slots.roll_back(&t, why, now)?;
        } else {
            slots.set_trial(&t)?;
        }
    }
    Ok(match slots.link("current") {
        Some(v) if slots.binary(&v).is_file() => Decision::Run(v),
        _ => Decision::RunSelf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(v: &str, deadline: DateTime<Utc>) -> Trial {
        Trial {
            rollout: "r1".into(),
            version: v.into(),
            sha256: format!("sha-{v}"),
            deadline,
            starts: 0,
        }
    }

    #[test]
    fn a_trial_that_never_confirms_goes_back_to_the_previous_binary_and_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = Slots::new(dir.path());
        let now = Utc::now();
        assert_eq!(decide(&s, now).unwrap(), Decision::RunSelf);
        // First update: from the packaged binary to 2.0.
        std::fs::create_dir_all(s.dir()).unwrap();
        std::fs::write(s.binary("2.0"), b"x").unwrap();
        s.install(&trial("2.0", now + chrono::Duration::minutes(5)))
            .unwrap();
        assert_eq!(s.link("current").as_deref(), Some("2.0"));
        assert_eq!(s.link("previous"), None);
        for _ in 0..MAX_TRIAL_STARTS {
            assert_eq!(decide(&s, now).unwrap(), Decision::Run("2.0".into()));
        }
        // One start too many: back to the packaged binary, reported and refused.
        assert_eq!(decide(&s, now).unwrap(), Decision::RunSelf);
        assert!(s.trial().is_none());
        assert!(s.is_refused("sha-2.0"));
        assert!(!s.binary("2.0").exists());
        let p = s.pending();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].state, UpdateState::RolledBack);
        assert!(p[0].reason.as_deref().unwrap().contains("3 times"), "{p:?}");
    }

    #[test]
    fn a_confirmed_version_stays_and_a_late_trial_rolls_back_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let s = Slots::new(dir.path());
        let now = Utc::now();
        std::fs::create_dir_all(s.dir()).unwrap();
        std::fs::write(s.binary("2.0"), b"x").unwrap();
        s.install(&trial("2.0", now + chrono::Duration::minutes(5)))
            .unwrap();
        s.end_trial().unwrap(); // confirmed
        std::fs::write(s.binary("3.0"), b"y").unwrap();
        s.install(&trial("3.0", now - chrono::Duration::seconds(1)))
            .unwrap();
        assert_eq!(s.link("previous").as_deref(), Some("2.0"));
        assert_eq!(decide(&s, now).unwrap(), Decision::Run("2.0".into()));
        assert!(
            s.pending()[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("did not confirm")
        );
        s.clear_pending().unwrap();
        assert!(s.pending().is_empty());
        assert_eq!(decide(&s, now).unwrap(), Decision::Run("2.0".into()));
    }
}
