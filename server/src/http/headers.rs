//! Security headers on every response (issue 11, item 11), set once for the whole router in
//! `lib.rs` with tower-http's `SetResponseHeader` layers: `X-Content-Type-Options: nosniff`,
//! `X-Frame-Options: DENY`, `Referrer-Policy: same-origin`, `Cache-Control: no-store` unless the
//! handler chose its own caching (media by hash, board assets, the console's static files), and
//! a Content-Security-Policy unless the handler set one (the board's kiosk page does). The
//! console's pages get the strict [`CONSOLE_CSP`] (no inline script or style at all: the console
//! has none); everything else the [`DEFAULT_CSP`] (Swagger UI styles itself inline).

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;

/// The console's policy: only its own scripts, styles, images, audio and fetches; no framing.
pub const CONSOLE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     media-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Every other response's policy (the API's JSON, Swagger UI at `/api/docs`).
pub const DEFAULT_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The console's strict CSP, replacing the default on its pages.
pub fn console_csp() -> SetResponseHeaderLayer<HeaderValue> {
    // A page may set its own (stricter or with the map's tile host); every other gets this one.
    SetResponseHeaderLayer::if_not_present(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONSOLE_CSP),
    )
}

/// `router` with the security headers on every response.
pub fn secure<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    let if_absent = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    router
        .layer(if_absent(header::CONTENT_SECURITY_POLICY, DEFAULT_CSP))
        .layer(if_absent(header::CACHE_CONTROL, "no-store"))
        .layer(if_absent(header::REFERRER_POLICY, "same-origin"))
        .layer(if_absent(header::X_FRAME_OPTIONS, "DENY"))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}
