//! Re-runs are byte-identical; rows added, removed and pruned behave as documented; the outputs
//! are consistent with each other (hashes verify, keys match, modes are 0600 for secrets).

use std::os::unix::fs::PermissionsExt;

use nguon_protocol::{DeviceId, KeyPair};
use nguon_provision::provision::board_token_hash;
use nguon_provision::{DeviceConfig, Registry, bulk, bundle, credential, kiosk, sample};

use crate::util::{HEADER, Workspace, differences, passwords, snapshot};

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn running_bulk_twice_with_the_same_list_changes_no_byte() {
    let ws = Workspace::new(&sample::station_csv(120, 9));
    let r = bulk(&ws.options()).unwrap();
    assert_eq!(r.created.len(), 120);
    let before = snapshot(&ws.out());
    // The second run relies on remembered settings.
    let mut again = ws.options();
    again.server_url = None;
    again.server_public_key = None;
    again.broker_url = None;
    again.province_code = None;
    again.province_name = None;
    let r = bulk(&again).unwrap();
    assert_eq!(r.files_written, 0, "{:?}", r.table());
    assert!(r.created.is_empty() && r.updated.is_empty() && r.secrets_file.is_none());
    assert_eq!(r.counts.values().map(|c| c.unchanged).sum::<usize>(), 120);
    assert_eq!(differences(&before, &snapshot(&ws.out())), Vec::<String>::new());
}

#[test]
fn every_output_of_a_device_agrees_with_its_secrets() {
    let ws = Workspace::new(&sample::station_csv(22, 2));
    bulk(&ws.options()).unwrap();
    let out = ws.out();
    let pw = passwords(&out);
    let reg: Registry = serde_json::from_slice(&std::fs::read(out.join("registry.json")).unwrap()).unwrap();
    assert_eq!(reg.version, 1);
    assert_eq!(reg.areas[0].code, "10");
    assert_eq!(reg.areas[0].name, "Lào Cai");
    assert_eq!(reg.devices.len(), 22);
    let passwd = std::fs::read_to_string(out.join("mosquitto/password_file")).unwrap();
    for d in &reg.devices {
        DeviceId::parse(d.id.clone()).unwrap();
        let parent = reg
            .areas
            .iter()
            .position(|a| a.code == d.area)
            .expect("area listed");
        let commune = reg
            .areas
            .iter()
            .position(|a| Some(&a.code) == reg.areas[parent].parent.as_ref());
        assert!(commune.unwrap() < parent, "parents come first");
        assert!(credential::verify_password(&pw[&d.id], &d.password_hash));
        assert!(passwd.contains(&format!("{}:{}\n", d.id, d.password_hash)));
        let bundle_path = out.join(format!("bundles/{}.tar.gz", d.id));
        assert_eq!(mode(&bundle_path), 0o600);
        let secrets = bundle::read_secrets(&bundle_path).unwrap();
        assert_eq!(secrets.password, pw[&d.id]);
        assert_eq!(
            Some(KeyPair::from_b64(&secrets.signing_key).unwrap().public_b64()),
            d.public_key
        );
        let entries = bundle::read_entries(&bundle_path).unwrap();
        for (name, _, m) in &entries {
            let secret = [
                bundle::PASSWORD_FILE,
                bundle::KEY_FILE,
                bundle::BOARD_TOKEN_FILE,
                kiosk::ENV_FILE,
            ]
            .contains(&name.as_str());
            assert_eq!(*m == 0o600, secret, "{name} mode {m:o}");
        }
        let cfg_path = out.join(format!("devices/{}/agent.toml", d.id));
        let cfg = DeviceConfig::load(&cfg_path).unwrap();
        let (_, toml, _) = entries.iter().find(|(n, _, _)| n == "agent.toml").unwrap();
        assert_eq!(
            toml,
            &std::fs::read(&cfg_path).unwrap(),
            "bundle holds the same config"
        );
        assert_eq!(cfg.device.id.as_str(), d.id);
        let areas: Vec<&str> = cfg.device.areas.iter().map(|a| a.as_str()).collect();
        assert_eq!(areas, ["10", &d.area[..5], &d.area]);
        match d.kind.as_str() {
            "board" => {
                assert!(d.id.starts_with("bb-"));
                assert_eq!(
                    d.board_token_hash,
                    Some(board_token_hash(secrets.board_token.as_deref().unwrap()))
                );
            }
            _ => {
                assert!(d.id.starts_with("lc-"));
                assert!(d.board_token_hash.is_none() && secrets.board_token.is_none());
            }
        }
    }
    assert!(reg.devices.iter().any(|d| d.kind == "board"));
    for f in [
        "mosquitto/password_file",
        "state.json",
        "secrets/server-mqtt-password",
    ] {
        assert_eq!(mode(&out.join(f)), 0o600, "{f}");
    }
    let state = std::fs::read_to_string(out.join("state.json")).unwrap();
    for p in pw.values() {
        assert!(!state.contains(p.as_str()), "no password in the state file");
    }
}

