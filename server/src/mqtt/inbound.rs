//! The parser of device traffic: what arrives on `d/{id}/state` (retained presence),
//! `d/{id}/telemetry` (heartbeats) and `d/{id}/events` (signed event batches: proof of play, acks,
//! rejections, media errors) becomes the rows `store::ingest` writes. Pure: [`decode`] is given
//! each device's key ([`DevKey`]) and touches neither the database nor the network; the ingest
//! worker (`workers::ingest`) loads the keys, counts and logs the refusals, stores and sends the
//! receipts.
//!
//! A device that has a `public_key` must sign its batches with it; unsigned or badly signed
//! batches are refused. So are malformed payloads (bad JSON, wrong shape), unknown devices and a
//! body that names another device than its topic; nothing a device sends stops ingest.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use ed25519_dalek::VerifyingKey;
use nguon_protocol::topic::Topic;
use nguon_protocol::{
    DeviceId, DeviceState, EventBatch, EventBody, SignError, Signed, Telemetry, verifying_key_from_b64,
};

use crate::domain::presence::Presence;
use crate::mqtt::link::Incoming;
use crate::store::ingest::{Burst, DeviceEvent, Heartbeat, Play};

/// How a device's reports are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevKey {
    /// The device has no key: reports may be unsigned.
    None,
    /// Reports must verify against this key.
    Key(VerifyingKey),
    /// A key is registered but unreadable: every report is refused.
    Broken,
}

impl DevKey {
    /// The key of a device from its stored `public_key` (blank: none). An unreadable key is
    /// [`DevKey::Broken`], with the reason.
    pub fn from_stored(public_key: Option<&str>) -> (DevKey, Option<SignError>) {
        match public_key.map(str::trim).filter(|s| !s.is_empty()) {
            None => (DevKey::None, None),
            Some(b64) => match verifying_key_from_b64(b64) {
                Ok(k) => (DevKey::Key(k), None),
                Err(e) => (DevKey::Broken, Some(e)),
            },
        }
    }
}

/// A payload refused, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The topic it came on.
    pub topic: String,
    /// Why.
    pub reason: Cow<'static, str>,
    /// Refused for its signature (unsigned or badly signed from a device that has a key).
    pub bad_signature: bool,
}

/// What one burst of messages decodes to.
#[derive(Debug, Default)]
pub struct Decoded {
    /// The rows to store.
    pub burst: Burst,
    /// Every event of every accepted batch, per device: receipted once the burst is stored.
    pub receipts: HashMap<DeviceId, Vec<uuid::Uuid>>,
    /// Events sent twice within the burst (kept once).
    pub in_burst_duplicates: u64,
    /// Payloads refused.
    pub refused: Vec<Refusal>,
}

impl Decoded {
    fn refuse(&mut self, topic: &str, reason: impl Into<Cow<'static, str>>) {
        self.refused.push(Refusal {
            topic: topic.to_string(),
            reason: reason.into(),
            bad_signature: false,
        });
    }
}

/// The device a device → server topic belongs to (`None` for any other topic).
fn device_topic(topic: &str) -> Option<(Topic, DeviceId)> {
    match Topic::parse(topic)? {
        Topic::State(d) => Some((Topic::State(d.clone()), d)),
        Topic::Telemetry(d) => Some((Topic::Telemetry(d.clone()), d)),
        Topic::Events(d) => Some((Topic::Events(d.clone()), d)),
        _ => None,
    }
}

/// The ids of the devices whose keys [`decode`] needs for `msgs`.
pub fn devices_of(msgs: &[Incoming]) -> HashSet<String> {
    msgs.iter()
        .filter_map(|m| device_topic(&m.topic))
        .map(|(_, d)| d.as_str().to_string())
        .collect()
}

fn ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

