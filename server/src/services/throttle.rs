//! The throttles of one server (issue 11, item 13), kept in `AppState` (nothing process-global):
//! per client address on the login form and on the API, a global budget of login attempts, and
//! a cap on concurrent argon2 checks. The buckets are `domain::throttle`'s; the HTTP layer asks
//! [`Limits::allow_api`] for every `/api/v1/` request (boards excepted: they authenticate per
//! board and may share a carrier's address), and the login use case asks
//! [`Limits::allow_login`] before it looks at the password. Spraying many usernames from one
//! address is stopped by the per-address budget; the per-(username, address) lock of
//! `services::auth` still cannot be triggered against a user from another address.

use std::net::IpAddr;
use std::sync::Mutex;

use tokio::sync::Semaphore;

use crate::config::Settings;
use crate::domain::throttle::{Keyed, Rate};
use crate::store::now_ms;

/// The key of the one global login budget.
const ALL: &str = "*";

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// Seconds until a retry can succeed (`Retry-After`).
    pub retry_after_secs: u64,
}

/// The throttles of one server.
#[derive(Debug)]
pub struct Limits {
    login_ip: Mutex<Keyed>,
    login_all: Mutex<Keyed>,
    api_ip: Mutex<Keyed>,
    feedback_ip: Mutex<Keyed>,
    /// Concurrent argon2 checks (one per core): a flood of logins queues here instead of
    /// taking every core from the other requests.
    pub argon2: Semaphore,
}

fn take(k: &Mutex<Keyed>, key: &str, now: i64) -> Result<(), Limited> {
    let mut k = k.lock().unwrap_or_else(|e| e.into_inner());
    if k.allow(key, now) {
        Ok(())
    } else {
        Err(Limited {
            retry_after_secs: k.retry_after_secs(key, now),
        })
    }
}

impl Limits {
    /// The throttles configured in `s`.
    pub fn new(s: &Settings) -> Limits {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Limits {
            login_ip: Mutex::new(Keyed::new(Rate {
                per_minute: s.login_per_ip_per_minute,
            })),
            login_all: Mutex::new(Keyed::new(Rate {
                per_minute: s.login_per_minute,
            })),
            api_ip: Mutex::new(Keyed::new(Rate {
                per_minute: s.api_per_ip_per_minute,
            })),
            feedback_ip: Mutex::new(Keyed::new(Rate {
                per_minute: s.feedback.per_ip_per_minute,
            })),
            argon2: Semaphore::new(cores),
        }
    }

    /// A login attempt from `ip`: within its address's budget and the global one.
    pub fn allow_login(&self, ip: IpAddr) -> Result<(), Limited> {
        let now = now_ms();
        take(&self.login_ip, &ip.to_string(), now)?;
        take(&self.login_all, ALL, now)
    }

    /// A citizen's feedback from `ip` (the public form and `POST /api/v1/feedback`; issue 15).
    pub fn allow_feedback(&self, ip: IpAddr) -> Result<(), Limited> {
        take(&self.feedback_ip, &ip.to_string(), now_ms())
    }

    /// An API request from `ip`.
    pub fn allow_api(&self, ip: IpAddr) -> Result<(), Limited> {
        take(&self.api_ip, &ip.to_string(), now_ms())
    }
}
