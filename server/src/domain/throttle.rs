//! Request throttling as pure rules (issue 11, item 13): a token bucket per key ([`Keyed`]: the
//! client's IP for the API and the login form, one shared key for the global login budget) with
//! the time passed in, and which address a request comes from ([`client_ip`]: the TCP peer, or,
//! when the peer is a configured trusted proxy, the last address in `X-Forwarded-For` that is not
//! one). `services::throttle` holds the buckets of one server; the HTTP layer asks it.

use std::collections::HashMap;
use std::net::IpAddr;

/// At most `per_minute` requests a minute, with bursts of up to `per_minute` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests a minute (also the burst).
    pub per_minute: u32,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

/// Buckets by key. A bucket starts full; each request takes one token; tokens come back at
/// `per_minute / 60` a second up to `per_minute`.
#[derive(Debug)]
pub struct Keyed {
    rate: Rate,
    buckets: HashMap<String, Bucket>,
}

/// Keys kept before full buckets are dropped (a full bucket is the same as none).
const PRUNE_AT: usize = 10_000;

impl Keyed {
    /// No bucket yet, at `rate`.
    pub fn new(rate: Rate) -> Keyed {
        Keyed {
            rate,
            buckets: HashMap::new(),
        }
    }

    /// Whether a request of `key` at `now_ms` is allowed (it takes a token if so).
    pub fn allow(&mut self, key: &str, now_ms: i64) -> bool {
        let cap = self.rate.per_minute as f64;
        let per_ms = cap / 60_000.0;
        if self.buckets.len() >= PRUNE_AT {
            self.buckets
                .retain(|_, b| b.tokens + (now_ms - b.at_ms).max(0) as f64 * per_ms < cap);
        }
        let b = self.buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: cap,
            at_ms: now_ms,
        });
        b.tokens = (b.tokens + (now_ms - b.at_ms).max(0) as f64 * per_ms).min(cap);
        b.at_ms = b.at_ms.max(now_ms);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Seconds until `key` has a token again (at least 1), for `Retry-After`.
    pub fn retry_after_secs(&self, key: &str, now_ms: i64) -> u64 {
        let per_ms = self.rate.per_minute as f64 / 60_000.0;
        let have = self
            .buckets
            .get(key)
            .map_or(1.0, |b| b.tokens + (now_ms - b.at_ms).max(0) as f64 * per_ms);
        (((1.0 - have).max(0.0) / per_ms / 1000.0).ceil() as u64).max(1)
    }
}

/// The client's address: the TCP `peer`, unless the peer is one of `trusted` (a reverse proxy
/// of this deployment); then `X-Forwarded-For` is read from the right (the proxy appends the
/// address it saw) and the first address that is not itself a trusted proxy is the client. A
/// header from an untrusted peer is ignored (anyone can send one), and an unreadable entry ends
/// the walk at the last trusted hop's view.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> IpAddr {
    let mut client = peer;
    if !trusted.contains(&client) {
        return client;
    }
    let Some(header) = forwarded_for else {
        return client;
    };
    for hop in header.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !trusted.contains(&ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let mut k = Keyed::new(Rate { per_minute: 6 });
        for _ in 0..6 {
            assert!(k.allow("a", 0));
        }
        assert!(!k.allow("a", 0), "burst spent");
        assert!(k.allow("b", 0), "another key has its own bucket");
        assert_eq!(k.retry_after_secs("a", 0), 10);
        assert!(!k.allow("a", 9_999));
        assert!(k.allow("a", 10_000), "one token every 10 s");
        assert!(!k.allow("a", 10_001));
        // A long pause refills up to the burst, not beyond.
        for _ in 0..6 {
            assert!(k.allow("a", 10_000_000));
        }
        assert!(!k.allow("a", 10_000_000));
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let proxy = ip("10.0.0.1");
        let h = Some("198.51.100.7, 203.0.113.9");
        assert_eq!(
            client_ip(ip("192.0.2.1"), h, &[proxy]),
            ip("192.0.2.1"),
            "not from the proxy"
        );
        assert_eq!(
            client_ip(proxy, h, &[proxy]),
            ip("203.0.113.9"),
            "the address the proxy saw"
        );
        assert_eq!(client_ip(proxy, None, &[proxy]), proxy);
        let inner = ip("10.0.0.2");
        assert_eq!(
            client_ip(proxy, Some("198.51.100.7, 10.0.0.2"), &[proxy, inner]),
            ip("198.51.100.7"),
            "two proxies"
        );
        assert_eq!(client_ip(proxy, Some("garbage"), &[proxy]), proxy);
    }
}
