//! The alarms' SQL (issue 12 §6): what the alarm worker reads to evaluate the conditions
//! (`domain::alarm`), raising (`INSERT ... ON CONFLICT DO NOTHING` against the partial unique
//! index `alarms_one_open`: at most one open alarm per kind and subject, however many evaluations
//! run at once) and clearing alarms, the lists and the acknowledgement, and the per-area offline
//! threshold (`area_alarm_settings`).

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::alarm::{Alarm, AlarmKind, AlarmState, Condition, DeviceFacts, PlayFacts};
use crate::domain::scope::Caller;
use crate::error::Result;
use crate::store::scope::scope_sql;
use crate::store::{Conn, Store, placeholders};

/// Every enabled device with its live status.
pub async fn device_facts(store: &Store) -> Result<Vec<DeviceFacts>> {
    let rows = sqlx::query(
        "SELECT d.id, d.area, s.online, s.last_seen, s.last_heartbeat, s.disk_free_bytes, s.disk_total_bytes \
         FROM devices d LEFT JOIN device_status s ON s.device_id = d.id WHERE d.enabled = 1",
    )
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DeviceFacts {
                id: r.try_get("id")?,
                area: r.try_get("area")?,
                online: r.try_get::<Option<i64>, _>("online")?.unwrap_or(0) != 0,
                last_seen: r.try_get("last_seen")?,
                last_heartbeat: r.try_get("last_heartbeat")?,
                disk_free: r.try_get("disk_free_bytes")?,
                disk_total: r.try_get("disk_total_bytes")?,
            })
        })
        .collect()
}

/// Each enabled device's latest proof of play received since `since` among those `filter`
/// keeps (an SQL condition on `plays`), latest by reception then occurrence.
async fn latest_plays(store: &Store, since: i64, filter: &str) -> Result<Vec<PlayFacts>> {
    let sql = format!(
        "SELECT p.device_id, d.area, p.item_id, p.outcome, p.reason, p.silent, p.max_rms_dbfs, p.relay_failed, p.received_at, \
         p.occurrence_at FROM plays p JOIN devices d ON d.id = p.device_id \
         JOIN (SELECT device_id, MAX(received_at) AS latest FROM plays WHERE received_at >= $1 AND ({filter}) \
               GROUP BY device_id) l ON l.device_id = p.device_id AND l.latest = p.received_at \
         WHERE d.enabled = 1 AND ({filter}) ORDER BY p.device_id, p.occurrence_at"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(since)
        .fetch_all(&store.pool)
        .await?;
    let mut by: HashMap<String, PlayFacts> = HashMap::new();
    for r in &rows {
        // Rows of one device come by occurrence: the last one is its latest.
        let p = play(r)?;
        by.insert(p.device_id.clone(), p);
    }
    let mut out: Vec<PlayFacts> = by.into_values().collect();
    out.sort_by(|a, b| a.device_id.cmp(&b.device_id));
    Ok(out)
}

fn play(r: &AnyRow) -> Result<PlayFacts> {
    Ok(PlayFacts {
        device_id: r.try_get("device_id")?,
        area: r.try_get("area")?,
        item_id: r.try_get("item_id")?,
        outcome: r.try_get("outcome")?,
        reason: r.try_get("reason")?,
        silent: r.try_get::<i64, _>("silent")? != 0,
        max_rms_dbfs: r.try_get("max_rms_dbfs")?,
        relay_failed: r.try_get::<Option<i64>, _>("relay_failed")?.unwrap_or(0) != 0,
    })
}

/// Each device's latest decisive proof of play (failed, or played in any way) since `since`.
pub async fn latest_decisive_plays(store: &Store, since: i64) -> Result<Vec<PlayFacts>> {
    latest_plays(
        store,
        since,
        "outcome IN ('failed', 'played', 'played_late', 'resumed')",
    )
    .await
}

/// Each device's latest proof of play whose loudness was measured (or that was found silent).
pub async fn latest_measured_plays(store: &Store, since: i64) -> Result<Vec<PlayFacts>> {
    latest_plays(store, since, "max_rms_dbfs IS NOT NULL OR silent = 1").await
}

/// Each device's latest relay play (a failed one raises `relay_failed`; a good one clears it).
pub async fn latest_relay_plays(store: &Store, since: i64) -> Result<Vec<PlayFacts>> {
    latest_plays(store, since, "relay_failed IS NOT NULL").await
}

/// An emergency candidate: a catch-up play-now (emergency or priority; the caller reads the
/// priority from `body`) issued before `issued_before` whose window is still open at `now`.
#[derive(Debug, Clone)]
pub struct CatchUp {
    /// Command id.
    pub id: String,
    /// The command JSON.
    pub body: String,
    /// `device` or `area`.
    pub target_kind: String,
    /// Device id or area code.
    pub target: String,
}

/// The catch-up play-nows issued before `issued_before` and not expired at `now`.
pub async fn catch_up_commands(store: &Store, now: i64, issued_before: i64) -> Result<Vec<CatchUp>> {
    let rows = sqlx::query(
        "SELECT id, body, target_kind, target FROM commands WHERE catch_up = 1 AND action = 'play_now' \
         AND failed_at IS NULL AND issued_at <= $1 AND expires_at > $2 ORDER BY issued_at",
    )
    .bind(issued_before)
    .bind(now)
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(CatchUp {
                id: r.try_get("id")?,
                body: r.try_get("body")?,
                target_kind: r.try_get("target_kind")?,
                target: r.try_get("target")?,
            })
        })
        .collect()
}

