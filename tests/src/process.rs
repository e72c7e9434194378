//! Child processes that die with the test: [`ChildGuard`] kills its process on drop, stops it
//! gracefully (SIGINT/SIGTERM) or brutally (`kill -9`) on request, and keeps its output in a log
//! file. [`workspace_binary`] finds (building once if needed) `nguon-server` and `nguon-agent`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A child process killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct ChildGuard {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl ChildGuard {
    /// Spawn `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> anyhow::Result<ChildGuard> {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {name} ({:?}): {e}", cmd.get_program()))?;
        Ok(ChildGuard {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    /// Process id (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Send `signal`, wait up to `grace` for exit, then SIGKILL. Returns whether it exited in time.
    pub fn stop_with(&mut self, signal: i32, grace: Duration) -> bool {
        self.child.is_none() || self.stop_status(signal, grace).is_some()
    }

    /// Send `signal` and wait up to `grace` for the exit status (`None`: still running, then
    /// killed).
    pub fn stop_status(&mut self, signal: i32, grace: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(child.id() as i32, signal);
        }
        let deadline = Instant::now() + grace;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Graceful stop: SIGINT, then SIGKILL after 10 s.
    pub fn stop(&mut self) -> bool {
        self.stop_with(libc::SIGINT, Duration::from_secs(10))
    }

    /// `kill -9` and reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The cargo target directory (`CARGO_TARGET_DIR` or `<workspace>/target`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let p = PathBuf::from(d);
            if p.is_absolute() {
                p
            } else {
                workspace_root().join(p)
            }
        }
        None => workspace_root().join("target"),
    }
}

static BUILD: Mutex<bool> = Mutex::new(false);

/// Path of a workspace binary in the debug profile, built once per process with exactly the
/// command and feature set of `cargo test --workspace` / `.ci/run` (`cargo build --workspace
/// --all-targets`), so under those it is a no-op: building `-p nguon-server -p nguon-agent` alone
/// resolves other features (e.g. the agent's `playback`) and compiles and stores a second copy of
/// both crates, which once filled a CI disk. Set `NGUON_TEST_BIN_DIR` to use prebuilt binaries
/// from elsewhere (e.g. `target/release`).
pub fn workspace_binary(name: &str) -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("NGUON_TEST_BIN_DIR") {
        let p = PathBuf::from(dir).join(name);
        anyhow::ensure!(p.exists(), "{} does not exist", p.display());
        return Ok(p);
    }
    let mut built = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if !*built {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .current_dir(workspace_root())
            .args(["build", "--quiet", "--workspace", "--all-targets"]);
        // `cargo test` gives this test binary its package's CARGO_PKG_*, CARGO_MANIFEST_* (and
        // similar) variables; build scripts that watch them (ring's does) would see a change and
        // rebuild ring and everything above it, once here and again in the next `cargo test`.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("CARGO_PKG_")
                || k.starts_with("CARGO_MANIFEST_")
                || k.starts_with("CARGO_CRATE_")
                || k.starts_with("CARGO_BIN_")
                || k == "CARGO_PRIMARY_PACKAGE"
                || k == "CARGO_TARGET_TMPDIR"
                || k == "OUT_DIR"
            {
                build.env_remove(k.as_ref());
            }
        }
        let status = build.status()?;
        anyhow::ensure!(status.success(), "cargo build --workspace --all-targets failed");
        *built = true;
    }
    let p = target_dir().join("debug").join(name);
    anyhow::ensure!(p.exists(), "{} does not exist after building", p.display());
    Ok(p)
}
