//! Prints one JSON example of every message, as used in docs/protocol.md.
//! `cargo run -p nguon-protocol --example print_examples`

use chrono::{Duration, TimeZone, Utc};
use nguon_protocol::*;
use uuid::Uuid;

fn main() {
    let dev = DeviceId::parse("lc-08003-0001").unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 23, 30, 0).unwrap();
    let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_string();
    let media = MediaRef {
        sha256: sha.clone(),
        size: 482133,
        url: format!("http://nguon.example:8080/media/{sha}"),
        duration_ms: 30120,
    };
    let item = ManifestItem {
        id: "sch-7f3a@1764631800".into(),
        schedule_id: "sch-7f3a".into(),
        title: "Thông báo tiêm chủng".into(),
        starts_at: t0,
        priority: Priority::Priority,
        volume: 80,
        media: vec![sha.clone()],
        repeat: 1,
        on_preempt: OnPreempt::Resume,
        play_until: None,
        repetition: None,
        relay: None,
    };
    let manifest = Manifest {
        version: 12,
        generated_at: t0 - Duration::hours(10),
        window_start: t0 - Duration::hours(10),
        window_end: t0 + Duration::hours(62),
        items: vec![item.clone()],
        media: vec![media.clone()],
        settings: DeviceSettings {
            volume: Some(80),
            ..Default::default()
        },
        cancelled: Vec::new(),
        agent: None,
    };
    let key = KeyPair::from_seed([7u8; 32]);
    let mut m = ServerMessage::new(
        Audience::Device(dev.clone()),
        1764595800000000,
        Duration::hours(96),
        ServerBody::Desired(manifest),
    );
    m.id = Uuid::parse_str("0b6a4c1e-8d0f-4b8e-9a47-3f1f5e2d9c11").unwrap();
    m.issued_at = t0 - Duration::hours(10);
    m.expires_at = t0 + Duration::hours(86);
    println!(
        "## ServerMessage (desired)\n{}",
        serde_json::to_string_pretty(&m).unwrap()
    );
    let env = key.sign(&m);
    println!(
        "## Signed envelope\n{}",
        serde_json::to_string_pretty(&env).unwrap()
    );

    let mut item_now = item.clone();
    item_now.id = "5d1f0c7a-2b7e-4a4e-8f7e-0c8a6b3b2e10".into();
    item_now.schedule_id = String::new();
    item_now.priority = Priority::Emergency;
    item_now.volume = 100;
    let cmds = vec![
        Command::PlayNow {
            item: item_now,
            media: vec![media.clone()],
        },
        Command::Stop { item_id: None },
        Command::Volume { level: 60 },
        Command::Sync,
        Command::LiveStart {
            url: "http://nguon.example:8080/live/abc".into(),
            session_id: "live-1".into(),
            priority: Priority::Priority,
        },
        Command::LiveStop {
            session_id: "live-1".into(),
        },
    ];
    for c in cmds {
        let body = ServerBody::Command(c);
        println!("## command body\n{}", serde_json::to_string(&body).unwrap());
    }
    let a = ServerMessage::new(
        Audience::Area(AreaCode::parse("08003").unwrap()),
        1764631801000000,
        Duration::minutes(5),
        ServerBody::Command(Command::Volume { level: 60 }),
    );
    println!("## area cmd\n{}", serde_json::to_string_pretty(&a).unwrap());
    let st = DeviceState {
        v: 1,
        device: dev.clone(),
        online: true,
        session: 42,
        at: t0,
        install: Some("9b1deb4d3b7d4bad9bdd2b0d7b3dcb6d".into()),
    };
    println!("## state\n{}", serde_json::to_string_pretty(&st).unwrap());
    let tel = Telemetry {
        v: 1,
        device: dev.clone(),
        at: t0,
        session: 42,
        volume: 80,
        now_playing: Some(NowPlaying {
            item_id: item.id.clone(),
            sha256: sha.clone(),
            priority: Priority::Priority,
            started_at: t0,
        }),
        manifest_version: Some(12),
        cache_bytes: 73400320,
        disk_free_bytes: 5368709120,
        disk_total_bytes: Some(15032385536),
        clock_offset_ms: Some(-37),
        agent_version: "0.1.0".into(),
        uptime_s: 86400,
        outbox_len: 0,
        broker: None,
        install: Some("9b1deb4d3b7d4bad9bdd2b0d7b3dcb6d".into()),
    };
    println!("## telemetry\n{}", serde_json::to_string_pretty(&tel).unwrap());
    let batch = EventBatch {
        v: 1,
        device: dev.clone(),
        sent_at: t0 + Duration::seconds(31),
        events: vec![
            Event {
                id: Uuid::parse_str("3c8f6f1e-1d2a-4b59-9f0e-6a1d2c3b4a51").unwrap(),
                at: t0 + Duration::seconds(30),
                body: EventBody::Play(ProofOfPlay {
                    item_id: item.id.clone(),
                    schedule_id: item.schedule_id.clone(),
                    occurrence_at: t0,
                    sha256: sha.clone(),
                    priority: Priority::Priority,
                    started_at: Some(t0 + Duration::milliseconds(2)),
                    ended_at: Some(t0 + Duration::milliseconds(30122)),
                    outcome: PlayOutcome::Played,
                    reason: None,
                    max_rms_dbfs: None,
                    silent: false,
                    relay: None,
                }),
            },
            Event {
                id: Uuid::parse_str("7a4e2b1c-9d8f-4e3a-b2c1-0f9e8d7c6b5a").unwrap(),
                at: t0 - Duration::hours(10),
                body: EventBody::Ack {
                    message_id: m.id,
                    ok: true,
                    manifest_version: Some(12),
                    reason: None,
                },
            },
            Event {
                id: Uuid::parse_str("1f2e3d4c-5b6a-4798-8a9b-0c1d2e3f4a5b").unwrap(),
                at: t0,
                body: EventBody::Rejected {
                    topic: "nguon/v1/d/lc-08003-0001/cmd".into(),
                    message_id: None,
                    reason: "signature does not verify".into(),
                },
            },
            Event {
                id: Uuid::parse_str("2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d").unwrap(),
                at: t0,
                body: EventBody::MediaError {
                    sha256: sha.clone(),
                    reason: "sha256 mismatch after download".into(),
                },
            },
        ],
    };
    println!(
        "## events batch\n{}",
        serde_json::to_string_pretty(&batch).unwrap()
    );
    let dk = KeyPair::from_seed([9u8; 32]);
    let mut small = batch.clone();
    small.events.truncate(1);
    println!(
        "## device report\n{}",
        serde_json::to_string_pretty(&small.seal(Some(&dk))).unwrap()
    );
    let mut r = ServerMessage::new(
        Audience::Device(dev.clone()),
        1764631862000000,
        Duration::minutes(10),
        ServerBody::Receipt(Receipt {
            events: batch.events.iter().map(|e| e.id).collect(),
        }),
    );
    r.id = Uuid::parse_str("7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f").unwrap();
    r.issued_at = t0;
    r.expires_at = t0 + Duration::minutes(10);
    println!("## receipt\n{}", serde_json::to_string_pretty(&r).unwrap());
}
