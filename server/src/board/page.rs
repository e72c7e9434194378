//! The kiosk page for Chromium (`GET /board/{device_id}?token=…`) and its assets (HTML, CSS, JS,
//! the service worker that keeps the page for outages, and the Noto Sans fonts, embedded in the
//! binary).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::{TokenQuery, authenticate};
use crate::error::{Error, Result};
use crate::services::AppState;

const PAGE_HTML: &str = include_str!("../../assets/board/board.html");
const PAGE_CSS: &str = include_str!("../../assets/board/board.css");
const PAGE_JS: &str = include_str!("../../assets/board/board.js");
const SERVICE_WORKER: &str = include_str!("../../assets/board/sw.js");
const FONT: &[u8] = include_bytes!("../../assets/board/NotoSans-Regular.ttf");
const FONT_BOLD: &[u8] = include_bytes!("../../assets/board/NotoSans-Bold.ttf");

/// The kiosk page of a board.
pub async fn page(
    State(state): State<AppState>,
    Path(device_id): Path<String>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> Result<Response> {
    authenticate(&state, &device_id, &headers, &q).await?;
    let html = PAGE_HTML.replace("{{device_id}}", &crate::domain::html::escape(&device_id));
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

/// One embedded asset of the kiosk page.
pub async fn asset(Path(name): Path<String>) -> Response {
    let (ct, body): (&'static str, &'static [u8]) = match name.as_str() {
        "board.css" => ("text/css; charset=utf-8", PAGE_CSS.as_bytes()),
        "board.js" => ("text/javascript; charset=utf-8", PAGE_JS.as_bytes()),
        "sw.js" => {
            // The kiosk's service worker controls the board pages (`/board/`), outside its own
            // folder; never cached by the browser's HTTP cache so an update reaches kiosks.
            return (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/javascript; charset=utf-8"),
                    ),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                    (
                        axum::http::HeaderName::from_static("service-worker-allowed"),
                        HeaderValue::from_static("/board/"),
                    ),
                ],
                SERVICE_WORKER,
            )
                .into_response();
        }
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
