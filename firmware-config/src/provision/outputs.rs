//! Files derived from the state: the registry for nguon-server's fleet import and the CSV of new
//! devices' passwords and board tokens.

use crate::bundle::DeviceSecrets;
use crate::registry::{AreaEntry, DeviceEntry, REGISTRY_VERSION, Registry};
use crate::spreadsheet::cell;
use crate::state::{State, Status, village_code};

pub(super) fn secrets_csv(new: &[(String, DeviceSecrets)], state: &State) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "device_id",
        "kind",
        "commune_code",
        "village",
        "station",
        "mqtt_username",
        "mqtt_password",
        "board_token",
    ]);
    for (id, s) in new {
        let d = &state.devices[id];
        // Names come from the station list and are guarded against formula injection; ids and
        // secrets are generated (alphanumeric) and must stay byte-exact.
        let _ = w.write_record([
            id.as_str(),
            d.kind.as_str(),
            &cell(&d.commune_code),
            &cell(&d.village),
            &cell(&d.station),
            id.as_str(),
            &s.password,
            s.board_token.as_deref().unwrap_or(""),
        ]);
    }
    w.into_inner().expect("writing to memory")
}

/// The languages a village receives, from its active stations' `language` column: each language
/// other than `vi` named (preferred, in the order of the stations' ids), then `vi` (every area
/// receives Vietnamese). Empty when no station names one: the server keeps the area's own list
/// (or its ancestors').
fn village_languages(state: &State, commune: &str, village: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut named = false;
    for d in state.devices.values() {
        if d.status == Status::Disabled || d.commune_code != commune || d.village != village {
            continue;
        }
        if let Some(l) = &d.language {
            named = true;
            if l != "vi" && !out.contains(l) {
                out.push(l.clone());
            }
        }
    }
    if named {
        out.push("vi".into());
    }
    out
}

/// The registration file for a state: areas parents first, active devices, disabled ids.
pub fn registry_of(state: &State) -> Registry {
    let s = &state.settings;
    let mut areas = vec![AreaEntry {
        code: s.province_code.clone(),
        name: s.province_name.clone(),
        parent: None,
        level: "province".into(),
        languages: Vec::new(),
    }];
    for (code, c) in &state.communes {
        areas.push(AreaEntry {
            code: code.clone(),
            name: c.name.clone().unwrap_or_else(|| code.clone()),
            parent: Some(s.province_code.clone()),
            level: "commune".into(),
            languages: Vec::new(),
        });
    }
    for (code, c) in &state.communes {
        let mut villages: Vec<(&String, &u32)> = c.villages.iter().collect();
        villages.sort_by_key(|(_, n)| **n);
        for (name, n) in villages {
            areas.push(AreaEntry {
                code: village_code(code, *n),
                name: name.clone(),
                parent: Some(code.clone()),
                level: "village".into(),
                languages: village_languages(state, code, name),
            });
        }
    }
    let mut devices = Vec::new();
    let mut disabled = Vec::new();
    for (id, d) in &state.devices {
        if d.status == Status::Disabled {
            disabled.push(id.clone());
            continue;
        }
        let n = state.communes[&d.commune_code].villages[&d.village];
        devices.push(DeviceEntry {
            id: id.clone(),
            kind: d.kind.as_str().into(),
            area: village_code(&d.commune_code, n),
            name: d.station.clone(),
            lat: d.lat,
            lon: d.lon,
            password_hash: d.password_hash.clone(),
            public_key: Some(d.public_key.clone()),
            language: d.language.clone(),
            board_token_hash: d.board_token_hash.clone(),
        });
    }
    Registry {
        version: REGISTRY_VERSION,
        areas,
        devices,
        disabled,
    }
}
