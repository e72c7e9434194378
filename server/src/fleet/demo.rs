//! The demo seed (`--demo` / `NGUON_DEMO=1`): a made-up slice of Lào Cai province. Area codes
//! are invented for the demo (the province code `10` and the commune codes `08003`, `08020`,
//! `08050` are not official codes). Idempotent: running it again changes nothing.
//!
//! It creates the province, three communes with villages, 30 loudspeaker clusters (`lc-…`) and
//! 5 bulletin boards (`bb-…`) with random MQTT passwords (hashes stored; plaintexts written to
//! `data_dir/demo-credentials.csv`, mode 0600, only for devices created in this run), one
//! approved clip (a three-tone chime synthesized here and stored through the upload code path)
//! and a daily 06:30 Asia/Ho_Chi_Minh schedule to the whole province.

use std::io::Write;

use serde_json::json;
use sqlx::Row;

use crate::error::{Error, Result};
use crate::store::now_ms;
use crate::{AppState, area, media};

/// (commune code, name, villages, position).
type Commune = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    (f64, f64),
);

const COMMUNES: &[Commune] = &[
    (
        "08003",
        "Xã Sa Pa",
        &[
            ("08003-01", "Thôn Lếch Dao"),
            ("08003-02", "Bản Cát Cát"),
            ("08003-03", "Thôn Ý Linh Hồ"),
        ],
        (22.336, 103.844),
    ),
    (
        "08020",
        "Xã Bắc Hà",
        &[("08020-01", "Thôn Bắc Hà"), ("08020-02", "Bản Phố")],
        (22.540, 104.290),
    ),
    (
        "08050",
        "Xã Mường Khương",
        &[
            ("08050-01", "Thôn Mường Khương"),
            ("08050-02", "Bản Lả Gì Thàng"),
            ("08050-03", "Thôn Sảng Chải"),
        ],
        (22.770, 104.110),
    ),
];

const SCHEDULE_TITLE: &str = "Bản tin sáng (demo)";

