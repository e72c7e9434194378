//! Tables `commune_autonomy` (each commune's setting) and `commune_requests` (the questions put to
//! communes and their answers; `domain::autonomy`). The dispatcher keeps the questions in step
//! with the schedules ([`ensure`]) and closes the ones nobody answered in time ([`due`], then
//! [`save_answer`], which the answer use case writes too).

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::autonomy::report::Asked;
use crate::domain::autonomy::{First, Kind, Needed, Request, Setting, State, Unanswered};
use crate::error::Result;
use crate::store::{Conn, Store, from_ms};

fn row_to_setting(r: &AnyRow) -> Result<Setting> {
    Ok(Setting {
        area: r.try_get("area")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        unanswered: Unanswered::parse(&r.try_get::<String, _>("unanswered")?),
        enabled_since: r.try_get("enabled_since")?,
        updated_at: r.try_get("updated_at")?,
        updated_by: r.try_get("updated_by")?,
    })
}

/// Every stored setting.
pub async fn settings(store: &Store) -> Result<Vec<Setting>> {
    sqlx::query("SELECT area, enabled, unanswered, enabled_since, updated_at, updated_by FROM commune_autonomy ORDER BY area")
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(row_to_setting)
        .collect()
}

/// One commune's setting, if stored.
pub async fn setting(conn: &mut Conn, area: &str) -> Result<Option<Setting>> {
    sqlx::query("SELECT area, enabled, unanswered, enabled_since, updated_at, updated_by FROM commune_autonomy WHERE area = $1")
        .bind(area.to_string())
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(row_to_setting)
        .transpose()
}

/// Store a commune's setting.
pub async fn save_setting(conn: &mut Conn, s: &Setting) -> Result<()> {
    sqlx::query(
        "INSERT INTO commune_autonomy (area, enabled, unanswered, enabled_since, updated_at, updated_by) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (area) DO UPDATE SET enabled = $2, unanswered = $3, \
         enabled_since = $4, updated_at = $5, updated_by = $6",
    )
    .bind(s.area.clone())
    .bind(i64::from(s.enabled))
    .bind(s.unanswered.as_str())
    .bind(s.enabled_since)
    .bind(s.updated_at)
    .bind(s.updated_by.clone())
    .execute(conn)
    .await?;
    Ok(())
}

const COLUMNS: &str = "r.id, r.area, r.kind, r.schedule_id, r.other_id, r.revision, r.first_at, r.state, r.slot_at, \
                       r.reason, r.first_choice, r.outcome, r.asked_at, r.answered_at, r.answered_by, \
                       s.title AS title, o.title AS other_title";

const FROM: &str = "commune_requests r LEFT JOIN schedules s ON s.id = r.schedule_id \
                    LEFT JOIN schedules o ON o.id = r.other_id";

fn row_to_request(r: &AnyRow) -> Result<Request> {
    let other: String = r.try_get("other_id")?;
    Ok(Request {
        id: r.try_get("id")?,
        area: r.try_get("area")?,
        kind: Kind::parse(&r.try_get::<String, _>("kind")?),
        schedule_id: r.try_get("schedule_id")?,
        title: r.try_get::<Option<String>, _>("title")?.unwrap_or_default(),
        other_title: if other.is_empty() {
            None
        } else {
            Some(r.try_get::<Option<String>, _>("other_title")?.unwrap_or_default())
        },
        other_id: (!other.is_empty()).then_some(other),
        first_at: r.try_get::<Option<i64>, _>("first_at")?.map(from_ms),
        state: State::parse(&r.try_get::<String, _>("state")?),
        slot_at: r.try_get::<Option<i64>, _>("slot_at")?.map(from_ms),
        reason: r.try_get("reason")?,
        first: r
            .try_get::<Option<String>, _>("first_choice")?
            .map(|f| First::parse(&f)),
        outcome: r.try_get("outcome")?,
        asked_at: from_ms(r.try_get("asked_at")?),
        answered_at: r.try_get::<Option<i64>, _>("answered_at")?.map(from_ms),
        answered_by: r.try_get("answered_by")?,
        revision: r.try_get("revision")?,
    })
}

/// Every question, newest first.
pub async fn requests(store: &Store) -> Result<Vec<Request>> {
    let sql = format!("SELECT {COLUMNS} FROM {FROM} ORDER BY r.asked_at DESC, r.id");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(row_to_request)
        .collect()
}

