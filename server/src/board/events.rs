//! `GET /board/{device_id}/events?token=…`: Server-Sent Events carrying the feed's ETag, first at
//! once, then whenever it changes (woken by the bulletin generation, and every 5 s for validity
//! windows opening and closing). The stream is also the board's presence (issue 13): opening it
//! puts the board online in a new session, every minute it is stamped as seen, and when it ends
//! (the kiosk closed, lost its network or was switched off: the write of the next keep-alive
//! fails at the latest) the session's interval closes, like a loudspeaker's MQTT session.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;

use super::{TokenQuery, authenticate};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::services::board::{connected, disconnected, feed_cached, seen};

/// How often an open stream stamps its board as seen.
const SEEN_EVERY: Duration = Duration::from_secs(60);

/// The board's presence session of one open stream; closed when the stream is dropped.
struct Session {
    state: AppState,
    device_id: String,
    session: Option<i64>,
}

impl Drop for Session {
    fn drop(&mut self) {
        let Some(session) = self.session else { return };
        let (state, device) = (self.state.clone(), std::mem::take(&mut self.device_id));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = disconnected(&state, &device, session).await {
                    tracing::warn!(error = %e, device, "board presence: offline");
                }
            });
        }
    }
}

/// The board's change stream.
pub async fn events(
    State(state): State<AppState>,
    Path(device_id): Path<String>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>> {
    let first = authenticate(&state, &device_id, &headers, &q).await?;
    let session = match connected(&state, &device_id).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, device = %device_id, "board presence: online");
            None
        }
    };
    let rx = state.bulletins.subscribe();
    struct S {
        state: AppState,
        device_id: String,
        rx: tokio::sync::watch::Receiver<u64>,
        last: Option<String>,
        first: Option<String>,
        presence: Session,
        seen_at: tokio::time::Instant,
    }
    let s = S {
        presence: Session {
            state: state.clone(),
            device_id: device_id.clone(),
            session,
        },
        state,
        device_id,
        rx,
        last: None,
        first: Some(first.etag),
        seen_at: tokio::time::Instant::now(),
    };
    let stream = futures::stream::unfold(s, |mut s| async move {
        if let Some(etag) = s.first.take() {
            s.last = Some(etag.clone());
            return Some((Ok(Event::default().event("changed").data(etag)), s));
        }
        loop {
            // Wake on a change, or every 5 s for validity windows opening and closing.
            let _ = tokio::time::timeout(Duration::from_secs(5), s.rx.changed()).await;
            if let Some(session) = s.presence.session
                && s.seen_at.elapsed() >= SEEN_EVERY
            {
                s.seen_at = tokio::time::Instant::now();
                if let Err(e) = seen(&s.state, &s.device_id, session).await {
                    tracing::warn!(error = %e, "board presence: seen");
                }
            }
            // Let the writer finish its burst of changes.
            tokio::time::sleep(Duration::from_millis(50)).await;
            match feed_cached(&s.state, &s.device_id).await {
                Ok(c) if Some(&c.etag) != s.last.as_ref() => {
                    s.last = Some(c.etag.clone());
                    return Some((Ok(Event::default().event("changed").data(c.etag)), s));
                }
                Ok(_) => {}
                Err(Error::NotFound(_)) => return None,
                Err(e) => tracing::warn!(error = %e, "board event stream: feed"),
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