#[test]
fn an_added_row_adds_exactly_one_device_and_keeps_the_others() {
    let csv = sample::station_csv(30, 3);
    let ws = Workspace::new(&csv);
    bulk(&ws.options()).unwrap();
    let before = snapshot(&ws.out());
    ws.write_csv(format!("{csv}08002,Thôn Mới,Cụm mới,board,22.3,104.0,null,vi\n"));
    let r = bulk(&ws.options()).unwrap();
    assert_eq!(r.created, ["bb-08002-0002"]);
    assert!(r.updated.is_empty());
    let after = snapshot(&ws.out());
    let mut changed = differences(&before, &after);
    changed.retain(|f| !f.starts_with("secrets/new-passwords-"));
    changed.sort();
    assert_eq!(
        changed,
        [
            "bundles/bb-08002-0002.tar.gz",
            "devices/bb-08002-0002/agent.toml",
            "devices/bb-08002-0002/nguon-agent.service",
            "devices/bb-08002-0002/nguon-kiosk",
            "devices/bb-08002-0002/nguon-kiosk-watchdog",
            "devices/bb-08002-0002/nguon-kiosk-watchdog.service",
            "devices/bb-08002-0002/nguon-kiosk-watchdog.timer",
            "devices/bb-08002-0002/nguon-kiosk.service",
            "mosquitto/acl_file",
            "mosquitto/password_file",
            "registry.json",
            "state.json",
        ]
    );
    let newest = passwords(&ws.out());
    assert!(newest.contains_key("bb-08002-0002"));
    let reg: Registry = serde_json::from_slice(&after["registry.json"]).unwrap();
    let village = reg.areas.iter().find(|a| a.name == "Thôn Mới").unwrap();
    assert_eq!(village.code, "08002-06");
}

#[test]
fn a_removed_row_is_listed_and_prune_disables_it() {
    let csv = format!(
        "{HEADER}08003,Bản Phố,Cụm 1,loudspeaker,22.48,103.97,alsa,\n08003,Bản Phố,Cụm 2,loudspeaker,22.49,103.98,alsa,\n"
    );
    let ws = Workspace::new(&csv);
    bulk(&ws.options()).unwrap();
    ws.write_csv(format!(
        "{HEADER}08003,Bản Phố,Cụm 1,loudspeaker,22.48,103.97,alsa,\n"
    ));
    let before = snapshot(&ws.out());
    let r = bulk(&ws.options()).unwrap();
    assert_eq!(r.removed.len(), 1);
    assert_eq!(r.removed[0].0, "lc-08003-0002");
    assert_eq!(r.removed[0].1.station, "Cụm 2");
    assert_eq!(r.counts["loudspeaker"].removed, 1);
    assert_eq!(
        differences(&before, &snapshot(&ws.out())),
        Vec::<String>::new(),
        "listing changes nothing"
    );

    let mut prune = ws.options();
    prune.prune = true;
    let r = bulk(&prune).unwrap();
    assert_eq!(r.disabled.len(), 1);
    assert_eq!(r.counts["loudspeaker"].disabled, 1);
    let out = ws.out();
    let reg: Registry = serde_json::from_slice(&std::fs::read(out.join("registry.json")).unwrap()).unwrap();
    assert_eq!(reg.disabled, ["lc-08003-0002"]);
    assert!(reg.devices.iter().all(|d| d.id != "lc-08003-0002"));
    let passwd = std::fs::read_to_string(out.join("mosquitto/password_file")).unwrap();
    let acl = std::fs::read_to_string(out.join("mosquitto/acl_file")).unwrap();
    assert!(!passwd.contains("lc-08003-0002") && !acl.contains("lc-08003-0002"));
    assert!(passwd.contains("lc-08003-0001:"));

    // Pruning again is a no-op; a row that comes back gets its old id and credentials back.
    let r = bulk(&prune).unwrap();
    assert_eq!(r.files_written, 0);
    ws.write_csv(&csv);
    let r = bulk(&ws.options()).unwrap();
    assert!(r.created.is_empty());
    assert_eq!(r.updated, ["lc-08003-0002"]);
    assert!(
        std::fs::read_to_string(out.join("mosquitto/password_file"))
            .unwrap()
            .contains("lc-08003-0002:")
    );
}

#[test]
fn a_changed_server_url_rebuilds_bundles_from_their_own_secrets() {
    let ws = Workspace::new(&sample::station_csv(5, 1));
    bulk(&ws.options()).unwrap();
    let pw = passwords(&ws.out());
    let mut opts = ws.options();
    opts.server_url = Some("https://nguon.laocai.gov.vn".into());
    let r = bulk(&opts).unwrap();
    assert_eq!(r.updated.len(), 5);
    assert!(r.secrets_file.is_none());
    for (id, p) in &pw {
        let b = ws.out().join(format!("bundles/{id}.tar.gz"));
        assert_eq!(&bundle::read_secrets(&b).unwrap().password, p);
        let entries = bundle::read_entries(&b).unwrap();
        let toml =
            String::from_utf8(entries.iter().find(|e| e.0 == "agent.toml").unwrap().1.clone()).unwrap();
        assert!(toml.contains("https://nguon.laocai.gov.vn"), "{toml}");
    }
}

