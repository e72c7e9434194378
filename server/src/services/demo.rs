//! The demo seed use case (`--demo` / `NGUON_DEMO=1`): a made-up slice of Lào Cai province. Area codes
//! are invented for the demo (the province code `10` and the commune codes `08003`, `08020`,
//! `08050` are not official codes). Idempotent: running it again changes nothing.
//!
//! It creates the province, three communes with villages, 30 loudspeaker clusters (`lc-…`) and
//! 5 bulletin boards (`bb-…`) with random MQTT passwords (hashes stored), a report-signing key
//! for every loudspeaker (public key stored), so that their agents' signed state, telemetry and
//! proofs are accepted with `allow_unsigned_devices` off, the default; the passwords and the
//! loudspeakers' secret keys are written to `data_dir/demo-credentials.csv`
//! (`device_id,password,signing_key`, mode 0600, only for devices created in this run). Then one
//! approved clip (a three-tone chime synthesized here and stored through the upload code path)
//! and a daily 06:30 Asia/Ho_Chi_Minh schedule to the whole province.

use std::io::Write;

use serde_json::json;

use crate::domain::area::AreaFields;
use crate::domain::change::Change;
use crate::domain::review::ReviewStatus;
use crate::domain::spreadsheet::cell;
use crate::error::{Error, Result};
use crate::services::{AppState, media};
use crate::store::{self, outbox};

/// A demo commune with its villages (code, name).
struct Commune {
    code: &'static str,
    name: &'static str,
    villages: &'static [(&'static str, &'static str)],
    /// Latitude, longitude.
    position: (f64, f64),
}

const COMMUNES: &[Commune] = &[
    Commune {
        code: "08003",
        name: "Xã Sa Pa",
        villages: &[
            ("08003-01", "Thôn Lếch Dao"),
            ("08003-02", "Bản Cát Cát"),
            ("08003-03", "Thôn Ý Linh Hồ"),
        ],
        position: (22.336, 103.844),
    },
    Commune {
        code: "08020",
        name: "Xã Bắc Hà",
        villages: &[("08020-01", "Thôn Bắc Hà"), ("08020-02", "Bản Phố")],
        position: (22.540, 104.290),
    },
    Commune {
        code: "08050",
        name: "Xã Mường Khương",
        villages: &[
            ("08050-01", "Thôn Mường Khương"),
            ("08050-02", "Bản Lả Gì Thàng"),
            ("08050-03", "Thôn Sảng Chải"),
        ],
        position: (22.770, 104.110),
    },
];

const SCHEDULE_TITLE: &str = "Bản tin sáng (demo)";

