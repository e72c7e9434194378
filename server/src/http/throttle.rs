//! The client's address and the API's per-address budget (issue 11, item 13). [`ClientIp`] is
//! the TCP peer, or behind a configured trusted proxy the address it forwarded
//! (`domain::throttle::client_ip`: `X-Forwarded-For` is believed only from `trusted_proxies`).
//! [`api_limit`], applied once to the whole router in `lib.rs`, answers 429
//! `too_many_requests` (with `Retry-After`) to an address past `api_per_ip_per_minute` on
//! `/api/v1/`; board feeds are not counted (boards authenticate per board and may share a
//! carrier's address), nor are `/media/` files, `/healthz` or the console's pages.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::domain::throttle::client_ip;
use crate::error::Error;
use crate::services::AppState;

/// The client's address as the throttles see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

fn address(extensions: &axum::http::Extensions, headers: &HeaderMap, state: &AppState) -> IpAddr {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    client_ip(peer, forwarded, &state.settings.trusted_proxies)
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(address(&parts.extensions, &parts.headers, state)))
    }
}

/// The API's per-address budget (see the module header).
pub async fn api_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path.starts_with("/api/v1/") && !path.starts_with("/api/v1/boards/") {
        let ip = address(req.extensions(), req.headers(), &state);
        if let Err(l) = state.limits.allow_api(ip) {
            return too_many(l.retry_after_secs);
        }
    }
    next.run(req).await
}

/// 429 `too_many_requests` with `Retry-After`.
pub fn too_many(retry_after_secs: u64) -> Response {
    let mut r = Error::TooManyRequests(format!(
        "too many requests from your address; retry in {retry_after_secs} s"
    ))
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}
