//! What ingest writes, in ONE transaction per burst ([`write`]): the status history
//! (`store::history::record`), `device_status` from presence (`state`: a newer session wins, and
//! within one session `offline` is final, so a replayed `online` cannot undo a will) and
//! heartbeats (`telemetry` with the data disk's free and total bytes, ignored when of a session older than
//! the stored one), and the events with multi-row `INSERT … ON CONFLICT (event_id) DO NOTHING`
//! (`plays` for proof of play with its loudness and `silent` flag, `device_events` for acks,
//! rejections and media errors), so an event
//! uuid is stored once however often it is sent. The rows are decoded from device traffic by
//! `mqtt::inbound`; [`public_keys`] is the look-up of the keys reports are verified with.

use std::collections::HashMap;

use nguon_protocol::{ProofOfPlay, Telemetry};
use sqlx::Row;

use crate::domain::presence::Presence;
use crate::error::Result;
use crate::store::{Store, history, installs, placeholders, push_values};

/// A heartbeat to store: the telemetry and its raw JSON.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    /// The parsed telemetry.
    pub telemetry: Telemetry,
    /// The payload as received (stored as the device's last telemetry).
    pub raw: String,
}

/// One proof of play.
#[derive(Debug, Clone)]
pub struct Play {
    /// Event uuid.
    pub id: String,
    /// Device id.
    pub device: String,
    /// What was played.
    pub play: ProofOfPlay,
}

/// One other device event (ack, rejection, media error).
#[derive(Debug, Clone)]
pub struct DeviceEvent {
    /// Event uuid.
    pub id: String,
    /// Device id.
    pub device: String,
    /// `ack`, `rejected` or `media_error`.
    pub kind: &'static str,
    /// The server message it answers (acks and rejections); joins `commands.id`.
    pub message_id: Option<String>,
    /// The event body as JSON.
    pub body: String,
    /// When it happened on the device, unix ms.
    pub at: i64,
}

/// Everything one burst stores.
#[derive(Debug, Clone, Default)]
pub struct Burst {
    /// Presence messages in arrival order.
    pub states: Vec<Presence>,
    /// The last heartbeat of each device in the burst.
    pub telemetry: HashMap<String, Heartbeat>,
    /// Proofs of play (each uuid once).
    pub plays: Vec<Play>,
    /// Other events (each uuid once).
    pub events: Vec<DeviceEvent>,
}

impl Burst {
    /// Plays and other events in the burst.
    pub fn event_count(&self) -> usize {
        self.plays.len() + self.events.len()
    }

    /// The burst cut into one burst per device (order kept within each), so that a burst the
    /// database refuses can be stored device by device: what one device sent cannot cost the
    /// others their rows.
    pub fn by_device(&self) -> Vec<(String, Burst)> {
        let mut out: std::collections::BTreeMap<String, Burst> = std::collections::BTreeMap::new();
        for s in &self.states {
            out.entry(s.device.clone()).or_default().states.push(s.clone());
        }
        for (d, h) in &self.telemetry {
            out.entry(d.clone())
                .or_default()
                .telemetry
                .insert(d.clone(), h.clone());
        }
        for p in &self.plays {
            out.entry(p.device.clone()).or_default().plays.push(p.clone());
        }
        for e in &self.events {
            out.entry(e.device.clone()).or_default().events.push(e.clone());
        }
        out.into_iter().collect()
    }
}

/// Each of `ids` that is a registered device, with its report-signing public key as stored
/// (`None`: no key). Ids that are not devices are absent.
pub async fn public_keys(store: &Store, ids: &[String]) -> Result<HashMap<String, Option<String>>> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT id, public_key FROM devices WHERE id IN ({})",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for d in chunk {
            q = q.bind(d.clone());
        }
        for r in q.fetch_all(&store.pool).await? {
            out.insert(r.try_get("id")?, r.try_get("public_key")?);
        }
    }
    Ok(out)
}

