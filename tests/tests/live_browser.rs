//! Live broadcast from the console page to real loudspeakers (issue 17), the whole path in one
//! test: headless Chromium whose fake microphone plays tone bursts (a looping WAV, a distinct
//! frequency per burst of a 4 s cycle), an operator signed in on `/console/live` who ticks their
//! commune and presses talk, the page's AudioWorklet and WebSocket, the real `nguon-server`'s
//! MP3 stream and two real `nguon-agent` processes writing WAV sinks. Every burst the page sent
//! while both loudspeakers were live is found in both WAVs by onset and frequency, and its mouth →
//! speaker latency is printed (a figure, not an assertion); the page lists both loudspeakers as
//! playing; stop ends the session on both, and each proof of play carries how long it played.

use std::time::Duration;

use nguon_tests::live::now_ns;
use nguon_tests::live_page::{MOUTH_HOOK, mouth};
use nguon_tests::net::{eventually, random_suffix};
use nguon_tests::province::{POLL, Province};
use nguon_tests::stats::{Summary, ms};
use nguon_tests::tones::{self, Burst};
use nguon_webdriver::Driver;
use serde_json::{Value, json};

/// The microphone's bursts, one per second, a 4 s cycle of frequencies.
const TONES: [f32; 4] = [500.0, 800.0, 1_100.0, 1_400.0];
/// Onset threshold (full scale 1).
const THRESHOLD: f32 = 0.05;
/// How long the operator speaks once both loudspeakers play.
const TALK: Duration = Duration::from_secs(9);
/// Bursts sent this close to the stop may be cut by it.
const TAIL: Duration = Duration::from_millis(1_500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_page_speaks_through_the_browsers_microphone_on_two_agents() {
    let mut p = Province::new(None, 1, 2).await;
    p.start_agents(|_| None).await;
    p.wait_online().await;
    let commune = p.commune(1);
    let devices: Vec<String> = p.agents.iter().map(|a| a.device.id.to_string()).collect();
    let base = p.api().base().to_string();

    // An operator of the commune.
    let (name, password) = (format!("vanhanh-{}", random_suffix()), "mat-khau-van-hanh-17");
    p.api()
        .post(
            "/api/v1/users",
            &json!({"username": name, "display_name": "Cán bộ vận hành", "role": "operator",
                    "areas": [commune], "password": password}),
        )
        .await
        .expect("operator");

    // The fake microphone: Chromium loops this file.
    let mic = p.dir.path().join("microphone.wav");
    tones::burst_loop_wav(&mic, 48_000, &TONES, Duration::from_secs(1), 0.5).expect("tone WAV");
    let d = Driver::start_with(
        1280,
        900,
        "live_system",
        &[
            "--use-fake-ui-for-media-stream".into(),
            "--use-fake-device-for-media-stream".into(),
            format!("--use-file-for-fake-audio-capture={}", mic.display()),
            "--autoplay-policy=no-user-gesture-required".into(),
        ],
    )
    .await;
    d.login(&base, &name, password).await;
    d.goto(&format!("{base}/console/live")).await;
    d.eval(MOUTH_HOOK).await;
    d.click(&format!("input[name=area][value=\"{commune}\"]")).await;
    d.click("#live-talk").await;

    // The session the page opened.
    let api = p.api().clone();
    let id = eventually(
        "the page to open a session",
        Duration::from_secs(20),
        POLL,
        || {
            let api = api.clone();
            async move {
                let v = api.get("/api/v1/live").await.map_err(|e| e.to_string())?;
                v.get(0)
                    .and_then(|s| s.get("id"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| format!("sessions: {v}"))
            }
        },
    )
    .await;
    let id = match id {
        Ok(id) => id,
        Err(e) => {
            d.screenshot("no-session").await;
            panic!("{e}; page says: {}\n{}", d.text().await, p.logs());
        }
    };

    // The page lists both loudspeakers as playing (its table, from the session's state).
    let rows = format!(
        "var want = {}; var rows = Array.prototype.map.call(document.querySelectorAll('#live-devices-state tr'), \
         function (tr) {{ return tr.cells[0].textContent + '=' + tr.cells[1].className + '=' + tr.cells[1].textContent; }}); \
         return want.every(function (d) {{ return rows.indexOf(d + '=state-playing=Đang phát') >= 0; }})",
        json!(devices)
    );
    d.wait_for(
        "both loudspeakers listed as playing",
        &rows,
        Duration::from_secs(20),
    )
    .await;
    let both_live_ns = now_ns();
    let s = p.api().get(&format!("/api/v1/live/{id}")).await.expect("session");
    let mut playing: Vec<String> = serde_json::from_value(s["playing"].clone()).unwrap_or_default();
    playing.sort();
    assert_eq!(playing, devices, "{s}");
    d.screenshot("on-air").await;

    tokio::time::sleep(TALK).await;
    let stop_ns = now_ns();
    d.click("#live-stop").await;
    d.wait_for(
        "the page back to talk",
        "return !document.getElementById('live-talk').hidden && document.getElementById('live-stop').hidden",
        Duration::from_secs(10),
    )
    .await;

    // Stopped everywhere: the session is over and recorded, each loudspeaker's proof of play came
    // in with how long it played, and that is what its WAV sink holds.
    let path = format!("/api/v1/live/{id}");
    let api = p.api().clone();
    let ended = eventually(
        "the session ended with both proofs of play",
        Duration::from_secs(30),
        POLL,
        || {
            let (api, path) = (api.clone(), path.clone());
            async move {
                let s = api.get(&path).await.map_err(|e| e.to_string())?;
                let plays = s["plays"].as_array().map_or(0, Vec::len);
                if s["live"] == json!(false) && s["session"]["media_sha256"].is_string() && plays == 2 {
                    Ok(s)
                } else {
                    Err(format!("{s}"))
                }
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", p.logs()));
    assert!(
        ended["session"]["end_reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("stop"),
        "{ended}"
    );
    assert_eq!(ended["listeners"], json!(0), "{ended}");
    for (a, dev) in p.agents.iter().zip(&devices) {
        let play = ended["plays"]
            .as_array()
            .and_then(|v| v.iter().find(|x| x["device_id"] == json!(dev)))
            .unwrap_or_else(|| panic!("no proof of play from {dev}: {ended}"));
        assert_eq!(play["outcome"], json!("played"), "{play}");
        let duration = play["duration_ms"]
            .as_i64()
            .unwrap_or_else(|| panic!("no duration: {play}"));
        assert!(
            duration > TALK.as_millis() as i64,
            "{dev} played {duration} ms: {play}"
        );
        let wav =
            nguon_tests::audio::read_wav(&a.dir.join("wav").join(format!("{id}.wav"))).expect("WAV sink");
        let written = wav.samples.len() as i64 * 1000 / (wav.rate as i64 * wav.channels.max(1) as i64);
        assert!(
            (written - duration).abs() < 1_000,
            "{dev}: proof of play says {duration} ms, its sink wrote {written} ms"
        );
    }
    let sha = ended["session"]["media_sha256"].as_str().unwrap_or_default();
    let media = p
        .api()
        .get(&format!("/api/v1/media/{sha}"))
        .await
        .expect("recording");
    assert!(media["loudness"]["loudness_lufs"].is_number(), "{media}");

    // The bursts: what the page sent, and what each loudspeaker played.
    let said = mouth(&d).await.expect("the page's frames");
    let sent: Vec<Burst> = tones::find(&said.samples, said.rate, said.first_ns, &TONES, THRESHOLD);
    assert!(
        sent.iter().all(|b| b.tone.is_some()),
        "the page sent sound that is not one of the tones: {sent:?}"
    );
    let due: Vec<Burst> = sent
        .iter()
        .copied()
        .filter(|b| b.at_ns > both_live_ns && b.at_ns < stop_ns - TAIL.as_nanos() as i64)
        .collect();
    assert!(
        due.len() >= 6,
        "{} bursts sent while both played ({} frames at {} Hz): {sent:?}",
        due.len(),
        said.frames,
        said.rate
    );
    let mut all = Vec::new();
    for (a, dev) in p.agents.iter().zip(&devices) {
        let heard = tones::played(&a.dir.join("wav"), &id, &TONES, THRESHOLD).expect("WAV sink");
        let lat = tones::latencies(&sent, &heard, Duration::from_secs(3));
        let line: Vec<String> = sent
            .iter()
            .zip(&lat)
            .map(|(b, l)| {
                let f = b.tone.map_or(0.0, |t| TONES[t]);
                l.map_or(format!("{f} Hz: -"), |l| format!("{f} Hz: {}", ms(l)))
            })
            .collect();
        eprintln!("live from the console page, mouth -> {dev}: {}", line.join(", "));
        for (b, l) in sent.iter().zip(&lat) {
            if due.contains(b) {
                assert!(
                    l.is_some(),
                    "{dev}: the burst of {} Hz sent at {} is not in its WAV; sent {sent:?}; heard {heard:?}",
                    b.tone.map_or(0.0, |t| TONES[t]),
                    b.at_ns
                );
            }
        }
        all.extend(lat.into_iter().flatten());
    }
    eprintln!(
        "live from the console page, mouth -> speaker (loopback, two agents): {}",
        Summary::of(&all)
    );
}
