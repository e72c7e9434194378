//! Broker addresses: `mqtt.url` (one broker, or one name over a cluster) or `mqtt.urls` (the
//! nodes of a broker cluster). With several, the agent connects to the first and, whenever an
//! attempt fails or a connection is lost, moves on to the next one, round the list, with the usual
//! growing wait between attempts. Provisioning can rotate the list per device so that a fleet
//! starts spread over the nodes.

use crate::MqttSection;

/// A parsed MQTT broker address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `mqtts://`
    pub tls: bool,
}

impl std::fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// Parse `mqtt://host[:port]` or `mqtts://host[:port]` (default ports 1883 and 8883).
pub fn parse_broker_url(url: &str) -> Result<BrokerUrl, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("mqtt://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("mqtts://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("tcp://") {
        (false, r)
    } else {
        return Err(format!(
            "`{url}` is not a broker URL; expected mqtt://host:port or mqtts://host:port"
        ));
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("`{p}` is not a port number"))?,
        ),
        None => (rest, if tls { 8883 } else { 1883 }),
    };
    if host.is_empty() || host.contains('/') {
        return Err(format!("`{url}` has no host"));
    }
    Ok(BrokerUrl {
        host: host.to_string(),
        port,
        tls,
    })
}

/// Parse a comma-separated list of broker URLs (what `nguon-provision --broker-url` takes).
pub fn parse_broker_list(list: &str) -> Result<Vec<String>, String> {
    let urls: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .collect();
    if urls.is_empty() {
        return Err("no broker URL".into());
    }
    for u in &urls {
        parse_broker_url(u)?;
    }
    Ok(urls)
}

/// `urls` rotated by `by` places: the list one device of a fleet starts from, so that a fleet
/// provisioned with `by` = its index (or any spread value) starts spread over the nodes.
pub fn rotated(urls: &[String], by: usize) -> Vec<String> {
    let mut v = urls.to_vec();
    if !v.is_empty() {
        let n = by % v.len();
        v.rotate_left(n);
    }
    v
}

impl MqttSection {
    /// The configured URLs in the order they are tried (`url` alone, or `urls`).
    pub fn all_urls(&self) -> impl Iterator<Item = &String> {
        self.url.iter().chain(self.urls.iter())
    }
}

/// Check `mqtt.url` / `mqtt.urls`: exactly one of them, every URL parses, TLS ones have what they
/// need, no URL twice.
pub(crate) fn validate(m: &MqttSection) -> Result<(), (&'static str, String)> {
    match (&m.url, m.urls.is_empty()) {
        (None, true) => return Err(("mqtt.url", "set `url` (one broker) or `urls` (several)".into())),
        (Some(_), false) => {
            return Err((
                "mqtt.urls",
                "set only one of `url` and `urls` (put every broker in `urls`)".into(),
            ));
        }
        _ => {}
    }
    if let Some(u) = &m.url {
        parse_broker_url(u).map_err(|e| ("mqtt.url", e))?;
    }
    let mut seen = Vec::new();
    for (i, u) in m.urls.iter().enumerate() {
        let b = parse_broker_url(u).map_err(|e| ("mqtt.urls", format!("entry {}: {e}", i + 1)))?;
        if seen.contains(&b) {
            return Err(("mqtt.urls", format!("entry {}: `{u}` is listed twice", i + 1)));
        }
        seen.push(b);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(url: Option<&str>, urls: &[&str]) -> MqttSection {
        MqttSection {
            url: url.map(str::to_string),
            urls: urls.iter().map(|u| u.to_string()).collect(),
            username: "u".into(),
            password: Some("p".into()),
            password_file: None,
            ca_file: None,
            keep_alive_secs: 30,
            reconnect_max_unreachable_secs: 10,
            subscribe_qos: 1,
        }
    }

    #[test]
    fn one_of_url_and_urls_every_entry_valid_and_distinct() {
        assert!(validate(&section(Some("mqtt://a:1883"), &[])).is_ok());
        assert!(validate(&section(None, &["mqtt://a:1883", "mqtts://b"])).is_ok());
        assert_eq!(validate(&section(None, &[])).unwrap_err().0, "mqtt.url");
        assert_eq!(
            validate(&section(Some("http://a"), &[])).unwrap_err().0,
            "mqtt.url"
        );
        let both = validate(&section(Some("mqtt://a"), &["mqtt://b"])).unwrap_err();
        assert_eq!(both.0, "mqtt.urls");
        let bad = validate(&section(None, &["mqtt://a", "ftp://b"])).unwrap_err();
        assert_eq!(bad.0, "mqtt.urls");
        assert!(bad.1.starts_with("entry 2:"), "{}", bad.1);
        let twice = validate(&section(None, &["mqtt://a", "mqtt://a:1883"])).unwrap_err();
        assert!(twice.1.contains("twice"), "{}", twice.1);
    }

    #[test]
    fn lists_parse_from_commas_and_rotate() {
        let l = parse_broker_list(" mqtt://a:1, mqtt://b:2 ,mqtt://c:3").unwrap();
        assert_eq!(l, ["mqtt://a:1", "mqtt://b:2", "mqtt://c:3"]);
        assert!(parse_broker_list(" , ").is_err());
        assert!(parse_broker_list("mqtt://a,http://b").is_err());
        assert_eq!(rotated(&l, 4), ["mqtt://b:2", "mqtt://c:3", "mqtt://a:1"]);
        assert_eq!(rotated(&l, 3), l);
        assert!(rotated(&[], 2).is_empty());
        assert_eq!(
            parse_broker_url("mqtts://h").unwrap().to_string(),
            "mqtts://h:8883"
        );
    }
}
