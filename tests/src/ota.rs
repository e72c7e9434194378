//! What the OTA system test (tests/tests/ota.rs, docs/ota.md) needs besides a province: agent
//! builds that differ from the workspace's (one stamped with another version, one that exits at
//! once, one that hangs), their upload as releases, and the restart loop systemd gives the agent on a device.
//!
//! **The restart loop** ([`Supervised`]) does what the unit does (`Restart=always`, a short
//! `RestartSec`): it runs `nguon-agent run --config …` (the workspace binary stands for the
//! packaged `/usr/bin/nguon-agent`, the launcher), waits for it to exit, records the exit status
//! and runs it again after `restart_after`, until stopped (SIGINT, as systemd's stop sends
//! SIGTERM). The launcher inside `run` then execs the installed version, so the pid and the log
//! file of one start stay the same across the exec.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nguon_agent::ota::version::{MARKER, VERSION_ROOM};
use serde_json::Value;

use crate::api::Api;

/// Copy the agent binary `src` to `dst` with `version` written into its version slot
/// (`nguon_agent::ota::version`): a second build that differs only in the version it reports.
pub fn stamp_version(src: &Path, dst: &Path, version: &str) -> anyhow::Result<()> {
    anyhow::ensure!(version.len() <= VERSION_ROOM, "version too long");
    let mut bytes = std::fs::read(src)?;
    let at: Vec<usize> = bytes
        .windows(MARKER.len())
        .enumerate()
        .filter(|(_, w)| *w == MARKER)
        .map(|(i, _)| i + MARKER.len())
        .collect();
    anyhow::ensure!(at.len() == 1, "{} version slots in {}", at.len(), src.display());
    let slot = &mut bytes[at[0]..at[0] + VERSION_ROOM];
    slot.fill(0);
    slot[..version.len()].copy_from_slice(version.as_bytes());
    write_executable(dst, &bytes)
}

/// Write `bytes` as an executable file.
pub fn write_executable(dst: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut f = std::fs::File::create(dst)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// A complete x86_64 Linux executable of 132 bytes that exits at once with `code`: the broken
/// build (it starts, never connects, never confirms).
pub fn exit_elf(code: u8) -> Vec<u8> {
    tiny_elf(&[0xbf, code, 0, 0, 0, 0xb8, 60, 0, 0, 0, 0x0f, 0x05]) // mov edi; mov eax, 60; syscall
}

/// A complete x86_64 Linux executable of 129 bytes that waits for a signal forever: the build
/// that starts and hangs before confirming itself (no watchdog of its own runs in it).
pub fn hang_elf() -> Vec<u8> {
    tiny_elf(&[0xb8, 34, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7]) // mov eax, 34 (pause); syscall; jmp back
}

/// An ELF header, one R+X program header and `code`, loaded at 0x400000 and entered at `code`.
fn tiny_elf(code: &[u8]) -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    let total = (64 + 56 + code.len()) as u64;
    let mut b = Vec::with_capacity(total as usize);
    b.extend_from_slice(b"\x7fELF\x02\x01\x01\x00");
    b.extend_from_slice(&[0u8; 8]);
    b.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    b.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&(BASE + 120).to_le_bytes()); // entry
    b.extend_from_slice(&64u64.to_le_bytes()); // phoff
    b.extend_from_slice(&0u64.to_le_bytes()); // shoff
    b.extend_from_slice(&0u32.to_le_bytes()); // flags
    for h in [64u16, 56, 1, 64, 0, 0] {
        b.extend_from_slice(&h.to_le_bytes()); // ehsize, phentsize, phnum, shentsize, shnum, shstrndx
    }
    b.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    b.extend_from_slice(&5u32.to_le_bytes()); // R+X
    for v in [0, BASE, BASE, total, total, 0x1000] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(code);
    b
}

