//! Tables `plays`, `device_events` and `commands` as the reports read them: the report API's
//! filtered lists (proofs of play, device events, one command with its acks), the console's recent
//! proofs of play, and the loads behind the broadcast report (areas, devices, the period's plays,
//! the schedules' enabled history and content, proof of display, published bulletins).
//! The command outbox itself (issuing, publishing) is `store::commands`.

use std::collections::{BTreeMap, HashMap};

use nguon_protocol::{PlayOutcome, Priority};
use serde::Serialize;
use sqlx::Row;

use crate::domain::report::counting::Toggle;
use crate::domain::report::records::{CommandReport, EventRecord, PlayRecord, RelayPlay};
use crate::domain::report::{AreaRow, PublishedBulletin, ReportDevice, ReportDisplay, ReportPlay};
use crate::domain::scope::Caller;
use crate::error::Result;
use crate::store::{Store, from_ms};

/// Filters of the proof-of-play list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlayFilter {
    /// Device id.
    pub device: Option<String>,
    /// Schedule id.
    pub schedule: Option<String>,
    /// Occurrences at or after (unix ms).
    pub since_ms: Option<i64>,
    /// Occurrences before (unix ms).
    pub until_ms: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

/// Proofs of play matching `f`, newest occurrence first.
pub async fn plays(store: &Store, f: &PlayFilter) -> Result<Vec<PlayRecord>> {
    let mut sql = String::from(
        "SELECT event_id, device_id, item_id, schedule_id, occurrence_at, sha256, priority, started_at, ended_at, \
         outcome, reason, received_at, max_rms_dbfs, silent, relay_ms, relay_reconnects, relay_failed FROM plays \
         WHERE 1 = 1",
    );
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if f.device.is_some() {
        sql.push_str(&format!(" AND device_id = {}", next()));
    }
    if f.schedule.is_some() {
        sql.push_str(&format!(" AND schedule_id = {}", next()));
    }
    if f.since_ms.is_some() {
        sql.push_str(&format!(" AND occurrence_at >= {}", next()));
    }
    if f.until_ms.is_some() {
        sql.push_str(&format!(" AND occurrence_at < {}", next()));
    }
    sql.push_str(&format!(
        " ORDER BY occurrence_at DESC, event_id LIMIT {}",
        next()
    ));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    if let Some(d) = &f.device {
        query = query.bind(d.clone());
    }
    if let Some(s) = &f.schedule {
        query = query.bind(s.clone());
    }
    if let Some(t) = f.since_ms {
        query = query.bind(t);
    }
    if let Some(t) = f.until_ms {
        query = query.bind(t);
    }
    query = query.bind(f.limit);
    let rows = query.fetch_all(&store.pool).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(PlayRecord {
            event_id: r.try_get("event_id")?,
            device_id: r.try_get("device_id")?,
            item_id: r.try_get("item_id")?,
            schedule_id: r.try_get("schedule_id")?,
            occurrence_at: from_ms(r.try_get("occurrence_at")?),
            sha256: r.try_get("sha256")?,
            priority: r.try_get("priority")?,
            started_at: r.try_get::<Option<i64>, _>("started_at")?.map(from_ms),
            ended_at: r.try_get::<Option<i64>, _>("ended_at")?.map(from_ms),
            outcome: r.try_get("outcome")?,
            reason: r.try_get("reason")?,
            received_at: from_ms(r.try_get("received_at")?),
            max_rms_dbfs: r.try_get("max_rms_dbfs")?,
            silent: r.try_get::<i64, _>("silent")? != 0,
            relay: match r.try_get::<Option<i64>, _>("relay_ms")? {
                Some(stream_ms) => Some(RelayPlay {
                    stream_ms,
                    reconnects: r.try_get::<Option<i64>, _>("relay_reconnects")?.unwrap_or(0),
                    failed: r.try_get::<Option<i64>, _>("relay_failed")?.unwrap_or(0) != 0,
                }),
                None => None,
            },
        });
    }
    Ok(out)
}

