//! What the delivery tracking of one command reads (`domain::tracking` derives the states): the
//! command, its targets (`command_targets`), the devices' acks of it (`device_events`), their
//! proofs of play of it (`plays`, item id = command id) and their `now_playing` telemetry
//! (`device_status`). Five queries, however many targets, in one snapshot
//! ([`Store::begin_snapshot`]): an ack and a proof of play a device sent in one batch are stored
//! in one transaction, and a report must not show the proof without the ack (the tracking then
//! lacked `delivered` when ingest committed between the two queries, seen on PostgreSQL).

use std::collections::BTreeMap;

use nguon_protocol::{NowPlaying, PlayOutcome};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::repetition::ReplaysSeen;
use crate::domain::tracking::{AckSeen, Observed, PlaySeen, Tracked};
use crate::error::Result;
use crate::store::{Conn, Store};

/// The command `id` as tracking needs it and what is known about each of its targets, by device
/// id (`None`: no such command).
pub async fn load(store: &Store, id: &str) -> Result<Option<(Tracked, Vec<Observed>)>> {
    let mut tx = store.begin_snapshot().await?;
    let Some(c) = sqlx::query("SELECT action, issued_at, expires_at, failed_at FROM commands WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(None);
    };
    let cmd = Tracked {
        action: c.try_get("action")?,
        issued_at: c.try_get("issued_at")?,
        expires_at: c.try_get("expires_at")?,
        failed_at: c.try_get("failed_at")?,
    };
    let mut by: BTreeMap<String, Observed> = BTreeMap::new();
    for r in
        sqlx::query("SELECT device_id, area, online, cancelled_at FROM command_targets WHERE command_id = $1")
            .bind(id.to_string())
            .fetch_all(&mut *tx)
            .await?
    {
        let device_id: String = r.try_get("device_id")?;
        by.insert(
            device_id.clone(),
            Observed {
                device_id,
                area: r.try_get("area")?,
                online: r.try_get::<i64, _>("online")? != 0,
                cancelled_at: r.try_get("cancelled_at")?,
                ..Observed::default()
            },
        );
    }
    each_target_row(
        &mut tx,
        "SELECT device_id, body, at FROM device_events WHERE message_id = $1 AND kind = 'ack'",
        id,
        &mut by,
        |o, r| {
            let body: String = r.try_get("body")?;
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            o.acks.push(AckSeen {
                at: r.try_get("at")?,
                ok: v.get("ok").and_then(serde_json::Value::as_bool).unwrap_or(false),
                reason: v.get("reason").and_then(|x| x.as_str()).map(str::to_string),
            });
            Ok(())
        },
    )
    .await?;
    each_target_row(
        &mut tx,
        "SELECT device_id, outcome, reason, occurrence_at, started_at, ended_at, received_at FROM plays \
         WHERE item_id = $1",
        id,
        &mut by,
        |o, r| {
            let outcome: String = r.try_get("outcome")?;
            if let Ok(outcome) = serde_json::from_value::<PlayOutcome>(serde_json::Value::String(outcome)) {
                o.plays.push(PlaySeen {
                    outcome,
                    reason: r.try_get("reason")?,
                    occurrence_at: r.try_get("occurrence_at")?,
                    started_at: r.try_get("started_at")?,
                    ended_at: r.try_get("ended_at")?,
                    received_at: r.try_get("received_at")?,
                });
            }
            Ok(())
        },
    )
    .await?;
    each_target_row(
        &mut tx,
        "SELECT s.device_id, s.now_playing FROM device_status s \
         JOIN command_targets t ON t.device_id = s.device_id \
         WHERE t.command_id = $1 AND s.now_playing IS NOT NULL",
        id,
        &mut by,
        |o, r| {
            let raw: Option<String> = r.try_get("now_playing")?;
            if let Some(np) = raw.and_then(|j| serde_json::from_str::<NowPlaying>(&j).ok())
                && np.item_id == id
            {
                o.playing_since = Some(np.started_at.timestamp_millis());
            }
            Ok(())
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Some((cmd, by.into_values().collect())))
}

/// What devices reported about the replays of command `id` (item ids `{id}#k`): their proofs of
/// play and the replay each target plays now.
pub async fn replays_seen(store: &Store, id: &str) -> Result<ReplaysSeen> {
    let mut seen = ReplaysSeen::default();
    let prefix = format!("{id}#");
    let k_of = |item: &str| {
        item.strip_prefix(prefix.as_str())
            .and_then(|k| k.parse::<u32>().ok())
    };
    let rows = sqlx::query(
        "SELECT device_id, item_id, outcome, reason, occurrence_at, started_at, ended_at, received_at \
         FROM plays WHERE item_id LIKE $1",
    )
    .bind(format!("{prefix}%"))
    .fetch_all(&store.pool)
    .await?;
    for r in rows {
        let item: String = r.try_get("item_id")?;
        let outcome: String = r.try_get("outcome")?;
        let (Some(k), Ok(outcome)) = (
            k_of(&item),
            serde_json::from_value::<PlayOutcome>(serde_json::Value::String(outcome)),
        ) else {
            continue;
        };
        seen.plays
            .entry((r.try_get("device_id")?, k))
            .or_default()
            .push(PlaySeen {
                outcome,
                reason: r.try_get("reason")?,
                occurrence_at: r.try_get("occurrence_at")?,
                started_at: r.try_get("started_at")?,
                ended_at: r.try_get("ended_at")?,
                received_at: r.try_get("received_at")?,
            });
    }
    let rows = sqlx::query(
        "SELECT s.device_id, s.now_playing FROM device_status s \
         JOIN command_targets t ON t.device_id = s.device_id \
         WHERE t.command_id = $1 AND s.now_playing IS NOT NULL",
    )
    .bind(id.to_string())
    .fetch_all(&store.pool)
    .await?;
    for r in rows {
        let raw: Option<String> = r.try_get("now_playing")?;
        if let Some(np) = raw.and_then(|j| serde_json::from_str::<NowPlaying>(&j).ok())
            && let Some(k) = k_of(&np.item_id)
        {
            seen.playing
                .insert((r.try_get("device_id")?, k), np.started_at.timestamp_millis());
        }
    }
    Ok(seen)
}

/// Each row of `sql` (its one parameter bound to the command `id`) handed to `add` with the
/// record of the target it names (`device_id`); rows of devices that are not targets are skipped.
async fn each_target_row(
    conn: &mut Conn,
    sql: &'static str,
    id: &str,
    by: &mut BTreeMap<String, Observed>,
    mut add: impl FnMut(&mut Observed, &AnyRow) -> Result<()>,
) -> Result<()> {
    for r in sqlx::query(sql)
        .bind(id.to_string())
        .fetch_all(&mut *conn)
        .await?
    {
        let device: String = r.try_get("device_id")?;
        if let Some(o) = by.get_mut(&device) {
            add(o, &r)?;
        }
    }
    Ok(())
}