/// The per-area offline thresholds, ms.
pub async fn area_offline_ms(store: &Store) -> Result<HashMap<String, i64>> {
    let rows = sqlx::query("SELECT area, offline_after_s FROM area_alarm_settings")
        .fetch_all(&store.pool)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("area")?, r.try_get::<i64, _>("offline_after_s")? * 1000)))
        .collect()
}

/// Set (`Some`) or remove (`None`) an area's own offline threshold; the previous value.
pub async fn set_area_offline(
    conn: &mut Conn,
    area: &str,
    secs: Option<i64>,
    now: i64,
) -> Result<Option<i64>> {
    let before = sqlx::query("SELECT offline_after_s FROM area_alarm_settings WHERE area = $1")
        .bind(area.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| r.try_get::<i64, _>("offline_after_s"))
        .transpose()?;
    sqlx::query("DELETE FROM area_alarm_settings WHERE area = $1")
        .bind(area.to_string())
        .execute(&mut *conn)
        .await?;
    if let Some(s) = secs {
        sqlx::query(
            "INSERT INTO area_alarm_settings (area, offline_after_s, updated_at) VALUES ($1, $2, $3)",
        )
        .bind(area.to_string())
        .bind(s)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(before)
}

/// An open alarm's key and id.
#[derive(Debug, Clone)]
pub struct Open {
    /// Id.
    pub id: String,
    /// Kind (stored name).
    pub kind: String,
    /// Subject type.
    pub subject_type: String,
    /// Subject id.
    pub subject_id: String,
}

/// Every open (not cleared) alarm.
pub async fn open(store: &Store) -> Result<Vec<Open>> {
    let rows = sqlx::query("SELECT id, kind, subject_type, subject_id FROM alarms WHERE cleared_at IS NULL")
        .fetch_all(&store.pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Open {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                subject_type: r.try_get("subject_type")?,
                subject_id: r.try_get("subject_id")?,
            })
        })
        .collect()
}

/// Raise an alarm for `c` unless one is open for its kind and subject (the unique index decides,
/// also against a concurrent evaluation); the new alarm if this call raised it.
pub async fn raise(conn: &mut Conn, c: &Condition, now: i64) -> Result<Option<Alarm>> {
    let a = Alarm {
        id: uuid::Uuid::now_v7().to_string(),
        kind: c.kind,
        subject_type: c.subject_type.to_string(),
        subject_id: c.subject_id.clone(),
        area: c.area.clone(),
        severity: c.kind.severity().to_string(),
        message: c.message.clone(),
        raised_at: now,
        acked_at: None,
        acked_by: None,
        cleared_at: None,
    };
    let done = sqlx::query(
        "INSERT INTO alarms (id, kind, subject_type, subject_id, area, severity, message, raised_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
    )
    .bind(a.id.clone())
    .bind(a.kind.as_str())
    .bind(a.subject_type.clone())
    .bind(a.subject_id.clone())
    .bind(a.area.clone())
    .bind(a.severity.clone())
    .bind(a.message.clone())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok((done.rows_affected() == 1).then_some(a))
}