/// Filters of the device event list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Device id.
    pub device: Option<String>,
    /// ack | rejected | media_error.
    pub kind: Option<String>,
    /// At most this many.
    pub limit: i64,
}

fn event_row(r: &sqlx::any::AnyRow) -> Result<EventRecord> {
    let body: String = r.try_get("body")?;
    Ok(EventRecord {
        event_id: r.try_get("event_id")?,
        device_id: r.try_get("device_id")?,
        kind: r.try_get("kind")?,
        message_id: r.try_get("message_id")?,
        body: serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
        at: from_ms(r.try_get("at")?),
        received_at: from_ms(r.try_get("received_at")?),
    })
}

/// Device events matching `f`, newest first.
pub async fn events(store: &Store, f: &EventFilter) -> Result<Vec<EventRecord>> {
    let mut sql = String::from(
        "SELECT event_id, device_id, kind, message_id, body, at, received_at FROM device_events WHERE 1 = 1",
    );
    let mut n = 0;
    if f.device.is_some() {
        n += 1;
        sql.push_str(&format!(" AND device_id = ${n}"));
    }
    if f.kind.is_some() {
        n += 1;
        sql.push_str(&format!(" AND kind = ${n}"));
    }
    sql.push_str(&format!(" ORDER BY at DESC, event_id LIMIT ${}", n + 1));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    if let Some(d) = &f.device {
        query = query.bind(d.clone());
    }
    if let Some(k) = &f.kind {
        query = query.bind(k.clone());
    }
    let rows = query.bind(f.limit).fetch_all(&store.pool).await?;
    rows.iter().map(event_row).collect()
}

/// A command with the acks received for it, by device then time (`None`: no such command).
pub async fn command(store: &Store, id: &str) -> Result<Option<CommandReport>> {
    let Some(r) = sqlx::query(
        "SELECT id, target_kind, target, topic, action, body, issued_at, expires_at, issued_by FROM commands WHERE id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(&store.pool)
    .await?
    else {
        return Ok(None);
    };
    let acks = sqlx::query(
        "SELECT event_id, device_id, kind, message_id, body, at, received_at FROM device_events \
         WHERE message_id = $1 AND kind = 'ack' ORDER BY device_id, at",
    )
    .bind(id.to_string())
    .fetch_all(&store.pool)
    .await?;
    let body: String = r.try_get("body")?;
    Ok(Some(CommandReport {
        id: r.try_get("id")?,
        target_kind: r.try_get("target_kind")?,
        target: r.try_get("target")?,
        topic: r.try_get("topic")?,
        action: r.try_get("action")?,
        command: serde_json::from_str(&body).unwrap_or_default(),
        issued_at: from_ms(r.try_get("issued_at")?),
        expires_at: from_ms(r.try_get("expires_at")?),
        issued_by: r.try_get("issued_by")?,
        acks: acks.iter().map(event_row).collect::<Result<_>>()?,
        tracking: Default::default(),
        repetitions: Vec::new(),
    }))
}

/// Which recent proofs of play the console lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecentPlays {
    /// All of them.
    All,
    /// Emergency priority only.
    Emergencies,
    /// Failed or missed only.
    Failures,
}

impl RecentPlays {
    fn condition(self) -> &'static str {
        match self {
            RecentPlays::All => "1 = 1",
            RecentPlays::Emergencies => "p.priority = 'emergency'",
            RecentPlays::Failures => "p.outcome IN ('failed', 'missed')",
        }
    }
}

/// A recent proof of play as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecentPlay {
    /// Device.
    pub device_id: String,
    /// Priority.
    pub priority: String,
    /// Outcome.
    pub outcome: String,
    /// Why.
    pub reason: Option<String>,
    /// The media's title (empty when the file is unknown).
    pub title: String,
    /// Started, else the occurrence (unix ms).
    pub at: i64,
}

