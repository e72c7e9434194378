//! `POST /board/{device_id}/display?token=…`: proof of display from a board, idempotent by each
//! record's uuid.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;

use super::{TokenQuery, authenticate};
use crate::domain::bulletin::{DisplayBatch, DisplayStored};
use crate::error::Result;
use crate::services::AppState;
use crate::services::board::record_displays;

/// Record proof of display (idempotent by each record's uuid).
#[utoipa::path(post, path = "/board/{device_id}/display", tag = "boards", request_body = DisplayBatch,
    responses((status = 200, body = DisplayStored), (status = 400, description = "Invalid record")))]
pub async fn post_display(
    State(state): State<AppState>,
    Path(device_id): Path<String>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
    Json(batch): Json<DisplayBatch>,
) -> Result<Json<DisplayStored>> {
    authenticate(&state, &device_id, &headers, &q).await?;
    Ok(Json(record_displays(&state, &device_id, &batch).await?))
}