/// Decode one burst. `key_of` gives each device's key, `None` for an id that is no device.
pub fn decode<'k>(msgs: Vec<Incoming>, key_of: impl Fn(&str) -> Option<&'k DevKey>) -> Decoded {
    let mut out = Decoded::default();
    let mut seen: HashSet<uuid::Uuid> = HashSet::new();
    for m in msgs {
        let Some((topic, dev)) = device_topic(&m.topic) else {
            out.refuse(&m.topic, "not a device → server topic");
            continue;
        };
        let device = dev.as_str().to_string();
        let Some(key) = key_of(&device) else {
            out.refuse(&m.topic, "unknown device");
            continue;
        };
        match topic {
            Topic::State(_) => {
                if m.payload.is_empty() {
                    continue; // a cleared retained message
                }
                match serde_json::from_slice::<DeviceState>(&m.payload) {
                    Ok(s) if s.device == dev => out.burst.states.push(Presence {
                        device,
                        online: s.online,
                        session: s.session.min(i64::MAX as u64) as i64,
                        at: ms(s.at),
                        retained: m.retain,
                    }),
                    Ok(_) => out.refuse(&m.topic, "state names another device"),
                    Err(_) => out.refuse(&m.topic, "state is not a DeviceState"),
                }
            }
            Topic::Telemetry(_) => match serde_json::from_slice::<Telemetry>(&m.payload) {
                Ok(t) if t.device == dev => {
                    let raw = String::from_utf8_lossy(&m.payload).into_owned();
                    out.burst
                        .telemetry
                        .insert(device, Heartbeat { telemetry: t, raw });
                }
                Ok(_) => out.refuse(&m.topic, "telemetry names another device"),
                Err(_) => out.refuse(&m.topic, "telemetry is not a Telemetry"),
            },
            _ => {
                let Ok(env) = Signed::from_bytes(&m.payload) else {
                    out.refuse(&m.topic, "events payload is not a signed envelope");
                    continue;
                };
                let verdict = match key {
                    DevKey::None => Ok(()),
                    DevKey::Key(k) => env.verify(k).map_err(|e| e.to_string()),
                    DevKey::Broken => Err("the registered key is unreadable".to_string()),
                };
                if let Err(e) = verdict {
                    out.refused.push(Refusal {
                        topic: m.topic.clone(),
                        reason: format!("report refused: {e} (device has a key)").into(),
                        bad_signature: true,
                    });
                    continue;
                }
                let Ok(batch) = env.parse_payload::<EventBatch>() else {
                    out.refuse(&m.topic, "events payload is not an EventBatch");
                    continue;
                };
                if batch.device != dev {
                    out.refuse(&m.topic, "batch names another device than its topic");
                    continue;
                }
                out.receipts
                    .entry(dev.clone())
                    .or_default()
                    .extend(batch.events.iter().map(|e| e.id));
                for ev in batch.events {
                    if !seen.insert(ev.id) {
                        out.in_burst_duplicates += 1;
                        continue;
                    }
                    let id = ev.id.to_string();
                    match ev.body {
                        EventBody::Play(play) => out.burst.plays.push(Play {
                            id,
                            device: device.clone(),
                            play,
                        }),
                        body => {
                            let (kind, message_id) = match &body {
                                EventBody::Ack { message_id, .. } => ("ack", Some(message_id.to_string())),
                                EventBody::Rejected { message_id, .. } => {
                                    ("rejected", message_id.map(|u| u.to_string()))
                                }
                                EventBody::MediaError { .. } => ("media_error", None),
                                EventBody::Play(_) => ("play", None),
                            };
                            out.burst.events.push(DeviceEvent {
                                id,
                                device: device.clone(),
                                kind,
                                message_id,
                                body: serde_json::to_string(&body).unwrap_or_default(),
                                at: ms(ev.at),
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use chrono::Utc;
    use nguon_protocol::{DeviceId, DeviceKey, DeviceState, Event, EventBatch, EventBody, topic};

    use super::{DevKey, Incoming, decode, devices_of};

    fn msg(topic: String, payload: Vec<u8>) -> Incoming {
        Incoming {
            topic,
            payload: Bytes::from(payload),
            retain: false,
        }
    }

    fn ack(id: uuid::Uuid) -> Event {
        Event {
            id,
            at: Utc::now(),
            body: EventBody::Ack {
                message_id: uuid::Uuid::new_v4(),
                ok: true,
                manifest_version: None,
                reason: None,
            },
        }
    }

    fn events(dev: &str, evs: Vec<Event>, key: Option<&DeviceKey>) -> Incoming {
        let d = DeviceId::parse(dev).unwrap();
        let batch = EventBatch {
            v: 1,
            device: d.clone(),
            sent_at: Utc::now(),
            events: evs,
        };
        msg(topic::events(&d), batch.seal(key).to_bytes())
    }

    #[test]
    fn keys_from_the_registry_are_none_a_key_or_broken() {
        let k = DeviceKey::generate();
        assert_eq!(DevKey::from_stored(None).0, DevKey::None);
        assert_eq!(DevKey::from_stored(Some("  ")).0, DevKey::None);
        assert_eq!(
            DevKey::from_stored(Some(&k.public_b64())).0,
            DevKey::Key(k.verifying_key())
        );
        let (broken, why) = DevKey::from_stored(Some("not base64!"));
        assert_eq!(broken, DevKey::Broken);
        assert!(why.is_some());
    }

    #[test]
    fn a_keyed_device_must_sign_and_every_accepted_event_is_receipted_once_stored_once() {
        let k = DeviceKey::generate();
        let keyed = DevKey::Key(k.verifying_key());
        let free = DevKey::None;
        let key_of = |d: &str| match d {
            "lc-keyed" => Some(&keyed),
            "lc-free" => Some(&free),
            _ => None,
        };
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let msgs = vec![
            events("lc-keyed", vec![ack(a)], Some(&k)),
            events("lc-keyed", vec![ack(b)], None),
            events("lc-free", vec![ack(b), ack(b)], None),
            events("lc-nobody", vec![ack(uuid::Uuid::new_v4())], None),
            msg("nguon/v1/d/lc-free/desired".into(), b"{}".to_vec()),
        ];
        assert_eq!(
            devices_of(&msgs),
            ["lc-keyed", "lc-free", "lc-nobody"]
                .into_iter()
                .map(String::from)
                .collect()
        );
        let d = decode(msgs, key_of);
        let reasons: Vec<(&str, bool)> = d
            .refused
            .iter()
            .map(|r| (r.reason.as_ref(), r.bad_signature))
            .collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[0].1 && reasons[0].0.starts_with("report refused"));
        assert_eq!(reasons[1], ("unknown device", false));
        assert_eq!(reasons[2], ("not a device → server topic", false));
        let ids: Vec<&str> = d.burst.events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, [a.to_string(), b.to_string()]);
        assert!(
            d.burst
                .events
                .iter()
                .all(|e| e.kind == "ack" && e.message_id.is_some())
        );
        assert_eq!(d.in_burst_duplicates, 1);
        assert_eq!(d.receipts[&DeviceId::parse("lc-keyed").unwrap()], [a]);
        assert_eq!(d.receipts[&DeviceId::parse("lc-free").unwrap()], [b, b]);
    }

    #[test]
    fn presence_must_name_its_own_device_and_a_cleared_retained_state_is_skipped() {
        let free = DevKey::None;
        let d = DeviceId::parse("lc-1").unwrap();
        let state = |dev: &str| DeviceState {
            v: 1,
            device: DeviceId::parse(dev).unwrap(),
            online: true,
            session: 3,
            at: Utc::now(),
        };
        let msgs = vec![
            msg(topic::state(&d), serde_json::to_vec(&state("lc-1")).unwrap()),
            msg(topic::state(&d), serde_json::to_vec(&state("lc-2")).unwrap()),
            msg(topic::state(&d), Vec::new()),
            msg(topic::telemetry(&d), b"{}".to_vec()),
        ];
        let out = decode(msgs, |_| Some(&free));
        assert_eq!(out.burst.states.len(), 1);
        assert_eq!(
            (out.burst.states[0].session, out.burst.states[0].online),
            (3, true)
        );
        let reasons: Vec<&str> = out.refused.iter().map(|r| r.reason.as_ref()).collect();
        assert_eq!(
            reasons,
            ["state names another device", "telemetry is not a Telemetry"]
        );
    }
}
