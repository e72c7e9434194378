//! The parser of device traffic: what arrives on `d/{id}/state` (retained presence, the last
//! will included), `d/{id}/telemetry` (heartbeats) and `d/{id}/events` (event batches: proof of
//! play, acks, rejections, media errors) becomes the rows `store::ingest` writes. Pure: [`decode`]
//! is given each device's key ([`DevKey`]) and whether devices without a key are allowed, and
//! touches neither the database nor the network; the ingest worker (`workers::ingest`) loads the
//! keys, counts and logs the refusals, stores and sends the receipts.
//!
//! Every report is a signed envelope (`nguon_protocol::open_report`). A device that has a
//! `public_key` must sign state, telemetry and events with it; unsigned reports (the bare JSON
//! state and telemetry of older agents included) and reports signed with another key are refused
//! ([`Refusal::bad_signature`]). A device without a key is refused too ([`Refusal::unkeyed`])
//! unless `allow_unsigned_devices` is set. So are malformed payloads, unknown devices, a body that
//! names another device than its topic, and an event whose text holds NUL or a control character
//! (that event alone: the rest of its batch is stored). Nothing a device sends stops ingest.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use nguon_protocol::topic::Topic;
use nguon_protocol::{
    DeviceId, DeviceState, EventBatch, EventBody, ReportError, ReportKey, SignError, Telemetry, open_report,
    open_report_text, verifying_key_from_b64,
};

use crate::domain::presence::Presence;
use crate::mqtt::link::Incoming;
use crate::store::ingest::{Burst, DeviceEvent, Heartbeat, Play};

/// How a device's reports are checked: no key, a key, or a key that cannot be read.
pub type DevKey = ReportKey;

/// The key of a device from its stored `public_key` (blank: none). An unreadable key is
/// [`ReportKey::Broken`], with the reason.
pub fn key_from_stored(public_key: Option<&str>) -> (DevKey, Option<SignError>) {
    match public_key.map(str::trim).filter(|s| !s.is_empty()) {
        None => (DevKey::None, None),
        Some(b64) => match verifying_key_from_b64(b64) {
            Ok(k) => (DevKey::Key(k), None),
            Err(e) => (DevKey::Broken, Some(e)),
        },
    }
}

