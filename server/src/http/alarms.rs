//! The alarm API (issue 12 §6): `GET /api/v1/alarms?state=open|acked|all&area=&kind=` (the
//! alarms of the caller's scope, open ones first), `POST /api/v1/alarms/{id}/ack` (audited), and
//! an area's offline threshold `GET/PUT/DELETE /api/v1/areas/{code}/alarm-settings` (inherited
//! down the area tree). Notifications: the subscriptions `GET/POST /api/v1/alarm-subscriptions`,
//! `GET/PATCH/DELETE /api/v1/alarm-subscriptions/{id}` (audited) and the notifications of one
//! alarm with their attempts `GET /api/v1/alarms/{id}/notifications`. The use cases are
//! `services::alarms` and `services::notifications`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::domain::alarm::{Alarm, AlarmKind};
use crate::domain::notify::{NewSubscription, Subscription};
use crate::error::Result;
use crate::http::auth::Caller;
use crate::http::json::ApiJson;
use crate::services::AppState;
use crate::services::alarms::{self, AreaAlarmSettings, ListQuery};
use crate::services::notifications;
use crate::store::notifications::Delivery;

/// OpenAPI description of this module's endpoints (merged in `http::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list_alarms,
        ack_alarm,
        alarm_notifications,
        get_area_settings,
        put_area_settings,
        delete_area_settings,
        list_subscriptions,
        create_subscription,
        get_subscription,
        patch_subscription,
        delete_subscription
    ),
    components(schemas(Alarm, AlarmKind, AreaAlarmSettings, Subscription, NewSubscription, Delivery))
)]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/alarms", get(list_alarms))
        .route("/api/v1/alarms/{id}/ack", post(ack_alarm))
        .route("/api/v1/alarms/{id}/notifications", get(alarm_notifications))
        .route(
            "/api/v1/alarm-subscriptions",
            get(list_subscriptions).post(create_subscription),
        )
        .route(
            "/api/v1/alarm-subscriptions/{id}",
            get(get_subscription)
                .patch(patch_subscription)
                .delete(delete_subscription),
        )
        .route(
            "/api/v1/areas/{code}/alarm-settings",
            get(get_area_settings)
                .put(put_area_settings)
                .delete(delete_area_settings),
        )
}

/// Filter of `GET /api/v1/alarms`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AlarmFilter {
    /// `open` (default: not cleared, not acknowledged), `acked` (not cleared) or `all`.
    pub state: Option<String>,
    /// Only alarms of this area and its descendants.
    pub area: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
}

/// The alarms of the caller's scope, open ones first (critical first), then newest first.
#[utoipa::path(get, path = "/api/v1/alarms", tag = "alarms", params(AlarmFilter),
    responses((status = 200, body = [Alarm]), (status = 422, description = "bad state, kind or area")))]
async fn list_alarms(
    caller: Caller,
    State(state): State<AppState>,
    Query(f): Query<AlarmFilter>,
) -> Result<Json<Vec<Alarm>>> {
    let q = ListQuery {
        state: f.state,
        area: f.area,
        kind: f.kind,
    };
    Ok(Json(alarms::list(&state, &caller, &q).await?))
}

/// Acknowledge an alarm (operator role; the audit log names the caller). It stays listed under
/// `acked` until its condition ends.
#[utoipa::path(post, path = "/api/v1/alarms/{id}/ack", tag = "alarms", params(("id" = String, Path)),
    responses((status = 200, body = Alarm), (status = 403), (status = 404, description = "no such alarm in your scope")))]
async fn ack_alarm(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Alarm>> {
    Ok(Json(alarms::ack(&state, &caller, &id).await?))
}

/// The offline threshold that applies to an area (its own, an ancestor's or the default).
#[utoipa::path(get, path = "/api/v1/areas/{code}/alarm-settings", tag = "alarms", params(("code" = String, Path)),
    responses((status = 200, body = AreaAlarmSettings), (status = 404)))]
