//! Layer `board`: pages and feeds of the bulletin-board kiosks; it may import `http`, `services`,
//! `store`, `domain` and the foundation. (This file still runs its SQL itself: step B moves it to
//! `store` and splits the file.)
//!
//! Electronic bulletin boards (*bảng tin điện tử*): the feed of a board's current bulletins for
//! third-party players (`GET /api/v1/boards/{device_id}/feed`, ETag / If-None-Match), the kiosk
//! page for Chromium (`GET /board/{device_id}?token=…`, HTML/CSS/JS and a Noto Sans font embedded in
//! the binary), its change stream (`GET /board/{device_id}/events?token=…`, Server-Sent Events
//! carrying the new ETag) and proof of display (`POST /board/{device_id}/display?token=…`,
//! idempotent by the board's uuid).
//!
//! A board authenticates with its own bearer token (sha256 compared with
//! `devices.board_token_hash`, set by provisioning) as `Authorization: Bearer` or `?token=`; the
//! admin token is accepted too. Feeds are cached per board for one second (`AppState::board_feeds`)
//! and invalidated by the bulletin generation (`AppState::bulletins`).

use std::convert::Infallible;

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use utoipa::ToSchema;

use crate::bulletin::{self, markdown};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::services::board::CachedFeed;
use crate::store::now_ms;

/// OpenAPI description of this module's endpoints (merged in `openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(feed, post_display),
    components(schemas(Feed, FeedItem, FeedVariant, FeedFile, DisplayBatch, DisplayIn, DisplayStored))
)]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/boards/{device_id}/feed", get(feed))
        .route("/board/{device_id}", get(page))
        .route("/board/{device_id}/events", get(events))
        .route("/board/{device_id}/display", post(post_display))
        .route("/board-assets/{name}", get(asset))
}

const PAGE_HTML: &str = include_str!("../../assets/board/board.html");
const PAGE_CSS: &str = include_str!("../../assets/board/board.css");
const PAGE_JS: &str = include_str!("../../assets/board/board.js");
const FONT: &[u8] = include_bytes!("../../assets/board/NotoSans-Regular.ttf");
const FONT_BOLD: &[u8] = include_bytes!("../../assets/board/NotoSans-Bold.ttf");

// ---------------------------------------------------------------------------------------------
// Feed model

/// A file in the feed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeedFile {
    /// Content hash.
    pub sha256: String,
    /// MIME type.
    pub mime: String,
    /// URL (absolute, on the server's public URL).
    pub url: String,
    /// Image width.
    pub width: Option<i64>,
    /// Image height.
    pub height: Option<i64>,
}

/// A language variant in the feed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeedVariant {
    /// Language.
    pub language: String,
    /// Title.
    pub title: String,
    /// Body as escaped HTML (safe to insert).
    pub html: String,
    /// Body as plain text.
    pub text: String,
}

/// One bulletin on a board.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeedItem {
    /// Bulletin id (report it in proof of display).
    pub id: String,
    /// `emergency`, `priority` or `normal`.
    pub priority: String,
    /// Category.
    pub category: String,
    /// Seconds on screen.
    pub dwell_s: i64,
    /// Unix ms.
    pub valid_from: Option<i64>,
    /// Unix ms.
    pub valid_until: Option<i64>,
    /// Variants for the board's area languages, preferred first.
    pub variants: Vec<FeedVariant>,
    /// Images.
    pub images: Vec<FeedFile>,
    /// Video.
    pub video: Option<FeedFile>,
    /// PDF attachments.
    pub attachments: Vec<FeedFile>,
}

/// A board's feed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Feed {
    /// Board id.
    pub device_id: String,
    /// Board's area.
    pub area: String,
    /// Languages in effect.
    pub languages: Vec<String>,
    /// Whether an emergency bulletin is current (show it full-screen).
    pub emergency: bool,
    /// Current bulletins: emergency first, then priority, then normal; newest first within.
    pub bulletins: Vec<FeedItem>,
}

/// id, priority, category, dwell_s, valid_from, valid_until, published_at.
type FeedRow = (String, String, String, Option<i64>, Option<i64>, Option<i64>, i64);

struct Board {
    area: String,
    language: Option<String>,
    token_hash: Option<String>,
}

