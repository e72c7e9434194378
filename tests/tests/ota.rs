//! Signed agent updates (issue 16, docs/ota.md), end to end with real processes: a server, and
//! two `nguon-agent` processes each under the restart loop of its systemd unit
//! (`nguon_tests::ota::Supervised`: run, wait for the exit, run again 0.3 s later).
//!
//! 1. Bad uploads are refused, naming the problem (an ELF of another architecture, not an ELF).
//! 2. Release "v-next" (the workspace's agent, stripped, with another version stamped in its
//!    version slot) rolled out to the province: each agent downloads and verifies it, installs it
//!    beside the running one, exits 75, is started again by the loop into the new version, which
//!    confirms itself; the server shows `confirmed` and the new version, and the agents play.
//! 3. A release whose file was tampered with on the server: each agent refuses it (sha256), keeps
//!    its version, and the rollout shows `failed`.
//! 4. A broken release (an executable that exits at once): each agent installs it, the loop starts
//!    it, it dies three times, the launcher rolls back to v-next, and the rollout shows
//!    `rolled_back`.
//! 5. A real agent build ("-unreach", stamped like v-next) that starts but cannot reach the
//!    broker (its configuration names a closed port while it starts): its own watchdog ends it
//!    at the trial's deadline (exit 76), the next start rolls back to v-next, the rollout shows
//!    `rolled_back`, the agents report v-next.
//! 6. A build that starts and hangs before confirming itself (it never reaches a broker, and has
//!    no watchdog of its own): the alarm the launcher set for the trial's deadline ends it, the
//!    next start rolls back to v-next, the rollout shows `rolled_back`, the agents report v-next
//!    and play again.
//!
//! The server runs with `[ota] test_confirm_s` = 20, so 5 and 6 wait seconds for the deadline,
//! not the one-minute minimum of a rollout.
//!
//! Only on x86_64 (the broken and hanging builds are x86_64 executables).
#![cfg(target_arch = "x86_64")]

use std::path::Path;
use std::time::{Duration, Instant};

use nguon_tests::harness::AgentProc;
use nguon_tests::net::eventually;
use nguon_tests::ota::{Supervised, exit_elf, hang_elf, stamp_version, upload_release};
use nguon_tests::process::workspace_binary;
use nguon_tests::province::{POLL, Province};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);
/// Seconds a new version has to confirm itself (`[ota] test_confirm_s`: the unreachable and
/// hanging builds wait this out; v-next's restart and confirmation and the broken build's four
/// starts must fit in it on a loaded machine).
const CONFIRM_S: u32 = 20;
/// A broker address where nothing listens (this helper's port range).
const DEAD_BROKER: &str = "mqtt://127.0.0.1:23999";

/// The devices' states in rollout `id`, once every one of them is in `want`.
async fn wait_rollout(p: &Province, id: &str, want: &str, agents: &[Supervised]) -> Value {
    let api = p.api().clone();
    let r = eventually(&format!("rollout {id}: every device {want}"), WAIT, POLL, || {
        let api = api.clone();
        async move {
            let r = api
                .get(&format!("/api/v1/rollouts/{id}"))
                .await
                .map_err(|e| e.to_string())?;
            let devices = r["devices"].as_array().cloned().unwrap_or_default();
            if devices.len() == 2 && devices.iter().all(|d| d["state"] == want) {
                Ok(r)
            } else {
                Err(format!("{}", r["devices"]))
            }
        }
    })
    .await;
    r.unwrap_or_else(|e| panic!("{e}\n{}", agents.iter().map(|a| a.logs()).collect::<String>()))
}

/// Every device of rollout `r` has a reason that contains `needle`.
fn every_reason_contains(r: &Value, needle: &str) {
    for d in r["devices"].as_array().unwrap() {
        assert!(d["reason"].as_str().unwrap().contains(needle), "{d}");
    }
}

/// Wait until every device's heartbeat reports `version`.
async fn wait_version(p: &Province, version: &str) {
    let api = p.api().clone();
    eventually(&format!("every agent reports {version}"), WAIT, POLL, || {
        let api = api.clone();
        async move {
            let r = api.get("/api/v1/rollouts").await.map_err(|e| e.to_string())?;
            let id = r[0]["id"].as_str().unwrap_or_default().to_string();
            let r = api
                .get(&format!("/api/v1/rollouts/{id}"))
                .await
                .map_err(|e| e.to_string())?;
            let v: Vec<&str> = r["devices"]
                .as_array()
                .map(|d| d.iter().filter_map(|d| d["agent_version"].as_str()).collect())
                .unwrap_or_default();
            if v.len() == 2 && v.iter().all(|x| *x == version) {
                Ok(())
            } else {
                Err(format!("{v:?}"))
            }
        }
    })
    .await
    .unwrap();
}

