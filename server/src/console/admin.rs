//! Administration from the console (issue 7): routes and shared form helpers; the pages are in
//! `admin_users`, `admin_schedules`, `admin_areas` and `admin_devices`. It covers users (edit,
//! disable, password, API tokens), schedule edit and delete, the area tree (create, rename, move, delete, CSV import) and device edit. Every
//! handler goes through the same functions as the API (`user`, `schedule`, `area`, `fleet`), so
//! validation, scope rules, manifest re-publication and the audit log are the API's. Every POST
//! reads its form through `PageForm`, which checks the session's CSRF token; a refused form is
//! shown again with the message.

use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use serde_json::Value;

use super::{Console, PageResult};
use crate::error::Error;
use crate::services::AppState;

/// Routes of the administration pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/console/users/{id}",
            get(super::admin_users::user_page).post(super::admin_users::user_save),
        )
        .route(
            "/console/users/{id}/enabled",
            post(super::admin_users::user_enabled),
        )
        .route(
            "/console/users/{id}/password",
            post(super::admin_users::user_password),
        )
        .route(
            "/console/users/{id}/tokens",
            post(super::admin_users::token_issue),
        )
        .route(
            "/console/users/{id}/tokens/{token_id}/revoke",
            post(super::admin_users::token_revoke),
        )
        .route(
            "/console/schedules/describe",
            get(super::admin_schedules::describe),
        )
        .route(
            "/console/schedules/{id}",
            get(super::admin_schedules::schedule_page).post(super::admin_schedules::schedule_save),
        )
        .route(
            "/console/schedules/{id}/delete",
            get(super::admin_schedules::schedule_delete_page).post(super::admin_schedules::schedule_delete),
        )
        .route(
            "/console/areas",
            get(super::admin_areas::areas_page).post(super::admin_areas::area_create),
        )
        .route("/console/areas/import", post(super::admin_areas::area_import))
        .route("/console/areas/{code}", post(super::admin_areas::area_save))
        .route(
            "/console/areas/{code}/delete",
            post(super::admin_areas::area_delete),
        )
        .route(
            "/console/devices/{id}/edit",
            get(super::admin_devices::device_page).post(super::admin_devices::device_save),
        )
}

// ---------------------------------------------------------------- forms

/// Whether an error is one to show on the form (a refused value) rather than as an error page.
pub(super) fn shown_on_form(e: &Error) -> bool {
    matches!(
        e,
        Error::BadRequest { .. } | Error::Unprocessable { .. } | Error::Conflict(_)
    )
}

/// The context of a refused form: the message in the user's language and the field it is about
/// (the template shows it next to that field, with what was typed).
pub(super) fn form_error(c: &Console, e: &Error) -> Value {
    serde_json::json!({"error": super::i18n::error_text(e, c.lang), "error_field": super::i18n::error_field(e)})
}

pub(super) fn page_with(c: &Console, name: &str, status: StatusCode, extra: Value) -> PageResult {
    let html = super::render(name, c.ctx(extra))?;
    Ok((status, Html(html)).into_response())
}
