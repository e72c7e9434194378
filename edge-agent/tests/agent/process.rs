//! The `nguon-agent` command as a process: `check-config`.

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
