//! Issue 11 items 10, 15 and 16: what operators type or upload cannot turn into an attack or a
//! broken tree. A report CSV never starts a cell with a formula character (OWASP: prefixed with
//! `'`); a WAV header claiming an absurd sample rate or channel count is refused with a 422
//! naming the field; and the area CSV import refuses the parent cycle that PATCH refuses.

use std::collections::HashMap;

use serde_json::json;

use crate::common::{self, json as body};
use crate::console_support::{client, login};

/// A 16-bit PCM WAV header claiming `rate` Hz and `channels` channels, followed by `frames`
/// frames of silence.
fn wav(rate: u32, channels: u16, frames: u32) -> Vec<u8> {
    let block = 2 * channels as u32;
    let data = frames * block;
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&rate.wrapping_mul(block).to_le_bytes());
    v.extend_from_slice(&(block as u16).to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data.to_le_bytes());
    v.resize(v.len() + data as usize, 0);
    v
}

#[tokio::test]
async fn a_wav_claiming_an_absurd_sample_rate_or_channel_count_is_refused_naming_the_field() {
    let app = common::spawn_app().await;
    for (rate, channels, field) in [
        (4_294_967_295u32, 1u16, "sample_rate"),
        (4_000, 1, "sample_rate"),
        (22_050, 9, "channels"),
    ] {
        let (s, b) = body(
            app.upload("/api/v1/media", wav(rate, channels, 8_000), "x.wav")
                .await,
        )
        .await;
        assert_eq!(s, 422, "{rate} Hz, {channels} ch: {b}");
        assert_eq!(b["error"]["code"], format!("invalid_{field}"), "{b}");
        assert!(b["error"]["message"].as_str().unwrap().contains(field), "{b}");
    }
    assert!(app.files_in("media").is_empty(), "nothing stored");
    // An ordinary file still passes.
    let (s, b) = body(
        app.upload("/api/v1/media", wav(22_050, 2, 22_050), "ok.wav")
            .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["sample_rate"], 22_050);
}

#[tokio::test]
async fn the_area_import_refuses_a_parent_cycle_as_patch_does() {
    let app = common::spawn_app().await;
    let (a, b, x, y) = (app.unique("a"), app.unique("b"), app.unique("x"), app.unique("y"));
    let csv = format!("code,name,parent,level\n{a},A,,province\n{b},B,{a},commune\n");
    let (s, r) = body(app.post_raw("/api/v1/areas/import", "text/csv", csv).await).await;
    assert_eq!(s, 200, "{r}");
    // PATCH refuses to put A under its own child.
    let (s, r) = body(
        app.patch_json(&format!("/api/v1/areas/{a}"), &json!({"parent": b}))
            .await,
    )
    .await;
    assert_eq!(s, 422, "{r}");
    assert_eq!(r["error"]["code"], "invalid_parent");
    // The import refuses the same move, and a loop made entirely inside the file.
    for (csv, line) in [
        (format!("code,name,parent,level\n{a},A,{b},province\n"), 2),
        (
            format!("code,name,parent,level\n{x},X,{y},commune\n{y},Y,{x},commune\n"),
            2,
        ),
    ] {
        let (s, r) = body(
            app.post_raw("/api/v1/areas/import", "text/csv", csv.clone())
                .await,
        )
        .await;
        assert_eq!(s, 422, "{csv}: {r}");
        assert_eq!(r["error"]["code"], "invalid_csv", "{r}");
        let lines = r["error"]["lines"].as_array().unwrap();
        assert_eq!(lines[0]["line"], line, "{r}");
        assert!(
            lines[0]["reason"].as_str().unwrap().contains("descendants"),
            "{r}"
        );
    }
    let (_, area) = body(app.get(&format!("/api/v1/areas/{a}")).await).await;
    assert_eq!(area["parent"], serde_json::Value::Null, "nothing written: {area}");
    let (s, _) = body(app.get(&format!("/api/v1/areas/{x}")).await).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn report_csv_cells_never_start_with_a_formula_character() {
    let app = common::spawn_app().await;
    let p = app.unique("p");
    let names = ["=HYPERLINK(\"http://evil\",\"x\")", "+1+2", "-3+4", "@SUM(A1)"];
    let mut csv = format!("code,name,parent,level\n{p},Tỉnh,,province\n");
    let mut codes = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let code = format!("{p}-{i}");
        csv.push_str(&format!("{code},\"{}\",{p},commune\n", n.replace('"', "\"\"")));
        codes.push(code);
    }
    // A code may itself start with `-`.
    let dash = format!("-{p}");
    csv.push_str(&format!("{dash},Xã gạch,{p},commune\n"));
    let (s, r) = body(app.post_raw("/api/v1/areas/import", "text/csv", csv).await).await;
    assert_eq!(s, 200, "{r}");

    let c = client();
    let session = login(&app, &c, "admin", common::TOKEN).await;
    let r = c
        .get(app.url("/console/reports.csv?preset=half&year=2025"))
        .header("cookie", &session.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let mut rd = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let mut rows: HashMap<String, Vec<String>> = HashMap::new();
    for rec in rd.records() {
        let rec = rec.unwrap();
        rows.insert(rec[0].to_string(), rec.iter().map(str::to_string).collect());
    }
    for (code, name) in codes.iter().zip(names) {
        assert_eq!(rows[code][1], format!("'{name}"), "{:?}", rows[code]);
    }
    assert!(rows.contains_key(&format!("'{dash}")), "{:?}", rows.keys());
    for row in rows.values() {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a cell starts with a formula character: {row:?}"
            );
        }
    }
}
