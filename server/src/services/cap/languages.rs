//! Which infos of a CAP alert each target hears (issue 12 §4, docs/cap.md "Languages"): the
//! targets are grouped by the infos their area's languages give (`domain::cap::lang::spoken`;
//! the area languages of the bulletins, `area_languages`, inherited down the tree), so each group gets one play-now in its
//! languages, Vietnamese first. A language is spoken only by a voice of its own: Vietnamese by
//! the default voice (every built-in voice is Vietnamese), another language by a configured voice
//! whose engine voice or name has that primary subtag (`en-us`, `en_US-lessac`). An info in a
//! language no voice speaks is left to the boards, which show every info.

use std::collections::BTreeMap;

use crate::domain::cap::{Alert, lang};
use crate::error::Result;
use crate::services::AppState;
use crate::store::{self, commands::TargetDevice};

/// The name of the voice that reads `language`, if one does (`None` for the default voice).
pub fn voice_for(state: &AppState, language: &str) -> Option<Option<String>> {
    let p = lang::primary(language);
    if p == "vi" {
        return Some(None);
    }
    let tts = state.tts.get();
    tts.voices()
        .iter()
        .find(|v| lang::primary(&v.engine_voice) == p || lang::primary(&v.name) == p)
        .map(|v| Some(v.name.clone()))
}

/// The targets grouped by the infos they hear (indices into `alert.infos`, in reading order),
/// the largest group first.
pub async fn groups(
    state: &AppState,
    alert: &Alert,
    found: &[TargetDevice],
) -> Result<Vec<(Vec<usize>, Vec<TargetDevice>)>> {
    let own = store::bulletins::all_area_languages(&state.store).await?;
    let tree = store::areas::tree(&state.store).await?;
    let mut by: BTreeMap<Vec<usize>, Vec<TargetDevice>> = BTreeMap::new();
    let mut memo: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for t in found {
        let ix = memo
            .entry(t.area.clone())
            .or_insert_with(|| {
                let langs = lang::effective(&tree.chain(&t.area), |a| own.get(a).map(Vec::as_slice));
                lang::spoken(alert, &langs, |l| voice_for(state, l).is_some())
            })
            .clone();
        by.entry(ix).or_default().push(t.clone());
    }
    let mut out: Vec<(Vec<usize>, Vec<TargetDevice>)> = by.into_iter().collect();
    out.sort_by_key(|(_, t)| std::cmp::Reverse(t.len()));
    Ok(out)
}