async fn get_area_settings(
    caller: Caller,
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<AreaAlarmSettings>> {
    Ok(Json(alarms::area_settings(&state, &caller, &code).await?))
}

/// Set an area's own offline threshold (its descendants inherit it).
#[utoipa::path(put, path = "/api/v1/areas/{code}/alarm-settings", tag = "alarms", params(("code" = String, Path)),
    request_body = AreaAlarmSettings,
    responses((status = 200, body = AreaAlarmSettings), (status = 404), (status = 422, description = "offline_after_s out of range")))]
async fn put_area_settings(
    caller: Caller,
    State(state): State<AppState>,
    Path(code): Path<String>,
    ApiJson(v): ApiJson<AreaAlarmSettings>,
) -> Result<Json<AreaAlarmSettings>> {
    Ok(Json(
        alarms::set_area_settings(&state, &caller, &code, Some(&v)).await?,
    ))
}

/// Clear an area's own offline threshold (it takes its parent's again).
#[utoipa::path(delete, path = "/api/v1/areas/{code}/alarm-settings", tag = "alarms", params(("code" = String, Path)),
    responses((status = 200, body = AreaAlarmSettings), (status = 404)))]
async fn delete_area_settings(
    caller: Caller,
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<AreaAlarmSettings>> {
    Ok(Json(
        alarms::set_area_settings(&state, &caller, &code, None).await?,
    ))
}

/// The notifications of an alarm, each with its attempts' statuses.
#[utoipa::path(get, path = "/api/v1/alarms/{id}/notifications", tag = "alarms", params(("id" = String, Path)),
    responses((status = 200, body = [Delivery]), (status = 404)))]
async fn alarm_notifications(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<Delivery>>> {
    Ok(Json(notifications::deliveries(&state, &caller, &id).await?))
}

/// The notification subscriptions of the caller's areas (secrets are not shown).
#[utoipa::path(get, path = "/api/v1/alarm-subscriptions", tag = "alarms",
    responses((status = 200, body = [Subscription])))]
async fn list_subscriptions(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Vec<Subscription>>> {
    Ok(Json(notifications::list(&state, &caller).await?))
}

/// Subscribe a webhook or an e-mail address to the alarms of an area for a role (operator role;
/// audited). A webhook's secret is generated unless given and shown only in this answer.
#[utoipa::path(post, path = "/api/v1/alarm-subscriptions", tag = "alarms", request_body = NewSubscription,
    responses((status = 201, body = Subscription), (status = 422, description = "a field is invalid (named)")))]
async fn create_subscription(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(n): ApiJson<NewSubscription>,
) -> Result<(StatusCode, Json<Subscription>)> {
    let s = notifications::create(&state, &caller, &n).await?;
    Ok((StatusCode::CREATED, Json(s)))
}

/// One subscription.
#[utoipa::path(get, path = "/api/v1/alarm-subscriptions/{id}", tag = "alarms", params(("id" = String, Path)),
    responses((status = 200, body = Subscription), (status = 404)))]
async fn get_subscription(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Subscription>> {
    notifications::list(&state, &caller)
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .map(Json)
        .ok_or_else(|| crate::error::Error::NotFound(format!("subscription {id}")))
}

/// Change a subscription (absent fields are kept; audited).
#[utoipa::path(patch, path = "/api/v1/alarm-subscriptions/{id}", tag = "alarms", params(("id" = String, Path)),
    request_body = NewSubscription,
    responses((status = 200, body = Subscription), (status = 404), (status = 422, description = "a field is invalid (named)")))]
async fn patch_subscription(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(n): ApiJson<NewSubscription>,
) -> Result<Json<Subscription>> {
    Ok(Json(notifications::update(&state, &caller, &id, &n).await?))
}

/// Delete a subscription (its pending notifications are given up; audited).
#[utoipa::path(delete, path = "/api/v1/alarm-subscriptions/{id}", tag = "alarms", params(("id" = String, Path)),
    responses((status = 204), (status = 404)))]
async fn delete_subscription(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    notifications::delete(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
