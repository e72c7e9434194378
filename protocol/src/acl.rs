//! Who may use which topic, and how large each message may be: the one table behind both broker
//! set-ups. nguon-server's MQTT gate (in front of the embedded broker) checks every device's
//! PUBLISH and SUBSCRIBE with [`may_publish`] and [`may_subscribe`]; `nguon-provision` writes
//! Mosquitto's `acl_file` from [`DEVICE_RULES`] and its `max_packet_size` from [`MAX_PACKET`].
//! Pure data and functions, no I/O.
//!
//! A device (username = client id = device id) reads its own `desired`, `cmd` and `receipt`
//! topics and the `cmd` topic of each area it belongs to (its area and the area's ancestors), and
//! writes only its own `state`, `telemetry` and `events` topics. Subscriptions are exact topic
//! names: a filter with a wildcard is refused, since every topic a device needs has a fixed name.
//! The server's own user may do anything.

use crate::ids::{AreaCode, DeviceId};
use crate::topic::{PREFIX, Topic};

/// What a device may do on a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Subscribe and receive.
    Read,
    /// Publish.
    Write,
}

/// One kind of per-device topic (`nguon/v1/d/{device}/{leaf}`): who may use it and how large one
/// message on it may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The last topic level.
    pub leaf: &'static str,
    /// What the device itself may do on its own topic of this kind.
    pub access: Access,
    /// The largest payload, in bytes.
    pub max_payload: usize,
}

/// The largest MQTT packet anyone sends: the agent's incoming packet limit (4 MiB). The
/// Mosquitto `max_packet_size` and the server link's incoming limit are this value.
pub const MAX_PACKET: usize = 4 << 20;

/// Room left in a packet for the fixed header, topic and packet id.
const HEADER_ROOM: usize = 1024;

/// The largest signed manifest (`desired`): what fits in one [`MAX_PACKET`].
pub const MAX_DESIRED: usize = MAX_PACKET - HEADER_ROOM;
/// The largest signed command (`cmd`, for a device or an area).
pub const MAX_CMD: usize = 256 * 1024;
/// The largest signed receipt.
pub const MAX_RECEIPT: usize = 64 * 1024;
/// The largest state message (online/offline with a session counter, signed: under 1 KiB).
pub const MAX_STATE: usize = 8 * 1024;
/// The largest telemetry message (heartbeat, signed: under 2 KiB).
pub const MAX_TELEMETRY: usize = 32 * 1024;
/// The largest event batch (at most 50 events of well under 1 KiB each, signed: under 64 KiB).
pub const MAX_EVENTS: usize = 256 * 1024;

/// The per-device topics.
pub const DEVICE_RULES: [Rule; 6] = [
    Rule {
        leaf: "desired",
        access: Access::Read,
        max_payload: MAX_DESIRED,
    },
    Rule {
        leaf: "cmd",
        access: Access::Read,
        max_payload: MAX_CMD,
    },
    Rule {
        leaf: "receipt",
        access: Access::Read,
        max_payload: MAX_RECEIPT,
    },
    Rule {
        leaf: "state",
        access: Access::Write,
        max_payload: MAX_STATE,
    },
    Rule {
        leaf: "telemetry",
        access: Access::Write,
        max_payload: MAX_TELEMETRY,
    },
    Rule {
        leaf: "events",
        access: Access::Write,
        max_payload: MAX_EVENTS,
    },
];

/// The largest packet a device may send: its largest writable payload plus header room. A
/// device's connection to the gate refuses any larger packet before reading it.
pub const MAX_DEVICE_PACKET: usize = MAX_EVENTS + HEADER_ROOM;

/// The largest payload allowed on `topic`, whoever publishes it.
pub fn max_payload(topic: &Topic) -> usize {
    match topic {
        Topic::AreaCmd(_) => MAX_CMD,
        Topic::Desired(_) => MAX_DESIRED,
        Topic::Cmd(_) => MAX_CMD,
        Topic::Receipt(_) => MAX_RECEIPT,
        Topic::State(_) => MAX_STATE,
        Topic::Telemetry(_) => MAX_TELEMETRY,
        Topic::Events(_) => MAX_EVENTS,
    }
}