/// The latest received proofs of play of `which` kind on the caller's devices (or on `device`
/// only), newest first, at most `limit`.
pub async fn recent_plays(
    store: &Store,
    caller: &Caller,
    which: RecentPlays,
    limit: usize,
    device: Option<&str>,
) -> Result<Vec<RecentPlay>> {
    let mut sql = String::from(
        "SELECT p.device_id, p.priority, p.outcome, p.reason, p.started_at, p.occurrence_at, p.received_at, m.title, d.area \
         FROM plays p JOIN devices d ON d.id = p.device_id LEFT JOIN media_loudness ml ON ml.rendition_sha256 = p.sha256 \
         LEFT JOIN media m ON m.sha256 = COALESCE(ml.sha256, p.sha256) WHERE ",
    );
    sql.push_str(which.condition());
    let scope = crate::store::scope::scope_sql(caller, "d.area", 1);
    sql.push_str(&format!(" AND {}", scope.sql));
    if device.is_some() {
        sql.push_str(&format!(" AND p.device_id = ${}", scope.next(1)));
    }
    sql.push_str(&format!(" ORDER BY p.received_at DESC LIMIT {limit}"));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in scope.binds {
        q = q.bind(b);
    }
    if let Some(d) = device {
        q = q.bind(d.to_string());
    }
    let rows = q.fetch_all(&store.pool).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let started: Option<i64> = r.try_get("started_at")?;
        let occ: i64 = r.try_get("occurrence_at")?;
        out.push(RecentPlay {
            device_id: r.try_get("device_id")?,
            priority: r.try_get("priority")?,
            outcome: r.try_get("outcome")?,
            reason: r.try_get("reason")?,
            title: r.try_get::<Option<String>, _>("title")?.unwrap_or_default(),
            at: started.unwrap_or(occ),
        });
    }
    Ok(out)
}

/// Every area by code, as the report reads it.
pub async fn areas(store: &Store) -> Result<BTreeMap<String, AreaRow>> {
    let rows = sqlx::query("SELECT code, name, parent, level FROM areas ORDER BY code")
        .fetch_all(&store.pool)
        .await?;
    let mut out = BTreeMap::new();
    for r in rows {
        let a = AreaRow {
            code: r.try_get("code")?,
            name: r.try_get("name")?,
            parent: r.try_get("parent")?,
            level: r.try_get("level")?,
        };
        out.insert(a.code.clone(), a);
    }
    Ok(out)
}

/// Every device with its kind, area, registration time and whether it is online now.
pub async fn devices(store: &Store) -> Result<Vec<ReportDevice>> {
    let rows = sqlx::query(
        "SELECT d.id, d.kind, d.area, d.created_at, s.online FROM devices d LEFT JOIN device_status s ON s.device_id = d.id",
    )
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ReportDevice {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                area: r.try_get("area")?,
                created_at: r.try_get("created_at")?,
                online: r.try_get::<Option<i64>, _>("online")?.unwrap_or(0) != 0,
            })
        })
        .collect()
}

/// A stored wire name (`played`, `emergency`, ...) as its protocol enum; `None` when unknown.
fn wire<T: serde::de::DeserializeOwned>(name: String) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name)).ok()
}

/// The proofs of play whose occurrence falls in `[from_ms, to_ms)` (language and category are
/// left empty: see [`schedule_content`]).
pub async fn period_plays(store: &Store, from_ms: i64, to_ms: i64) -> Result<Vec<ReportPlay>> {
    let rows = sqlx::query(
        "SELECT device_id, schedule_id, item_id, occurrence_at, sha256, priority, outcome, started_at, ended_at FROM plays \
         WHERE occurrence_at >= $1 AND occurrence_at < $2",
    )
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ReportPlay {
                device_id: r.try_get("device_id")?,
                schedule_id: r.try_get("schedule_id")?,
                item_id: r.try_get("item_id")?,
                occurrence_at: r.try_get("occurrence_at")?,
                sha256: r.try_get("sha256")?,
                priority: wire::<Priority>(r.try_get("priority")?),
                outcome: wire::<PlayOutcome>(r.try_get("outcome")?),
                started_at: r.try_get("started_at")?,
                ended_at: r.try_get("ended_at")?,
                language: String::new(),
                category: String::new(),
            })
        })
        .collect()
}

