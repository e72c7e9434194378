//! CAP languages (issue 12 §4): an area's ordered languages (`PUT /api/v1/areas/{code}/cap`, the
//! same list as `/api/v1/areas/{code}/languages`, inherited down the tree, `vi` by default) choose which `<info>`s of an alert its
//! loudspeakers read, Vietnamese first; targets hearing different infos get a play-now each, all
//! tracked under the alert and all stopped by its Cancel. A language no voice speaks is left to
//! the boards. Fixture: `fixtures/cap/good/vn_flash_flood_vi_en.xml` (vi-VN and en-US).

use serde_json::{Value, json};

use crate::cap::{device_at, post};
use crate::common;
use crate::dispatch_support::{area, uid};
use nguon_server::config::TtsVoiceSettings;

const FIXTURE: &str = include_str!("fixtures/cap/good/vn_flash_flood_vi_en.xml");

async fn put_languages(app: &common::TestApp, code: &str, body: Value) -> (u16, Value) {
    common::json(app.put_json(&format!("/api/v1/areas/{code}/cap"), &body).await).await
}

/// The media and the target devices of play-now `id`.
async fn play(app: &common::TestApp, id: &str) -> (Vec<String>, Vec<String>) {
    let (s, c) = common::json(app.get(&format!("/api/v1/commands/{id}")).await).await;
    assert_eq!(s, 200, "{c}");
    let media = c["command"]["item"]["media"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    let mut devices: Vec<String> = c["tracking"]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["device_id"].as_str().unwrap().to_string())
        .collect();
    devices.sort();
    (media, devices)
}

#[tokio::test]
async fn each_area_hears_the_infos_of_its_languages_vietnamese_first_and_a_cancel_stops_all() {
    let app = common::spawn_app_with(|s| {
        s.cap.trusted_senders = vec!["canhbao@nchmf.gov.vn".into()];
        // An English voice (espeak-ng's en-us) besides the Vietnamese ones.
        s.tts.voices = vec![TtsVoiceSettings {
            name: "en".into(),
            label: "English".into(),
            engine_voice: "en-us".into(),
            ..TtsVoiceSettings::default()
        }];
    })
    .await;
    let (p, a, b, c) = (uid("p"), uid("a"), uid("b"), uid("c"));
    area(&app, &p, None).await;
    for x in [&a, &b, &c] {
        area(&app, x, Some(&p)).await;
    }
    let (da, db, dc) = (uid("lc"), uid("lc"), uid("lc"));
    device_at(&app, &da, &a, None).await;
    device_at(&app, &db, &b, None).await;
    device_at(&app, &dc, &c, None).await;
    let (s, r) = put_languages(&app, &p, json!({"geocodes": ["nguon-test=bat-xat"]})).await;
    assert_eq!(s, 200, "{r}");
    // Checked, naming the entry; nothing stored.
    let (s, r) = put_languages(&app, &b, json!({"languages": ["vi", "tiếng Anh"]})).await;
    assert_eq!(s, 400, "{r}");
    assert_eq!(r["error"]["code"], "invalid_language", "{r}");
    assert!(r.to_string().contains("`tiếng Anh`"), "{r}");
    // b reads English too (listed first: Vietnamese is read first all the same); c only a
    // language the alert does not carry; a sets nothing and inherits the default.
    let (s, r) = put_languages(&app, &b, json!({"languages": ["en", "vi"]})).await;
    assert_eq!((s, &r["languages"]), (200, &json!(["en", "vi"])), "{r}");
    // One list with the bulletins'.
    let (_, r) = common::json(app.get(&format!("/api/v1/areas/{b}/languages")).await).await;
    assert_eq!(r["languages"], json!(["en", "vi"]), "{r}");
    let (s, r) = put_languages(&app, &c, json!({"languages": ["hmn"]})).await;
    assert_eq!(s, 200, "{r}");
    let (_, r) = common::json(app.get(&format!("/api/v1/areas/{a}/cap")).await).await;
    assert_eq!(r["languages"], json!(["vi"]), "{r}");

    let (s, r) = post(&app, FIXTURE).await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["targets"]["devices"], 3, "{r}");
    let alert = r["id"].as_str().unwrap().to_string();
    let msg = nguon_server::store::cap::of_alert(&app.state().store, &alert)
        .await
        .unwrap()
        .remove(0);
    let cmds = nguon_server::store::cap::commands_of(&app.state().store, &msg)
        .await
        .unwrap();
    assert_eq!(cmds.len(), 2, "{cmds:?}");
    assert_eq!(
        Some(&cmds[0]),
        r["command_id"].as_str().map(String::from).as_ref()
    );
    // The largest group (a, and c, whose language the alert lacks: the Vietnamese info) hears
    // the chime and the Vietnamese info; b the chime, the Vietnamese info, then the English one.
    let (vi, mut ac) = play(&app, &cmds[0]).await;
    let (vi_en, bs) = play(&app, &cmds[1]).await;
    let mut want = vec![da.clone(), dc.clone()];
    want.sort();
    ac.sort();
    assert_eq!((ac, bs), (want, vec![db.clone()]));
    assert_eq!(vi.len(), 2, "{vi:?}");
    assert_eq!(vi_en.len(), 3, "{vi_en:?}");
    assert_eq!(
        vi_en[..2],
        vi[..],
        "the same chime and Vietnamese speech, then English"
    );
    assert_ne!(vi_en[2], vi[1]);
    // The alert's tracking covers both play-nows.
    let (s, t) = common::json(app.get(&format!("/api/v1/alerts/{alert}")).await).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["tracking"]["targets"].as_array().unwrap().len(), 3, "{t}");

    // A Cancel stops both.
    let cancel = FIXTURE
        .replace("LAOCAI-2026-LQ-0007", "LAOCAI-2026-LQ-0007-HUY")
        .replace("<msgType>Alert</msgType>", "<msgType>Cancel</msgType>")
        .replace(
            "<scope>Public</scope>",
            "<scope>Public</scope><references>canhbao@nchmf.gov.vn,LAOCAI-2026-LQ-0007,2026-12-03T09:00:00+07:00</references>",
        );
    let (s, r) = post(&app, &cancel).await;
    assert_eq!(s, 201, "{r}");
    let stops: Vec<_> = nguon_server::store::commands::recent(&app.state().store, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.action == "stop")
        .collect();
    assert_eq!(stops.len(), 2, "{stops:?}");
}
