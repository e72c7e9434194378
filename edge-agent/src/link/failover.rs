//! Which broker the next connection attempt goes to, when the agent has several (`mqtt.urls`, the
//! nodes of a broker cluster): the first of the list, then, after each failed attempt or lost
//! connection, the next one, round the list. A lost connection moves on at once: the node that
//! dropped it (killed, restarted, cut off) is the likeliest to fail again, and a cluster's other
//! nodes hold the same retained manifests and route the same topics. The wait before each attempt
//! is still [`super::backoff`]'s, so a fleet whose brokers are all down does not spin.

/// A cursor over `n` brokers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    current: usize,
    n: usize,
}

impl Rotation {
    /// Start at the first of `n` brokers (`n` ≥ 1; 0 is taken as 1).
    pub fn new(n: usize) -> Self {
        Self {
            current: 0,
            n: n.max(1),
        }
    }

    /// The broker of the next attempt.
    pub fn current(&self) -> usize {
        self.current
    }

    /// An attempt failed or a connection was lost: move to the next broker; returns it.
    pub fn after_failure(&mut self) -> usize {
        self.current = (self.current + 1) % self.n;
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_walk_round_the_list_and_one_broker_stays_put() {
        let mut r = Rotation::new(3);
        assert_eq!(r.current(), 0);
        let seen: Vec<usize> = (0..5).map(|_| r.after_failure()).collect();
        assert_eq!(seen, [1, 2, 0, 1, 2]);
        let mut one = Rotation::new(1);
        assert_eq!((one.after_failure(), one.after_failure()), (0, 0));
        assert_eq!(Rotation::new(0).after_failure(), 0);
    }
}