/// Store one burst in one transaction, received at `now` (unix ms). Returns how many events were
/// new (the rest were stored before).
pub async fn write(store: &Store, burst: &Burst, now: i64) -> Result<u64> {
    let mut tx = store.begin_write().await?;
    // Sessions counted across the devices' reinstalls, before anything compares them.
    let mut states = burst.states.clone();
    let heartbeat_sessions = installs::shift(&mut tx, &mut states, &burst.telemetry, now).await?;
    // Before device_status: its `last_seen` dates the ends the server did not see happen.
    history::record(&mut tx, &states, now).await?;
    for Presence {
        device,
        online,
        session,
        at,
        ..
    } in &states
    {
        sqlx::query(
            "INSERT INTO device_status (device_id, online, session, state_at, last_seen) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (device_id) DO UPDATE SET online = excluded.online, session = excluded.session, \
             state_at = excluded.state_at, last_seen = COALESCE(excluded.last_seen, device_status.last_seen) \
             WHERE device_status.session < excluded.session OR (device_status.session = excluded.session \
             AND (device_status.online = 1 OR excluded.online = 0 OR device_status.state_at IS NULL))",
        )
        .bind(device.clone())
        .bind(*online as i64)
        .bind(*session)
        .bind(*at)
        .bind(if *online { Some(now) } else { None })
        .execute(&mut *tx)
        .await?;
    }
    for (device, Heartbeat { telemetry: t, raw }) in &burst.telemetry {
        let now_playing = t.now_playing.as_ref().and_then(|n| serde_json::to_string(n).ok());
        sqlx::query(
            "INSERT INTO device_status (device_id, last_seen, last_heartbeat, manifest_version, now_playing, telemetry, \
             disk_free_bytes, disk_total_bytes, broker) \
             VALUES ($1, $2, $3, $4, $5, $6, $8, $9, $10) ON CONFLICT (device_id) DO UPDATE SET last_seen = excluded.last_seen, \
             last_heartbeat = excluded.last_heartbeat, manifest_version = excluded.manifest_version, \
             now_playing = excluded.now_playing, telemetry = excluded.telemetry, \
             disk_free_bytes = excluded.disk_free_bytes, disk_total_bytes = excluded.disk_total_bytes, \
             broker = excluded.broker \
             WHERE device_status.session <= $7",
        )
        .bind(device.clone())
        .bind(now)
        .bind(now)
        .bind(t.manifest_version.map(|v| v.min(i64::MAX as u64) as i64))
        .bind(now_playing)
        .bind(raw.clone())
        .bind(heartbeat_sessions[device])
        .bind(t.disk_free_bytes.min(i64::MAX as u64) as i64)
        .bind(t.disk_total_bytes.map(|b| b.min(i64::MAX as u64) as i64))
        .bind(t.broker.as_ref().map(|b| b.chars().take(200).collect::<String>()))
        .execute(&mut *tx)
        .await?;
    }
    let ms = |t: chrono::DateTime<chrono::Utc>| t.timestamp_millis();
    let mut stored = 0u64;
    for chunk in burst.plays.chunks(1000) {
        let mut sql = String::from(
            "INSERT INTO plays (event_id, device_id, item_id, schedule_id, occurrence_at, sha256, priority, \
             started_at, ended_at, outcome, reason, received_at, max_rms_dbfs, silent, relay_ms, relay_reconnects, \
             relay_failed) VALUES ",
        );
        push_values(&mut sql, chunk.len(), 17, store.backend);
        sql.push_str(" ON CONFLICT (event_id) DO NOTHING");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for Play { id, device, play: p } in chunk {
            q = q
                .bind(id.clone())
                .bind(device.clone())
                .bind(p.item_id.clone())
                .bind(p.schedule_id.clone())
                .bind(ms(p.occurrence_at))
                .bind(p.sha256.clone())
                .bind(p.priority.as_str())
                .bind(p.started_at.map(ms))
                .bind(p.ended_at.map(ms))
                .bind(p.outcome.as_str())
                .bind(p.reason.clone())
                .bind(now)
                .bind(p.max_rms_dbfs.map(i64::from))
                .bind(p.silent as i64)
                .bind(p.relay.as_ref().map(|r| r.stream_ms.min(i64::MAX as u64) as i64))
                .bind(p.relay.as_ref().map(|r| i64::from(r.reconnects)))
                .bind(p.relay.as_ref().map(|r| r.failed as i64));
        }
        stored += q.execute(&mut *tx).await?.rows_affected();
    }
    for chunk in burst.events.chunks(2000) {
        let mut sql = String::from(
            "INSERT INTO device_events (event_id, device_id, kind, message_id, body, at, received_at) VALUES ",
        );
        push_values(&mut sql, chunk.len(), 7, store.backend);
        sql.push_str(" ON CONFLICT (event_id) DO NOTHING");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for e in chunk {
            q = q
                .bind(e.id.clone())
                .bind(e.device.clone())
                .bind(e.kind)
                .bind(e.message_id.clone())
                .bind(e.body.clone())
                .bind(e.at)
                .bind(now);
        }
        stored += q.execute(&mut *tx).await?.rows_affected();
    }
    tx.commit().await?;
    Ok(stored)
}
