//! Layer `http`: what turns HTTP requests into use-case calls and results into responses: the
//! extractors ([`auth::Caller`]/[`auth::Admin`], [`json::ApiJson`], the CSRF-checked console
//! form [`form::CsrfForm`]) and the one mapping of `Error` to a response ([`error`]). It may
//! import `services`, `store`, `domain` and the foundation; `console` and `board` import it.
//! The API routers per resource: [`areas`], [`bulletins`], [`devices`], [`media`], [`ota`], [`reports`],
//! [`schedules`], [`speech`], [`users`]; the system endpoints ([`health`]: `/healthz`,
//! `/metrics`, the server key) and the merged OpenAPI document ([`openapi`]). Applied to the
//! whole router: the security headers ([`headers`]), the body bound ([`multipart`]), the API's
//! per-address budget ([`throttle`]), the JSON shape of axum's own rejections
//! ([`error::json_rejections`]) and the refusal of NUL and other control characters in a path,
//! query or JSON/form body ([`text`]). [`serve`] serves the port (plain or [`tls`]) with the
//! idle keep-alive timeout and the connection cap.

pub mod alarms;
pub mod alerts;
pub mod areas;
pub mod auth;
pub mod autonomy;
pub mod bulletins;
pub mod commands;
pub mod devices;
pub mod error;
pub mod feedback;
pub mod form;
pub mod headers;
pub mod health;
pub mod json;
pub mod live;
pub mod media;
pub mod multipart;
pub mod openapi;
pub mod ota;
pub mod policies;
pub mod relay;
pub mod reports;
pub mod schedules;
pub mod serve;
pub mod speech;
pub mod submissions;
pub mod text;
pub mod throttle;
pub mod tls;
pub mod users;