/// The rule of a per-device topic kind, by its leaf.
pub fn rule(leaf: &str) -> Option<&'static Rule> {
    DEVICE_RULES.iter().find(|r| r.leaf == leaf)
}

fn device_topic(topic: &Topic) -> Option<(&DeviceId, &'static str)> {
    Some(match topic {
        Topic::Desired(d) => (d, "desired"),
        Topic::Cmd(d) => (d, "cmd"),
        Topic::Receipt(d) => (d, "receipt"),
        Topic::State(d) => (d, "state"),
        Topic::Telemetry(d) => (d, "telemetry"),
        Topic::Events(d) => (d, "events"),
        Topic::AreaCmd(_) => return None,
    })
}

/// Whether `device` may publish on `topic`; `Some(limit)` with the topic's payload limit when it
/// may.
pub fn may_publish(device: &DeviceId, topic: &str) -> Option<usize> {
    let t = Topic::parse(topic)?;
    let (owner, leaf) = device_topic(&t)?;
    let r = rule(leaf)?;
    (owner == device && r.access == Access::Write).then_some(r.max_payload)
}

/// Whether `device`, a member of `areas` (its area and the area's ancestors), may subscribe to
/// `filter`.
pub fn may_subscribe(device: &DeviceId, areas: &[AreaCode], filter: &str) -> bool {
    if filter.contains(['+', '#']) {
        return false;
    }
    match Topic::parse(filter) {
        Some(Topic::AreaCmd(a)) => areas.contains(&a),
        Some(t) => match device_topic(&t) {
            Some((owner, leaf)) => owner == device && rule(leaf).is_some_and(|r| r.access == Access::Read),
            None => false,
        },
        None => false,
    }
}

/// The Mosquitto `acl_file` lines every device shares (`%u` is the username = device id).
pub fn mosquitto_patterns() -> Vec<String> {
    DEVICE_RULES
        .iter()
        .map(|r| {
            let access = match r.access {
                Access::Read => "read",
                Access::Write => "write",
            };
            format!("pattern {access} {PREFIX}/d/%u/{}", r.leaf)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic;

    fn d(s: &str) -> DeviceId {
        DeviceId::parse(s).unwrap()
    }
    fn a(s: &str) -> AreaCode {
        AreaCode::parse(s).unwrap()
    }

    #[test]
    fn a_device_writes_only_its_own_reports() {
        let me = d("lc-1");
        let other = d("lc-2");
        assert_eq!(may_publish(&me, &topic::state(&me)), Some(MAX_STATE));
        assert_eq!(may_publish(&me, &topic::events(&me)), Some(MAX_EVENTS));
        assert_eq!(may_publish(&me, &topic::state(&other)), None);
        assert_eq!(may_publish(&me, &topic::desired(&me)), None);
        assert_eq!(may_publish(&me, &topic::area_cmd(&a("10"))), None);
        assert_eq!(may_publish(&me, "nguon/v1/d/lc-1/state/x"), None);
        assert_eq!(may_publish(&me, "other/topic"), None);
    }

    #[test]
    fn a_device_reads_its_own_topics_and_its_areas_only() {
        let me = d("lc-1");
        let areas = [a("10"), a("08003")];
        assert!(may_subscribe(&me, &areas, &topic::desired(&me)));
        assert!(may_subscribe(&me, &areas, &topic::receipt(&me)));
        assert!(may_subscribe(&me, &areas, &topic::area_cmd(&a("08003"))));
        assert!(!may_subscribe(&me, &areas, &topic::area_cmd(&a("08020"))));
        assert!(!may_subscribe(&me, &areas, &topic::desired(&d("lc-2"))));
        assert!(!may_subscribe(&me, &areas, &topic::state(&me)));
        for wild in ["#", "nguon/v1/d/+/desired", "nguon/v1/d/lc-1/#", "nguon/#"] {
            assert!(!may_subscribe(&me, &areas, wild), "{wild}");
        }
    }

    #[test]
    fn every_device_packet_fits_the_broker_packet() {
        assert!(DEVICE_RULES.iter().all(|r| r.max_payload < MAX_PACKET));
        let writable = DEVICE_RULES.iter().filter(|r| r.access == Access::Write);
        assert!(writable.map(|r| r.max_payload).max().unwrap() < MAX_DEVICE_PACKET);
    }
}
