//! The broadcast report for a caller and a period: the store's reads (areas, devices, the status
//! history's availability, the period's proofs of play, the schedules) counted by
//! `domain::report`. Only the caller's scope is counted.

use std::collections::HashSet;

use crate::domain::area::AreaTree;
use crate::domain::report::{Report, Scheduled, Units};
use crate::domain::scope::Caller;
use crate::error::Result;
use crate::services::AppState;
use crate::store::{self, reports};

/// The report for `[from_ms, to_ms)` over the caller's scope.
pub async fn compute(state: &AppState, caller: &Caller, from_ms: i64, to_ms: i64) -> Result<Report> {
    let areas = reports::areas(&state.store).await?;
    let tree = AreaTree::new(areas.values().map(|a| (a.code.clone(), a.parent.clone())));
    let devices = reports::devices(&state.store).await?;
    let units = Units::new(caller, &areas, &tree, &devices);

    // Availability over the period, from the status history rows of the period.
    let speakers: Vec<(String, i64)> = units
        .speakers()
        .iter()
        .map(|s| (s.id.clone(), s.created_at))
        .collect();
    let avail =
        store::history::availability(&state.store, &speakers, from_ms, to_ms, store::now_ms()).await?;

    let plays = reports::period_plays(&state.store, from_ms, to_ms).await?;
    let schedules = store::schedules::load_all(&state.store, false).await?;
    let known: HashSet<&str> = schedules.iter().map(|s| s.id.as_str()).collect();
    // Scheduled occurrences, re-evaluated from the rules.
    let (from, to) = (store::from_ms(from_ms), store::from_ms(to_ms));
    let scheduled: Vec<Scheduled> = schedules
        .iter()
        .filter(|s| s.enabled)
        .map(|s| Scheduled {
            occurrences: s.occurrences(from, to).len() as i64,
            areas: s.targets.areas.clone(),
            devices: s.targets.devices.clone(),
        })
        .collect();
    Ok(units.aggregate(
        avail.iter().map(|(id, a)| (id.as_str(), a.ratio)),
        &plays,
        &known,
        &scheduled,
        &tree,
        (from_ms, to_ms),
    ))
}
