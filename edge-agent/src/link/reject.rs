//! How many rejected server messages the link reports per minute (the rest are counted and
//! logged).

use std::time::{Duration, Instant};

/// Rejections reported to the server per minute; the rest are only counted and logged, so a flood
/// of garbage on the device's topics cannot fill the outbox (and the disk) with reports of it.
pub const REJECTED_PER_MINUTE: u32 = 20;

/// The per-minute allowance of `rejected` events.
#[derive(Debug)]
pub(super) struct RejectBudget {
    since: Instant,
    used: u32,
    suppressed: u64,
}

impl RejectBudget {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            since: now,
            used: 0,
            suppressed: 0,
        }
    }

    /// Whether one more rejection may be reported at `now`; when a new minute starts, the number
    /// suppressed in the last one (to log).
    pub(super) fn take(&mut self, now: Instant) -> (bool, Option<u64>) {
        let mut ended = None;
        if now.duration_since(self.since) >= Duration::from_secs(60) {
            if self.suppressed > 0 {
                ended = Some(self.suppressed);
            }
            *self = Self::new(now);
        }
        if self.used < REJECTED_PER_MINUTE {
            self.used += 1;
            (true, ended)
        } else {
            self.suppressed += 1;
            (false, ended)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_twenty_rejections_a_minute_are_reported_and_the_rest_counted() {
        let t0 = Instant::now();
        let mut b = RejectBudget::new(t0);
        let reported = (0..100).filter(|_| b.take(t0).0).count();
        assert_eq!(reported, REJECTED_PER_MINUTE as usize);
        let (ok, suppressed) = b.take(t0 + Duration::from_secs(61));
        assert!(ok, "a new minute");
        assert_eq!(suppressed, Some(80));
    }
}
