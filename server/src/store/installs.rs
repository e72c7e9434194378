//! Table `device_installs`: a device's sessions counted across reinstalls. An agent sends its
//! install id with presence and telemetry; a reinstall (fresh data directory) starts its session
//! counter again at 1 under a new id. Ingest calls [`shift`] first in its burst's transaction: each
//! message's session becomes the install's offset plus the device's own counter, so the status
//! history, `device_status` and the heartbeat check keep comparing one increasing number. A new
//! install's offset is the highest session the device had reached (`domain::presence::install_offset`);
//! messages without an install id (older agents, boards) take the offset of the device's latest
//! install (0 without one).

use std::collections::HashMap;

use sqlx::Row;

use crate::domain::presence::{Presence, install_offset};
use crate::error::Result;
use crate::store::ingest::Heartbeat;
use crate::store::{Conn, placeholders};

/// What is known of one device in the burst.
#[derive(Debug, Default)]
struct Device {
    /// Offset of each install.
    installs: HashMap<String, i64>,
    /// Highest session known (device_status and the history).
    top: i64,
}

impl Device {
    /// The offset of the latest install (the largest offset), 0 without one.
    fn latest(&self) -> i64 {
        self.installs.values().copied().max().unwrap_or(0)
    }
}

async fn load(conn: &mut Conn, ids: &[String]) -> Result<HashMap<String, Device>> {
    let mut out: HashMap<String, Device> = ids.iter().map(|d| (d.clone(), Device::default())).collect();
    for chunk in ids.chunks(500) {
        let list = placeholders(1, chunk.len());
        for sql in [
            format!(
                "SELECT device_id, install_id, session_offset FROM device_installs WHERE device_id IN ({list})"
            ),
            format!(
                "SELECT device_id, NULL AS install_id, COALESCE(MAX(session), 0) AS session_offset \
                 FROM device_status WHERE device_id IN ({list}) GROUP BY device_id"
            ),
            format!(
                "SELECT device_id, NULL AS install_id, COALESCE(MAX(session), 0) AS session_offset \
                 FROM device_status_history WHERE device_id IN ({list}) GROUP BY device_id"
            ),
        ] {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for d in chunk {
                q = q.bind(d.clone());
            }
            for r in q.fetch_all(&mut *conn).await? {
                let d = out.entry(r.try_get("device_id")?).or_default();
                let n: i64 = r.try_get("session_offset")?;
                match r.try_get::<Option<String>, _>("install_id")? {
                    Some(i) => {
                        d.installs.insert(i, n);
                    }
                    None => d.top = d.top.max(n),
                }
            }
        }
    }
    Ok(out)
}

/// The offset of `install` on `dev` (registering a new install), for a message of `session`.
async fn offset(
    conn: &mut Conn,
    device: &str,
    dev: &mut Device,
    install: Option<&str>,
    session: i64,
    now: i64,
) -> Result<i64> {
    let Some(id) = install else {
        return Ok(dev.latest());
    };
    if let Some(o) = dev.installs.get(id) {
        return Ok(*o);
    }
    let proposed = install_offset(dev.installs.is_empty(), session, dev.top);
    sqlx::query(
        "INSERT INTO device_installs (device_id, install_id, session_offset, first_seen) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (device_id, install_id) DO NOTHING",
    )
    .bind(device.to_string())
    .bind(id.to_string())
    .bind(proposed)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    // Another instance may have registered it first (presence reaches every instance).
    let stored: i64 = sqlx::query_scalar(
        "SELECT session_offset FROM device_installs WHERE device_id = $1 AND install_id = $2",
    )
    .bind(device.to_string())
    .bind(id.to_string())
    .fetch_one(&mut *conn)
    .await?;
    if stored > 0 || proposed > 0 {
        tracing::info!(
            device,
            install = id,
            offset = stored,
            "a new install of the device"
        );
    }
    dev.installs.insert(id.to_string(), stored);
    Ok(stored)
}

/// Turn the sessions of `states` (in arrival order) into the device's sessions across installs,
/// and return the same for each heartbeat of `telemetry`.
pub async fn shift(
    conn: &mut Conn,
    states: &mut [Presence],
    telemetry: &HashMap<String, Heartbeat>,
    now: i64,
) -> Result<HashMap<String, i64>> {
    let mut ids: Vec<String> = states.iter().map(|s| s.device.clone()).collect();
    ids.extend(telemetry.keys().cloned());
    ids.sort();
    ids.dedup();
    let mut devices = load(conn, &ids).await?;
    for m in states.iter_mut() {
        let dev = devices.entry(m.device.clone()).or_default();
        let off = offset(conn, &m.device, dev, m.install.as_deref(), m.session, now).await?;
        m.session = m.session.saturating_add(off);
        dev.top = dev.top.max(m.session);
    }
    let mut out = HashMap::with_capacity(telemetry.len());
    for (device, h) in telemetry {
        let dev = devices.entry(device.clone()).or_default();
        let own = h.telemetry.session.min(i64::MAX as u64) as i64;
        let install = h
            .telemetry
            .install
            .as_deref()
            .filter(|i| crate::domain::presence::valid_install(i));
        let off = offset(conn, device, dev, install, own, now).await?;
        out.insert(device.clone(), own.saturating_add(off));
    }
    Ok(out)
}
