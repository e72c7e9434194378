//! Layer `http`: what turns HTTP requests into use-case calls and results into responses: the
//! extractors ([`auth::Caller`]/[`auth::Admin`], [`json::ApiJson`], the CSRF-checked console
//! form [`form::CsrfForm`]) and the one mapping of `Error` to a response ([`error`]). It may
//! import `services`, `store`, `domain` and the foundation; `console` and `board` import it.
//! The API routers per resource: [`areas`], [`devices`], [`media`], [`reports`], [`schedules`],
//! [`speech`], [`users`] (the others still live in the root modules; steps B–D move them here).

pub mod areas;
pub mod auth;
pub mod bulletins;
pub mod devices;
pub mod error;
pub mod form;
pub mod json;
pub mod media;
pub mod reports;
pub mod schedules;
pub mod speech;
pub mod users;
