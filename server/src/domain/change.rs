//! What a desired-state change covers: the devices whose manifests must be recomputed. A use case
//! writes one [`Change`] to the dispatch outbox (`store::outbox`) in the transaction of the change
//! it describes; the dispatcher merges every pending one ([`Change::merge`]) into one batch.
//! Serialised as JSON in `dispatch_outbox.change` (`"all"`, `{"devices": [...]}`, ...).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Recompute every device.
    All,
    /// Recompute these devices.
    Devices(Vec<String>),
    /// Recompute every device in these areas and their descendants.
    Areas(Vec<String>),
    /// Recompute the devices a target set covers.
    Targets {
        /// Areas (with descendants).
        areas: Vec<String>,
        /// Devices.
        devices: Vec<String>,
    },
}

impl Change {
    /// The change for a target set (areas with their descendants, and single devices).
    pub fn targets(areas: &[String], devices: &[String]) -> Change {
        Change::Targets {
            areas: areas.to_vec(),
            devices: devices.to_vec(),
        }
    }

    /// Whether the change may concern device records themselves (registration, credentials), not
    /// only what they play.
    pub fn touches_devices(&self) -> bool {
        matches!(self, Change::All | Change::Devices(_))
    }

    /// Merge changes into one: `All` absorbs everything; otherwise areas and devices are unioned.
    /// `None` when there is nothing.
    pub fn merge(changes: impl IntoIterator<Item = Change>) -> Option<Change> {
        let mut areas = BTreeSet::new();
        let mut devices = BTreeSet::new();
        let mut any = false;
        for c in changes {
            any = true;
            match c {
                Change::All => return Some(Change::All),
                Change::Devices(d) => devices.extend(d),
                Change::Areas(a) => areas.extend(a),
                Change::Targets { areas: a, devices: d } => {
                    areas.extend(a);
                    devices.extend(d);
                }
            }
        }
        any.then(|| Change::Targets {
            areas: areas.into_iter().collect(),
            devices: devices.into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Change;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn changes_merge_into_one_target_set_and_all_absorbs_the_rest() {
        assert_eq!(Change::merge(Vec::new()), None);
        let merged = Change::merge([
            Change::Devices(v(&["d2", "d1"])),
            Change::Areas(v(&["a"])),
            Change::targets(&v(&["b", "a"]), &v(&["d1"])),
        ]);
        assert_eq!(
            merged,
            Some(Change::Targets {
                areas: v(&["a", "b"]),
                devices: v(&["d1", "d2"])
            })
        );
        assert_eq!(
            Change::merge([Change::Areas(v(&["a"])), Change::All]),
            Some(Change::All)
        );
    }

    #[test]
    fn the_stored_form_is_unchanged() {
        assert_eq!(serde_json::to_string(&Change::All).unwrap(), "\"all\"");
        assert_eq!(
            serde_json::to_string(&Change::Devices(v(&["d"]))).unwrap(),
            r#"{"devices":["d"]}"#
        );
        assert_eq!(
            serde_json::to_string(&Change::targets(&v(&["a"]), &[])).unwrap(),
            r#"{"targets":{"areas":["a"],"devices":[]}}"#
        );
    }
}
