//! `provision-bench`: times `bulk` on synthetic station lists (Lào Cai's 1,650 devices and
//! 10,000), a no-op re-run, and, as a baseline, `mosquitto_passwd -U` hashing 1,650 passwords.
//! Prints a Markdown table for `docs/benchmarks.md`.
//!
//! `cargo run --release -p nguon-provision --bin provision-bench`

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use nguon_protocol::KeyPair;
use nguon_provision::{BulkOptions, bulk, credential, sample};

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn run(dir: &Path, devices: usize, communes: usize) -> anyhow::Result<(Duration, Duration)> {
    let csv = dir.join(format!("stations-{devices}.csv"));
    std::fs::write(&csv, sample::station_csv(devices, communes))?;
    let out = dir.join(format!("out-{devices}"));
    let opts = BulkOptions {
        stations: csv,
        out,
        server_url: Some("https://nguon.example.vn".into()),
        server_public_key: Some(KeyPair::generate().public_b64()),
        province_code: Some("10".into()),
        province_name: Some("Lào Cai".into()),
        ..BulkOptions::default()
    };
    let t = Instant::now();
    let r = bulk(&opts)?;
    let first = t.elapsed();
    anyhow::ensure!(
        r.created.len() == devices,
        "created {} of {devices}",
        r.created.len()
    );
    let t = Instant::now();
    let r = bulk(&opts)?;
    let again = t.elapsed();
    anyhow::ensure!(r.files_written == 0, "a re-run wrote {} files", r.files_written);
    Ok((first, again))
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("nguon-provision-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);

    // Per-hash cost of our own hash (single thread).
    let n = 2000;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(credential::hash_password("0123456789abcdefghijklmn"));
    }
    let per_hash = t.elapsed() / n;
    eprintln!("hash loop: {}", secs(t.elapsed()));

    let mut rows = Vec::new();
    for (devices, communes) in [(1650, 84), (10_000, 500)] {
        let (first, again) = run(&dir, devices, communes)?;
        eprintln!(
            "{devices} devices: first run {}, re-run {}",
            secs(first),
            secs(again)
        );
        rows.push((devices, communes, first, again));
    }

    // Baseline: mosquitto_passwd -U on a 1,650-line plaintext file.
    let plain = dir.join("plain");
    let text: String = (0..1650)
        .map(|i| format!("lc-{i:05}:{}\n", credential::generate_password()))
        .collect();
    std::fs::write(&plain, text)?;
    let t = Instant::now();
    let status = Command::new("mosquitto_passwd").arg("-U").arg(&plain).status();
    let mosq = t.elapsed();
    let mosq = match status {
        Ok(s) if s.success() => {
            let first = std::fs::read_to_string(&plain)?;
            let iters = first
                .lines()
                .next()
                .and_then(|l| l.split('$').nth(2))
                .unwrap_or("?")
                .to_string();
            Some((mosq, iters))
        }
        _ => None,
    };
    let t = Instant::now();
    std::fs::remove_dir_all(&dir).context("removing the bench directory")?;
    eprintln!("cleanup: {}", secs(t.elapsed()));

    println!(
        "Machine: {cores} cores (`nproc`); release build; `cargo run --release -p nguon-provision --bin provision-bench`.\n"
    );
    println!("| run | devices | communes | first run (all new) | re-run (no change) |");
    println!("|---|---:|---:|---:|---:|");
    for (d, c, f, a) in rows {
        println!("| bulk | {d} | {c} | {} | {} |", secs(f), secs(a));
    }
    println!(
        "\nOne `$7$` PBKDF2-SHA512 hash at {} iterations, single thread: {:.3} ms.",
        credential::ITERATIONS,
        per_hash.as_secs_f64() * 1000.0
    );
    match mosq {
        Some((d, iters)) => println!(
            "Baseline: `mosquitto_passwd -U` on a 1,650-line plaintext file ({iters} iterations, its default): {} ({:.3} ms per hash).",
            secs(d),
            d.as_secs_f64() * 1000.0 / 1650.0
        ),
        None => println!("Baseline: `mosquitto_passwd` not available."),
    }
    Ok(())
}
