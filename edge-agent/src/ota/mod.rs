//! Signed agent updates (issue 16, docs/ota.md), on the device.
//!
//! - [`launch`] runs first in `nguon-agent run`, before anything else: the packaged binary is
//!   the launcher. It counts the start of a version on trial and rolls it back when it is past
//!   its deadline or was started [`slots::MAX_TRIAL_STARTS`] times without confirming itself
//!   (a binary that cannot even start never gets to decide anything), then `exec`s the
//!   `current` version with `NGUON_AGENT_SLOT` set (a version that cannot be executed is rolled
//!   back at once). A version on trial is started with an `alarm(2)` set past its deadline, which
//!   survives the `exec`: a version that hangs before confirming itself is ended all the same.
//! - [`Updater`] runs inside the agent. When a verified manifest asks for another version it
//!   downloads the build for this architecture, checks its sha256 and the server's release
//!   signature, writes it beside the running one, makes it `current` on trial and asks the
//!   process to exit with [`EXIT_RESTART`], so systemd starts the launcher again. A version on
//!   trial confirms itself when it verifies a manifest from the server (it connected, subscribed
//!   and checked the server's signature); until then a watchdog thread ([`watch_trial`]) ends the
//!   process with [`EXIT_TRIAL_EXPIRED`] at the deadline, and the launcher rolls back.
//!
//! Every step is reported as an `agent_update` event.

pub mod slots;
pub mod version;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Utc;
use nguon_protocol::{AgentTarget, Arch, EventBody, UpdateState};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;

use crate::report::Reporter;
pub use slots::{Decision, Slots, Trial};
pub use version::version;

/// Exit status asking systemd to start the agent again, into the version just installed.
pub const EXIT_RESTART: u8 = 75;
/// Exit status of a version on trial that did not confirm itself before its deadline.
pub const EXIT_TRIAL_EXPIRED: i32 = 76;
/// The shortest time to confirm a device accepts from a manifest, seconds (the server sends a
/// rollout's minutes × 60, or `[ota] test_confirm_s`, 5–59, on a test installation).
pub const MIN_CONFIRM_S: u32 = 5;
/// Set for a version the launcher started (it does not launch again).
pub const SLOT_ENV: &str = "NGUON_AGENT_SLOT";

/// The launcher: decide what runs (see the module), and `exec` it when it is an installed
/// version. Returns only when this binary itself should run (or when a version launched already
/// runs). An installed version that cannot be executed is rolled back when on trial, else
/// skipped (the packaged binary runs).
pub fn launch(data_dir: &Path) {
    if std::env::var_os(SLOT_ENV).is_some() {
        return;
    }
    let slots = Slots::new(data_dir);
    loop {
        let decision = match slots::decide(&slots, Utc::now()) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, dir = %slots.dir().display(), "agent slots unreadable; running the packaged binary");
                return;
            }
        };
        let Decision::Run(v) = decision else { return };
        tracing::info!(version = %v, "launching the installed agent version");
        if let Some(t) = slots.trial().filter(|t| t.version == v) {
            arm_deadline(&t);
        }
        let err = exec(&slots.binary(&v), &v);
        disarm_deadline();
        tracing::error!(version = %v, error = %err, "cannot execute the installed agent version");
        match slots.trial().filter(|t| t.version == v) {
            Some(t) => {
                if let Err(e) =
                    slots.roll_back(&t, format!("version {v} cannot be executed: {err}"), Utc::now())
                {
                    tracing::error!(error = %e, "cannot roll back");
                    return;
                }
            }
            None => return,
        }
    }
}

fn exec(path: &Path, version: &str) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    std::process::Command::new(path)
        .args(std::env::args_os().skip(1))
        .env(SLOT_ENV, version)
        .exec()
}

/// A version on trial is started with an alarm set one to two seconds past its deadline: the timer
/// of `alarm(2)` survives `exec`, and `SIGALRM`'s default action ends the process. So a version
/// that hangs before it confirms itself or even before its own watchdog ([`watch_trial`]) runs,
/// or a binary that has none, is ended at the deadline all the same, and the launcher then rolls
/// it back. A version that confirms itself cancels the alarm ([`disarm_deadline`]).
fn arm_deadline(t: &Trial) {
    let left = (t.deadline - Utc::now()).to_std().unwrap_or_default();
    // Whole seconds, rounded up, plus one: the alarm comes at least a second after the
    // deadline, so the version's own watchdog (exit 76) goes first when it runs.
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0) + 1;
    let secs = u32::try_from(secs).unwrap_or(u32::MAX);
    tracing::info!(version = %t.version, seconds = secs, "on trial: the version is ended at its deadline unless it confirms itself");
    // SAFETY: alarm(2) only sets this process's real-time timer; it takes no pointers.
    unsafe { libc::alarm(secs) };
}

