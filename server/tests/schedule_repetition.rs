//! Repetition of a scheduled emergency (issue 12 §3) through the schedule API: the same
//! `repetition` as an emergency play-now, refused naming `repetition` for a non-emergency or a bad
//! pattern, kept on the schedule (GET, update) and carried in each occurrence of the targets'
//! manifests with its validity window (`valid_for_s`), so devices expand the replays themselves.

use crate::catch_up::manifest_where;
use crate::common;
use crate::dispatch_support;

use dispatch_support::*;
use nguon_protocol::{DeviceId, Priority, topic};
use serde_json::json;

#[tokio::test]
async fn a_scheduled_emergency_repeats_like_a_play_now_and_others_are_refused_naming_repetition() {
    let app = common::spawn_app().await;
    let p = uid("p");
    area(&app, &p, None).await;
    let dev = uid("lc");
    device(&app, &dev, &p, "repeat-password", None).await;
    let sha = media(&app, "approved", 20_000).await;
    let at = (chrono::Utc::now() + chrono::Duration::minutes(10))
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .format("%Y-%m-%dT%H:%M:00")
        .to_string();
    let body = |priority: &str, repetition: serde_json::Value| {
        json!({"title": "Lũ quét", "media": [sha], "targets": {"areas": [p]}, "priority": priority,
               "rule": {"kind": "once", "at": at}, "time_zone": "Asia/Ho_Chi_Minh",
               "valid_for_s": 7200, "repetition": repetition})
    };
    // Refused as a play-now's would be, naming the field; nothing is stored.
    for (priority, rep, field) in [
        ("normal", json!("every_2h"), "`repetition`"),
        ("priority", json!("every_2h"), "`repetition`"),
        ("emergency", json!("hourly"), "`repetition`"),
        (
            "emergency",
            json!({"offsets_s": [0], "every_s": 2}),
            "`repetition.every_s`",
        ),
        ("emergency", json!({"offsets_s": [0]}), "`repetition`"),
        (
            "emergency",
            json!({"offsets_s": [0, 600], "nope": 1}),
            "`repetition.nope`",
        ),
    ] {
        let (s, b) = common::json(
            app.post_json("/api/v1/schedules", &body(priority, rep.clone()))
                .await,
        )
        .await;
        assert_eq!(s, 422, "{priority} {rep}: {b}");
        assert_eq!(b["error"]["code"], "invalid_repetition", "{b}");
        assert!(b.to_string().contains(field), "{field}: {b}");
    }
    let mut bad = body("emergency", json!("every_2h"));
    bad["valid_for_s"] = json!(5);
    let (s, b) = common::json(app.post_json("/api/v1/schedules", &bad).await).await;
    assert_eq!(s, 400, "{b}");
    assert!(b.to_string().contains("`valid_for_s`"), "{b}");
    let (_, all) = common::json(app.get("/api/v1/schedules").await).await;
    assert_eq!(all.as_array().unwrap().len(), 0, "{all}");

    // An emergency with a preset: stored resolved, and in the manifest with its window.
    let mut d = connect(&app, &dev, "repeat-password", None).await.unwrap();
    d.subscribe(&topic::desired(&DeviceId::parse(&dev).unwrap()))
        .await;
    let (s, b) = common::json(
        app.post_json(
            "/api/v1/schedules",
            &body("emergency", json!("twice_5min_then_every_30min")),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let id = b["schedule"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        b["schedule"]["repetition"],
        json!({"offsets_s": [0, 300, 600], "every_s": 1800}),
        "{b}"
    );
    assert_eq!(b["schedule"]["valid_for_s"], 7200, "{b}");
    let m = manifest_where(&app, &mut d, |m| m.items.iter().any(|i| i.schedule_id == id)).await;
    let item = m.items.iter().find(|i| i.schedule_id == id).unwrap();
    assert_eq!(item.priority, Priority::Emergency);
    let r = item.repetition.as_ref().expect("repetition in the manifest");
    assert_eq!(
        (r.offsets_s.as_slice(), r.every_s),
        (&[0, 300, 600][..], Some(1800))
    );
    assert_eq!(
        item.play_until,
        Some(item.starts_at + chrono::Duration::seconds(7200))
    );
    // Expanded as a play-now's: 0, 5, 10 min, then every 30 min inside the 2 h window.
    assert_eq!(r.replays(item.starts_at, item.play_until.unwrap()).len(), 5);

    // GET and an update keep it; an update to a normal priority is refused naming it.
    let (s, g) = common::json(app.get(&format!("/api/v1/schedules/{id}")).await).await;
    assert_eq!(s, 200, "{g}");
    assert_eq!(g["repetition"]["every_s"], 1800, "{g}");
    let path = format!("/api/v1/schedules/{id}");
    let (s, u) = common::json(app.put_json(&path, &body("normal", json!("every_2h"))).await).await;
    assert_eq!(s, 422, "{u}");
    assert!(u.to_string().contains("`repetition`"), "{u}");
    let (s, u) = common::json(app.put_json(&path, &body("emergency", json!("every_2h"))).await).await;
    assert_eq!(s, 200, "{u}");
    let (_, g) = common::json(app.get(&path).await).await;
    assert_eq!(g["repetition"], json!({"offsets_s": [0], "every_s": 7200}), "{g}");
    // Without one, the schedule plays once: no repetition in the manifest.
    let mut once = body("emergency", json!(null));
    once.as_object_mut().unwrap().remove("repetition");
    let (s, u) = common::json(app.put_json(&path, &once).await).await;
    assert_eq!(s, 200, "{u}");
    let m = manifest_where(&app, &mut d, |m| {
        m.items
            .iter()
            .any(|i| i.schedule_id == id && i.repetition.is_none())
    })
    .await;
    assert!(m.items.iter().all(|i| i.repetition.is_none()), "{m:?}");
}
