//! `GET /api/v1/boards/{device_id}/feed`: the board's current bulletins as JSON with an ETag;
//! `If-None-Match` with the current ETag answers 304.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{TokenQuery, authenticate};
use crate::domain::bulletin::feed::Feed;
use crate::error::{Error, Result};
use crate::services::AppState;

/// The board's current bulletins. `If-None-Match` with the current ETag answers 304.
#[utoipa::path(get, path = "/api/v1/boards/{device_id}/feed", tag = "boards", security(("bearer" = [])),
    responses((status = 200, body = Feed), (status = 304, description = "Unchanged"), (status = 401, description = "Bad token")))]
pub async fn feed(
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