#[test]
fn bundles_deleted_after_hand_out_do_not_block_later_runs() {
    let ws = Workspace::new(&sample::station_csv(3, 1));
    bulk(&ws.options()).unwrap();
    std::fs::remove_dir_all(ws.out().join("bundles")).unwrap();
    let r = bulk(&ws.options()).unwrap();
    assert!(r.stale_bundles.is_empty() && r.updated.is_empty());
    let mut opts = ws.options();
    opts.broker_url = Some("mqtts://mqtt.laocai.gov.vn:8883".into());
    let r = bulk(&opts).unwrap();
    assert_eq!(r.stale_bundles.len(), 3);
    assert_eq!(r.updated.len(), 3);
    let cfg = std::fs::read_to_string(ws.out().join("devices/lc-08001-0001/agent.toml")).unwrap();
    assert!(cfg.contains("mqtts://mqtt.laocai.gov.vn:8883"));
    assert!(!ws.out().join("bundles/lc-08001-0001.tar.gz").exists());
}

#[test]
fn station_names_that_look_like_formulas_are_neutralised_in_the_secrets_csv() {
    // Issue 11, item 10: the installer opens this file in a spreadsheet.
    let csv = format!(
        "{HEADER}08001,\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",@SUM(A1),loudspeaker,22.3,104.0,null,vi\n"
    );
    let ws = Workspace::new(&csv);
    bulk(&ws.options()).unwrap();
    let secrets = ws.out().join("secrets");
    let file = std::fs::read_dir(&secrets)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("new-passwords-")
        })
        .unwrap();
    let mut r = csv::Reader::from_path(&file).unwrap();
    let rec = r.records().next().unwrap().unwrap();
    assert_eq!(&rec[3], "'=HYPERLINK(\"http://x\",\"y\")", "{rec:?}");
    assert_eq!(&rec[4], "'@SUM(A1)", "{rec:?}");
    // Secrets are written as they are (byte-exact for the installer).
    assert_eq!(passwords(&ws.out()).values().next().unwrap().len(), 24);
}

#[test]
fn the_language_column_becomes_the_languages_of_each_village_in_the_registry() {
    let ws = Workspace::new(&format!(
        "{HEADER}08003,Bản Phố,Cụm 1,loudspeaker,,,null,hmn\n08003,Bản Phố,Cụm 2,loudspeaker,,,null,\n\
         08003,Bản Phố,Bảng tin,board,,,null,vi\n08003,Tổ 1,Cụm 1,loudspeaker,,,null,\n\
         08020,Bản Dền,Cụm 1,loudspeaker,,,null,dao\n"
    ));
    bulk(&ws.options()).unwrap();
    let reg: Registry =
        serde_json::from_slice(&std::fs::read(ws.out().join("registry.json")).unwrap()).unwrap();
    let langs = |name: &str| {
        reg.areas
            .iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("{name}"))
            .languages
            .clone()
    };
    assert_eq!(langs("Bản Phố"), vec!["hmn", "vi"]);
    assert_eq!(
        langs("Bản Dền"),
        vec!["dao", "vi"],
        "Vietnamese is always received"
    );
    assert!(
        langs("Tổ 1").is_empty(),
        "no language named: the server keeps the area's list"
    );
    assert!(
        reg.areas
            .iter()
            .filter(|a| a.level != "village")
            .all(|a| a.languages.is_empty())
    );
}

#[test]
fn the_server_password_made_by_nguon_server_init_goes_into_the_broker_files_unchanged_by_reruns() {
    let ws = Workspace::new(&sample::station_csv(6, 2));
    let mut opts = ws.options();
    opts.server_mqtt_password = Some("FromNguonServerInit0123".into());
    opts.broker_url = Some("mqtt://127.0.0.1:21213".into());
    let r = bulk(&opts).unwrap();
    assert!(r.server_password_file.is_none(), "no password of its own");
    let out = ws.out();
    assert!(!out.join("secrets/server-mqtt-password").exists());
    let pf = std::fs::read_to_string(out.join("mosquitto/password_file")).unwrap();
    let hash = pf
        .lines()
        .find_map(|l| l.strip_prefix("nguon-server:"))
        .expect("the server's line");
    assert!(credential::verify_password("FromNguonServerInit0123", hash));
    // The generated listener is on the devices' port.
    let conf = std::fs::read_to_string(out.join("mosquitto/nguon.conf")).unwrap();
    assert!(conf.contains("\nlistener 21213\n"), "{conf}");
    // The same password again: no byte changes (the hash is not salted anew).
    let before = snapshot(&out);
    assert_eq!(bulk(&opts).unwrap().files_written, 0);
    assert!(differences(&before, &snapshot(&out)).is_empty());
    // Another password replaces the hash.
    opts.server_mqtt_password = Some("AnotherPassword456".into());
    bulk(&opts).unwrap();
    let pf = std::fs::read_to_string(out.join("mosquitto/password_file")).unwrap();
    let hash = pf.lines().find_map(|l| l.strip_prefix("nguon-server:")).unwrap();
    assert!(credential::verify_password("AnotherPassword456", hash));
}
