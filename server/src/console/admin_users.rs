//! Console administration of users: edit, enable/disable, password, API tokens (issue 7). Every
//! handler goes through the same use cases as the API (`services::users`, which also write the
//! audit entries); forms are read through `PageForm`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::admin::{form_error, page_with, shown_on_form};
use super::{Console, PageError, PageForm, PageResult, all_areas, visible_areas};
use crate::domain::scope::Role;
use crate::domain::user::UserPatch;
use crate::error::Error;
use crate::http::form::Fields;
use crate::services::{self, AppState};
use crate::store;

// ---------------------------------------------------------------- users

/// The roles ticked on a user form (`role`, one or more): the first and the others.
pub(super) fn roles_of(f: &Fields) -> Result<(Role, Vec<Role>), Error> {
    let all = f
        .all("role")
        .iter()
        .filter(|r| !r.is_empty())
        .map(|r| Role::parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    crate::domain::user::split_roles(&all)
}

async fn user_view(c: &Console, state: &AppState, id: &str, extra: Value, status: StatusCode) -> PageResult {
    let lang = c.lang;
    c.caller.require(Role::Admin).map_err(|e| PageError(e, lang))?;
    let u = store::users::get(&state.store, id)
        .await?
        .ok_or_else(|| PageError(Error::NotFound(format!("user `{id}`")), lang))?;
    let tokens = store::users::list_tokens(&state.store, id).await?;
    let areas = all_areas(state).await?;
    let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    let mut ctx = json!({"u": u, "tokens": tokens, "roles": roles, "areas": visible_areas(c, &areas),
                         "user_roles": std::iter::once(u.role).chain(u.extra_roles.iter().copied()).map(|r| r.as_str()).collect::<Vec<_>>(),
                         "is_self": u.id == c.caller.user_id});
    if let (Some(o), Value::Object(e)) = (ctx.as_object_mut(), extra) {
        o.extend(e);
    }
    page_with(c, "user_edit.html", status, ctx)
}

pub(super) async fn user_page(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> PageResult {
    user_view(&c, &state, &id, json!({}), StatusCode::OK).await
}

/// Apply a user patch (with the self-protection rule and its audit entry); a refused value
/// re-renders the form with the message.
async fn apply_user(c: &Console, state: &AppState, id: &str, p: UserPatch, flash: &str) -> PageResult {
    let lang = c.lang;
    c.caller.require(Role::Admin).map_err(|e| PageError(e, lang))?;
    match services::users::update(state, &c.caller, id, p).await {
        Ok(_) => Ok(super::done(&format!("/console/users/{id}"), flash)),
        Err(e) if shown_on_form(&e) => {
            let status = e.status();
            user_view(c, state, id, form_error(c, &e), status).await
        }
        Err(e) => Err(PageError(e, lang)),
    }
}

pub(super) async fn user_save(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(f): PageForm<Fields>,
) -> PageResult {
    let roles = match roles_of(&f) {
        Ok(r) => r,
        Err(e) => {
            let status = e.status();
            return user_view(&c, &state, &id, form_error(&c, &e), status).await;
        }
    };
    let p = UserPatch {
        display_name: Some(f.one("display_name")),
        role: Some(roles.0),
        roles: Some(roles.1),
        areas: Some(f.all("areas")),
        ..UserPatch::default()
    };
    apply_user(&c, &state, &id, p, "saved").await
}

pub(super) async fn user_enabled(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(f): PageForm<Fields>,
) -> PageResult {
    let enabled = f.one("enabled") == "1";
    let p = UserPatch {
        enabled: Some(enabled),
        ..UserPatch::default()
    };
    let flash = if enabled { "user_enabled" } else { "user_disabled" };
    apply_user(&c, &state, &id, p, flash).await
}

pub(super) async fn user_password(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(f): PageForm<Fields>,
) -> PageResult {
    let p = UserPatch {
        password: Some(f.raw("password")),
        ..UserPatch::default()
    };
    apply_user(&c, &state, &id, p, "password_set").await
}

pub(super) async fn token_issue(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(f): PageForm<Fields>,
) -> PageResult {
    let lang = c.lang;
    c.caller.require(Role::Admin).map_err(|e| PageError(e, lang))?;
    let name: String = f
        .opt("name")
        .unwrap_or_else(|| "console".into())
        .chars()
        .take(100)
        .collect();
    let t = services::users::issue_token(&state, &c.caller, &id, &name)
        .await
        .map_err(|e| PageError(e, lang))?;
    // Shown once, in this answer only; the page is not cached.
    let mut resp = user_view(
        &c,
        &state,
        &id,
        json!({"new_token": t.token, "new_token_name": name}),
        StatusCode::OK,
    )
    .await?;
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

pub(super) async fn token_revoke(
    c: Console,
    State(state): State<AppState>,
    Path((id, token_id)): Path<(String, String)>,
    _checked: PageForm<Fields>,
) -> PageResult {
    let lang = c.lang;
    c.caller.require(Role::Admin).map_err(|e| PageError(e, lang))?;
    services::users::revoke_token(&state, &c.caller, &id, &token_id)
        .await
        .map_err(|e| PageError(e, lang))?;
    Ok(super::done(&format!("/console/users/{id}"), "token_revoked"))
}
