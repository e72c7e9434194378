//! Repetition of emergency messages in the queue (issue 12 §3). A message whose item carries a
//! [`nguon_protocol::Repetition`] and a window (`play_until`) is expanded by the device itself, so
//! it repeats offline too: replay `k` (≥ 1) is an item of its own, id `{id}#k`, starting at its
//! offset, playing the spoken preamble (the issue time) and then the message, and reported like
//! any item. A replay may start late until the next replay is due (or the window ends): a device
//! that was away plays the replay due last, and reports the ones before it `missed`.
//!
//! Replays of a manifest's messages are expanded with each manifest; those of a play-now command
//! are kept apart ([`Queue::add_replays`]) so a manifest does not drop them. A cancel (the
//! manifest's `cancelled`) or a `stop` naming the message stops its replays too, and none is
//! started afterwards.

use nguon_protocol::{replay_id, replay_of};

use super::*;

/// The replays of `item` (k = 1, 2, …), none for an item without repetition or window, or for a
/// replay itself.
pub fn replays(item: &ManifestItem) -> Vec<ManifestItem> {
    let (Some(r), Some(until)) = (&item.repetition, item.play_until) else {
        return Vec::new();
    };
    if replay_of(&item.id).is_some() {
        return Vec::new();
    }
    let starts = r.replays(item.starts_at, until);
    starts
        .iter()
        .enumerate()
        .map(|(i, t)| ManifestItem {
            id: replay_id(&item.id, i + 1),
            starts_at: *t,
            media: r.preamble.iter().chain(item.media.iter()).cloned().collect(),
            play_until: Some(starts.get(i + 1).copied().unwrap_or(until).min(until)),
            ..item.clone()
        })
        .collect()
}

/// The media a proof of play names: the message's first file, not the preamble of a replay.
pub fn reported_media(item: &ManifestItem) -> String {
    let preamble = item.repetition.as_ref().and_then(|r| r.preamble.as_ref());
    let skip = usize::from(replay_of(&item.id).is_some() && preamble.is_some());
    item.media
        .get(skip)
        .or(item.media.first())
        .cloned()
        .unwrap_or_default()
}

impl<P: Clone> Queue<P> {
    /// The replays of a play-now command's item (none were reported before: `handled`), kept
    /// across manifests until they are due.
    pub fn add_replays(&mut self, item: &ManifestItem, handled: impl Fn(&str) -> bool) {
        if self.is_cancelled(&item.id) {
            return;
        }
        let active = self.active_ids();
        for r in replays(item) {
            if self.replays.iter().any(|x| x.id == r.id) {
                continue;
            }
            if !handled(&r.id) && !self.reported.contains(&r.id) && !active.contains(&r.id) {
                self.pending.push(r.clone());
            }
            self.replays.push(r);
        }
        self.pending.sort_by_key(|i| i.starts_at);
    }

    /// A manifest's items with the replays of its messages and of play-now commands.
    pub(super) fn with_replays(&self, items: &[ManifestItem]) -> Vec<ManifestItem> {
        let mut out: Vec<ManifestItem> = items.to_vec();
        out.extend(items.iter().flat_map(replays));
        let ids: HashSet<String> = out.iter().map(|i| i.id.clone()).collect();
        out.extend(self.replays.iter().filter(|r| !ids.contains(&r.id)).cloned());
        out
    }

    /// Whether `id` (or the message a replay belongs to) was cancelled by the server or stopped.
    pub fn is_cancelled(&self, id: &str) -> bool {
        let base = replay_of(id).map(|(b, _)| b);
        [Some(id), base]
            .into_iter()
            .flatten()
            .any(|x| self.cancelled.contains(x) || self.stopped.contains(x))
    }

    /// A `stop`: the replays of the message named (all when `None`) not yet due are dropped
    /// (not reported: tracking counts them cancelled) and never started afterwards.
    pub(super) fn stop_replays(&mut self, item_id: Option<&str>) {
        let hit = |id: &str| replay_of(id).is_some_and(|(b, _)| item_id.is_none_or(|x| x == b));
        let mut bases: HashSet<String> = HashSet::new();
        for i in self.pending.iter().chain(&self.replays).filter(|i| hit(&i.id)) {
            bases.extend(replay_of(&i.id).map(|(b, _)| b.to_string()));
        }
        self.pending.retain(|i| !hit(&i.id));
        self.replays.retain(|i| !hit(&i.id));
        self.stopped.extend(bases);
    }
}
