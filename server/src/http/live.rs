//! The live broadcast API (issue 17; `services::live`): `POST /api/v1/live` opens a session
//! (201, or 409 naming who is live), `GET /api/v1/live` lists the sessions live now,
//! `GET /api/v1/live/{id}` shows one with its devices and proofs of play, `DELETE
//! /api/v1/live/{id}` stops it, `GET /api/v1/live/{id}/ws?rate=N` is the microphone (a WebSocket
//! of binary frames of 16-bit little-endian mono PCM at N Hz, text `stop` to end), and
//! `GET /live/{id}` is the MP3 stream devices play (no credentials: the id is an unguessable
//! uuid, like media fetched by its hash).

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::domain::live::{LiveRequest, MAX_FRAME_BYTES, pcm_frame};
use crate::error::{Error, Result};
use crate::http::auth::Caller;
use crate::http::json::ApiJson;
use crate::services::AppState;
use crate::services::live::{self, Attached, Detach, Opened, Status, encoder::Pcm};

/// OpenAPI description of this module's endpoints (merged in `http::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(open, status, stop), components(schemas(LiveRequest, Opened, Status)))]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/live", get(active).post(open))
        .route("/api/v1/live/{id}", get(status).delete(stop))
        .route("/api/v1/live/{id}/ws", get(microphone))
        .route("/live/{id}", get(stream))
}

/// Open a live session.
#[utoipa::path(post, path = "/api/v1/live", tag = "live", request_body = LiveRequest,
    responses((status = 201, body = Opened), (status = 403), (status = 409, description = "someone is live on these loudspeakers"),
              (status = 422)))]
async fn open(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LiveRequest>,
) -> Result<(StatusCode, Json<Opened>)> {
    Ok((StatusCode::CREATED, Json(live::open(&state, &caller, req).await?)))
}

/// A session live now.
#[derive(serde::Serialize)]
struct Active {
    id: String,
    started_by: String,
    priority: String,
    title: String,
}

async fn active(caller: Caller, State(state): State<AppState>) -> Result<Json<Vec<Active>>> {
    caller.require(crate::domain::scope::Role::Operator)?;
    Ok(Json(
        live::active(&state, &caller)
            .into_iter()
            .map(|(id, started_by, priority, title)| Active {
                id,
                started_by,
                priority,
                title,
            })
            .collect(),
    ))
}

/// A session with its devices.
#[utoipa::path(get, path = "/api/v1/live/{id}", tag = "live", params(("id" = String, Path)),
    responses((status = 200, body = Status), (status = 404)))]
async fn status(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Status>> {
    Ok(Json(live::status(&state, &caller, &id).await?))
}

/// Stop a session everywhere.
#[utoipa::path(delete, path = "/api/v1/live/{id}", tag = "live", params(("id" = String, Path)),
    responses((status = 204), (status = 404, description = "not live")))]
async fn stop(caller: Caller, State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode> {
    live::stop(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct Mic {
    #[serde(default = "default_rate")]
    rate: u32,
}

fn default_rate() -> u32 {
    48_000
}

/// A browser sends its session cookie with a WebSocket to any site: the page that opens it
/// must be this server's (`Origin` = `Host`), or the upgrade is refused.
fn same_origin(headers: &HeaderMap) -> Result<()> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
    if origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "a live microphone must come from this server's console (Origin `{origin}`)"
        )))
    }
}

async fn microphone(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(mic): Query<Mic>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response> {
    same_origin(&headers)?;
    live::may_attach(&state, &caller, &id, mic.rate)?;
    Ok(ws
        // Up to four times the largest frame reaches the handler, which names what is wrong with it.
        .max_message_size(MAX_FRAME_BYTES * 4)
        .on_upgrade(move |mut socket| async move {
            match live::attach(&state, &caller, &id, mic.rate).await {
                Ok(a) => run(state, socket, a).await,
                Err(e) => close(&mut socket, 1008, &e.to_string()).await,
            }
        }))
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    // A close reason is at most 123 bytes.
    let mut r = reason.to_string();
    while r.len() > 120 {
        r.pop();
    }
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: r.into(),
        })))
        .await;
}

async fn run(state: AppState, mut socket: WebSocket, a: Attached) {
    let ended = live::ended(&a.session);
    let mut ping = tokio::time::interval(std::time::Duration::from_secs(5));
    let how = loop {
        tokio::select! {
            _ = ended.cancelled() => break Detach::Ended,
            _ = ping.tick() => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break Detach::Dropped;
                }
            }
            m = socket.recv() => match m {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break Detach::Dropped,
                Some(Ok(Message::Binary(b))) => match pcm_frame(&b) {
                    Ok(s) => {
                        if a.encoder.tx.try_send(Pcm::Samples(s)).is_err() {
                            break Detach::Failed("the encoder fell behind the microphone".into());
                        }
                    }
                    Err(why) => break Detach::Garbage(why),
                },
                Some(Ok(Message::Text(t))) => match t.as_str().trim() {
                    "stop" => break Detach::Stop,
                    other => {
                        let shown: String = other.chars().take(40).collect();
                        break Detach::Garbage(format!("a text message `{shown}` (only `stop` is understood)"));
                    }
                },
                Some(Ok(_)) => {}
            },
        }
    };
    match &how {
        Detach::Stop | Detach::Ended => close(&mut socket, 1000, "ended").await,
        Detach::Garbage(why) | Detach::Failed(why) => close(&mut socket, 1003, why).await,
        Detach::Dropped => {}
    }
    live::detach(&state, a, how).await;
}

async fn stream(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    let s = live::listen(&state, &id)?;
    Ok((
        [
            (header::CONTENT_TYPE, "audio/mpeg"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(s),
    )
        .into_response())
}