/// Upload an agent release (multipart `version`, `arch`, `binary`); the server's answer, or the
/// HTTP status and body of a refusal.
pub async fn upload_release(
    api: &Api,
    version: &str,
    arch: &str,
    binary: &[u8],
) -> Result<Value, (u16, String)> {
    let boundary = format!("----nguon-ota-{}", crate::net::random_suffix());
    let mut body = Vec::with_capacity(binary.len() + 512);
    for (name, v) in [("version", version), ("arch", arch)] {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"binary\"; filename=\"nguon-agent\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(binary);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/agent-releases", api.base()))
        .bearer_auth(api.token())
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| (0, e.to_string()))?;
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    if status >= 300 {
        return Err((status, text));
    }
    serde_json::from_str(&text).map_err(|e| (status, format!("{e}: {text}")))
}

/// An agent under the restart loop of its systemd unit (see the module).
pub struct Supervised {
    stop: Arc<AtomicBool>,
    pid: Arc<AtomicU32>,
    exits: Arc<Mutex<Vec<Option<i32>>>>,
    signals: Arc<Mutex<Vec<i32>>>,
    dir: PathBuf,
    thread: Option<JoinHandle<()>>,
}

impl Supervised {
    /// Run `bin run --config <config>` again `restart_after` after each exit; logs go to
    /// `dir/agent.<n>.log`.
    pub fn start(bin: PathBuf, config: PathBuf, dir: PathBuf, restart_after: Duration) -> Supervised {
        let stop = Arc::new(AtomicBool::new(false));
        let pid = Arc::new(AtomicU32::new(0));
        let exits = Arc::new(Mutex::new(Vec::new()));
        let signals = Arc::new(Mutex::new(Vec::new()));
        let (s, p, e, d) = (stop.clone(), pid.clone(), exits.clone(), dir.clone());
        let sig = signals.clone();
        let thread = std::thread::spawn(move || {
            let mut n = 0;
            while !s.load(Ordering::SeqCst) {
                let log = std::fs::File::create(d.join(format!("agent.{n}.log"))).expect("agent log");
                n += 1;
                let child = Command::new(&bin)
                    .arg("run")
                    .arg("--config")
                    .arg(&config)
                    .env(
                        "RUST_LOG",
                        std::env::var("NGUON_TEST_AGENT_LOG").unwrap_or_else(|_| "info".into()),
                    )
                    .stdin(Stdio::null())
                    .stdout(log.try_clone().expect("log"))
                    .stderr(log)
                    .spawn();
                let mut child = match child {
                    Ok(c) => c,
                    Err(_) => {
                        e.lock().unwrap().push(None);
                        std::thread::sleep(restart_after);
                        continue;
                    }
                };
                p.store(child.id(), Ordering::SeqCst);
                let status = loop {
                    if let Ok(Some(st)) = child.try_wait() {
                        use std::os::unix::process::ExitStatusExt;
                        if let Some(n) = st.signal() {
                            sig.lock().unwrap().push(n);
                        }
                        break st.code();
                    }
                    if s.load(Ordering::SeqCst) {
                        // SAFETY: kill(2) on our own child's pid.
                        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
                        let deadline = Instant::now() + Duration::from_secs(10);
                        while Instant::now() < deadline {
                            if let Ok(Some(_)) = child.try_wait() {
                                return;
                            }
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        let _ = child.kill();
                        let _ = child.wait();
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                };
                e.lock().unwrap().push(status);
                std::thread::sleep(restart_after);
            }
        });
        Supervised {
            stop,
            pid,
            exits,
            signals,
            dir,
            thread: Some(thread),
        }
    }

    /// The exit statuses so far (`None`: killed by a signal, or could not be started).
    pub fn exits(&self) -> Vec<Option<i32>> {
        self.exits.lock().unwrap().clone()
    }

    /// The signals that ended a start so far (`libc::SIGALRM`: a trial's deadline).
    pub fn signals(&self) -> Vec<i32> {
        self.signals.lock().unwrap().clone()
    }

    /// The current process id.
    pub fn pid(&self) -> u32 {
        self.pid.load(Ordering::SeqCst)
    }

    /// Every start's log, in order.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for n in 0.. {
            let Ok(s) = std::fs::read_to_string(self.dir.join(format!("agent.{n}.log"))) else {
                break;
            };
            out.push_str(&format!("--- start {n} ---\n{s}"));
        }
        out
    }

    /// Stop the loop and the agent (SIGINT, then SIGKILL after 10 s).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop();
    }
}
