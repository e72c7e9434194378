//! The merged OpenAPI document (`GET /api/openapi.json`) and Swagger UI (`/api/docs`): the API's
//! title and bearer scheme, with the `Doc` of every API router merged in. The boards' document
//! comes from `lib.rs` (the `board` layer sits above `http`), through [`router`]'s argument.

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::services::AppState;

/// The document's title, description and security scheme.
#[derive(OpenApi)]
#[openapi(
    info(title = "nguon-server API", description = "Provincial source-information system: areas, devices, media, schedules, commands, reports. All `/api/v1/*` endpoints need `Authorization: Bearer <admin token>` except `GET /api/v1/keys/server`."),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct Doc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The whole API description: this module's document with every API router's merged in, then
/// `others` (the boards').
pub fn document(others: impl IntoIterator<Item = utoipa::openapi::OpenApi>) -> utoipa::openapi::OpenApi {
    let mut doc = Doc::openapi();
    doc.merge(crate::http::health::Doc::openapi());
    doc.merge(crate::http::areas::Doc::openapi());
    doc.merge(crate::http::devices::Doc::openapi());
    doc.merge(crate::http::media::Doc::openapi());
    doc.merge(crate::http::ota::Doc::openapi());
    doc.merge(crate::http::schedules::Doc::openapi());
    doc.merge(crate::http::commands::Doc::openapi());
    doc.merge(crate::http::live::Doc::openapi());
    doc.merge(crate::http::relay::Doc::openapi());
    doc.merge(crate::http::reports::Doc::openapi());
    doc.merge(crate::http::speech::Doc::openapi());
    doc.merge(crate::http::bulletins::Doc::openapi());
    doc.merge(crate::http::alarms::Doc::openapi());
    doc.merge(crate::http::alerts::Doc::openapi());
    doc.merge(crate::http::feedback::Doc::openapi());
    doc.merge(crate::http::submissions::Doc::openapi());
    doc.merge(crate::http::policies::Doc::openapi());
    doc.merge(crate::http::autonomy::Doc::openapi());
    for other in others {
        doc.merge(other);
    }
    doc
}

/// `GET /api/openapi.json` and Swagger UI at `/api/docs` for [`document`]`(others)`.
pub fn router(others: impl IntoIterator<Item = utoipa::openapi::OpenApi>) -> Router<AppState> {
    Router::new().merge(SwaggerUi::new("/api/docs").url("/api/openapi.json", document(others)))
}
