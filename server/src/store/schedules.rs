//! Tables `schedules` and `schedule_targets`: every schedule's SQL. A schedule's playlist and rule
//! are stored as JSON text, its targets as one row per area or device. Reads return
//! [`Schedule`]s with their targets; writes take the use case's connection (`&mut *tx`).

use std::collections::HashMap;

use nguon_protocol::OnPreempt;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::relay::RelayStream;
use crate::domain::schedule::{Rule, RuleSpec, Schedule, Targets};
use crate::domain::scope::Caller;
use crate::error::{Error, Result};
use crate::store::{Backend, Conn, Store, from_ms, now_ms, placeholders};

/// How a preemption behaviour is stored.
pub fn on_preempt_str(o: OnPreempt) -> &'static str {
    match o {
        OnPreempt::Interrupt => "interrupt",
        OnPreempt::Resume => "resume",
    }
}

fn row_to_schedule(r: &AnyRow) -> Result<Schedule> {
    let media: String = r.try_get("media")?;
    let rule: String = r.try_get("rule")?;
    let priority: String = r.try_get("priority")?;
    let on_preempt: String = r.try_get("on_preempt")?;
    let tz_name: String = r.try_get("time_zone")?;
    let spec: RuleSpec = serde_json::from_str(&rule).map_err(Error::context("stored rule"))?;
    let parsed_rule = Rule::parse(&spec).ok();
    let relay: Option<RelayStream> = r
        .try_get::<Option<String>, _>("relay")?
        .map(|j| serde_json::from_str(&j))
        .transpose()
        .map_err(Error::context("stored relay"))?;
    Ok(Schedule {
        kind: if relay.is_some() { "relay" } else { "media" },
        relay,
        id: r.try_get("id")?,
        title: r.try_get("title")?,
        media: serde_json::from_str(&media).map_err(Error::context("stored media"))?,
        targets: Targets::default(),
        priority: priority.parse().unwrap_or_default(),
        rule: spec,
        tz: tz_name.parse().ok(),
        time_zone: tz_name,
        valid_from: r.try_get::<Option<i64>, _>("valid_from")?.map(from_ms),
        valid_until: r.try_get::<Option<i64>, _>("valid_until")?.map(from_ms),
        volume: r.try_get::<i64, _>("volume")?.clamp(0, 100) as u8,
        repeat: r.try_get::<i64, _>("repeat_count")?.max(1) as u32,
        on_preempt: if on_preempt == "resume" {
            OnPreempt::Resume
        } else {
            OnPreempt::Interrupt
        },
        repetition: r
            .try_get::<Option<String>, _>("repetition")?
            .map(|j| serde_json::from_str(&j))
            .transpose()
            .map_err(Error::context("stored repetition"))?,
        valid_for_s: r
            .try_get::<Option<i64>, _>("valid_for_s")?
            .and_then(|v| u32::try_from(v).ok()),
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        created_at: from_ms(r.try_get("created_at")?),
        updated_at: from_ms(r.try_get("updated_at")?),
        parsed_rule,
    })
}

const COLUMNS: &str = "id, title, media, priority, rule, time_zone, valid_from, valid_until, volume, repeat_count, \
                       on_preempt, enabled, created_at, updated_at, repetition, valid_for_s, relay";

/// A relay schedule's stream as stored (JSON text, NULL for a media schedule).
fn relay_json(s: &Schedule) -> Result<Option<String>> {
    s.relay
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| Error::internal_from("json", e))
}

/// A schedule's repetition as stored (JSON text, NULL when it plays once).
fn repetition_json(s: &Schedule) -> Result<Option<String>> {
    s.repetition
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| Error::internal_from("json", e))
}