/// Clear the open alarm `id` (its condition ended); whether it was open.
pub async fn clear(conn: &mut Conn, id: &str, now: i64) -> Result<bool> {
    let done = sqlx::query("UPDATE alarms SET cleared_at = $1 WHERE id = $2 AND cleared_at IS NULL")
        .bind(now)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

const COLUMNS: &str =
    "id, kind, subject_type, subject_id, area, severity, message, raised_at, acked_at, acked_by, cleared_at";

fn alarm(r: &AnyRow) -> Result<Alarm> {
    let kind: String = r.try_get("kind")?;
    Ok(Alarm {
        id: r.try_get("id")?,
        kind: AlarmKind::parse(&kind, "kind")?,
        subject_type: r.try_get("subject_type")?,
        subject_id: r.try_get("subject_id")?,
        area: r.try_get("area")?,
        severity: r.try_get("severity")?,
        message: r.try_get("message")?,
        raised_at: r.try_get("raised_at")?,
        acked_at: r.try_get("acked_at")?,
        acked_by: r.try_get("acked_by")?,
        cleared_at: r.try_get("cleared_at")?,
    })
}

/// What a list keeps.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Open, acked or all.
    pub state: AlarmState,
    /// Only these areas (an area and its descendants, resolved by the caller).
    pub areas: Option<Vec<String>>,
    /// Only this kind.
    pub kind: Option<AlarmKind>,
    /// At most this many (newest first).
    pub limit: i64,
}

/// The alarms the caller may see that `f` keeps: open ones first (critical first), then by
/// time, newest first.
pub async fn list(store: &Store, caller: &Caller, f: &Filter) -> Result<Vec<Alarm>> {
    let scope = scope_sql(caller, "area", 1);
    let mut binds = scope.binds.clone();
    let mut sql = format!("SELECT {COLUMNS} FROM alarms WHERE {}", scope.sql);
    match f.state {
        AlarmState::Open => sql.push_str(" AND cleared_at IS NULL AND acked_at IS NULL"),
        AlarmState::Acked => sql.push_str(" AND cleared_at IS NULL AND acked_at IS NOT NULL"),
        AlarmState::All => {}
    }
    if let Some(areas) = &f.areas {
        if areas.is_empty() {
            return Ok(Vec::new());
        }
        sql.push_str(&format!(
            " AND area IN ({})",
            placeholders(binds.len() + 1, areas.len())
        ));
        binds.extend(areas.iter().cloned());
    }
    if let Some(k) = f.kind {
        sql.push_str(&format!(" AND kind = ${}", binds.len() + 1));
        binds.push(k.as_str().to_string());
    }
    sql.push_str(&format!(
        " ORDER BY CASE WHEN cleared_at IS NULL THEN 0 ELSE 1 END, CASE WHEN severity = 'critical' THEN 0 ELSE 1 END, \
         raised_at DESC, id DESC LIMIT ${}",
        binds.len() + 1
    ));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(b);
    }
    let rows = q.bind(f.limit.max(1)).fetch_all(&store.pool).await?;
    rows.iter().map(alarm).collect()
}

/// Open (not cleared, not acknowledged) alarms the caller may see: the console's badge.
pub async fn count_open(store: &Store, caller: &Caller) -> Result<i64> {
    let scope = scope_sql(caller, "area", 1);
    let sql = format!(
        "SELECT COUNT(*) AS n FROM alarms WHERE cleared_at IS NULL AND acked_at IS NULL AND {}",
        scope.sql
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in scope.binds {
        q = q.bind(b);
    }
    Ok(q.fetch_one(&store.pool).await?.try_get::<i64, _>("n")?)
}

/// One alarm.
pub async fn get(store: &Store, id: &str) -> Result<Option<Alarm>> {
    let mut conn = store.pool.acquire().await?;
    get_in(&mut conn, id).await
}

/// One alarm, on `conn`.
pub async fn get_in(conn: &mut Conn, id: &str) -> Result<Option<Alarm>> {
    let sql = format!("SELECT {COLUMNS} FROM alarms WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(alarm)
        .transpose()
}

/// Acknowledge `id` by `by` (only the first acknowledgement counts).
pub async fn ack(conn: &mut Conn, id: &str, by: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE alarms SET acked_at = $1, acked_by = $2 WHERE id = $3 AND acked_at IS NULL")
        .bind(now)
        .bind(by.to_string())
        .bind(id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}
