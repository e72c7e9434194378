//! docs/operations.md, "Set up a province", run as written: the test reads the section's `sh`
//! block and runs it with bash (`set -euo pipefail`) in a temp directory, with the workspace's
//! `nguon-server`, `nguon-provision` and `nguon-agent` first on `PATH`, free ports in `HTTP_PORT`
//! and `MQTT_PORT`, and with `NGUON_TEST_DATABASE_URL` a fresh PostgreSQL database in
//! `NGUON_DATABASE_URL`. The block starts Mosquitto, the server and an agent in the background
//! and ends when the proof of play arrived; the test then checks that proof through the API and
//! the samples the agent's WAV sink wrote against the clip the server sent. Everything the block
//! started (one process group) is killed at the end.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nguon_tests::api::Api;
use nguon_tests::db::TestDatabase;
use nguon_tests::net::free_port;
use nguon_tests::process::{workspace_binary, workspace_root};
use serde_json::Value;

const DEVICE: &str = "lc-08003-0001";

/// The `sh` block of the section `heading` of a Markdown file.
fn fenced_block(markdown: &str, heading: &str) -> Option<String> {
    let section = markdown.split("\n## ").find(|s| s.starts_with(heading))?;
    let start = section.find("```sh\n")? + "```sh\n".len();
    let len = section[start..].find("\n```")?;
    Some(section[start..start + len + 1].to_string())
}

/// A process group (the script and everything it started), killed on drop.
struct Group(i32);

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this test created.
        unsafe {
            libc::kill(-self.0, libc::SIGKILL);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_setup_of_a_province_ends_with_a_play_on_the_provisioned_agent() {
    nguon_tests::init_crypto();
    let doc =
        std::fs::read_to_string(workspace_root().join("docs/operations.md")).expect("docs/operations.md");
    let block = fenced_block(&doc, "Set up a province").expect("an sh block under \"## Set up a province\"");
    for step in [
        "nguon-server --config nguon.toml init",
        "nguon-provision bulk",
        "fleet/import",
        "nguon-agent run",
    ] {
        assert!(block.contains(step), "the documented steps lost `{step}`");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("setup.sh");
    std::fs::write(&script, format!("set -euo pipefail\n{block}")).expect("write the script");

    let bin = workspace_binary("nguon-server").expect("nguon-server");
    for b in ["nguon-agent", "nguon-provision"] {
        workspace_binary(b).unwrap_or_else(|e| panic!("{b}: {e}"));
    }
    let bin_dir = bin.parent().expect("bin dir").to_path_buf();
    let path = format!(
        "{}:/usr/sbin:/sbin:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (http_port, mqtt_port) = (free_port(), free_port());
    let db = TestDatabase::fresh().await.expect("a test database");
    let log = dir.path().join("setup.log");
    let out = std::fs::File::create(&log).expect("log");
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .current_dir(dir.path())
        .env("PATH", path)
        .env("HTTP_PORT", http_port.to_string())
        .env("MQTT_PORT", mqtt_port.to_string())
        .env("RUST_LOG", "info,sqlx=warn")
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .process_group(0);
    for (k, _) in std::env::vars() {
        if k.starts_with("NGUON_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("NGUON_ADMIN_TOKEN", TOKEN);
    if let Some(url) = db.url() {
        cmd.env("NGUON_DATABASE_URL", url);
    }
    let mut child = cmd.spawn().expect("bash");
    let _group = Group(child.id() as i32);
    let log_tail = |p: &Path| {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    };
    let deadline = Instant::now() + Duration::from_secs(150);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            panic!("the documented setup did not finish in 150 s\n{}", log_tail(&log));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        status.success(),
        "the documented setup failed ({status})\n{}",
        log_tail(&log)
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("played: schedule"), "{}", log_tail(&log));

    let api = Api::new(format!("http://127.0.0.1:{http_port}"), TOKEN);
    let plays = api.plays(&format!("device={DEVICE}")).await.expect("plays");
    let played: Vec<&Value> = plays
        .iter()
        .filter(|p| p.get("outcome").and_then(Value::as_str) == Some("played"))
        .collect();
    assert_eq!(played.len(), 1, "one proof of play: {plays:?}");
    let device = api
        .get(&format!("/api/v1/devices/{DEVICE}"))
        .await
        .expect("device");
    let village = device.get("area").and_then(Value::as_str).unwrap_or("");
    assert!(village.starts_with("08003-"), "in its village: {device}");
    assert_eq!(device.get("online"), Some(&Value::Bool(true)), "{device}");

    // The sink got the samples of what the server sends loudspeakers (the tone's rendition).
    let sha = played[0]
        .get("sha256")
        .and_then(Value::as_str)
        .expect("sha256")
        .to_string();
    let bytes = reqwest::get(format!("http://127.0.0.1:{http_port}/media/{sha}"))
        .await
        .expect("media")
        .bytes()
        .await
        .expect("media body");
    let sent = dir.path().join("sent.wav");
    std::fs::write(&sent, &bytes).expect("write");
    let wavs: Vec<PathBuf> = std::fs::read_dir(dir.path().join("sink"))
        .expect("the sink directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    assert_eq!(wavs.len(), 1, "{wavs:?}");
    let src = nguon_tests::audio::decode(&sent).expect("decode what was sent");
    let got = nguon_tests::audio::read_wav(&wavs[0]).expect("read the sink");
    // At the device's volume (the bundle's `default_volume`, linear gain).
    let config = std::fs::read_to_string(dir.path().join(DEVICE).join("agent.toml")).expect("agent.toml");
    let volume: f32 = config
        .lines()
        .find_map(|l| l.strip_prefix("default_volume = "))
        .and_then(|v| v.trim().parse().ok())
        .expect("default_volume in agent.toml");
    nguon_tests::audio::compare(&src, &got, volume / 100.0, 1e-4)
        .unwrap_or_else(|e| panic!("the samples played are not the clip: {e}"));

    // Init again, now that everything runs: nothing to do, the key unchanged.
    let key = std::fs::read(dir.path().join("server/server.key")).expect("server.key");
    let again = Command::new(&bin)
        .args(["--config", "nguon.toml", "init"])
        .current_dir(dir.path())
        .env("NGUON_DATA_DIR", dir.path().join("server"))
        .env("NGUON_HTTP_ADDR", format!("127.0.0.1:{http_port}"))
        .env(
            "NGUON_MQTT_URL",
            format!("mqtt://nguon-server@127.0.0.1:{mqtt_port}"),
        )
        .envs(db.url().map(|u| ("NGUON_DATABASE_URL", u.to_string())))
        .output()
        .expect("init again");
    let said = String::from_utf8_lossy(&again.stdout);
    assert!(
        again.status.success() && said.contains("nothing to do"),
        "{said}{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(std::fs::read(dir.path().join("server/server.key")).unwrap(), key);
}

/// The admin token, given to the block (which makes one with openssl when none is set).
const TOKEN: &str = "setup-province-admin-token-0123456789";
