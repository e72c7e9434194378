//! Live broadcast (issue 17) against the in-process server: a session opened, its microphone
//! connected over the WebSocket, the MP3 stream a listener reads, `live_start`/`live_stop`
//! recorded for the targets, the recording stored; the clash rule (409 naming who is live, an
//! emergency session taking over); garbage frames ending the session; unauthenticated,
//! cross-origin and out-of-scope microphones refused; a dropped microphone ending the session
//! after the grace period only.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

use crate::common::{self, TestApp, json as body};
use crate::console_support::{TwoCommunes, scoped_user, two_communes};
use crate::dispatch_support::device;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(app: &TestApp, bearer: &str, req: Value) -> (u16, Value) {
    body(app.post_json_as(bearer, "/api/v1/live", &req).await).await
}

/// Connect the microphone of `id` as `bearer` (none: anonymous), with an `Origin` if given; the
/// HTTP status of a refused upgrade as the error.
async fn mic(app: &TestApp, bearer: Option<&str>, id: &str, origin: Option<&str>) -> Result<Ws, u16> {
    let url = format!("ws://{}/api/v1/live/{id}/ws?rate=16000", app.addr);
    let mut req = url.into_client_request().expect("request");
    if let Some(b) = bearer {
        req.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {b}")).unwrap(),
        );
    }
    if let Some(o) = origin {
        req.headers_mut()
            .insert("origin", HeaderValue::from_str(o).unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("websocket: {e}"),
    }
}

/// `ms` milliseconds of a 440 Hz tone at 16 kHz as one binary frame.
fn tone(ms: usize) -> Message {
    let n = 16 * ms;
    let mut b = Vec::with_capacity(n * 2);
    for i in 0..n {
        let v = ((i as f32 / 16_000.0 * 440.0 * std::f32::consts::TAU).sin() * 9_000.0) as i16;
        b.extend_from_slice(&v.to_le_bytes());
    }
    Message::Binary(b.into())
}

async fn session(app: &TestApp, id: &str) -> Value {
    let (s, b) = body(app.get(&format!("/api/v1/live/{id}")).await).await;
    assert_eq!(s, 200, "{b}");
    b
}

