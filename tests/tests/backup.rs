//! Backup and restore with the real binary (issue 16): a province with a registered fleet, a
//! clip and schedules is backed up by `nguon-server backup` while the server runs and another
//! client keeps creating schedules; the server is `kill -9`ed; `nguon-server restore` fills a
//! fresh data directory (and a fresh PostgreSQL database with `NGUON_TEST_DATABASE_URL`); a
//! server started on it serves the same devices, schedules, signing key and clip bytes. A
//! damaged backup (one changed byte of the clip) and one from a newer schema are refused, naming
//! the file, before anything is written; so is a restore over a database that has tables.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nguon_tests::api::list;
use nguon_tests::harness::{BrokerChoice, ServerProc};
use nguon_tests::province::{Province, local_in};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn run(mut cmd: Command, args: &[&str]) -> (bool, String) {
    let out = cmd.args(args).output().expect("run nguon-server");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn schedule_ids(s: &ServerProc) -> Vec<String> {
    let mut ids: Vec<String> = list(
        s.api
            .get("/api/v1/schedules?limit=1000")
            .await
            .expect("schedules"),
    )
    .iter()
    .filter_map(|v| v.get("id").and_then(Value::as_str).map(str::to_string))
    .collect();
    ids.sort();
    ids
}

async fn clip_bytes(s: &ServerProc, sha: &str) -> Vec<u8> {
    let r = reqwest::get(format!("{}/media/{sha}", s.api.base()))
        .await
        .expect("GET /media");
    assert!(r.status().is_success(), "GET /media/{sha}: {}", r.status());
    r.bytes().await.expect("body").to_vec()
}

fn copy_dir(from: &Path, to: &Path) {
    let ok = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(ok.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_the_server_writes_restores_into_a_fresh_directory_and_serves_the_same_province()
{
    let mut p = Province::new(None, 2, 3).await;
    let (source, sha) = p.clip(2.0).await;
    let area = p.commune(1);
    for i in 0..3 {
        let (at, _) = local_in(3600 + i * 60);
        p.api()
            .schedule_once("Lịch", &sha, &[area.as_str()], &at, "normal")
            .await
            .expect("schedule");
    }
    let before = schedule_ids(&p.server).await;
    let devices = p.api().devices().await.expect("devices").len();
    let key = p.server.server_key().await.expect("key");

    // Another client keeps writing while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let api = p.api().clone();
        let (sha, area, stop) = (sha.clone(), area.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let (at, _) = local_in(7200 + i64::from(n));
                api.schedule_once("Trong lúc sao lưu", &sha, &[area.as_str()], &at, "normal")
                    .await
                    .expect("schedule during the backup");
                n += 1;
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let backup = p.dir.path().join("backup");
    let started = Instant::now();
    let (ok, out) = run(p.server.command().unwrap(), &["backup", backup.to_str().unwrap()]);
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.expect("writer");
    assert!(ok, "backup failed:\n{out}");
    eprintln!("backup of a running server: {took:?}, {written} schedules written meanwhile; {out}");
    let after = schedule_ids(&p.server).await;

    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(backup.join("manifest.json")).unwrap()).unwrap();
    let files = manifest["files"].as_array().unwrap();
    let has = |path: &str| files.iter().find(|f| f["path"] == path).cloned();
    assert_eq!(
        has("data/server.key").expect("the signing key is in the backup")["mode"],
        0o600
    );
    assert!(
        has(&format!("data/media/{sha}")).is_some(),
        "the clip is in the backup: {manifest}"
    );
    assert!(manifest["schema_version"].as_i64().unwrap() > 0);

    p.server.kill9();

    // A fresh directory (and database) for the restore.
    let fresh = p.dir.path().join("fresh");
    let mut s2 = ServerProc::prepare_with(&fresh, BrokerChoice::from_env(), &[])
        .await
        .unwrap();
    let (ok, out) = run(s2.command().unwrap(), &["restore", backup.to_str().unwrap()]);
    assert!(ok, "restore failed:\n{out}");
    s2.launch().await.expect("the restored server starts");

    assert_eq!(
        s2.api.devices().await.unwrap().len(),
        devices,
        "devices after restore"
    );
    assert_eq!(s2.server_key().await.unwrap(), key, "the signing key is the same");
    let restored = schedule_ids(&s2).await;
    for id in &before {
        assert!(
            restored.contains(id),
            "schedule {id}, created before the backup, is restored"
        );
    }
    for id in &restored {
        assert!(after.contains(id), "restored schedule {id} was never created");
    }
    assert!(restored.len() >= before.len() && restored.len() <= after.len());
    let bytes = clip_bytes(&s2, &sha).await;
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        sha,
        "clip bytes after restore"
    );
    // `source` is what the loudspeakers are sent: the normalised rendition when the upload got
    // one (its bytes must be restored too), else the uploaded file itself.
    let (sent, rendition) = s2.api.delivered(&sha).await.expect("media record after restore");
    let sent_bytes = match rendition {
        Some(r) => r,
        None => clip_bytes(&s2, &sent).await,
    };
    assert_eq!(
        sent_bytes,
        std::fs::read(&source).unwrap(),
        "what loudspeakers are sent is restored byte for byte ({sent})"
    );
    eprintln!(
        "restored: {} devices, {} schedules ({} before the backup, {} after), clip {} bytes",
        devices,
        restored.len(),
        before.len(),
        after.len(),
        bytes.len()
    );

    // A restore over a database with tables is refused.
    let (ok, out) = run(s2.command().unwrap(), &["restore", backup.to_str().unwrap()]);
    assert!(
        !ok && (out.contains("already holds a database") || out.contains("already has tables")),
        "{out}"
    );

    // One changed byte of the clip: refused, naming the file, nothing written.
    let damaged = p.dir.path().join("damaged");
    copy_dir(&backup, &damaged);
    let clip = damaged.join(format!("data/media/{sha}"));
    let mut b = std::fs::read(&clip).unwrap();
    b[100] ^= 1;
    std::fs::write(&clip, b).unwrap();
    let s3 = ServerProc::prepare_with(&p.dir.path().join("s3"), BrokerChoice::from_env(), &[])
        .await
        .unwrap();
    let (ok, out) = run(s3.command().unwrap(), &["restore", damaged.to_str().unwrap()]);
    assert!(!ok, "a damaged backup was restored:\n{out}");
    assert!(
        out.contains(&format!("data/media/{sha}")) && out.contains("checksum mismatch"),
        "{out}"
    );
    let s3_data = p.dir.path().join("s3/server-data");
    assert!(
        !s3_data.join("server.key").exists() && !s3_data.join("nguon.db").exists(),
        "nothing is written"
    );

    // A backup from a newer schema: refused.
    let newer = p.dir.path().join("newer");
    copy_dir(&backup, &newer);
    let mut m = manifest.clone();
    m["schema_version"] = Value::from(99_999_999i64);
    std::fs::write(newer.join("manifest.json"), m.to_string()).unwrap();
    let (ok, out) = run(s3.command().unwrap(), &["restore", newer.to_str().unwrap()]);
    assert!(!ok && out.contains("newer than this nguon-server"), "{out}");
}
