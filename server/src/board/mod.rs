//! Layer `board`: pages and feeds of the bulletin-board kiosks, built on
//! [`crate::services::board`]; it may import `http`, `services`, `store`, `domain` and the
//! foundation. Handlers here run no SQL.
//!
//! Electronic bulletin boards (*bảng tin điện tử*): the feed of a board's current bulletins for
//! third-party players (`GET /api/v1/boards/{device_id}/feed`, ETag / If-None-Match, [`feed`]),
//! the kiosk page for Chromium (`GET /board/{device_id}?token=…`, HTML/CSS/JS and a Noto Sans font
//! embedded in the binary, [`page`]), its change stream (`GET /board/{device_id}/events?token=…`,
//! Server-Sent Events carrying the new ETag, [`events`]) and proof of display
//! (`POST /board/{device_id}/display?token=…`, idempotent by the board's uuid, [`display`]).
//!
//! A board authenticates with its own bearer token (sha256 compared with
//! `devices.board_token_hash`, set by provisioning) as `Authorization: Bearer` or `?token=`;
//! board tokens are scoped to their board (the admin token is not one: it must never sit in a
//! kiosk's URL). Feeds are cached per board for one second (`AppState::board_feeds`)
//! and invalidated by the bulletin generation (`AppState::bulletins`).

pub mod display;
pub mod events;
pub mod feed;
pub mod page;

use axum::Router;
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::domain::bulletin::feed::{Feed, FeedFile, FeedItem, FeedVariant};
use crate::domain::bulletin::{DisplayBatch, DisplayIn, DisplayStored};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::services::board::{CachedFeed, authorized, feed_cached};

/// OpenAPI description of this module's endpoints (merged in `openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(feed::feed, display::post_display),
    components(schemas(Feed, FeedItem, FeedVariant, FeedFile, DisplayBatch, DisplayIn, DisplayStored))
)]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/boards/{device_id}/feed", get(feed::feed))
        .route("/board/{device_id}", get(page::page))
        .route("/board/{device_id}/events", get(events::events))
        .route("/board/{device_id}/display", post(display::post_display))
        .route("/board-assets/{name}", get(page::asset))
}

fn token_from(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(h) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some((scheme, t)) = h.trim().split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
    {
        return Some(t.trim().to_string());
    }
    query.map(str::to_string)
}

/// `?token=` on board URLs.
#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    /// The board's token.
    pub token: Option<String>,
}

/// The board's cached feed, if the request carries its own token; 401 otherwise,
/// also for an unknown board (strangers are not told which boards exist).
async fn authenticate(
    state: &AppState,
    device_id: &str,
    headers: &HeaderMap,
    q: &TokenQuery,
) -> Result<CachedFeed> {
    let c = feed_cached(state, device_id).await.map_err(|e| match e {
        // Do not tell strangers which boards exist.
        Error::NotFound(_) => Error::Unauthorized,
        e => e,
    })?;
    if !authorized(
        token_from(headers, q.token.as_deref()).as_deref(),
        c.token_hash.as_deref(),
    ) {
        return Err(Error::Unauthorized);
    }
    Ok(c)
}
