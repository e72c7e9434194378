//! Time: the device clock (optionally offset, to simulate a wrong clock), conversion of wall-clock
//! instants into timer deadlines, and the estimate of the offset against the server from
//! `GET {base_url}/healthz` (`X-Server-Time-Ms` when present, else the 1 s `Date` header taken at
//! its midpoint), corrected by half the round trip.

use chrono::{DateTime, Duration, Utc};

use crate::error::AgentError;

/// Offsets above this are logged as warnings and flagged in telemetry.
pub const OFFSET_WARN_MS: i64 = 500;

/// The device clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    offset: Duration,
}

impl Clock {
    /// A clock that reads the system time plus `offset` (zero for a real device).
    pub fn new(offset: Duration) -> Self {
        Self { offset }
    }
    /// Current device time.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }
    /// The monotonic instant at which the device clock will read `t` (now if `t` has passed).
    pub fn instant_at(&self, t: DateTime<Utc>) -> std::time::Instant {
        let now_i = std::time::Instant::now();
        let d = t - self.now();
        match d.to_std() {
            Ok(d) => now_i + d,
            Err(_) => now_i,
        }
    }
}

/// One estimate of the device clock against the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEstimate {
    /// Device − server, milliseconds.
    pub offset_ms: i64,
    /// Round trip of the request, milliseconds.
    pub rtt_ms: i64,
    /// Uncertainty: ±(rtt/2), plus ±500 ms when only the `Date` header was available.
    pub uncertainty_ms: i64,
}

/// Estimate the offset with one request to `{base_url}/healthz`.
pub async fn estimate_offset(
    http: &reqwest::Client,
    base_url: &str,
    clock: &Clock,
) -> Result<OffsetEstimate, AgentError> {
    let url = format!("{}/healthz", base_url.trim_end_matches('/'));
    let t0 = clock.now();
    let resp = http
        .get(&url)
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await?;
    let t1 = clock.now();
    let rtt = t1 - t0;
    let mid = t0 + rtt / 2;
    let headers = resp.headers();
    let (server, extra) = if let Some(ms) = headers
        .get("x-server-time-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<i64>().ok())
    {
        (DateTime::<Utc>::from_timestamp_millis(ms), 0)
    } else if let Some(date) = headers
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| DateTime::parse_from_rfc2822(s).ok())
    {
        // `Date` truncates to the second: the true server time is uniformly somewhere in
        // [date, date + 1 s), so the midpoint estimate is date + 500 ms (±500 ms).
        (Some(date.with_timezone(&Utc) + Duration::milliseconds(500)), 500)
    } else {
        (None, 0)
    };
    let server =
        server.ok_or_else(|| AgentError::Setup(format!("{url}: no X-Server-Time-Ms or Date header")))?;
    Ok(OffsetEstimate {
        offset_ms: (mid - server).num_milliseconds(),
        rtt_ms: rtt.num_milliseconds(),
        uncertainty_ms: rtt.num_milliseconds() / 2 + extra,
    })
}