/// Seed the demo province (idempotent).
pub async fn seed_demo(state: &AppState) -> Result<()> {
    let store = &state.store;
    let mut conn = store.pool.acquire().await?;
    area::upsert(&mut conn, "10", "Lào Cai", None, "province").await?;
    for (code, name, villages, _) in COMMUNES {
        area::upsert(&mut conn, code, name, Some("10"), "commune").await?;
        for (v, vname) in *villages {
            area::upsert(&mut conn, v, vname, Some(code), "village").await?;
        }
    }
    drop(conn);

    // Devices: 30 loudspeaker clusters spread over the villages, 5 boards at the communes and province.
    let villages: Vec<(&str, &str, (f64, f64))> = COMMUNES
        .iter()
        .flat_map(|(_, _, vs, pos)| vs.iter().map(move |(c, n)| (*c, *n, *pos)))
        .collect();
    /// (id, kind, area, name, position).
    type DemoDevice = (String, &'static str, String, String, (f64, f64));
    let mut devices: Vec<DemoDevice> = Vec::new();
    for i in 0..30 {
        let (code, vname, (lat, lon)) = villages[i % villages.len()];
        let k = i / villages.len() + 1;
        let pos = (lat + 0.003 * (i as f64 % 5.0), lon + 0.004 * (i as f64 % 3.0));
        devices.push((
            format!("lc-{code}-{k:02}"),
            "loudspeaker",
            code.to_string(),
            format!("Cụm loa {vname} {k}"),
            pos,
        ));
    }
    for (i, (code, name, _, pos)) in COMMUNES.iter().enumerate() {
        devices.push((
            format!("bb-{code}-01"),
            "board",
            code.to_string(),
            format!("Bảng tin {name}"),
            (pos.0 + 0.001, pos.1),
        ));
        if i == 0 {
            devices.push((
                format!("bb-{code}-02"),
                "board",
                code.to_string(),
                format!("Bảng tin chợ {name}"),
                (pos.0 - 0.001, pos.1),
            ));
        }
    }
    devices.push((
        "bb-10-01".into(),
        "board",
        "10".into(),
        "Bảng tin Trung tâm tỉnh".into(),
        (22.485, 103.970),
    ));

    let mut created: Vec<(String, String)> = Vec::new();
    let now = now_ms();
    for (id, kind, area_code, name, (lat, lon)) in &devices {
        let exists = sqlx::query("SELECT id FROM devices WHERE id = $1")
            .bind(id.clone())
            .fetch_optional(&store.pool)
            .await?
            .is_some();
        if exists {
            continue;
        }
        let password = nguon_provision::credential::generate_password();
        sqlx::query(
            "INSERT INTO devices (id, kind, area, name, lat, lon, enabled, credential_hash, language, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, 'vi', $8, $9)",
        )
        .bind(id.clone())
        .bind(kind.to_string())
        .bind(area_code.clone())
        .bind(name.clone())
        .bind(*lat)
        .bind(*lon)
        .bind(nguon_provision::credential::hash_password(&password))
        .bind(now)
        .bind(now)
        .execute(&store.pool)
        .await?;
        created.push((id.clone(), password));
    }
    if !created.is_empty() {
        write_credentials(state, &created)?;
        crate::services::changes::changed(
            state,
            crate::domain::change::Change::Devices(created.iter().map(|(id, _)| id.clone()).collect()),
        )
        .await;
    }

    // One approved clip, stored through the upload path.
    let wav = chime_wav();
    let (clip, _) =
        media::ingest_bytes(state, &wav, "chuong-bao.wav", Some("Chuông báo bản tin (demo)")).await?;
    if clip.status != "approved" {
        media::transition(
            state,
            &clip.sha256,
            &["draft", "pending", "rejected"],
            "approved",
            Some("demo".into()),
        )
        .await?;
    }

    // A daily schedule to the province at 06:30 local time.
    let exists = sqlx::query("SELECT id FROM schedules WHERE title = $1")
        .bind(SCHEDULE_TITLE.to_string())
        .fetch_optional(&store.pool)
        .await?
        .map(|r| r.try_get::<String, _>("id"))
        .transpose()?
        .is_some();
    if !exists {
        let req: crate::domain::schedule::NewSchedule = serde_json::from_value(json!({
            "title": SCHEDULE_TITLE,
            "media": [clip.sha256],
            "targets": { "areas": ["10"] },
            "rule": { "kind": "cron", "cron": "30 6 * * *" },
            "time_zone": "Asia/Ho_Chi_Minh",
        }))
        .map_err(Error::context("demo schedule"))?;
        let prepared = crate::services::schedules::prepare(state, &req).await?;
        let mut tx = store.begin_write().await?;
        crate::services::schedules::create_in(&mut tx, &prepared).await?;
        tx.commit().await?;
        state.wake.dispatch();
    }
    tracing::info!(
        devices = devices.len(),
        new_devices = created.len(),
        "demo province seeded"
    );
    Ok(())
}

fn write_credentials(state: &AppState, created: &[(String, String)]) -> Result<()> {
    let path = state.settings.data_dir.join("demo-credentials.csv");
    let new = !path.exists();
    let mut opts = std::fs::OpenOptions::new();
    opts.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&path)?;
    if new {
        writeln!(f, "device_id,password")?;
    }
    for (id, pw) in created {
        writeln!(f, "{id},{pw}")?;
    }
    f.sync_all()?;
    tracing::info!(path = %path.display(), "demo device passwords written");
    Ok(())
}

/// A 3-tone chime (G5, E5, C5), 16-bit PCM mono at 22.05 kHz, about 2.4 s, as a WAV file.
pub fn chime_wav() -> Vec<u8> {
    const RATE: u32 = 22_050;
    let notes = [783.99f64, 659.25, 523.25];
    let note_len = (RATE as f64 * 0.8) as usize;
    let mut samples: Vec<i16> = Vec::with_capacity(note_len * notes.len());
    for f in notes {
        for n in 0..note_len {
            let t = n as f64 / RATE as f64;
            let env = (-3.0 * t).exp() * (1.0 - (-200.0 * t).exp());
            let v = (2.0 * std::f64::consts::PI * f * t).sin() * 0.6
                + (4.0 * std::f64::consts::PI * f * t).sin() * 0.15;
            samples.push((v * env * 20_000.0) as i16);
        }
    }
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&RATE.to_le_bytes());
    out.extend_from_slice(&(RATE * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}