/// Seed the demo province (idempotent). The areas and the devices missing are written in one
/// transaction with their outbox row (`Change::Devices` of the new devices); the credentials
/// file is written before it commits (a failed write creates nothing). The clip and the schedule
/// go through their own use cases.
pub async fn seed(state: &AppState) -> Result<()> {
    let store = &state.store;
    let mut tx = store.begin_write().await?;
    let area = |code: &str, name: &str, parent: Option<&str>, level: &str| AreaFields {
        code: code.into(),
        name: name.into(),
        parent: parent.map(str::to_string),
        level: level.into(),
    };
    store::areas::upsert(&mut tx, &area("10", "Lào Cai", None, "province")).await?;
    for c in COMMUNES {
        store::areas::upsert(&mut tx, &area(c.code, c.name, Some("10"), "commune")).await?;
        for (v, vname) in c.villages {
            store::areas::upsert(&mut tx, &area(v, vname, Some(c.code), "village")).await?;
        }
    }

    let devices = demo_devices();
    let mut created: Vec<Created> = Vec::new();
    for d in &devices {
        if store::devices::exists_in(&mut tx, &d.id).await? {
            continue;
        }
        let password = nguon_provision::credential::generate_password();
        let key = (d.kind == "loudspeaker").then(nguon_protocol::DeviceKey::generate);
        let row = store::devices::NewRow {
            id: d.id.clone(),
            kind: d.kind.to_string(),
            area: d.area.clone(),
            name: d.name.clone(),
            lat: Some(d.position.0),
            lon: Some(d.position.1),
            enabled: true,
            credential_hash: Some(nguon_provision::credential::hash_password(&password)),
            public_key: key.as_ref().map(|k| k.public_b64()),
            language: Some("vi".into()),
            volume: None,
        };
        store::devices::insert_in(&mut tx, &row).await?;
        created.push(Created {
            id: d.id.clone(),
            password,
            key,
        });
    }
    if !created.is_empty() {
        let ids = created.iter().map(|c| c.id.clone()).collect();
        outbox::insert(&mut tx, &Change::Devices(ids)).await?;
        write_credentials(state, &created)?;
    }
    tx.commit().await?;
    if !created.is_empty() {
        state.wake.dispatch();
    }

    // One approved clip, stored through the upload path.
    let wav = chime_wav();
    let (clip, _) =
        media::ingest_bytes(state, &wav, "chuong-bao.wav", Some("Chuông báo bản tin (demo)")).await?;
    if clip.status != ReviewStatus::Approved {
        media::approve_unreviewed(state, &clip.sha256, "demo").await?;
    }

    // A daily schedule to the province at 06:30 local time.
    let exists = store::schedules::load_all(store, false)
        .await?
        .iter()
        .any(|s| s.title == SCHEDULE_TITLE);
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

/// A device created by this run, with its secrets (written to the credentials file).
struct Created {
    id: String,
    password: String,
    /// The report-signing key (loudspeakers).
    key: Option<nguon_protocol::DeviceKey>,
}

/// One demo device.
struct DemoDevice {
    id: String,
    kind: &'static str,
    area: String,
    name: String,
    position: (f64, f64),
}

/// 30 loudspeaker clusters spread over the villages, 5 boards at the communes and province.
fn demo_devices() -> Vec<DemoDevice> {
    let villages: Vec<(&str, &str, (f64, f64))> = COMMUNES
        .iter()
        .flat_map(|c| c.villages.iter().map(move |(v, n)| (*v, *n, c.position)))
        .collect();
    let mut devices: Vec<DemoDevice> = Vec::new();
    for i in 0..30 {
        let (code, vname, (lat, lon)) = villages[i % villages.len()];
        let k = i / villages.len() + 1;
        devices.push(DemoDevice {
            id: format!("lc-{code}-{k:02}"),
            kind: "loudspeaker",
            area: code.to_string(),
            name: format!("Cụm loa {vname} {k}"),
            position: (lat + 0.003 * (i as f64 % 5.0), lon + 0.004 * (i as f64 % 3.0)),
        });
    }
    for (i, c) in COMMUNES.iter().enumerate() {
        let (code, name, pos) = (c.code, c.name, c.position);
        devices.push(DemoDevice {
            id: format!("bb-{code}-01"),
            kind: "board",
            area: code.to_string(),
            name: format!("Bảng tin {name}"),
            position: (pos.0 + 0.001, pos.1),
        });
        if i == 0 {
            devices.push(DemoDevice {
                id: format!("bb-{code}-02"),
                kind: "board",
                area: code.to_string(),
                name: format!("Bảng tin chợ {name}"),
                position: (pos.0 - 0.001, pos.1),
            });
        }
    }
    devices.push(DemoDevice {
        id: "bb-10-01".into(),
        kind: "board",
        area: "10".into(),
        name: "Bảng tin Trung tâm tỉnh".into(),
        position: (22.485, 103.970),
    });
    devices
}

fn write_credentials(state: &AppState, created: &[Created]) -> Result<()> {
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
        writeln!(f, "device_id,password,signing_key")?;
    }
    for c in created {
        // The key is random base64 (it may start with `+`), written as is: an agent reads it
        // byte for byte, and nobody chooses it, so it cannot carry a formula.
        let key = c.key.as_ref().map(|k| k.secret_b64()).unwrap_or_default();
        writeln!(f, "{},{},{key}", cell(&c.id), cell(&c.password))?;
    }
    f.sync_all()?;
    tracing::info!(path = %path.display(), "demo device passwords and report keys written");
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