/// Serialise the writers of schedules until the caller's transaction ends, so that a check that
/// reads every committed schedule (the manifest cap) cannot miss a concurrent write: on
/// PostgreSQL a transaction-scoped advisory lock; SQLite's write transaction (`BEGIN IMMEDIATE`)
/// holds the database's one write lock already.
pub async fn lock_writes(conn: &mut Conn, backend: Backend) -> Result<()> {
    if backend == Backend::Postgres {
        // "nguon schedules" as a 64-bit key.
        sqlx::query("SELECT pg_advisory_xact_lock(7454303021560311)")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Every schedule (or only enabled ones) with its targets: two queries.
pub async fn load_all(store: &Store, only_enabled: bool) -> Result<Vec<Schedule>> {
    let sql = if only_enabled {
        format!("SELECT {COLUMNS} FROM schedules WHERE enabled = 1 ORDER BY created_at DESC, id")
    } else {
        format!("SELECT {COLUMNS} FROM schedules ORDER BY created_at DESC, id")
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&store.pool)
        .await?;
    let mut out = rows.iter().map(row_to_schedule).collect::<Result<Vec<_>>>()?;
    let targets = sqlx::query("SELECT schedule_id, kind, target FROM schedule_targets ORDER BY target")
        .fetch_all(&store.pool)
        .await?;
    attach_targets(&mut out, &targets)?;
    Ok(out)
}

/// The schedules every target of which (areas, and devices' areas) is inside the caller's scope,
/// newest first, filtered in SQL (see `store::scope::scope_sql`).
pub async fn load_visible(store: &Store, caller: &Caller) -> Result<Vec<Schedule>> {
    if caller.scope_areas.is_none() {
        return load_all(store, false).await;
    }
    let scope = crate::store::scope::scope_sql(
        caller,
        "COALESCE(CASE WHEN t.kind = 'device' THEN d.area ELSE t.target END, '')",
        1,
    );
    let hidden = format!(
        "NOT EXISTS (SELECT 1 FROM schedule_targets t LEFT JOIN devices d ON t.kind = 'device' AND d.id = t.target \
         WHERE t.schedule_id = s.id AND NOT ({}))",
        scope.sql
    );
    let sql = format!("SELECT {COLUMNS} FROM schedules s WHERE {hidden} ORDER BY created_at DESC, id");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in &scope.binds {
        q = q.bind(b.clone());
    }
    let rows = q.fetch_all(&store.pool).await?;
    let mut out = rows.iter().map(row_to_schedule).collect::<Result<Vec<_>>>()?;
    let sql = format!(
        "SELECT x.schedule_id, x.kind, x.target FROM schedule_targets x JOIN schedules s ON s.id = x.schedule_id \
         WHERE {hidden} ORDER BY x.target"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in &scope.binds {
        q = q.bind(b.clone());
    }
    attach_targets(&mut out, &q.fetch_all(&store.pool).await?)?;
    Ok(out)
}

/// Add each `(schedule_id, kind, target)` row to its schedule's targets (rows in target order).
fn attach_targets(out: &mut [Schedule], rows: &[AnyRow]) -> Result<()> {
    let index: HashMap<String, usize> = out.iter().enumerate().map(|(i, s)| (s.id.clone(), i)).collect();
    for t in rows {
        let sid: String = t.try_get("schedule_id")?;
        let Some(&i) = index.get(&sid) else { continue };
        add_target(&mut out[i].targets, t.try_get("kind")?, t.try_get("target")?);
    }
    Ok(())
}

fn add_target(targets: &mut Targets, kind: String, target: String) {
    if kind == "area" {
        targets.areas.push(target);
    } else {
        targets.devices.push(target);
    }
}

/// One schedule with its targets; 404 if there is none.
pub async fn get(store: &Store, id: &str) -> Result<Schedule> {
    let mut conn = store.pool.acquire().await?;
    get_in(&mut conn, id).await
}

/// [`get`] on the use case's connection (inside its transaction: what it has just written).
pub async fn get_in(conn: &mut Conn, id: &str) -> Result<Schedule> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM schedules WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::NotFound(format!("schedule {id}")))?;
    let mut s = row_to_schedule(&row)?;
    let targets =
        sqlx::query("SELECT kind, target FROM schedule_targets WHERE schedule_id = $1 ORDER BY target")
            .bind(id.to_string())
            .fetch_all(&mut *conn)
            .await?;
    for t in targets {
        add_target(&mut s.targets, t.try_get("kind")?, t.try_get("target")?);
    }
    Ok(s)
}

/// Insert a new schedule and its targets.
pub async fn insert(conn: &mut Conn, s: &Schedule) -> Result<()> {
    sqlx::query(
        "INSERT INTO schedules (id, title, media, priority, rule, time_zone, valid_from, valid_until, volume, \
         repeat_count, on_preempt, enabled, created_at, updated_at, repetition, valid_for_s, relay) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(s.id.clone())
    .bind(s.title.clone())
    .bind(serde_json::to_string(&s.media).map_err(|e| Error::internal_from("json", e))?)
    .bind(s.priority.as_str())
    .bind(serde_json::to_string(&s.rule).map_err(|e| Error::internal_from("json", e))?)
    .bind(s.time_zone.clone())
    .bind(s.valid_from.map(|t| t.timestamp_millis()))
    .bind(s.valid_until.map(|t| t.timestamp_millis()))
    .bind(s.volume as i64)
    .bind(s.repeat as i64)
    .bind(on_preempt_str(s.on_preempt))
    .bind(i64::from(s.enabled))
    .bind(s.created_at.timestamp_millis())
    .bind(s.updated_at.timestamp_millis())
    .bind(repetition_json(s)?)
    .bind(s.valid_for_s.map(i64::from))
    .bind(relay_json(s)?)
    .execute(&mut *conn)
    .await?;
    record_enabled(conn, &s.id, s.enabled, s.created_at.timestamp_millis()).await?;
    insert_targets(conn, &s.id, &s.targets).await
}

/// Append a schedule's enabled flag from `at` on to its history (`schedule_enablement`, read
/// by the report), in the caller's transaction.
async fn record_enabled(conn: &mut Conn, id: &str, enabled: bool, at: i64) -> Result<()> {
    sqlx::query("INSERT INTO schedule_enablement (schedule_id, at, enabled) VALUES ($1, $2, $3)")
        .bind(id.to_string())
        .bind(at)
        .bind(i64::from(enabled))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn insert_targets(conn: &mut Conn, id: &str, targets: &Targets) -> Result<()> {
    for (kind, list) in [("area", &targets.areas), ("device", &targets.devices)] {
        for t in list {
            sqlx::query("INSERT INTO schedule_targets (schedule_id, kind, target) VALUES ($1, $2, $3)")
                .bind(id.to_string())
                .bind(kind)
                .bind(t.clone())
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// Replace schedule `s.id`'s content, enabled flag and targets (`created_at` stays); stamps
/// `updated_at` now.
pub async fn update(conn: &mut Conn, s: &Schedule) -> Result<()> {
    sqlx::query(
        "UPDATE schedules SET title = $1, media = $2, priority = $3, rule = $4, time_zone = $5, valid_from = $6, \
         valid_until = $7, volume = $8, repeat_count = $9, on_preempt = $10, enabled = $11, updated_at = $12, \
         repetition = $13, valid_for_s = $14, relay = $16 WHERE id = $15",
    )
    .bind(s.title.clone())
    .bind(serde_json::to_string(&s.media).map_err(|e| Error::internal_from("json", e))?)
    .bind(s.priority.as_str())
    .bind(serde_json::to_string(&s.rule).map_err(|e| Error::internal_from("json", e))?)
    .bind(s.time_zone.clone())
    .bind(s.valid_from.map(|t| t.timestamp_millis()))
    .bind(s.valid_until.map(|t| t.timestamp_millis()))
    .bind(s.volume as i64)
    .bind(s.repeat as i64)
    .bind(on_preempt_str(s.on_preempt))
    .bind(i64::from(s.enabled))
    .bind(now_ms())
    .bind(repetition_json(s)?)
    .bind(s.valid_for_s.map(i64::from))
    .bind(s.id.clone())
    .bind(relay_json(s)?)
    .execute(&mut *conn)
    .await?;
    record_enabled(conn, &s.id, s.enabled, now_ms()).await?;
    sqlx::query("DELETE FROM schedule_targets WHERE schedule_id = $1")
        .bind(s.id.clone())
        .execute(&mut *conn)
        .await?;
    insert_targets(conn, &s.id, &s.targets).await
}

/// Enable or disable a schedule; stamps `updated_at` now.
pub async fn set_enabled(conn: &mut Conn, id: &str, enabled: bool) -> Result<()> {
    let now = now_ms();
    sqlx::query("UPDATE schedules SET enabled = $1, updated_at = $2 WHERE id = $3")
        .bind(enabled as i64)
        .bind(now)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    record_enabled(conn, id, enabled, now).await
}

/// Delete a schedule, its targets and its enabled history.
pub async fn delete(conn: &mut Conn, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM schedule_enablement WHERE schedule_id = $1")
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM schedule_targets WHERE schedule_id = $1")
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM schedules WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The durations (ms) of the media files among `shas` that exist, by sha256: what playlists take.
pub async fn media_durations(store: &Store, shas: &[String]) -> Result<HashMap<String, i64>> {
    let mut wanted: Vec<String> = shas.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let mut out = HashMap::with_capacity(wanted.len());
    for chunk in wanted.chunks(500) {
        let sql = format!(
            "SELECT sha256, duration_ms FROM media WHERE sha256 IN ({})",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for sha in chunk {
            q = q.bind(sha.clone());
        }
        for r in q.fetch_all(&store.pool).await? {
            out.insert(r.try_get("sha256")?, r.try_get("duration_ms")?);
        }
    }
    Ok(out)
}
