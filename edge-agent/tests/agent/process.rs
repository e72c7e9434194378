//! The `nguon-agent` command as a process: `check-config`, and `run` ending with an error when a
//! task of the agent dies (so that systemd restarts it).

use nguon_protocol::ServerKey;

use crate::common::*;

#[test]
fn check_config_names_the_file_and_key_and_exits_non_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write_config(
        tmp.path(),
        "lc-1",
        "mqtt://127.0.0.1:1",
        "http://127.0.0.1:1",
        &ServerKey::generate().public_b64(),
        "speaker",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nguon-agent"))
        .arg("check-config")
        .arg(&p)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("agent.toml") && err.contains("audio.output"),
        "{err}"
    );
    let p = write_config(
        tmp.path(),
        "lc-1",
        "mqtt://127.0.0.1:1",
        "http://127.0.0.1:1",
        &ServerKey::generate().public_b64(),
        "null",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nguon-agent"))
        .arg("check-config")
        .arg(&p)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Run `nguon-agent run` with the fault `fault` injected until it exits on its own: its exit
/// status and standard error. No broker is running: the link keeps trying to connect.
fn run_with_fault(fault: &str) -> (std::process::ExitStatus, String) {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(
        tmp.path(),
        "lc-fault",
        &format!("mqtt://127.0.0.1:{}", free_port()),
        "http://127.0.0.1:1",
        &ServerKey::generate().public_b64(),
        "null",
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_nguon-agent"))
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("NGUON_AGENT_FAULT", fault)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "the agent is still running {} s after its {fault} fault",
                WAIT.as_secs()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status, err)
}

#[test]
fn a_player_task_that_panics_ends_the_process_with_a_non_zero_status_naming_the_task_and_the_panic() {
    let (status, err) = run_with_fault("player-panic");
    assert_eq!(status.code(), Some(1), "{status}: {err}");
    assert!(
        err.contains("nguon-agent: the player task panicked: injected fault: the player task panics"),
        "{err}"
    );
}

#[test]
fn a_link_task_that_returns_ends_the_process_with_a_non_zero_status_naming_the_task() {
    let (status, err) = run_with_fault("link-ends");
    assert_eq!(status.code(), Some(1), "{status}: {err}");
    assert!(err.contains("nguon-agent: the link task ended"), "{err}");
}
