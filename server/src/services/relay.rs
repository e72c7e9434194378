//! Relays (tiếp sóng, issue 17) on the server: the save-time check of a relay URL
//! ([`check_url`]) and the proxy ([`listen`], `GET /relay/{schedule_id}`).
//!
//! In `proxy` mode (`[relay] mode`, the default) devices fetch a relay at
//! `{public_url}/relay/{schedule_id}`: the first listener opens ONE upstream connection for the
//! relay (asking for ICY metadata, whose blocks are stripped and whose `StreamTitle` is logged),
//! every later listener joins it, and its bytes are fanned out to all (`services::fanout`, the
//! live broadcast's fan-out). When the upstream ends or fails, every listener's stream ends (the
//! devices connect again, which opens a new upstream connection); when the last listener has been
//! gone `linger_s`, the upstream is closed. The registry is in memory (one process).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::Stream;
use nguon_protocol::icy::{IcyDemux, stream_title};
use tokio::sync::watch;

use crate::domain::relay::{Reach, not_audio_type};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::services::fanout::FanOut;
use crate::store;

/// Batches a slow listener may fall behind before it skips ahead.
const FAN_CAPACITY: usize = 256;
/// How long an open upstream may send nothing before it counts as broken.
const UPSTREAM_STALL: Duration = Duration::from_secs(10);
/// What the save-time check reads of a stream: this many bytes, or what came in `CHECK_READ`.
const CHECK_BYTES: usize = 16 * 1024;
const CHECK_READ: Duration = Duration::from_secs(3);

/// The relays this process proxies now, and how many upstream connections it opened.
#[derive(Default)]
pub struct Relays {
    hubs: Mutex<HashMap<String, Arc<Hub>>>,
    opened: AtomicU64,
    client: Mutex<Option<reqwest::Client>>,
}

impl Relays {
    /// Upstream connections opened since the start (`GET /api/v1/relays`, metrics).
    pub fn upstreams_opened(&self) -> u64 {
        self.opened.load(Ordering::SeqCst)
    }

    /// Relays with an upstream connection now: (schedule id, listeners, last `StreamTitle`).
    pub fn active(&self) -> Vec<(String, usize, Option<String>)> {
        let hubs = lock(&self.hubs);
        let mut out: Vec<_> = hubs
            .iter()
            .map(|(id, h)| (id.clone(), h.fan.listeners(), lock(&h.title).clone()))
            .collect();
        out.sort();
        out
    }

    fn client(&self) -> Result<reqwest::Client> {
        let mut c = lock(&self.client);
        if let Some(c) = c.as_ref() {
            return Ok(c.clone());
        }
        // The binary installs the ring provider at start; an embedding (tests) may not have.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let built = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("nguon-server/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::internal_from("relay HTTP client", e))?;
        *c = Some(built.clone());
        Ok(built)
    }
}

