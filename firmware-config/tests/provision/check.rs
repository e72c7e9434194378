//! `nguon-provision check`: ok on a generated config, the key named on a broken one.

use std::process::Command;

use nguon_provision::{bulk, sample};

use crate::util::{Workspace, output_text};

fn check(path: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nguon-provision"))
        .arg("check")
        .arg(path)
        .output()
        .unwrap();
    let text = output_text(&out);
    (out.status.success(), text)
}

#[test]
fn check_says_ok_on_a_generated_config_and_names_the_key_on_a_broken_one() {
    let ws = Workspace::new(&sample::station_csv(1, 1));
    let r = bulk(&ws.options()).unwrap();
    let cfg = ws.out().join(format!("devices/{}/agent.toml", r.created[0]));
    let (ok, text) = check(&cfg);
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "ok");

    let broken = ws.dir.path().join("broken.toml");
    let good = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &broken,
        good.replace("keep_alive_secs = 30", "keep_alive_secs = \"soon\""),
    )
    .unwrap();
    let (ok, text) = check(&broken);
    assert!(!ok);
    assert!(
        text.contains("broken.toml") && text.contains("mqtt.keep_alive_secs"),
        "{text}"
    );

    std::fs::write(&broken, good.replace("[audio]", "[audio]\nvolume_boost = true")).unwrap();
    let (ok, text) = check(&broken);
    assert!(!ok);
    assert!(text.contains("audio") && text.contains("unknown field"), "{text}");
}

#[test]
fn bulk_help_shows_examples() {
    let out = Command::new(env!("CARGO_BIN_EXE_nguon-provision"))
        .args(["bulk", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("Examples:") && text.contains("--prune"), "{text}");
}

#[test]
fn bulk_on_the_command_line_prints_a_summary_and_exits_1_on_a_bad_list() {
    let ws = Workspace::new(&sample::station_csv(12, 2));
    let key = ws.dir.path().join("server.pub");
    std::fs::write(
        &key,
        format!("{}\n", nguon_protocol::KeyPair::from_seed([3; 32]).public_b64()),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_nguon-provision"))
            .arg("bulk")
            .arg(ws.csv())
            .arg("--out")
            .arg(ws.out())
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[
        "--province-code",
        "10",
        "--province-name",
        "Lào Cai",
        "--server-url",
        "http://127.0.0.1:8080",
        "--server-key-file",
        key.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("loudspeaker") && stdout.contains("total"),
        "{stdout}"
    );
    let passwords = crate::util::passwords(&ws.out());
    for p in passwords.values() {
        assert!(!stdout.contains(p.as_str()), "a password was printed");
    }
    let cfg = std::fs::read_to_string(ws.out().join("devices/lc-08001-0001/agent.toml")).unwrap();
    assert!(
        cfg.contains("url = \"mqtt://127.0.0.1:1883\""),
        "broker defaults to the server host: {cfg}"
    );

    ws.write_csv(
        "commune_code,village,station,kind,lat,lon,audio_output,language\n1,A,B,loudspeaker,,,alsa,\n",
    );
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2: commune_code `1`"), "{stderr}");
}