async fn load_board(state: &AppState, id: &str) -> Result<Board> {
    let row = sqlx::query("SELECT area, language, board_token_hash FROM devices WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&state.store.pool)
        .await?
        .ok_or_else(|| Error::NotFound(format!("board {id}")))?;
    Ok(Board {
        area: row.try_get("area")?,
        language: row.try_get("language")?,
        token_hash: row.try_get("board_token_hash")?,
    })
}

fn rank(p: &str) -> u8 {
    match p {
        "emergency" => 0,
        "priority" => 1,
        _ => 2,
    }
}

fn default_dwell(v: &FeedVariant) -> i64 {
    // About 15 characters a second of reading, 8–30 s.
    ((v.title.chars().count() + v.text.chars().count()) as i64 / 15).clamp(8, 30)
}

/// Build the feed of board `device_id`.
pub async fn build_feed(
    state: &AppState,
    device_id: &str,
    board_area: &str,
    board_language: Option<&str>,
) -> Result<Feed> {
    let ancestors = crate::store::areas::ancestors(&state.store, board_area).await?;
    let (mut languages, _) = bulletin::languages_of(&state.store, board_area).await?;
    if let Some(l) = board_language {
        languages.retain(|x| x != l);
        languages.insert(0, l.to_string());
    }
    let now = now_ms();
    let mut items = Vec::new();
    if !ancestors.is_empty() {
        let sql = format!(
            "SELECT DISTINCT b.id, b.priority, b.category, b.dwell_s, b.valid_from, b.valid_until, b.published_at \
             FROM bulletins b JOIN bulletin_targets t ON t.bulletin_id = b.id \
             WHERE b.status = 'approved' AND t.area IN ({}) \
             AND (b.valid_from IS NULL OR b.valid_from <= ${n}) AND (b.valid_until IS NULL OR b.valid_until > ${n})",
            crate::store::placeholders(1, ancestors.len()),
            n = ancestors.len() + 1
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for a in &ancestors {
            q = q.bind(a.clone());
        }
        let rows = q.bind(now).fetch_all(&state.store.pool).await?;
        let mut rows: Vec<FeedRow> = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("priority")?,
                    r.try_get("category")?,
                    r.try_get("dwell_s")?,
                    r.try_get("valid_from")?,
                    r.try_get("valid_until")?,
                    r.try_get::<Option<i64>, _>("published_at")?.unwrap_or(0),
                ))
            })
            .collect::<Result<_>>()?;
        rows.sort_by(|a, b| {
            rank(&a.1)
                .cmp(&rank(&b.1))
                .then(b.6.cmp(&a.6))
                .then(a.0.cmp(&b.0))
        });
        for (id, priority, category, dwell, valid_from, valid_until, _) in rows {
            let all = bulletin::load_variants(&state.store, &id).await?;
            let mut variants: Vec<FeedVariant> = languages
                .iter()
                .filter_map(|l| all.iter().find(|v| &v.language == l))
                .map(|v| FeedVariant {
                    language: v.language.clone(),
                    title: v.title.clone(),
                    html: v.html.clone(),
                    text: markdown::to_plain(&v.body),
                })
                .collect();
            if variants.is_empty() {
                // No variant in the area's languages: fall back to the first one (vi first).
                if let Some(v) = all.first() {
                    variants.push(FeedVariant {
                        language: v.language.clone(),
                        title: v.title.clone(),
                        html: v.html.clone(),
                        text: markdown::to_plain(&v.body),
                    });
                }
            }
            let Some(first) = variants.first() else { continue };
            let dwell_s = dwell.unwrap_or_else(|| default_dwell(first));
            let files = bulletin::load_files(state, &id).await?;
            let f = |x: &bulletin::FileRef| FeedFile {
                sha256: x.sha256.clone(),
                mime: x.mime.clone(),
                url: format!("{}{}", state.public_url, x.url),
                width: x.width,
                height: x.height,
            };
            items.push(FeedItem {
                id,
                priority,
                category,
                dwell_s,
                valid_from,
                valid_until,
                variants,
                images: files.iter().filter(|x| x.kind == "image").map(f).collect(),
                video: files.iter().find(|x| x.kind == "video").map(f),
                attachments: files.iter().filter(|x| x.kind == "attachment").map(f).collect(),
            });
        }
    }
    Ok(Feed {
        device_id: device_id.to_string(),
        area: board_area.to_string(),
        languages,
        emergency: items.iter().any(|i| i.priority == "emergency"),
        bulletins: items,
    })
}

// ---------------------------------------------------------------------------------------------
// Cache and authentication

const CACHE_MS: i64 = 1000;

/// The feed's JSON and ETag, from the cache when fresh.
async fn feed_cached(state: &AppState, device_id: &str) -> Result<CachedFeed> {
    let generation = state.bulletins.current();
    let now = now_ms();
    if let Some(c) = state.board_feeds.get(device_id)
        && c.generation == generation
        && now - c.at < CACHE_MS
    {
        return Ok(c);
    }
    let board = load_board(state, device_id).await?;
    let feed = build_feed(state, device_id, &board.area, board.language.as_deref()).await?;
    let body = serde_json::to_vec(&feed).map_err(|e| Error::internal_from("board feed", e))?;
    let etag = format!("\"f-{}\"", &hex::encode(Sha256::digest(&body))[..24]);
    let c = CachedFeed {
        generation,
        at: now,
        token_hash: board.token_hash,
        etag,
        body: Bytes::from(body),
    };
    state.board_feeds.put(device_id, c.clone());
    Ok(c)
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

fn authorized(state: &AppState, token: Option<&str>, token_hash: Option<&str>) -> bool {
    let Some(token) = token else { return false };
    if crate::domain::user::constant_time_eq(token.as_bytes(), state.admin_token.expose().as_bytes()) {
        return true;
    }
    match token_hash {
        Some(h) => {
            let got = hex::encode(Sha256::digest(token.as_bytes()));
            crate::domain::user::constant_time_eq(got.as_bytes(), h.trim().to_ascii_lowercase().as_bytes())
        }
        None => false,
    }
}

/// `?token=` on board URLs.
#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    /// The board's token.
    pub token: Option<String>,
}

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
        state,
        token_from(headers, q.token.as_deref()).as_deref(),
        c.token_hash.as_deref(),
    ) {
        return Err(Error::Unauthorized);
    }
    Ok(c)
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// The board's current bulletins. `If-None-Match` with the current ETag answers 304.
#[utoipa::path(get, path = "/api/v1/boards/{device_id}/feed", tag = "boards", security(("bearer" = [])),
    responses((status = 200, body = Feed), (status = 304, description = "Unchanged"), (status = 401, description = "Bad token")))]