/// Cancel the launcher's trial alarm (a confirmed version, or an `exec` that failed).
pub fn disarm_deadline() {
    // SAFETY: as in `arm_deadline`; 0 cancels the pending alarm.
    unsafe { libc::alarm(0) };
}

/// The trial of this binary's version, if it is on one.
pub fn own_trial(data_dir: &Path) -> Option<Trial> {
    Slots::new(data_dir).trial().filter(|t| t.version == version())
}

/// On trial: a thread that ends the process with [`EXIT_TRIAL_EXPIRED`] at the deadline unless
/// the trial ended (confirmed) before. A thread of its own, so a stuck runtime cannot stop it.
pub fn watch_trial(data_dir: &Path, trial: Trial) {
    let slots = Slots::new(data_dir);
    std::thread::spawn(move || {
        let wait = (trial.deadline - Utc::now()).to_std().unwrap_or_default();
        std::thread::sleep(wait);
        if slots.trial().is_some_and(|t| t.version == trial.version) {
            tracing::error!(version = %trial.version, "not confirmed before the deadline; exiting so the launcher rolls back");
            std::process::exit(EXIT_TRIAL_EXPIRED);
        }
    });
}

/// Installs the versions the manifests ask for, and confirms this one when on trial.
#[derive(Debug)]
pub struct Updater {
    slots: Slots,
    server_key: ed25519_dalek::VerifyingKey,
    http: reqwest::Client,
    base_url: String,
    reporter: Arc<Reporter>,
    busy: AtomicBool,
    restart: Arc<Notify>,
}

impl Updater {
    /// An updater over `data_dir`; `restart` is notified once a version is installed.
    pub fn new(
        data_dir: &Path,
        server_key: ed25519_dalek::VerifyingKey,
        http: reqwest::Client,
        base_url: String,
        reporter: Arc<Reporter>,
        restart: Arc<Notify>,
    ) -> Updater {
        Updater {
            slots: Slots::new(data_dir),
            server_key,
            http,
            base_url,
            reporter,
            busy: AtomicBool::new(false),
            restart,
        }
    }

    /// Move the launcher's reports into the outbox.
    pub async fn send_pending(&self) {
        let pending = self.slots.pending();
        for p in &pending {
            self.report(&p.rollout, &p.version, p.state, p.reason.clone())
                .await;
        }
        if !pending.is_empty()
            && let Err(e) = self.slots.clear_pending()
        {
            tracing::error!(error = %e, "cannot clear the launcher's update reports");
        }
    }

    async fn report(&self, rollout: &str, version: &str, state: UpdateState, reason: Option<String>) {
        match state {
            UpdateState::Failed | UpdateState::RolledBack => {
                tracing::warn!(%rollout, %version, state = state.as_str(), ?reason, "agent update")
            }
            _ => tracing::info!(%rollout, %version, state = state.as_str(), "agent update"),
        }
        let body = EventBody::AgentUpdate {
            rollout: rollout.to_string(),
            version: version.to_string(),
            state,
            reason,
        };
        if let Err(e) = self.reporter.report(body).await {
            tracing::error!(error = %e, "cannot record an update report");
        }
    }

    /// A verified manifest arrived (applied now or before): confirm this version if it is on
    /// trial, then start installing the version it asks for, if another one.
    pub fn on_desired(self: &Arc<Self>, target: Option<AgentTarget>) {
        let me = self.clone();
        tokio::spawn(async move {
            me.confirm().await;
            if let Some(t) = target {
                me.consider(t).await;
            }
        });
    }

    async fn confirm(&self) {
        let Some(t) = self.slots.trial().filter(|t| t.version == version()) else {
            return;
        };
        if let Err(e) = self.slots.end_trial() {
            tracing::error!(error = %e, "cannot end the trial");
            return;
        }
        disarm_deadline();
        self.slots.prune();
        self.report(&t.rollout, &t.version, UpdateState::Confirmed, None)
            .await;
    }