/// One question (404 when absent).
pub async fn get(conn: &mut Conn, id: &str) -> Result<Option<Request>> {
    let sql = format!("SELECT {COLUMNS} FROM {FROM} WHERE r.id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(row_to_request)
        .transpose()
}

/// Store an answer; `only_pending`: only if the question is still pending (an unanswered
/// outcome never overwrites an answer). Whether a row changed.
pub async fn save_answer(conn: &mut Conn, r: &Request, only_pending: bool) -> Result<bool> {
    let sql = format!(
        "UPDATE commune_requests SET state = $2, slot_at = $3, reason = $4, first_choice = $5, outcome = $6, \
         answered_at = $7, answered_by = $8 WHERE id = $1{}",
        if only_pending {
            " AND state = 'pending'"
        } else {
            ""
        }
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(r.id.clone())
        .bind(r.state.as_str())
        .bind(r.slot_at.map(|t| t.timestamp_millis()))
        .bind(r.reason.clone())
        .bind(r.first.map(|f| f.as_str()))
        .bind(r.outcome.clone())
        .bind(r.answered_at.map(|t| t.timestamp_millis()))
        .bind(r.answered_by.clone())
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// A question's key: commune, kind, schedule, other schedule.
type Key = (String, Kind, String, String);
/// What [`ensure`] reads of a stored question: id, revision, state, first occurrence.
type StoredRow = (String, i64, String, Option<i64>);

/// Make the stored questions match `needed` at `now`: ask the new ones, ask again those whose
/// schedule changed (a new revision clears the answer), fill in a pending question's first
/// occurrence once one is in the window, and drop pending questions no longer raised. Answered
/// ones stay (the reports count them). Returns the number of rows written.
pub async fn ensure(conn: &mut Conn, needed: &[Needed], now: i64) -> Result<usize> {
    let mut stored: HashMap<Key, StoredRow> = HashMap::new();
    for r in sqlx::query(
        "SELECT id, area, kind, schedule_id, other_id, revision, state, first_at FROM commune_requests",
    )
    .fetch_all(&mut *conn)
    .await?
    {
        stored.insert(
            (
                r.try_get("area")?,
                Kind::parse(&r.try_get::<String, _>("kind")?),
                r.try_get("schedule_id")?,
                r.try_get("other_id")?,
            ),
            (
                r.try_get("id")?,
                r.try_get("revision")?,
                r.try_get("state")?,
                r.try_get("first_at")?,
            ),
        );
    }
    let mut written = 0;
    for n in needed {
        match stored.remove(&n.key()) {
            None => {
                sqlx::query(
                    "INSERT INTO commune_requests (id, area, kind, schedule_id, other_id, revision, first_at, state, asked_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8)",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(n.area.clone())
                .bind(n.kind.as_str())
                .bind(n.schedule_id.clone())
                .bind(n.other_id.clone())
                .bind(n.revision)
                .bind(n.first_at)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                written += 1;
            }
            Some((id, revision, _, _)) if revision != n.revision => {
                sqlx::query(
                    "UPDATE commune_requests SET revision = $2, first_at = $3, state = 'pending', slot_at = NULL, \
                     reason = NULL, first_choice = NULL, outcome = NULL, asked_at = $4, answered_at = NULL, \
                     answered_by = NULL WHERE id = $1",
                )
                .bind(id)
                .bind(n.revision)
                .bind(n.first_at)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                written += 1;
            }
            Some((id, _, state, None)) if state == "pending" && n.first_at.is_some() => {
                sqlx::query("UPDATE commune_requests SET first_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(n.first_at)
                    .execute(&mut *conn)
                    .await?;
                written += 1;
            }
            Some(_) => {}
        }
    }
    for (id, _, state, _) in stored.into_values() {
        if state == "pending" {
            sqlx::query("DELETE FROM commune_requests WHERE id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            written += 1;
        }
    }
    Ok(written)
}

/// The pending acceptance questions whose first occurrence is at or before `cutoff` (unix ms),
/// with their commune's policy.
pub async fn due(conn: &mut Conn, cutoff: i64) -> Result<Vec<(Request, Unanswered)>> {
    let sql = format!(
        "SELECT {COLUMNS}, a.unanswered AS policy FROM {FROM} LEFT JOIN commune_autonomy a ON a.area = r.area \
         WHERE r.state = 'pending' AND r.kind = 'acceptance' AND r.first_at IS NOT NULL AND r.first_at <= $1"
    );
    let mut out = Vec::new();
    for r in sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(cutoff)
        .fetch_all(conn)
        .await?
    {
        let policy = r
            .try_get::<Option<String>, _>("policy")?
            .map_or(Unanswered::Play, |p| Unanswered::parse(&p));
        out.push((row_to_request(&r)?, policy));
    }
    Ok(out)
}

/// The acceptance questions asked in `[from, to)` (unix ms), for the report.
pub async fn asked(store: &Store, from: i64, to: i64) -> Result<Vec<Asked>> {
    let mut out = Vec::new();
    for r in sqlx::query(
        "SELECT area, state, asked_at, answered_at FROM commune_requests \
         WHERE kind = 'acceptance' AND asked_at >= $1 AND asked_at < $2 ORDER BY area",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&store.pool)
    .await?
    {
        out.push(Asked {
            area: r.try_get("area")?,
            state: State::parse(&r.try_get::<String, _>("state")?),
            asked_at: r.try_get("asked_at")?,
            answered_at: r.try_get("answered_at")?,
        });
    }
    Ok(out)
}
