//! `GET /board/{device_id}/events?token=…`: Server-Sent Events carrying the feed's ETag, first at
//! once, then whenever it changes (woken by the bulletin generation, and every 5 s for validity
//! windows opening and closing).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;

use super::{TokenQuery, authenticate};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::services::board::feed_cached;

/// The board's change stream.
pub async fn events(
    State(state): State<AppState>,
    Path(device_id): Path<String>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>> {
    let first = authenticate(&state, &device_id, &headers, &q).await?;
    let rx = state.bulletins.subscribe();
    struct S {
        state: AppState,
        device_id: String,
        rx: tokio::sync::watch::Receiver<u64>,
        last: Option<String>,
        first: Option<String>,
    }
    let s = S {
        state,
        device_id,
        rx,
        last: None,
        first: Some(first.etag),
    };
    let stream = futures::stream::unfold(s, |mut s| async move {
        if let Some(etag) = s.first.take() {
            s.last = Some(etag.clone());
            return Some((Ok(Event::default().event("changed").data(etag)), s));
        }
        loop {
            // Wake on a change, or every 5 s for validity windows opening and closing.
            let _ = tokio::time::timeout(Duration::from_secs(5), s.rx.changed()).await;
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
