//! MQTT topic names under `nguon/v1`. Every topic the system uses is built or parsed here.

use crate::ids::{AreaCode, DeviceId};

/// The prefix of every topic.
pub const PREFIX: &str = "nguon/v1";

/// Server → device, QoS 1, retained: the signed desired manifest.
pub fn desired(device: &DeviceId) -> String {
    format!("{PREFIX}/d/{device}/desired")
}
/// Server → device, QoS 1: signed immediate commands for one device.
pub fn cmd(device: &DeviceId) -> String {
    format!("{PREFIX}/d/{device}/cmd")
}
/// Server → devices, QoS 1: signed immediate commands for every device in an area (fan-out by the broker).
pub fn area_cmd(area: &AreaCode) -> String {
    format!("{PREFIX}/a/{area}/cmd")
}
/// Server → device, QoS 1: signed receipts for the device's events the server has stored. The
/// agent keeps every event in its outbox until a receipt names it (a broker PUBACK is not enough:
/// a broker drops what it cannot queue for an absent or slow server).
pub fn receipt(device: &DeviceId) -> String {
    format!("{PREFIX}/d/{device}/receipt")
}
/// Device → server, QoS 1, retained: online/offline with a session counter (the last will sets offline).
pub fn state(device: &DeviceId) -> String {
    format!("{PREFIX}/d/{device}/state")
}
/// Device → server, QoS 0 or 1: heartbeat telemetry.
pub fn telemetry(device: &DeviceId) -> String {
    format!("{PREFIX}/d/{device}/telemetry")
}
/// Device → server, QoS 1: batches of events (proof of play, acks, rejected messages).
pub fn events(device: &DeviceId) -> String {
    format!("{PREFIX}/d/{device}/events")
}

/// Subscription filters the server uses to ingest everything devices send.
pub const SERVER_SUBSCRIPTIONS: [&str; 3] = [
    "nguon/v1/d/+/state",
    "nguon/v1/d/+/telemetry",
    "nguon/v1/d/+/events",
];

/// A parsed topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic {
    /// `d/{device}/desired`
    Desired(DeviceId),
    /// `d/{device}/cmd`
    Cmd(DeviceId),
    /// `a/{area}/cmd`
    AreaCmd(AreaCode),
    /// `d/{device}/receipt`
    Receipt(DeviceId),
    /// `d/{device}/state`
    State(DeviceId),
    /// `d/{device}/telemetry`
    Telemetry(DeviceId),
    /// `d/{device}/events`
    Events(DeviceId),
}

impl Topic {
    /// Parse a topic name; `None` for anything that is not a well-formed nguon/v1 topic.
    pub fn parse(topic: &str) -> Option<Topic> {
        let rest = topic.strip_prefix(PREFIX)?.strip_prefix('/')?;
        let mut parts = rest.split('/');
        let scope = parts.next()?;
        let id = parts.next()?;
        let leaf = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        match scope {
            "d" => {
                let d = DeviceId::parse(id).ok()?;
                Some(match leaf {
                    "desired" => Topic::Desired(d),
                    "cmd" => Topic::Cmd(d),
                    "receipt" => Topic::Receipt(d),
                    "state" => Topic::State(d),
                    "telemetry" => Topic::Telemetry(d),
                    "events" => Topic::Events(d),
                    _ => return None,
                })
            }
            "a" if leaf == "cmd" => Some(Topic::AreaCmd(AreaCode::parse(id).ok()?)),
            _ => None,
        }
    }

    /// The topic name.
    pub fn name(&self) -> String {
        match self {
            Topic::Desired(d) => desired(d),
            Topic::Cmd(d) => cmd(d),
            Topic::AreaCmd(a) => area_cmd(a),
            Topic::Receipt(d) => receipt(d),
            Topic::State(d) => state(d),
            Topic::Telemetry(d) => telemetry(d),
            Topic::Events(d) => events(d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip() {
        let d = DeviceId::parse("lc-1").unwrap();
        let a = AreaCode::parse("08003").unwrap();
        for t in [
            Topic::Desired(d.clone()),
            Topic::Cmd(d.clone()),
            Topic::Receipt(d.clone()),
            Topic::AreaCmd(a),
            Topic::State(d.clone()),
            Topic::Telemetry(d.clone()),
            Topic::Events(d),
        ] {
            assert_eq!(Topic::parse(&t.name()), Some(t));
        }
        assert_eq!(Topic::parse("nguon/v1/d/x/other"), None);
        assert_eq!(Topic::parse("nguon/v1/d/x/state/extra"), None);
        assert_eq!(Topic::parse("nguon/v2/d/x/state"), None);
    }
}