    async fn consider(&self, t: AgentTarget) {
        if t.version == version() || self.slots.trial().is_some() {
            return;
        }
        let Some(arch) = Arch::of_this_build() else { return };
        let Some(build) = t.build_for(arch).cloned() else {
            let key = format!("no-build:{}:{arch}", t.rollout);
            if !self.slots.is_refused(&key) {
                let _ = self.slots.refuse(&key);
                let why = format!("release {} has no build for {arch}", t.version);
                self.report(&t.rollout, &t.version, UpdateState::Failed, Some(why))
                    .await;
            }
            return;
        };
        if self.slots.is_refused(&build.sha256) || self.busy.swap(true, Ordering::SeqCst) {
            return;
        }
        let outcome = self.install(&t, &build).await;
        self.busy.store(false, Ordering::SeqCst);
        match outcome {
            Ok(()) => self.restart.notify_one(),
            Err((why, refuse)) => {
                if refuse && let Err(e) = self.slots.refuse(&build.sha256) {
                    tracing::error!(error = %e, "cannot record a refused build");
                }
                self.report(&t.rollout, &t.version, UpdateState::Failed, Some(why))
                    .await;
            }
        }
    }

    /// Download, verify, write and switch; the error says why and whether the build is refused
    /// for good (a bad sha256 or signature) rather than tried again at the next manifest.
    async fn install(&self, t: &AgentTarget, b: &nguon_protocol::AgentBuild) -> Result<(), (String, bool)> {
        if !nguon_protocol::ota::valid_version(&t.version) {
            return Err((format!("`{}` is not a valid version", t.version), true));
        }
        self.report(&t.rollout, &t.version, UpdateState::Downloading, None)
            .await;
        let dir = self.slots.dir().to_path_buf();
        let part = dir.join(format!(".agent-{}.part", t.version));
        let sha = self.download(b, &part).await.map_err(|e| (e, false))?;
        let refuse = |why: String| {
            let _ = std::fs::remove_file(&part);
            (why, true)
        };
        if sha != b.sha256 {
            return Err(refuse(format!(
                "sha256 of the download is {sha}, the release says {}",
                b.sha256
            )));
        }
        if let Err(e) =
            nguon_protocol::ota::verify_release(&self.server_key, &t.version, b.arch, &sha, &b.signature)
        {
            return Err(refuse(format!("release signature refused: {e}")));
        }
        self.report(&t.rollout, &t.version, UpdateState::Verified, None)
            .await;
        let io = |e: std::io::Error| (format!("cannot install: {e}"), false);
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&part, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
        }
        std::fs::rename(&part, self.slots.binary(&t.version)).map_err(io)?;
        let trial = Trial {
            rollout: t.rollout.clone(),
            version: t.version.clone(),
            sha256: sha,
            deadline: Utc::now() + chrono::Duration::seconds(i64::from(t.confirm_s.max(MIN_CONFIRM_S))),
            starts: 0,
        };
        self.slots.install(&trial).map_err(io)?;
        self.report(&t.rollout, &t.version, UpdateState::Installed, None)
            .await;
        Ok(())
    }

    /// Fetch a build to `part`; its sha256.
    async fn download(&self, b: &nguon_protocol::AgentBuild, part: &Path) -> Result<String, String> {
        let url = if b.url.starts_with("http://") || b.url.starts_with("https://") {
            b.url.clone()
        } else {
            format!(
                "{}/{}",
                self.base_url.trim_end_matches('/'),
                b.url.trim_start_matches('/')
            )
        };
        let fail = |e: String| format!("download of {url}: {e}");
        tokio::fs::create_dir_all(self.slots.dir())
            .await
            .map_err(|e| fail(e.to_string()))?;
        let mut resp = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| fail(e.to_string()))?;
        let mut f = tokio::fs::File::create(part)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let mut h = Sha256::new();
        let mut len = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(|e| fail(e.to_string()))? {
            len += chunk.len() as u64;
            if len > b.size {
                return Err(fail(format!("larger than the release's {} bytes", b.size)));
            }
            h.update(&chunk);
            f.write_all(&chunk).await.map_err(|e| fail(e.to_string()))?;
        }
        f.sync_all().await.map_err(|e| fail(e.to_string()))?;
        Ok(hex::encode(h.finalize()))
    }
}
