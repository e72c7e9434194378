//! How long the link waits before its next connection attempt, and why.
//!
//! Two cases are told apart by how an attempt ended:
//! - **Unreachable**: the broker could not be reached at the TCP level (connection refused, timed
//!   out, host or network unreachable, name not resolved) before any CONNACK. Nothing was accepted,
//!   so nothing can be wrong with the session: the wait is capped at `mqtt.reconnect_max_unreachable_secs`
//!   (10 s by default), and a restored network is used within that (an emergency issued during a
//!   cut plays seconds after the link is back, not a minute).
//! - **Session broke**: the broker accepted the connection and then it ended (after CONNACK, or an
//!   end of stream, refusal or TLS failure during the handshake). This is the case of issue 11: a
//!   retained message too large to read is delivered on every subscribe and breaks every session,
//!   so the wait keeps growing to [`BACKOFF_MAX`] (60 s).
//!
//! Both use the same attempt counter, which only a connection that held for `STABLE_AFTER` resets,
//! so a broker that breaks sessions keeps its long waits even if it is unreachable in between.
//! The wait is random in [½·b, b] (b = 0.5 s · 2^attempt, capped), so a province of agents spreads
//! its reconnects.

use std::io::ErrorKind;
use std::time::Duration;

use rand::Rng;
use rumqttc::ConnectionError;

/// The first wait's ceiling (attempt 0).
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// The longest wait after a session that the broker accepted and then broke.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The default longest wait while the broker is unreachable (`mqtt.reconnect_max_unreachable_secs`).
pub const UNREACHABLE_MAX_DEFAULT: Duration = Duration::from_secs(10);

/// How a connection attempt ended, for the next wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Nothing answered at the TCP level (refused, timed out, unreachable, name not resolved).
    Unreachable,
    /// The broker accepted the connection and then it ended.
    SessionBroke,
}

impl Failure {
    /// How an attempt ended with `e`; `acked` tells whether a CONNACK had been received.
    pub fn of(e: &ConnectionError, acked: bool) -> Failure {
        if acked {
            return Failure::SessionBroke;
        }
        match e {
            // rumqttc's connect timeout (5 s) covers the TCP connect, which is what times out
            // when packets to the broker are dropped (the OS would wait minutes).
            ConnectionError::NetworkTimeout => Failure::Unreachable,
            ConnectionError::Io(io) if io_unreachable(io) => Failure::Unreachable,
            _ => Failure::SessionBroke,
        }
    }
}

/// Whether a connect error means that no broker answered at the TCP level.
fn io_unreachable(e: &std::io::Error) -> bool {
    match e.kind() {
        ErrorKind::ConnectionRefused
        | ErrorKind::TimedOut
        | ErrorKind::HostUnreachable
        | ErrorKind::NetworkUnreachable
        | ErrorKind::NetworkDown
        | ErrorKind::AddrNotAvailable => true,
        // A failed name lookup (getaddrinfo) has no stable kind: std says "failed to lookup
        // address information", rumqttc "could not resolve to any address" for an empty answer.
        _ => {
            let s = e.to_string();
            s.contains("failed to lookup address") || s.contains("could not resolve to any address")
        }
    }
}

/// The longest wait for a failure of this kind.
pub fn cap(failure: Failure, unreachable_max: Duration) -> Duration {
    match failure {
        Failure::Unreachable => unreachable_max.min(BACKOFF_MAX),
        Failure::SessionBroke => BACKOFF_MAX,
    }
}

/// Wait before retry `attempt` (0-based): random between half and all of 0.5 s · 2^attempt,
/// capped at `cap`.
pub fn backoff(attempt: u32, cap: Duration) -> Duration {
    let base = BACKOFF_MIN.saturating_mul(1u32 << attempt.min(10)).min(cap);
    let half = base / 2;
    half + rand::rng().random_range(Duration::ZERO..=half)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::io;

    #[test]
    fn the_backoff_grows_from_a_quarter_second_to_a_minute_after_broken_sessions() {
        for attempt in 0..12 {
            let base = Duration::from_millis(500 << attempt.min(10)).min(Duration::from_secs(60));
            let w = backoff(attempt, cap(Failure::SessionBroke, UNREACHABLE_MAX_DEFAULT));
            assert!(w >= base / 2 && w <= base, "attempt {attempt}: {w:?}");
        }
    }

    #[test]
    fn while_unreachable_the_wait_stays_within_the_cap_and_keeps_its_jitter() {
        let c = cap(Failure::Unreachable, UNREACHABLE_MAX_DEFAULT);
        assert_eq!(c, Duration::from_secs(10));
        let waits: Vec<Duration> = (0..200).map(|i| backoff(20 + i % 5, c)).collect();
        assert!(waits.iter().all(|w| *w >= c / 2 && *w <= c), "{waits:?}");
        let distinct: HashSet<_> = waits.iter().collect();
        assert!(
            distinct.len() > 100,
            "jittered: {} distinct waits",
            distinct.len()
        );
        // A cap above the protective ceiling is clamped to it.
        assert_eq!(cap(Failure::Unreachable, Duration::from_secs(600)), BACKOFF_MAX);
    }

    #[test]
    fn refused_timed_out_and_unresolved_are_unreachable_an_accepted_connection_is_not() {
        let io = |k| ConnectionError::Io(io::Error::from(k));
        for k in [
            io::ErrorKind::ConnectionRefused,
            io::ErrorKind::TimedOut,
            io::ErrorKind::HostUnreachable,
            io::ErrorKind::NetworkUnreachable,
            io::ErrorKind::NetworkDown,
        ] {
            assert_eq!(Failure::of(&io(k), false), Failure::Unreachable, "{k:?}");
            // The same error after a CONNACK: the session broke.
            assert_eq!(Failure::of(&io(k), true), Failure::SessionBroke, "{k:?}");
        }
        assert_eq!(
            Failure::of(&ConnectionError::NetworkTimeout, false),
            Failure::Unreachable
        );
        let dns = ConnectionError::Io(io::Error::other(
            "failed to lookup address information: Name or service not known",
        ));
        assert_eq!(Failure::of(&dns, false), Failure::Unreachable);
        // Accepted, then the stream ended or was reset, or the broker refused the session.
        for e in [
            ConnectionError::MqttState(rumqttc::StateError::ConnectionAborted),
            io(io::ErrorKind::ConnectionReset),
            io(io::ErrorKind::UnexpectedEof),
            ConnectionError::ConnectionRefused(rumqttc::ConnectReturnCode::NotAuthorized),
        ] {
            assert_eq!(Failure::of(&e, false), Failure::SessionBroke, "{e}");
        }
        // Over the packet limit (issue 11): always after CONNACK.
        assert_eq!(
            Failure::of(
                &ConnectionError::MqttState(rumqttc::StateError::Deserialization(
                    rumqttc::mqttbytes::Error::PayloadSizeLimitExceeded(5 << 20)
                )),
                true
            ),
            Failure::SessionBroke
        );
    }
}