/// One proxied relay: its fan-out and what its upstream said when it opened.
struct Hub {
    fan: FanOut,
    /// `None` while connecting; then the stream's content type, or why it failed.
    opened: watch::Receiver<Option<std::result::Result<String, String>>>,
    title: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The stream of relay schedule `id` for one device: its content type and bytes. 404 unless `id`
/// is an enabled relay schedule; 502 when its upstream cannot be opened.
pub async fn listen(
    state: &AppState,
    id: &str,
) -> Result<(
    String,
    impl Stream<Item = std::result::Result<Bytes, std::io::Error>> + use<>,
)> {
    let s = store::schedules::get(&state.store, id).await?;
    let Some(relay) = s.relay.filter(|_| s.enabled) else {
        return Err(Error::NotFound(format!("relay `{id}`")));
    };
    let client = state.relays.client()?;
    let hub = {
        let mut hubs = lock(&state.relays.hubs);
        match hubs.get(id) {
            Some(h) if !h.fan.is_ended() => h.clone(),
            _ => {
                let (tx, rx) = watch::channel(None);
                let hub = Arc::new(Hub {
                    fan: FanOut::new(FAN_CAPACITY),
                    opened: rx,
                    title: Mutex::new(None),
                });
                hubs.insert(id.to_string(), hub.clone());
                let linger = Duration::from_secs(state.settings.relay.linger_s);
                let st = state.clone();
                tokio::spawn(upstream(
                    st,
                    id.to_string(),
                    relay.url.clone(),
                    client,
                    hub.clone(),
                    tx,
                    linger,
                ));
                hub
            }
        }
    };
    // Subscribed before the first bytes can go out.
    let stream = hub.fan.listen();
    let mut opened = hub.opened.clone();
    let status = opened
        .wait_for(Option::is_some)
        .await
        .map(|v| v.clone())
        .map_err(|_| Error::Upstream(format!("relay `{id}`: the upstream task ended")))?;
    match status {
        Some(Ok(content_type)) => Ok((content_type, stream)),
        Some(Err(why)) => Err(Error::Upstream(format!("relay `{id}`: {why}"))),
        None => Err(Error::Upstream(format!("relay `{id}`: not opened"))),
    }
}

/// The upstream connection of one hub: open, fan its audio out until it ends, fails, stalls or
/// has had no listener for `linger`; then end the hub and take it out of the registry.
async fn upstream(
    state: AppState,
    id: String,
    url: String,
    client: reqwest::Client,
    hub: Arc<Hub>,
    opened: watch::Sender<Option<std::result::Result<String, String>>>,
    linger: Duration,
) {
    let why = match client.get(&url).header("Icy-MetaData", "1").send().await {
        Err(e) => Err(format!("{url}: {e}")),
        Ok(r) if !r.status().is_success() => Err(format!("{url}: HTTP {}", r.status())),
        Ok(r) => Ok(r),
    };
    let mut resp = match why {
        Ok(r) => r,
        Err(why) => {
            tracing::warn!(relay = %id, "relay upstream not opened: {why}");
            opened.send_replace(Some(Err(why)));
            finish(&state, &id, &hub);
            return;
        }
    };
    state.relays.opened.fetch_add(1, Ordering::SeqCst);
    let content_type = header(&resp, "content-type").unwrap_or_else(|| "audio/mpeg".into());
    let mut icy = IcyDemux::from_header(header(&resp, "icy-metaint").as_deref());
    tracing::info!(relay = %id, %url, "relay upstream opened");
    opened.send_replace(Some(Ok(content_type)));
    let tx = hub.fan.sender();
    let mut idle_since: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let end = loop {
        tokio::select! {
            _ = tick.tick() => {
                if hub.fan.listeners() > 0 {
                    idle_since = None;
                } else if idle_since.get_or_insert_with(Instant::now).elapsed() >= linger {
                    break "no listener left".to_string();
                }
            }
            c = tokio::time::timeout(UPSTREAM_STALL, resp.chunk()) => match c {
                Err(_) => break format!("no data for {} s", UPSTREAM_STALL.as_secs()),
                Ok(Err(e)) => break e.to_string(),
                Ok(Ok(None)) => break "the stream ended".to_string(),
                Ok(Ok(Some(b))) => {
                    let audio = match icy.as_mut() {
                        None => b,
                        Some(d) => {
                            let mut out = Vec::with_capacity(b.len());
                            for block in d.push(&b, &mut out) {
                                if let Some(t) = stream_title(&block) {
                                    tracing::info!(relay = %id, title = t, "relay StreamTitle");
                                    *lock(&hub.title) = Some(t.to_string());
                                }
                            }
                            Bytes::from(out)
                        }
                    };
                    if !audio.is_empty() {
                        let _ = tx.send(audio);
                    }
                }
            },
        }
    };
    tracing::info!(relay = %id, "relay upstream closed: {end}");
    finish(&state, &id, &hub);
}

/// End a hub's listeners and take it out of the registry (unless a newer one replaced it).
fn finish(state: &AppState, id: &str, hub: &Arc<Hub>) {
    hub.fan.end();
    let mut hubs = lock(&state.relays.hubs);
    if hubs.get(id).is_some_and(|h| Arc::ptr_eq(h, hub)) {
        hubs.remove(id);
    }
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The save-time check of a relay URL: 422 `relay_not_audio` naming `relay.url` when the server
/// reaches it and what it serves is not audio the devices decode; `Some(why)` when it cannot be
/// reached (accepted: the alarm is raised at play time); `None` when it is audio.
pub async fn check_url(state: &AppState, url: &str) -> Result<Option<String>> {
    let timeout = Duration::from_secs(state.settings.relay.check_timeout_s);
    let client = state.relays.client()?;
    let reach = tokio::time::timeout(timeout, reach(&client, url))
        .await
        .unwrap_or_else(|_| Reach::Unreachable(format!("no answer within {} s", timeout.as_secs())));
    match reach {
        Reach::Audio(codec) => {
            tracing::info!(%url, codec, "relay URL checked: audio");
            Ok(None)
        }
        Reach::NotAudio(why) => Err(Error::unprocessable(
            "relay_not_audio",
            format!("`relay.url`: {url} is not an audio stream: {why}"),
        )),
        Reach::Unreachable(why) => {
            tracing::info!(%url, "relay URL not reachable at save: {why}");
            Ok(Some(why))
        }
    }
}

/// Fetch the start of `url` (without ICY metadata) and tell what it is.
async fn reach(client: &reqwest::Client, url: &str) -> Reach {
    let mut resp = match client.get(url).send().await {
        Err(e) => return Reach::Unreachable(e.to_string()),
        // Not there now (404, 503, a login wall): it may be at play time.
        Ok(r) if !r.status().is_success() => return Reach::Unreachable(format!("HTTP {}", r.status())),
        Ok(r) => r,
    };
    let content_type = header(&resp, "content-type");
    if let Some(t) = content_type.as_deref().filter(|t| not_audio_type(t)) {
        return Reach::NotAudio(format!("its content type is {t}"));
    }
    let mut head = Vec::new();
    let until = tokio::time::Instant::now() + CHECK_READ;
    while head.len() < CHECK_BYTES {
        match tokio::time::timeout_at(until, resp.chunk()).await {
            Ok(Ok(Some(b))) => head.extend_from_slice(&b),
            Ok(Ok(None)) | Err(_) => break,
            Ok(Err(e)) if head.is_empty() => return Reach::Unreachable(e.to_string()),
            Ok(Err(_)) => break,
        }
    }
    match tokio::task::spawn_blocking(move || decodes(&head)).await {
        Ok(Ok(codec)) => Reach::Audio(codec),
        Ok(Err(why)) => Reach::NotAudio(why),
        Err(e) => Reach::Unreachable(e.to_string()),
    }
}

/// Whether the first bytes of a stream decode (symphonia, the devices' decoder: MP3, AAC in
/// ADTS, Ogg Vorbis, FLAC): the codec's name, or why not.
fn decodes(head: &[u8]) -> std::result::Result<String, String> {
    use crate::services::media::probe::{OpenError, Opened, open_audio};

    if head.is_empty() {
        return Err("it sent no bytes".into());
    }
    let Opened {
        mut format,
        track,
        codec,
        mut decoder,
        ..
    } = open_audio(Box::new(std::io::Cursor::new(head.to_vec()))).map_err(|e| match e {
        OpenError::Probe(e) => format!("no audio format found in its first {} bytes ({e})", head.len()),
        OpenError::NoTrack { .. } => "no audio track".to_string(),
        OpenError::NoParams { .. } => "no audio codec parameters".to_string(),
        OpenError::NoDecoder { .. } => "a codec the devices do not decode".to_string(),
        OpenError::Decoder { codec, error } => format!("{codec}: {error}"),
    })?;
    for _ in 0..32 {
        let Ok(Some(packet)) = format.next_packet() else {
            break;
        };
        if packet.track_id != track.id {
            continue;
        }
        if decoder.decode(&packet).is_ok() {
            return Ok(codec);
        }
    }
    Err(format!("{codec}: no packet of its first bytes decodes"))
}
