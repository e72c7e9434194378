//! A board's kiosk as provisioned (issue 16), run for real: `nguon-provision bulk` makes a board's
//! bundle for a running `nguon-server`, the registry is imported, and the bundle's own launcher
//! (`nguon-kiosk`) starts Chromium (headless here: `NGUON_KIOSK_FLAGS`) with the URL and token of
//! its `kiosk.env`. The board page renders: the DevTools list shows its title with the area's name
//! (so the feed was fetched with the board's token) and a heartbeat that advances. The bundle's
//! watchdog finds it healthy; once the page's renderer is frozen (SIGSTOP) the heartbeat stops
//! and the watchdog runs its restart command after two strikes.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use nguon_tests::harness::ServerProc;
use nguon_tests::process::workspace_binary;
use serde_json::Value;

/// Chromium's process group, killed (and woken first) on drop.
struct Kiosk(Child);

impl Drop for Kiosk {
    fn drop(&mut self) {
        let pg = self.0.id() as i32;
        // SAFETY: signals to the process group this test created.
        unsafe {
            libc::kill(-pg, libc::SIGCONT);
            libc::kill(-pg, libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}

/// A port of this helper's range (19400–19499) nothing listens on.
fn kiosk_port() -> u16 {
    (19400..19500)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port in 19400–19499")
}

/// The descendants of `pid` whose command line has `needle`.
fn descendants_with(pid: u32, needle: &str) -> Vec<i32> {
    let mut procs: Vec<(i32, i32, String)> = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let ppid = after.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        procs.push((p, ppid, String::from_utf8_lossy(&cmd).replace('\0', " ")));
    }
    let mut family = vec![pid as i32];
    let mut grew = true;
    while grew {
        grew = false;
        for (p, pp, _) in &procs {
            if family.contains(pp) && !family.contains(p) {
                family.push(*p);
                grew = true;
            }
        }
    }
    procs
        .iter()
        .filter(|(p, _, c)| family.contains(p) && c.contains(needle))
        .map(|(p, _, _)| *p)
        .collect()
}

/// The title of the DevTools target showing `/board/<id>`, if Chromium answers.
async fn board_title(port: u16, id: &str) -> Option<String> {
    let list: Value = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    list.as_array()?
        .iter()
        .find(|t| {
            t.get("url")
                .and_then(Value::as_str)
                .is_some_and(|u| u.contains(&format!("/board/{id}")))
        })
        .and_then(|t| t.get("title").and_then(Value::as_str).map(str::to_string))
}

/// The heartbeat of a board page title (`… [n]`).
fn heartbeat(title: &str) -> Option<u64> {
    title.strip_suffix(']')?.rsplit_once(" [")?.1.parse().ok()
}

fn watchdog(bundle: &Path, port: u16, state: &Path, restarted: &Path) -> String {
    let out = Command::new("sh")
        .arg(bundle.join("nguon-kiosk-watchdog"))
        .env("NGUON_KIOSK_DEBUG_PORT", port.to_string())
        .env("NGUON_KIOSK_STATE", state)
        .env("NGUON_KIOSK_RESTART", format!("touch {}", restarted.display()))
        .output()
        .expect("run the watchdog");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provisioned_board_kiosk_renders_its_page_and_its_watchdog_restarts_a_hung_one() {
    nguon_tests::init_crypto();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProc::start(&dir.path().join("server"))
        .await
        .expect("server");
    let base = format!("http://127.0.0.1:{}", server.http_port);
    let key = server.server_key().await.expect("server key");
    let stations = dir.path().join("stations.csv");
    std::fs::write(
        &stations,
        "commune_code,village,station,kind,lat,lon,audio_output,language\n\
         08003,Bản Phố,Bảng tin chợ,board,,,null,vi\n",
    )
    .expect("stations");
    let out = Command::new(workspace_binary("nguon-provision").expect("nguon-provision"))
        .arg("bulk")
        .arg(&stations)
        .arg("--out")
        .arg(dir.path().join("prov"))
        .args([
            "--province-code",
            "10",
            "--province-name",
            "Lào Cai",
            "--server-url",
            &base,
        ])
        .args(["--server-public-key", &key])
        .output()
        .expect("run nguon-provision");
    assert!(out.status.success(), "{out:?}");
    let registry: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("prov/registry.json")).expect("registry"))
            .expect("registry json");
    server
        .api
        .post("/api/v1/fleet/import", &registry)
        .await
        .expect("import");
    let id = registry
        .pointer("/devices/0/id")
        .and_then(Value::as_str)
        .expect("the board's id")
        .to_string();
    let status = Command::new("tar")
        .arg("xzf")
        .arg(dir.path().join(format!("prov/bundles/{id}.tar.gz")))
        .current_dir(dir.path())
        .status()
        .expect("tar");
    assert!(status.success());
    let bundle = dir.path().join(&id);
    let env = std::fs::read_to_string(bundle.join("kiosk.env")).expect("kiosk.env");
    let url = env
        .lines()
        .find_map(|l| l.strip_prefix("NGUON_BOARD_URL="))
        .expect("NGUON_BOARD_URL")
        .to_string();
    let token = std::fs::read_to_string(bundle.join("board-token")).expect("board-token");
    assert_eq!(url, format!("{base}/board/{id}?token={}", token.trim()));

    // The bundle's launcher, as the user unit runs it, with Chromium headless (root: no sandbox).
    let port = kiosk_port();
    let log = std::fs::File::create(dir.path().join("kiosk.log")).expect("log");
    let child = Command::new("sh")
        .arg(bundle.join("nguon-kiosk"))
        .env("NGUON_BOARD_URL", &url)
        .env("NGUON_KIOSK_DEBUG_PORT", port.to_string())
        .env("NGUON_KIOSK_PROFILE", dir.path().join("profile"))
        .env("NGUON_KIOSK_FLAGS", "--headless=new --no-sandbox --disable-gpu")
        .env("HOME", dir.path())
        .env_remove("DISPLAY")
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("start the kiosk");
    let kiosk = Kiosk(child);
    let pid = kiosk.0.id();

    // The page renders: the area's name from the feed (fetched with the token) and a heartbeat.
    let feed: Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/boards/{id}/feed"))
        .bearer_auth(token.trim())
        .send()
        .await
        .expect("feed")
        .json()
        .await
        .expect("feed json");
    let area = feed
        .get("area_name")
        .and_then(Value::as_str)
        .expect("area_name")
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        if let Some(t) = board_title(port, &id).await
            && t.starts_with(&format!("{area} · Bảng tin điện tử ["))
            && heartbeat(&t).is_some()
        {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "the board page did not render: {:?}\n{}",
            board_title(port, &id).await,
            std::fs::read_to_string(dir.path().join("kiosk.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = board_title(port, &id).await.expect("title");
    assert!(heartbeat(&later) > heartbeat(&first), "{first} → {later}");

    // The watchdog: healthy twice.
    let state = dir.path().join("watchdog");
    let restarted = dir.path().join("restarted");
    for _ in 0..2 {
        let said = watchdog(&bundle, port, &state, &restarted);
        assert!(said.is_empty() && !restarted.exists(), "{said}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    // A hung page: its renderer stops; the browser still answers, the title does not move.
    let renderers = descendants_with(pid, "--type=renderer");
    assert!(!renderers.is_empty(), "no renderer under {pid}");
    for r in &renderers {
        // SAFETY: SIGSTOP to a renderer of the Chromium this test started.
        unsafe {
            libc::kill(*r, libc::SIGSTOP);
        }
    }
    let mut runs = 0;
    while !restarted.exists() {
        assert!(runs < 4, "the watchdog did not restart a hung page");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let said = watchdog(&bundle, port, &state, &restarted);
        runs += 1;
        if !restarted.exists() && runs > 1 {
            assert!(said.contains("no heartbeat"), "{said}");
        }
    }
    assert!(
        runs >= 2,
        "restarted after {runs} check(s): two strikes are needed"
    );
    drop(kiosk);
    drop(server);
}
