//! `/api/v1/users` (admin): list, create and change users; `/api/v1/users/{id}/tokens` (admin or
//! the user): list, issue and revoke API tokens; `/api/v1/me`: who the caller is. A disabled
//! user's sessions are deleted and their tokens refused at once (every request re-reads the
//! user); an admin cannot disable or demote themselves. Handlers call `services::users`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{self, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::domain::scope::{Caller, Role};
use crate::domain::user::{IssuedToken, NewUser, TokenInfo, User, UserPatch};
use crate::error::Result;
use crate::services::{self, AppState};
use crate::store;

/// Body of `POST /api/v1/users/{id}/tokens`.
#[derive(Debug, Default, Deserialize)]
pub struct NewToken {
    /// A label.
    #[serde(default)]
    pub name: Option<String>,
}

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", routing::get(list_users).post(create_user))
        .route("/api/v1/users/{id}", patch(patch_user))
        .route("/api/v1/users/{id}/tokens", post(create_token).get(get_tokens))
        .route(
            "/api/v1/users/{id}/tokens/{token_id}",
            routing::delete(delete_token),
        )
        .route("/api/v1/me", routing::get(me))
}

async fn list_users(caller: Caller, State(state): State<AppState>) -> Result<Json<Vec<User>>> {
    caller.require(Role::Admin)?;
    Ok(Json(store::users::list(&state.store).await?))
}

async fn create_user(
    caller: Caller,
    State(state): State<AppState>,
    Json(req): Json<NewUser>,
) -> Result<(StatusCode, Json<User>)> {
    let u = services::users::create(&state, &caller, req).await?;
    Ok((StatusCode::CREATED, Json(u)))
}

async fn patch_user(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(p): Json<UserPatch>,
) -> Result<Json<User>> {
    let (_, after) = services::users::update(&state, &caller, &id, p).await?;
    Ok(Json(after))
}

async fn create_token(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Option<Json<NewToken>>,
) -> Result<(StatusCode, Json<IssuedToken>)> {
    let name = body.and_then(|Json(b)| b.name).unwrap_or_else(|| "api".into());
    let t = services::users::issue_token(&state, &caller, &id, &name).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

async fn get_tokens(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<TokenInfo>>> {
    Ok(Json(services::users::tokens(&state, &caller, &id).await?))
}

async fn delete_token(
    caller: Caller,
    State(state): State<AppState>,
    Path((id, token_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    services::users::revoke_token(&state, &caller, &id, &token_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(caller: Caller) -> Json<serde_json::Value> {
    Json(
        json!({"user_id": caller.user_id, "username": caller.username, "role": caller.role, "scope_areas": caller.scope_areas}),
    )
}
