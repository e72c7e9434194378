//! Admission of server messages after their signature, expiry and audience were checked by
//! [`nguon_protocol::ServerMessage::open`]: replay protection per (audience, stream). Pure logic,
//! no I/O.

use nguon_protocol::{Audience, ServerMessage};
use uuid::Uuid;

use crate::store::State;

/// What to do with a verified message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// New: act on it.
    Accept,
    /// The retained manifest re-delivered on reconnect (same id as the one applied): do nothing.
    AlreadyApplied,
    /// A replay: report it, do not act on it.
    Reject(String),
}

/// The replay-state key of a message.
pub fn stream_key(audience: &Audience, stream: &str) -> String {
    match audience {
        Audience::Device(d) => format!("d/{d}/{stream}"),
        Audience::Area(a) => format!("a/{a}/{stream}"),
    }
}

/// Decide on a message against the stored replay state.
pub fn check(state: &State, msg: &ServerMessage) -> Verdict {
    let stream = msg.body.stream();
    if stream == "desired" && state.manifest.as_ref().is_some_and(|m| m.message_id == msg.id) {
        return Verdict::AlreadyApplied;
    }
    let key = stream_key(&msg.audience, stream);
    if let Some(s) = state.replay.get(&key) {
        if s.recent_ids.contains(&msg.id) {
            return Verdict::Reject(format!("replayed: message {} was already accepted", msg.id));
        }
        if msg.seq <= s.seq {
            return Verdict::Reject(format!(
                "replayed: sequence {} is not newer than {} on {key}",
                msg.seq, s.seq
            ));
        }
    }
    Verdict::Accept
}

/// Remember an accepted message.
pub fn accept(state: &mut State, msg: &ServerMessage) {
    remember(
        state,
        &stream_key(&msg.audience, msg.body.stream()),
        msg.seq,
        msg.id,
    );
}

fn remember(state: &mut State, key: &str, seq: u64, id: Uuid) {
    let s = state.replay.entry(key.to_string()).or_default();
    s.seq = s.seq.max(seq);
    s.recent_ids.push_back(id);
    while s.recent_ids.len() > 64 {
        s.recent_ids.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use nguon_protocol::{Command, DeviceId, ServerBody};

    fn msg(seq: u64) -> ServerMessage {
        ServerMessage::new(
            Audience::Device(DeviceId::parse("lc-1").unwrap()),
            seq,
            Duration::minutes(5),
            ServerBody::Command(Command::Sync),
        )
    }

    #[test]
    fn an_older_or_repeated_sequence_is_a_replay_and_a_newer_one_is_accepted() {
        let mut s = State::default();
        let m = msg(5);
        assert_eq!(check(&s, &m), Verdict::Accept);
        accept(&mut s, &m);
        assert!(matches!(check(&s, &m), Verdict::Reject(_)));
        assert!(matches!(check(&s, &msg(5)), Verdict::Reject(_)));
        assert!(matches!(check(&s, &msg(4)), Verdict::Reject(_)));
        assert_eq!(check(&s, &msg(6)), Verdict::Accept);
    }
}