async fn wait_ended(app: &TestApp, id: &str, within: Duration) -> Value {
    let until = tokio::time::Instant::now() + within;
    loop {
        let s = session(app, id).await;
        if s["live"] == json!(false) && !s["session"]["ended_at"].is_null() {
            return s;
        }
        assert!(tokio::time::Instant::now() < until, "session still live: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn live_commands(app: &TestApp) -> Vec<(String, String, String)> {
    sqlx::query_as::<_, (String, String, String)>(
        "SELECT action, target, body FROM commands WHERE action IN ('live_start', 'live_stop') ORDER BY issued_at",
    )
    .fetch_all(&app.state().store.pool)
    .await
    .expect("commands")
}

#[tokio::test]
async fn an_operator_speaks_live_listeners_get_mp3_and_stop_sends_live_stop_and_keeps_the_recording() {
    let app = common::spawn_app().await;
    let TwoCommunes { mine, .. } = two_communes(&app).await;
    device(&app, &app.unique("lc"), &mine, "live-password-1", None).await;
    let (op_name, op) = scoped_user(&app, "vanhanh", "operator", &[&mine]).await;

    let (s, opened) = open(&app, &op, json!({"areas": [mine], "title": "Họp khẩn"})).await;
    assert_eq!(s, 201, "{opened}");
    let id = opened["id"].as_str().unwrap().to_string();
    assert_eq!(opened["targets"], json!(1));
    assert!(
        opened["stream_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/live/{id}"))
    );

    let mut ws = mic(&app, Some(&op), &id, None)
        .await
        .expect("microphone connects");
    // A listener, as a device would be after live_start.
    let listener = app
        .client
        .get(app.url(&format!("/live/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(listener.status(), 200);
    assert_eq!(listener.headers()["content-type"], "audio/mpeg");
    let mut stream = listener.bytes_stream();
    for _ in 0..50 {
        ws.send(tone(20)).await.unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 1_000 {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("stream data")
            .expect("stream open")
            .expect("chunk");
        got.extend_from_slice(&chunk);
    }
    // Whole MPEG-2 layer III frames from the first byte (48 kb/s, 24 kHz: 144 bytes each).
    assert_eq!(&got[..2], &[0xFF, 0xF3], "a frame header first");
    assert_eq!(got[2] >> 4, 0x6, "48 kb/s");
    let st = session(&app, &id).await;
    assert_eq!(st["live"], json!(true));
    assert_eq!(st["listeners"], json!(1), "{st}");

    ws.send(Message::Text("stop".into())).await.unwrap();
    let st = wait_ended(&app, &id, Duration::from_secs(10)).await;
    assert_eq!(st["session"]["end_reason"], json!("stopped"), "{st}");
    assert_eq!(st["session"]["started_by"], json!(op_name));
    assert!(st["session"]["stream_bytes"].as_i64().unwrap() > 1_000, "{st}");
    // The listener's stream ends with the session.
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
    assert!(rest.is_ok(), "the stream did not end");

    let cmds = live_commands(&app).await;
    let actions: Vec<&str> = cmds.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(actions, ["live_start", "live_stop"], "{cmds:?}");
    assert!(cmds.iter().all(|c| c.1 == mine));
    assert!(cmds[0].2.contains(&format!("/live/{id}")), "{}", cmds[0].2);

    // The recording is in the library, as a draft, linked from the session.
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    let sha = loop {
        let st = session(&app, &id).await;
        if let Some(sha) = st["session"]["media_sha256"].as_str() {
            break sha.to_string();
        }
        assert!(tokio::time::Instant::now() < until, "no recording: {st}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (s, m) = body(app.get(&format!("/api/v1/media/{sha}")).await).await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["status"], json!("draft"), "{m}");
    assert!(m["duration_ms"].as_i64().unwrap() >= 900, "{m}");
    // Stopped means gone: the stream and the microphone of an ended session are 404.
    assert_eq!(app.get_anon(&format!("/live/{id}")).await.status(), 404);
    assert_eq!(mic(&app, Some(&op), &id, None).await.err(), Some(404));
}

#[tokio::test]
async fn a_second_live_session_on_the_same_loudspeakers_is_refused_naming_who_is_live() {
    let app = common::spawn_app().await;
    let TwoCommunes {
        province,
        mine,
        theirs,
    } = two_communes(&app).await;
    let lc = app.unique("lc");
    device(&app, &lc, &mine, "live-password-1", None).await;
    device(&app, &app.unique("lc"), &theirs, "live-password-2", None).await;
    let (first_name, first) = scoped_user(&app, "xa", "operator", &[&mine]).await;
    let (_, second) = scoped_user(&app, "tinh", "operator", &[&province]).await;

    let (s, a) = open(&app, &first, json!({"areas": [mine]})).await;
    assert_eq!(s, 201, "{a}");
    // The province overlaps the commune: refused at the same priority, naming who is live.
    for req in [
        json!({"areas": [province]}),
        json!({"devices": [lc], "priority": "priority"}),
    ] {
        let (s, b) = open(&app, &second, req).await;
        assert_eq!(s, 409, "{b}");
        let msg = b.to_string();
        assert!(msg.contains(&first_name), "{msg}");
        assert!(msg.contains(a["id"].as_str().unwrap()), "{msg}");
    }
    // Another commune does not overlap.
    let (s, b) = open(&app, &second, json!({"areas": [theirs]})).await;
    assert_eq!(s, 201, "{b}");
    // `normal` is not a live priority.
    let (s, b) = open(&app, &second, json!({"devices": [lc], "priority": "normal"})).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (422, Some("invalid_priority")),
        "{b}"
    );
    // An emergency session takes the commune over; the commune operator cannot come back over it.
    let (s, e) = open(&app, &second, json!({"devices": [lc], "priority": "emergency"})).await;
    assert_eq!(s, 201, "{e}");
    let (s, b) = open(&app, &first, json!({"devices": [lc]})).await;
    assert_eq!(s, 409, "{b}");
    // Once stopped, the loudspeakers are free again.
    for id in [&a["id"], &e["id"]] {
        let r = app
            .client
            .delete(app.url(&format!("/api/v1/live/{}", id.as_str().unwrap())))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    let (s, b) = open(&app, &first, json!({"areas": [mine]})).await;
    assert_eq!(s, 201, "{b}");
}

#[tokio::test]
async fn garbage_on_the_microphone_ends_the_session_cleanly() {
    let app = common::spawn_app().await;
    let TwoCommunes { mine, .. } = two_communes(&app).await;
    device(&app, &app.unique("lc"), &mine, "live-password-1", None).await;
    let (_, op) = scoped_user(&app, "vanhanh", "operator", &[&mine]).await;
    for (garbage, why) in [
        (Message::Binary(vec![1u8, 2, 3].into()), "even"),
        (Message::Text("{\"rate\": 9}".into()), "only `stop`"),
        (Message::Binary(vec![0u8; 200_000].into()), "at most"),
    ] {
        let (s, o) = open(&app, &op, json!({"areas": [mine]})).await;
        assert_eq!(s, 201, "{o}");
        let id = o["id"].as_str().unwrap();
        let mut ws = mic(&app, Some(&op), id, None).await.expect("microphone");
        ws.send(tone(100)).await.unwrap();
        let _ = ws.send(garbage).await;
        // The server closes with a reason (1003) or the frame was over the WebSocket limit.
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(c))) => return c.map(|c| c.reason.to_string()),
                    Some(Ok(_)) => continue,
                    _ => return None,
                }
            }
        })
        .await
        .expect("the server ends the connection");
        let st = wait_ended(&app, id, Duration::from_secs(10)).await;
        let reason = st["session"]["end_reason"].as_str().unwrap().to_string();
        assert!(
            reason.starts_with("bad_frame") && reason.contains(why),
            "{reason}"
        );
        assert!(closed.unwrap_or_default().contains(why));
    }
    // Each session sent live_start and live_stop.
    let cmds = live_commands(&app).await;
    assert_eq!(cmds.iter().filter(|c| c.0 == "live_stop").count(), 3, "{cmds:?}");
}

#[tokio::test]
async fn unauthenticated_cross_origin_and_out_of_scope_microphones_are_refused() {
    let app = common::spawn_app().await;
    let TwoCommunes { mine, theirs, .. } = two_communes(&app).await;
    device(&app, &app.unique("lc"), &mine, "live-password-1", None).await;
    let other_dev = app.unique("lc");
    device(&app, &other_dev, &theirs, "live-password-2", None).await;
    let (_, op) = scoped_user(&app, "vanhanh", "operator", &[&mine]).await;
    let (_, stranger) = scoped_user(&app, "khac", "operator", &[&theirs]).await;
    let (_, editor) = scoped_user(&app, "bientap", "editor", &[&mine]).await;

    // Opening outside one's scope or without the operator role.
    assert_eq!(open(&app, &op, json!({"areas": [theirs]})).await.0, 403);
    assert_eq!(open(&app, &op, json!({"devices": [other_dev]})).await.0, 403);
    assert_eq!(open(&app, &editor, json!({"areas": [mine]})).await.0, 403);
    assert_eq!(open(&app, &op, json!({})).await.0, 422);
    let r = app
        .client
        .post(app.url("/api/v1/live"))
        .json(&json!({"areas": [mine]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let (s, o) = open(&app, &op, json!({"areas": [mine]})).await;
    assert_eq!(s, 201, "{o}");
    let id = o["id"].as_str().unwrap();
    assert_eq!(mic(&app, None, id, None).await.err(), Some(401));
    assert_eq!(mic(&app, Some("not-a-token"), id, None).await.err(), Some(401));
    assert_eq!(mic(&app, Some(&stranger), id, None).await.err(), Some(403));
    assert_eq!(
        mic(&app, Some(&op), id, Some("http://evil.example")).await.err(),
        Some(403)
    );
    assert_eq!(
        mic(&app, Some(&op), "no-such-session", None).await.err(),
        Some(404)
    );
    // A session's page is not for operators of another commune either.
    assert_eq!(
        app.get_as(&stranger, &format!("/api/v1/live/{id}"))
            .await
            .status(),
        403
    );
    // None of the refusals disturbed the session; its owner connects, a second microphone is 409.
    let ws = mic(&app, Some(&op), id, Some(&app.base))
        .await
        .expect("owner connects");
    assert_eq!(mic(&app, Some(&op), id, None).await.err(), Some(409));
    drop(ws);
}

#[tokio::test]
async fn a_dropped_microphone_ends_the_session_only_after_the_grace_period() {
    let app = common::spawn_app().await;
    let TwoCommunes { mine, .. } = two_communes(&app).await;
    device(&app, &app.unique("lc"), &mine, "live-password-1", None).await;
    let (_, op) = scoped_user(&app, "vanhanh", "operator", &[&mine]).await;
    let (_, o) = open(&app, &op, json!({"areas": [mine]})).await;
    let id = o["id"].as_str().unwrap();

    let mut ws = mic(&app, Some(&op), id, None).await.expect("microphone");
    ws.send(tone(200)).await.unwrap();
    drop(ws); // the phone lost its network: no close, no stop
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        session(&app, id).await["live"],
        json!(true),
        "ended inside the grace period"
    );
    // Coming back inside the grace period keeps it live, without a second live_start.
    let mut ws = mic(&app, Some(&op), id, None).await.expect("reconnects");
    ws.send(tone(200)).await.unwrap();
    drop(ws);
    let st = wait_ended(&app, id, Duration::from_secs(20)).await;
    assert_eq!(st["session"]["end_reason"], json!("operator_gone"), "{st}");
    let cmds = live_commands(&app).await;
    let actions: Vec<&str> = cmds.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(actions, ["live_start", "live_stop"], "{cmds:?}");
}