async fn rollout(p: &Province, release: &str, confirm_minutes: u32) -> String {
    let body = json!({"release": release, "areas": [p.province], "percent": 100, "confirm_minutes": confirm_minutes});
    let r = p.api().post("/api/v1/rollouts", &body).await.expect("rollout");
    r["id"].as_str().expect("rollout id").to_string()
}

/// Schedule a clip for the province and wait until every agent played it.
async fn plays(p: &Province) {
    let (_, sha) = p.clip(1.5).await;
    let (schedule, _) = p.schedule_in(&sha, &[&p.province], 6).await;
    p.wait_plays(&schedule, &p.ids(|_| true), WAIT).await;
}

fn strip_copy(src: &Path, dst: &Path) {
    let ok = std::process::Command::new("strip")
        .arg("-o")
        .arg(dst)
        .arg(src)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        std::fs::copy(src, dst).expect("copy the agent binary");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_update_to_a_signed_release_refuse_a_tampered_one_and_roll_back_a_broken_an_unreachable_and_a_hanging_one()
 {
    let t0 = Instant::now();
    let confirm_s = CONFIRM_S.to_string();
    let mut p = Province::new_with(
        None,
        1,
        2,
        &[
            ("NGUON_OTA_MAX_BINARY_MB", "512"),
            ("NGUON_OTA_TEST_CONFIRM_S", &confirm_s),
        ],
    )
    .await;
    let launcher = workspace_binary("nguon-agent").expect("nguon-agent built");
    let builds = p.dir.path().join("builds");
    std::fs::create_dir_all(&builds).unwrap();
    let stripped = builds.join("stripped");
    strip_copy(&launcher, &stripped);
    let first = env!("CARGO_PKG_VERSION");
    let next = format!("{first}-next");
    stamp_version(&stripped, &builds.join("next"), &next).unwrap();
    stamp_version(&stripped, &builds.join("tampered"), &format!("{first}-tampered")).unwrap();
    stamp_version(&stripped, &builds.join("unreach"), &format!("{first}-unreach")).unwrap();
    let v_next = std::fs::read(builds.join("next")).unwrap();

    // The agents, each under its unit's restart loop.
    let base = p.api().base().to_string();
    let mqtt = format!("mqtt://{}", p.server.broker.addr());
    let mut agents = Vec::new();
    for d in p.plan.devices.clone() {
        let a =
            AgentProc::prepare_on(p.dir.path(), &d, std::slice::from_ref(&mqtt), "", &base, &p.key).unwrap();
        agents.push(Supervised::start(
            launcher.clone(),
            a.config().to_path_buf(),
            a.dir.clone(),
            Duration::from_millis(300),
        ));
        p.agents.push(a);
    }
    p.wait_online().await;
    let setup_s = t0.elapsed().as_secs_f64();

    // 1. Bad uploads.
    let (status, body) = upload_release(p.api(), &next, "aarch64", &v_next)
        .await
        .unwrap_err();
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("wrong_arch") && body.contains("x86_64"), "{body}");
    let (status, body) = upload_release(p.api(), "9.9.9", "x86_64", b"#!/bin/sh\nexit 0\n")
        .await
        .unwrap_err();
    assert!(
        status == 422 && body.contains("not_an_executable"),
        "{status} {body}"
    );
    let (status, body) = upload_release(p.api(), "9.9.9", "mips", &v_next)
        .await
        .unwrap_err();
    assert!(status == 422 && body.contains("`arch`"), "{status} {body}");

    // 2. v-next: installed, restarted into, confirmed, playing.
    let rel = upload_release(p.api(), &next, "x86_64", &v_next)
        .await
        .expect("upload v-next");
    assert_eq!(rel["size"], v_next.len());
    let t_update = Instant::now();
    let r1 = rollout(&p, &next, 2).await;
    wait_rollout(&p, &r1, "confirmed", &agents).await;
    wait_version(&p, &next).await;
    let update_s = t_update.elapsed().as_secs_f64();
    for a in &agents {
        assert!(a.exits().contains(&Some(75)), "exits {:?}", a.exits());
    }
    let t_play = Instant::now();
    plays(&p).await;
    let play_s = t_play.elapsed().as_secs_f64();

    // 3. A tampered file: refused by every agent, which keeps v-next.
    let tampered = std::fs::read(builds.join("tampered")).unwrap();
    let rel = upload_release(p.api(), &format!("{first}-tampered"), "x86_64", &tampered)
        .await
        .unwrap();
    let file = p
        .dir
        .path()
        .join("server-data/agent-releases")
        .join(rel["sha256"].as_str().unwrap());
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let r2 = rollout(&p, &format!("{first}-tampered"), 2).await;
    let r = wait_rollout(&p, &r2, "failed", &agents).await;
    for d in r["devices"].as_array().unwrap() {
        assert!(d["reason"].as_str().unwrap().contains("sha256"), "{d}");
        assert_eq!(d["agent_version"], next.as_str());
    }

    // 4. A broken build: installed, dies at every start, rolled back to v-next.
    let broken = format!("{first}-broken");
    upload_release(p.api(), &broken, "x86_64", &exit_elf(3))
        .await
        .expect("upload the broken build");
    let t_rollback = Instant::now();
    let r3 = rollout(&p, &broken, 1).await;
    let r = wait_rollout(&p, &r3, "rolled_back", &agents).await;
    let rollback_s = t_rollback.elapsed().as_secs_f64();
    every_reason_contains(&r, "3 times");
    assert_eq!(r["counts"]["rolled_back"], 2);
    wait_version(&p, &next).await;
    for a in &agents {
        let died = a.exits().iter().filter(|e| **e == Some(3)).count();
        assert_eq!(died, 3, "exits {:?}", a.exits());
    }

    // 5. A real agent build ("-unreach", stamped like v-next) that starts but cannot reach the
    //    broker: the configuration names a closed port while it starts (v-next, running,
    //    keeps its connection and installs it); once it runs on trial, the configuration is
    //    given back for the version it returns to. Its watchdog ends it at the deadline (76).
    let unreach = format!("{first}-unreach");
    let v_unreach = std::fs::read(builds.join("unreach")).unwrap();
    upload_release(p.api(), &unreach, "x86_64", &v_unreach)
        .await
        .expect("upload the unreachable build");
    let configs: Vec<(std::path::PathBuf, String)> = p
        .agents
        .iter()
        .map(|a| {
            (
                a.config().to_path_buf(),
                std::fs::read_to_string(a.config()).unwrap(),
            )
        })
        .collect();
    for (path, text) in &configs {
        assert!(text.contains(&mqtt), "{text}");
        std::fs::write(path, text.replace(&mqtt, DEAD_BROKER)).unwrap();
    }
    let t_unreach = Instant::now();
    let r5 = rollout(&p, &unreach, 1).await;
    for a in &agents {
        eventually(&format!("{unreach} runs on trial"), WAIT, POLL, || {
            let on_trial = a
                .logs()
                .lines()
                .any(|l| l.contains("on trial: confirming") && l.contains(&unreach));
            async move {
                if on_trial {
                    Ok(())
                } else {
                    Err("not yet".to_string())
                }
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", a.logs()));
    }
    for (path, text) in &configs {
        std::fs::write(path, text).unwrap();
    }
    let r = wait_rollout(&p, &r5, "rolled_back", &agents).await;
    let unreach_s = t_unreach.elapsed().as_secs_f64();
    every_reason_contains(&r, "did not confirm itself before");
    wait_version(&p, &next).await;
    for a in &agents {
        assert!(a.exits().contains(&Some(76)), "exits {:?}", a.exits());
    }

    // 6. A build that starts and hangs before confirming itself (no watchdog of its own): the
    //    launcher's alarm ends it at the trial's deadline (`[ota] test_confirm_s`), the next
    //    start rolls back to v-next.
    let hang = format!("{first}-hang");
    upload_release(p.api(), &hang, "x86_64", &hang_elf())
        .await
        .expect("upload the hanging build");
    let t_hang = Instant::now();
    let r4 = rollout(&p, &hang, 1).await;
    let r = wait_rollout(&p, &r4, "rolled_back", &agents).await;
    let hang_s = t_hang.elapsed().as_secs_f64();
    every_reason_contains(&r, "did not confirm itself before");
    assert_eq!(r["counts"]["rolled_back"], 2);
    assert!(
        hang_s >= CONFIRM_S as f64,
        "rolled back after {hang_s:.1} s, before the deadline"
    );
    wait_version(&p, &next).await;
    for a in &agents {
        // Only the hanging build met the alarm: v-next, confirmed long before, was not ended.
        assert_eq!(a.signals(), vec![libc::SIGALRM], "exits {:?}", a.exits());
    }
    plays(&p).await;
    eprintln!(
        "ota: setup (server, builds, 2 agents online) {setup_s:.1} s; update to v-next confirmed on 2 agents in \
         {update_s:.1} s; a play after it {play_s:.1} s; broken build rolled back in {rollback_s:.1} s; unreachable build rolled back in {unreach_s:.1} s, \
         hanging build in {hang_s:.1} s ({CONFIRM_S} s to confirm); binary {} bytes; \
         whole test {:.1} s",
        v_next.len(),
        t0.elapsed().as_secs_f64()
    );
    if std::env::var_os("NGUON_TEST_OTA_LOGS").is_some() {
        eprintln!("{}", agents[0].logs());
    }
    for mut a in agents {
        a.stop();
    }
}
