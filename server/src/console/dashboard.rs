//! The dashboard: devices online and offline per commune, what is playing, the latest proofs of
//! play, emergencies and failures (`store::reports::recent_plays`).

use std::collections::BTreeMap;

use axum::extract::State;
use serde_json::{Value, json};

use super::{Console, PageResult, commune_of, now_playing_label};
use super::{all_areas, scoped_devices};
use crate::services::AppState;
use crate::store::reports::{RecentPlays, recent_plays};

pub(super) async fn dashboard(c: Console, State(state): State<AppState>) -> PageResult {
    let areas = all_areas(&state).await?;
    let devices = scoped_devices(&state, &c.caller).await?;
    let mut by: BTreeMap<String, (i64, i64, Vec<Value>)> = BTreeMap::new();
    let mut playing = Vec::new();
    for d in &devices {
        let e = by.entry(commune_of(&areas, &d.area)).or_default();
        if d.online {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
        e.2.push(json!({"id": d.id, "online": d.online}));
        if let Some(np) = d
            .now_playing
            .as_deref()
            .map(now_playing_label)
            .filter(|s| !s.is_empty())
        {
            playing.push(json!({"id": d.id, "what": np}));
        }
    }
    let online: i64 = by.values().map(|v| v.0).sum();
    let offline: i64 = by.values().map(|v| v.1).sum();
    let rows: Vec<Value> = by
        .into_iter()
        .map(|(code, (on, off, devs))| {
            let name = areas
                .get(&code)
                .map(|a| a.name.clone())
                .unwrap_or_else(|| code.clone());
            json!({"code": code, "name": name, "online": on, "offline": off, "devices": devs})
        })
        .collect();
    let recent = |which, limit| recent_plays(&state.store, &c.caller, which, limit, None);
    let plays = recent(RecentPlays::All, 20).await?;
    let emergencies = recent(RecentPlays::Emergencies, 10).await?;
    let failures = recent(RecentPlays::Failures, 10).await?;
    c.page(
        "dashboard.html",
        json!({"online": online, "offline": offline, "areas": rows, "playing": playing, "plays": plays,
               "emergencies": emergencies, "failures": failures,
               "unsigned_devices_allowed": state.settings.allow_unsigned_devices}),
    )
}
