//! The Debian packaging metadata (issue 16): every `[package.metadata.deb]` asset exists (or is
//! a binary of its crate that `cargo deb` builds), every conffile is an asset, the maintainer
//! scripts keep cargo-deb's `#DEBHELPER#` marker, and the systemd units are valid (`systemd-analyze
//! verify` where it is installed: any warning about the unit fails; always a parse check of
//! sections and keys) and hardened. Building and installing the `.deb` is not done here (it needs
//! a release build and root; docs/operations.md, "Install on a server"). The server, which the
//! unit stops with SIGTERM, exits cleanly on it.

use std::path::{Path, PathBuf};
use std::process::Command;

use nguon_tests::harness::ServerProc;
use nguon_tests::process::workspace_root;

/// The packaged crates: directory, package name, unit name (if it has a service).
const CRATES: &[(&str, &str, Option<&str>)] = &[
    ("server", "nguon-server", Some("nguon-server")),
    ("edge-agent", "nguon-agent", Some("nguon-agent")),
    ("firmware-config", "nguon-provision", None),
];

fn manifest(dir: &str) -> toml::Table {
    let path = workspace_root().join(dir).join("Cargo.toml");
    toml::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn deb(m: &toml::Table) -> &toml::Table {
    m["package"]["metadata"]["deb"]
        .as_table()
        .expect("[package.metadata.deb]")
}

fn bins(m: &toml::Table) -> Vec<String> {
    m.get("bin")
        .and_then(|b| b.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|b| b["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_asset_of_the_deb_metadata_exists_and_every_conffile_is_packaged() {
    for (dir, name, unit) in CRATES {
        let m = manifest(dir);
        assert_eq!(m["package"]["name"].as_str(), Some(*name));
        let d = deb(&m);
        let crate_dir = workspace_root().join(dir);
        let mut dests = Vec::new();
        for a in d["assets"].as_array().expect("assets") {
            let a = a.as_array().expect("[source, dest, mode]");
            let (src, dest, mode) = (
                a[0].as_str().unwrap(),
                a[1].as_str().unwrap(),
                a[2].as_str().unwrap(),
            );
            assert!(
                u32::from_str_radix(mode, 8).is_ok(),
                "{dir}: asset {src}: mode {mode:?}"
            );
            if let Some(bin) = src.strip_prefix("target/release/") {
                assert!(
                    bins(&m).iter().any(|b| b == bin),
                    "{dir}: asset {src} is not a [[bin]] of {name}"
                );
            } else {
                assert!(crate_dir.join(src).is_file(), "{dir}: asset {src} does not exist");
            }
            let dest = if dest.ends_with('/') {
                format!("/{dest}{}", Path::new(src).file_name().unwrap().to_string_lossy())
            } else {
                format!("/{dest}")
            };
            dests.push(dest);
        }
        assert!(
            dests.iter().any(|d| d == &format!("/usr/bin/{name}")),
            "{dir}: no /usr/bin/{name}"
        );
        for c in d
            .get("conf-files")
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten()
        {
            let c = c.as_str().unwrap();
            assert!(
                dests.iter().any(|d| d == c),
                "{dir}: conffile {c} is no asset's destination: {dests:?}"
            );
        }
        if let Some(scripts) = d.get("maintainer-scripts").and_then(|s| s.as_str()) {
            let postinst = crate_dir.join(scripts).join("postinst");
            let text =
                std::fs::read_to_string(&postinst).unwrap_or_else(|e| panic!("{}: {e}", postinst.display()));
            assert!(
                text.starts_with("#!/bin/sh") && text.contains("#DEBHELPER#"),
                "{}",
                postinst.display()
            );
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&postinst).unwrap().permissions().mode();
                assert!(mode & 0o111 != 0, "{} is not executable", postinst.display());
            }
            let sh = Command::new("sh").arg("-n").arg(&postinst).status().unwrap();
            assert!(sh.success(), "{}: sh -n", postinst.display());
        }
        match unit {
            Some(u) => {
                let units = d["systemd-units"].as_table().expect("systemd-units");
                assert_eq!(units["unit-name"].as_str(), Some(*u));
                assert!(unit_path(dir, u).is_file(), "{dir}: no unit file {u}.service");
            }
            None => assert!(d.get("systemd-units").is_none()),
        }
    }
}

fn unit_path(dir: &str, unit: &str) -> PathBuf {
    let m = manifest(dir);
    let scripts = deb(&m)["maintainer-scripts"].as_str().unwrap().to_string();
    workspace_root()
        .join(dir)
        .join(scripts)
        .join(format!("{unit}.service"))
}

/// `(section, key, value)` of every setting; panics on a line that is none.
fn parse_unit(path: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut section = String::new();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            assert!(
                ["Unit", "Service", "Install"].contains(&s),
                "{}:{}: section [{s}]",
                path.display(),
                n + 1
            );
            section = s.to_string();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{}:{}: not key=value: {line}", path.display(), n + 1));
        assert!(
            !section.is_empty(),
            "{}:{}: setting outside a section",
            path.display(),
            n + 1
        );
        assert!(
            !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric()),
            "{}:{}: key {k:?}",
            path.display(),
            n + 1
        );
        out.push((section.clone(), k.to_string(), v.to_string()));
    }
    out
}

#[test]
fn the_systemd_units_are_valid_and_hardened() {
    let tmp = tempfile::tempdir().unwrap();
    for (dir, _, unit) in CRATES {
        let Some(unit) = unit else { continue };
        let path = unit_path(dir, unit);
        let settings = parse_unit(&path);
        let get = |k: &str| -> Vec<&str> {
            settings
                .iter()
                .filter(|(s, key, _)| s == "Service" && key == k)
                .map(|(_, _, v)| v.as_str())
                .collect()
        };
        for (k, v) in [
            ("User", "nguon"),
            ("NoNewPrivileges", "true"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "true"),
            ("PrivateTmp", "true"),
            ("Restart", "on-failure"),
            ("CapabilityBoundingSet", ""),
            ("UMask", "0077"),
        ] {
            assert_eq!(get(k), vec![v], "{unit}: {k}");
        }
        assert!(!get("StateDirectory").is_empty(), "{unit}: StateDirectory");
        assert!(
            get("ExecStart")[0].starts_with(&format!("/usr/bin/{unit}")),
            "{unit}: ExecStart"
        );
        assert!(
            settings
                .iter()
                .any(|(s, k, v)| s == "Install" && k == "WantedBy" && v == "multi-user.target")
        );

        // systemd's own parser, offline; it checks that ExecStart is executable, so the copy
        // runs /bin/true instead of the binary a package would install.
        let ok = Command::new("systemd-analyze")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!("systemd-analyze not installed: parse check only");
            continue;
        }
        let copy = tmp.path().join(format!("{unit}.service"));
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace(&format!("/usr/bin/{unit}"), "/bin/true");
        std::fs::write(&copy, text).unwrap();
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&copy)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let about_unit: Vec<&str> = err
            .lines()
            .filter(|l| l.contains(&format!("{unit}.service")))
            .collect();
        assert!(
            out.status.success() && about_unit.is_empty(),
            "systemd-analyze verify {unit}:\n{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_stops_gracefully_on_sigterm_as_systemd_stops_it() {
    nguon_tests::init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let mut s = ServerProc::start(dir.path()).await.expect("server starts");
    let status = s.stop_status(libc::SIGTERM, std::time::Duration::from_secs(15));
    let status = status.expect("the server exits within 15 s of SIGTERM");
    assert!(
        status.success(),
        "exit status after SIGTERM: {status:?} (killed by the signal, not stopped)"
    );
}