/// A payload refused, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The topic it came on.
    pub topic: String,
    /// The device of the topic, when it names one.
    pub device: Option<String>,
    /// Why.
    pub reason: Cow<'static, str>,
    /// Refused for its signature (unsigned or badly signed from a device that has a key).
    pub bad_signature: bool,
    /// Refused because the device has no key and unsigned devices are not allowed.
    pub unkeyed: bool,
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
    fn refuse(&mut self, topic: &str, device: Option<&str>, reason: impl Into<Cow<'static, str>>) {
        self.refused.push(Refusal {
            topic: topic.to_string(),
            device: device.map(str::to_string),
            reason: reason.into(),
            bad_signature: false,
            unkeyed: false,
        });
    }

    fn refuse_report(&mut self, topic: &str, device: &str, what: &str, e: ReportError) {
        self.refused.push(Refusal {
            topic: topic.to_string(),
            device: Some(device.to_string()),
            bad_signature: matches!(e, ReportError::BadSignature(_) | ReportError::BrokenKey),
            unkeyed: e == ReportError::Unkeyed,
            reason: format!("{what} refused: {e}").into(),
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

/// Why a message's text cannot be stored, if it cannot: NUL or another control character in any
/// of its strings (`domain::text`; PostgreSQL refuses NUL in text and the console shows the rest).
fn clean_json<T: serde::Serialize>(body: &T) -> Result<(), String> {
    let v = serde_json::to_value(body).map_err(|e| e.to_string())?;
    crate::domain::text::check_json(&v).map_err(|e| e.to_string())
}

fn ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

/// Decode one burst. `key_of` gives each device's key, `None` for an id that is no device;
/// `allow_unsigned` accepts reports from devices that have no key.
pub fn decode<'k>(
    msgs: Vec<Incoming>,
    key_of: impl Fn(&str) -> Option<&'k DevKey>,
    allow_unsigned: bool,
) -> Decoded {
    let mut out = Decoded::default();
    let mut seen: HashSet<uuid::Uuid> = HashSet::new();
    for m in msgs {
        let Some((topic, dev)) = device_topic(&m.topic) else {
            out.refuse(&m.topic, None, "not a device → server topic");
            continue;
        };
        let device = dev.as_str().to_string();
        let Some(key) = key_of(&device) else {
            out.refuse(&m.topic, Some(&device), "unknown device");
            continue;
        };
        match topic {
            Topic::State(_) => {
                if m.payload.is_empty() {
                    continue; // a cleared retained message
                }
                match open_report::<DeviceState>(&m.payload, key, allow_unsigned) {
                    Ok(s) if s.device == dev => out.burst.states.push(Presence {
                        device,
                        online: s.online,
                        session: s.session.min(i64::MAX as u64) as i64,
                        at: ms(s.at),
                        retained: m.retain,
                        install: s.install.filter(|i| crate::domain::presence::valid_install(i)),
                    }),
                    Ok(_) => out.refuse(&m.topic, Some(&device), "state names another device"),
                    Err(e) => out.refuse_report(&m.topic, &device, "state", e),
                }
            }
            Topic::Telemetry(_) => match open_report_text::<Telemetry>(&m.payload, key, allow_unsigned) {
                Ok((t, _)) if t.device != dev => {
                    out.refuse(&m.topic, Some(&device), "telemetry names another device")
                }
                Ok((t, raw)) => match clean_json(&t) {
                    Ok(()) => {
                        // Stored as the device's last telemetry: the message, not its envelope.
                        out.burst
                            .telemetry
                            .insert(device, Heartbeat { telemetry: t, raw });
                    }
                    Err(why) => out.refuse(&m.topic, Some(&device), format!("telemetry refused: {why}")),
                },
                Err(e) => out.refuse_report(&m.topic, &device, "telemetry", e),
            },
            _ => {
                let batch = match open_report::<EventBatch>(&m.payload, key, allow_unsigned) {
                    Ok(b) => b,
                    Err(e) => {
                        out.refuse_report(&m.topic, &device, "report", e);
                        continue;
                    }
                };
                if batch.device != dev {
                    out.refuse(
                        &m.topic,
                        Some(&device),
                        "batch names another device than its topic",
                    );
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
                    // One bad event is refused alone: the rest of its batch (and of the burst)
                    // is stored. It is receipted with them, since sending it again cannot help.
                    if let Err(why) = clean_json(&ev.body) {
                        out.refuse(&m.topic, Some(&device), format!("event {} refused: {why}", ev.id));
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
                                // Keyed by its rollout: a rollout's progress is read from them.
                                EventBody::AgentUpdate { rollout, .. } => {
                                    ("agent_update", Some(rollout.clone()))
                                }
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

    use super::{DevKey, Incoming, decode, devices_of, key_from_stored};

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
        assert_eq!(key_from_stored(None).0, DevKey::None);
        assert_eq!(key_from_stored(Some("  ")).0, DevKey::None);
        assert_eq!(
            key_from_stored(Some(&k.public_b64())).0,
            DevKey::Key(k.verifying_key())
        );
        let (broken, why) = key_from_stored(Some("not base64!"));
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
        let d = decode(msgs, key_of, true);
        let reasons: Vec<(&str, bool)> = d
            .refused
            .iter()
            .map(|r| (r.reason.as_ref(), r.bad_signature))
            .collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(
            reasons[0].1 && reasons[0].0.starts_with("report refused"),
            "{reasons:?}"
        );
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
            install: None,
        };
        let msgs = vec![
            msg(topic::state(&d), serde_json::to_vec(&state("lc-1")).unwrap()),
            msg(topic::state(&d), serde_json::to_vec(&state("lc-2")).unwrap()),
            msg(topic::state(&d), Vec::new()),
            msg(topic::telemetry(&d), b"{}".to_vec()),
        ];
        let out = decode(msgs, |_| Some(&free), true);
        assert_eq!(out.burst.states.len(), 1);
        assert_eq!(
            (out.burst.states[0].session, out.burst.states[0].online),
            (3, true)
        );
        let reasons: Vec<&str> = out.refused.iter().map(|r| r.reason.as_ref()).collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert_eq!(reasons[0], "state names another device");
        assert!(
            reasons[1].starts_with("telemetry refused: malformed"),
            "{reasons:?}"
        );
    }

    #[test]
    fn state_and_telemetry_of_a_keyed_device_must_be_signed_with_its_key_and_unkeyed_ones_need_the_setting() {
        let k = DeviceKey::generate();
        let thief = DeviceKey::generate();
        let keyed = DevKey::Key(k.verifying_key());
        let free = DevKey::None;
        let key_of = |d: &str| match d {
            "lc-keyed" => Some(&keyed),
            "lc-free" => Some(&free),
            _ => None,
        };
        let d = DeviceId::parse("lc-keyed").unwrap();
        let f = DeviceId::parse("lc-free").unwrap();
        let state = |dev: &DeviceId, online: bool, session: u64| DeviceState {
            v: 1,
            device: dev.clone(),
            online,
            session,
            at: Utc::now(),
            install: None,
        };
        // The attack of issue 11: another device's credentials, a forged `offline` with a huge
        // session; unsigned (bare JSON as old agents sent), and signed with the thief's key.
        let forged = state(&d, false, i64::MAX as u64);
        let msgs = || {
            vec![
                msg(topic::state(&d), serde_json::to_vec(&forged).unwrap()),
                msg(topic::state(&d), forged.seal(Some(&thief)).to_bytes()),
                msg(topic::state(&d), state(&d, true, 5).seal(Some(&k)).to_bytes()),
                msg(topic::state(&f), state(&f, true, 1).seal(None).to_bytes()),
                msg(topic::state(&f), serde_json::to_vec(&state(&f, true, 2)).unwrap()),
            ]
        };
        let strict = decode(msgs(), key_of, false);
        let states: Vec<(&str, i64)> = strict
            .burst
            .states
            .iter()
            .map(|p| (p.device.as_str(), p.session))
            .collect();
        assert_eq!(states, [("lc-keyed", 5)], "only the genuine state");
        let kinds: Vec<(bool, bool)> = strict
            .refused
            .iter()
            .map(|r| (r.bad_signature, r.unkeyed))
            .collect();
        assert_eq!(
            kinds,
            [(true, false), (true, false), (false, true), (false, true)]
        );
        assert!(strict.refused.iter().all(|r| r.device.is_some()));
        let lenient = decode(msgs(), key_of, true);
        assert_eq!(
            lenient.burst.states.len(),
            3,
            "the unkeyed device's two, when allowed"
        );
        assert_eq!(
            lenient.refused.len(),
            2,
            "the keyed device's forgeries stay refused"
        );
    }

    #[test]
    fn an_event_holding_a_nul_is_refused_alone_and_the_rest_of_its_batch_is_kept() {
        let free = DevKey::None;
        let bad = uuid::Uuid::new_v4();
        let mut evil = ack(bad);
        evil.body = EventBody::MediaError {
            sha256: "x".into(),
            reason: "nul \0 here".into(),
        };
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let out = decode(
            vec![events("lc-1", vec![ack(a), evil, ack(b)], None)],
            |_| Some(&free),
            true,
        );
        let ids: Vec<String> = out.burst.events.iter().map(|e| e.id.clone()).collect();
        assert_eq!(ids, [a.to_string(), b.to_string()]);
        assert_eq!(out.refused.len(), 1);
        assert!(out.refused[0].reason.contains("NUL"), "{:?}", out.refused[0]);
    }
}
