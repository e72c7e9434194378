//! Board kiosks (issue 16): a board's bundle carries the kiosk's user units, launcher and
//! watchdog, its URL with the board's own token (0600), and install steps; loudspeakers get none;
//! the units pass `systemd-analyze verify` (when it is installed); a board provisioned before the
//! kiosk existed gets it on the next run, from its own secrets.

use std::process::Command;

use nguon_provision::{BulkOptions, bulk, bundle, kiosk};

use crate::util::{HEADER, Workspace, output_text};

fn board_and_speaker() -> Workspace {
    Workspace::new(&format!(
        "{HEADER}08003,Bản Phố,Bảng tin,board,,,null,vi\n08003,Bản Phố,Cụm 1,loudspeaker,,,null,\n"
    ))
}

fn entries(ws: &Workspace, prefix: &str) -> (String, Vec<(String, Vec<u8>, u32)>) {
    let dir = ws.out().join("bundles");
    let path = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix}* bundle in {}", dir.display()));
    let id = path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_end_matches(".tar.gz")
        .to_string();
    (id, bundle::read_entries(&path).unwrap())
}

fn get<'a>(e: &'a [(String, Vec<u8>, u32)], name: &str) -> Option<(&'a str, u32)> {
    e.iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, b, m)| (std::str::from_utf8(b).unwrap(), *m))
}

#[test]
fn a_board_bundle_carries_its_kiosk_with_its_own_url_and_token_and_a_loudspeaker_none() {
    let ws = board_and_speaker();
    bulk(&ws.options()).unwrap();
    let (id, e) = entries(&ws, "bb-");
    let token = get(&e, bundle::BOARD_TOKEN_FILE).unwrap().0.trim().to_string();
    assert!(token.len() >= 32, "{token}");
    let (env, mode) = get(&e, kiosk::ENV_FILE).expect("kiosk.env");
    assert_eq!(mode, 0o600);
    assert!(
        env.contains(&format!(
            "\nNGUON_BOARD_URL=http://127.0.0.1:8080/board/{id}?token={token}\n"
        )),
        "{env}"
    );
    let (unit, _) = get(&e, kiosk::KIOSK_UNIT).expect("kiosk unit");
    assert!(
        unit.contains("EnvironmentFile=/etc/nguon-kiosk/kiosk.env"),
        "{unit}"
    );
    assert!(unit.contains("WantedBy=graphical-session.target"), "{unit}");
    let (launcher, mode) = get(&e, kiosk::LAUNCHER).expect("launcher");
    assert_eq!(mode, 0o755);
    for flag in ["--kiosk", "xset s off", "xset -dpms", "--remote-debugging-port"] {
        assert!(launcher.contains(flag), "{flag}: {launcher}");
    }
    assert!(get(&e, kiosk::WATCHDOG).is_some() && get(&e, kiosk::WATCHDOG_TIMER).is_some());
    let (install, _) = get(&e, bundle::INSTALL_FILE).unwrap();
    assert!(
        install.contains("systemctl --global enable nguon-kiosk.service nguon-kiosk-watchdog.timer"),
        "{install}"
    );
    // Only kiosk.env and the board token file hold the token.
    for (name, bytes, _) in &e {
        if String::from_utf8_lossy(bytes).contains(&token) {
            assert!(
                [kiosk::ENV_FILE, bundle::BOARD_TOKEN_FILE].contains(&name.as_str()),
                "{name} holds the token"
            );
        }
    }
    // The kiosk's files without the token are beside the board's config too.
    let dev = ws.out().join("devices").join(&id);
    assert!(dev.join(kiosk::KIOSK_UNIT).exists() && !dev.join(kiosk::ENV_FILE).exists());

    let (_, e) = entries(&ws, "lc-");
    assert!(get(&e, kiosk::KIOSK_UNIT).is_none() && get(&e, kiosk::ENV_FILE).is_none());
    assert!(!get(&e, bundle::INSTALL_FILE).unwrap().0.contains("kiosk"));
}

#[test]
fn the_kiosk_units_pass_systemd_analyze_verify() {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("systemd-analyze is not installed: not verified");
        return;
    };
    assert!(out.status.success());
    let ws = board_and_speaker();
    bulk(&ws.options()).unwrap();
    let (id, e) = entries(&ws, "bb-");
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    // verify checks that ExecStart exists: point it at the bundle's own scripts.
    for (name, bytes, mode) in &e {
        let text =
            String::from_utf8_lossy(bytes).replace("/usr/local/bin/", &format!("{}/", dir.path().display()));
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(*mode)).unwrap();
    }
    let units = [kiosk::KIOSK_UNIT, kiosk::WATCHDOG_SERVICE, kiosk::WATCHDOG_TIMER];
    let out = Command::new("systemd-analyze")
        .args(["--user", "verify", "--man=no"])
        .args(units.iter().map(|u| dir.path().join(u)))
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .unwrap();
    let text = output_text(&out);
    assert!(out.status.success() && text.trim().is_empty(), "{id}: {text}");
    // It can fail: a misspelt key is reported.
    let bad = dir.path().join(kiosk::KIOSK_UNIT);
    let unit = std::fs::read_to_string(&bad).unwrap();
    std::fs::write(&bad, unit.replace("RestartSec=", "RestartSecs=")).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["--user", "verify", "--man=no"])
        .arg(&bad)
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("RestartSecs"),
        "{out:?}"
    );
}

#[test]
fn a_board_provisioned_before_the_kiosk_gets_it_on_the_next_run_from_its_own_secrets() {
    let ws = board_and_speaker();
    bulk(&ws.options()).unwrap();
    let (id, before) = entries(&ws, "bb-");
    // As an earlier version left it: no kiosk files beside the config, a bundle without them.
    let dev = ws.out().join("devices").join(&id);
    for (name, _, _) in kiosk::files(&id) {
        std::fs::remove_file(dev.join(name)).unwrap();
    }
    let again = BulkOptions {
        server_url: None,
        server_public_key: None,
        broker_url: None,
        province_code: None,
        province_name: None,
        ..ws.options()
    };
    let r = bulk(&again).unwrap();
    assert_eq!(r.updated.len(), 1, "{:?}", r.table());
    let (_, after) = entries(&ws, "bb-");
    assert_eq!(
        get(&after, bundle::BOARD_TOKEN_FILE),
        get(&before, bundle::BOARD_TOKEN_FILE)
    );
    assert_eq!(get(&after, kiosk::ENV_FILE), get(&before, kiosk::ENV_FILE));
    assert!(dev.join(kiosk::KIOSK_UNIT).exists());
}