async fn feed(
    State(state): State<AppState>,
    Path(device_id): Path<String>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> Result<Response> {
    let c = authenticate(&state, &device_id, &headers, &q).await?;
    let etag = HeaderValue::from_str(&c.etag).map_err(|e| Error::internal_from("board feed", e))?;
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == c.etag || t.trim() == "*"));
    let cc = HeaderValue::from_static("no-cache");
    if not_modified {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cc)],
        )
            .into_response());
    }
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, cc),
        ],
        c.body,
    )
        .into_response())
}

async fn page(
    State(state): State<AppState>,
    Path(device_id): Path<String>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> Result<Response> {
    authenticate(&state, &device_id, &headers, &q).await?;
    let html = PAGE_HTML.replace("{{device_id}}", &markdown::escape(&device_id));
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; img-src 'self' data: http: https:; media-src 'self' http: https:; object-src 'none'; base-uri 'none'",
                ),
            ),
        ],
        html,
    )
        .into_response())
}

async fn asset(Path(name): Path<String>) -> Response {
    let (ct, body): (&'static str, &'static [u8]) = match name.as_str() {
        "board.css" => ("text/css; charset=utf-8", PAGE_CSS.as_bytes()),
        "board.js" => ("text/javascript; charset=utf-8", PAGE_JS.as_bytes()),
        "NotoSans-Regular.ttf" => ("font/ttf", FONT),
        "NotoSans-Bold.ttf" => ("font/ttf", FONT_BOLD),
        _ => return Error::NotFound(format!("asset {name}")).into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(ct)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}

async fn events(
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

/// One proof-of-display record from a board.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisplayIn {
    /// Client-generated uuid (idempotency key).
    pub id: String,
    /// Bulletin shown.
    pub bulletin_id: String,
    /// Unix ms.
    pub shown_from: i64,
    /// Unix ms.
    pub shown_to: i64,
}

/// A batch of proof-of-display records.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisplayBatch {
    /// Records.
    pub displays: Vec<DisplayIn>,
}

/// Answer of a proof-of-display batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct DisplayStored {
    /// New records stored.
    pub stored: usize,
    /// Records already stored (same uuid).
    pub duplicates: usize,
}

/// Record proof of display (idempotent by each record's uuid).
#[utoipa::path(post, path = "/board/{device_id}/display", tag = "boards", request_body = DisplayBatch,
    responses((status = 200, body = DisplayStored), (status = 400, description = "Invalid record")))]
async fn post_display(
    State(state): State<AppState>,
    Path(device_id): Path<String>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
    Json(batch): Json<DisplayBatch>,
) -> Result<Json<DisplayStored>> {
    authenticate(&state, &device_id, &headers, &q).await?;
    if batch.displays.len() > 1000 {
        return Err(Error::TooLarge("at most 1000 records per batch".into()));
    }
    let now = now_ms();
    for d in &batch.displays {
        if uuid::Uuid::parse_str(&d.id).is_err() {
            return Err(Error::bad("invalid_id", format!("`{}` is not a uuid", d.id)));
        }
        if d.shown_to < d.shown_from || d.shown_from <= 0 || d.shown_to > now + 86_400_000 {
            return Err(Error::bad(
                "invalid_interval",
                format!("record {}: shown_to must follow shown_from", d.id),
            ));
        }
    }
    let (mut stored, mut duplicates) = (0, 0);
    for d in &batch.displays {
        let r = sqlx::query(
            "INSERT INTO displays (id, device_id, bulletin_id, shown_from, shown_to, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        )
        .bind(d.id.to_lowercase())
        .bind(device_id.clone())
        .bind(d.bulletin_id.clone())
        .bind(d.shown_from)
        .bind(d.shown_to)
        .bind(now)
        .execute(&state.store.pool)
        .await?;
        if r.rows_affected() == 1 {
            stored += 1;
        } else {
            duplicates += 1;
        }
    }
    Ok(Json(DisplayStored { stored, duplicates }))
}