/// Every schedule's recorded enabled flags (`schedule_enablement`), by schedule.
pub async fn schedule_toggles(store: &Store) -> Result<HashMap<String, Vec<Toggle>>> {
    let rows = sqlx::query("SELECT schedule_id, at, enabled FROM schedule_enablement ORDER BY at")
        .fetch_all(&store.pool)
        .await?;
    let mut out: HashMap<String, Vec<Toggle>> = HashMap::new();
    for r in rows {
        out.entry(r.try_get("schedule_id")?).or_default().push(Toggle {
            at: r.try_get("at")?,
            enabled: r.try_get::<i64, _>("enabled")? != 0,
        });
    }
    Ok(out)
}

/// The content of the schedules made from bulletins: schedule → (language, category) of the
/// bulletin's speech it plays. Other schedules (audio from the library) are absent.
pub async fn schedule_content(store: &Store) -> Result<HashMap<String, (String, String)>> {
    let rows = sqlx::query(
        "SELECT s.schedule_id, s.language, b.category FROM bulletin_speech s JOIN bulletins b ON b.id = s.bulletin_id \
         WHERE s.schedule_id IS NOT NULL",
    )
    .fetch_all(&store.pool)
    .await?;
    let mut out = HashMap::new();
    for r in rows {
        out.insert(
            r.try_get("schedule_id")?,
            (r.try_get("language")?, r.try_get("category")?),
        );
    }
    Ok(out)
}

/// The proof-of-display records that started in `[from_ms, to_ms)`, with the bulletin's
/// category and the board's language (`vi` when it has none).
pub async fn period_displays(store: &Store, from_ms: i64, to_ms: i64) -> Result<Vec<ReportDisplay>> {
    let rows = sqlx::query(
        "SELECT x.device_id, x.bulletin_id, x.shown_from, x.shown_to, b.category, d.language FROM displays x \
         LEFT JOIN bulletins b ON b.id = x.bulletin_id LEFT JOIN devices d ON d.id = x.device_id \
         WHERE x.shown_from >= $1 AND x.shown_from < $2",
    )
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ReportDisplay {
                device_id: r.try_get("device_id")?,
                bulletin_id: r.try_get("bulletin_id")?,
                shown_from: r.try_get("shown_from")?,
                shown_to: r.try_get("shown_to")?,
                category: r.try_get::<Option<String>, _>("category")?.unwrap_or_default(),
                language: r
                    .try_get::<Option<String>, _>("language")?
                    .filter(|l| !l.is_empty())
                    .unwrap_or_else(|| "vi".into()),
            })
        })
        .collect()
}

/// The bulletins first published in `[from_ms, to_ms)` (still approved), with their targets.
pub async fn published_bulletins(store: &Store, from_ms: i64, to_ms: i64) -> Result<Vec<PublishedBulletin>> {
    let rows = sqlx::query(
        "SELECT b.id, t.area FROM bulletins b JOIN bulletin_targets t ON t.bulletin_id = b.id \
         WHERE b.status = 'approved' AND b.published_at >= $1 AND b.published_at < $2 ORDER BY b.id, t.area",
    )
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(&store.pool)
    .await?;
    let mut out: Vec<PublishedBulletin> = Vec::new();
    for r in rows {
        let id: String = r.try_get("id")?;
        let area: String = r.try_get("area")?;
        match out.last_mut() {
            Some(b) if b.id == id => b.targets.push(area),
            _ => out.push(PublishedBulletin {
                id,
                targets: vec![area],
            }),
        }
    }
    Ok(out)
}
