//! The SQL of citizens' feedback (issue 15): the items (`feedback`), their photos
//! (`feedback_photos`), the moderation's conditional moves (one `UPDATE … WHERE status IN (…)`,
//! so of two moderators at once one wins and the other gets a 409 naming what it found), the
//! waiting items for the SLA alarm, and the retention purge of personal fields.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::feedback::{Feedback, Status, Waiting};
use crate::domain::scope::Caller;
use crate::error::Result;
use crate::store::scope::scope_sql;
use crate::store::{Conn, Store};

const COLUMNS: &str = "id, code, area, policy_id, body, name, contact, show_name, status, organisation_id, answer, \
     answer_public, answered_by, received_at, due_at, assigned_at, answered_at, closed_at, purged_at";

/// A new item as stored.
#[derive(Debug, Clone)]
pub struct Insert<'a> {
    /// Id (uuid v7).
    pub id: &'a str,
    /// Tracking code.
    pub code: &'a str,
    /// Checked fields.
    pub f: &'a crate::domain::feedback::NewFeedback,
    /// Challenge salt (unique).
    pub challenge: &'a str,
    /// Unix ms.
    pub received_at: i64,
    /// SLA deadline.
    pub due_at: i64,
}

/// A stored photo.
#[derive(Debug, Clone)]
pub struct Photo {
    /// 1–3.
    pub n: i64,
    /// sha256 of the stored JPEG.
    pub sha256: String,
    /// Bytes.
    pub bytes: i64,
    /// Pixels.
    pub width: i64,
    /// Pixels.
    pub height: i64,
}

/// Whether a challenge salt was used already.
pub async fn challenge_used(conn: &mut Conn, salt: &str) -> Result<bool> {
    Ok(sqlx::query("SELECT 1 FROM feedback WHERE challenge = $1")
        .bind(salt.to_string())
        .fetch_optional(conn)
        .await?
        .is_some())
}

/// Insert an item and its photos.
pub async fn insert(conn: &mut Conn, i: &Insert<'_>, photos: &[Photo]) -> Result<()> {
    sqlx::query(
        "INSERT INTO feedback (id, code, area, policy_id, body, name, contact, show_name, status, challenge, received_at, due_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'received', $9, $10, $11)",
    )
    .bind(i.id.to_string())
    .bind(i.code.to_string())
    .bind(i.f.area.clone())
    .bind(i.f.policy_id.clone())
    .bind(i.f.text.clone())
    .bind(i.f.name.clone())
    .bind(i.f.contact.clone())
    .bind(i64::from(i.f.show_name))
    .bind(i.challenge.to_string())
    .bind(i.received_at)
    .bind(i.due_at)
    .execute(&mut *conn)
    .await?;
    for p in photos {
        sqlx::query(
            "INSERT INTO feedback_photos (feedback_id, n, sha256, bytes, width, height) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(i.id.to_string())
        .bind(p.n)
        .bind(p.sha256.clone())
        .bind(p.bytes)
        .bind(p.width)
        .bind(p.height)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn item(r: &AnyRow, photos: Vec<i64>, now: i64) -> Result<Feedback> {
    let status = Status::parse(&r.try_get::<String, _>("status")?, "status")?;
    let due_at: i64 = r.try_get("due_at")?;
    Ok(Feedback {
        id: r.try_get("id")?,
        code: r.try_get("code")?,
        area: r.try_get("area")?,
        policy_id: r.try_get("policy_id")?,
        text: r.try_get("body")?,
        name: r.try_get("name")?,
        contact: r.try_get("contact")?,
        show_name: r.try_get::<i64, _>("show_name")? != 0,
        status,
        organisation_id: r.try_get("organisation_id")?,
        answer: r.try_get("answer")?,
        answer_public: r.try_get::<i64, _>("answer_public")? != 0,
        answered_by: r.try_get("answered_by")?,
        received_at: r.try_get("received_at")?,
        due_at,
        assigned_at: r.try_get("assigned_at")?,
        answered_at: r.try_get("answered_at")?,
        closed_at: r.try_get("closed_at")?,
        purged_at: r.try_get("purged_at")?,
        photos,
        overdue: status.waiting() && now >= due_at,
    })
}

async fn photo_numbers(conn: &mut Conn, id: &str) -> Result<Vec<i64>> {
    let rows = sqlx::query("SELECT n FROM feedback_photos WHERE feedback_id = $1 ORDER BY n")
        .bind(id.to_string())
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| Ok(r.try_get("n")?)).collect()
}

/// One item by id or by tracking code (`by` is `id` or `code`).
pub async fn get_in(conn: &mut Conn, by: &str, value: &str, now: i64) -> Result<Option<Feedback>> {
    let column = if by == "code" { "code" } else { "id" };
    let sql = format!("SELECT {COLUMNS} FROM feedback WHERE {column} = $1");
    let Some(r) = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(value.to_string())
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let id: String = r.try_get("id")?;
    let photos = photo_numbers(conn, &id).await?;
    item(&r, photos, now).map(Some)
}

/// One item by id or code on the pool.
pub async fn get(store: &Store, by: &str, value: &str, now: i64) -> Result<Option<Feedback>> {
    let mut conn = store.pool.acquire().await?;
    get_in(&mut conn, by, value, now).await
}

/// Filter of the moderation queue.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this status.
    pub status: Option<Status>,
    /// Only waiting items past their deadline.
    pub overdue: bool,
    /// Only items assigned to this organisation.
    pub organisation_id: Option<String>,
    /// Only items about this policy.
    pub policy_id: Option<String>,
}

/// The items of the caller's scope, waiting ones by deadline first, then newest first (at most
/// 500).
pub async fn list(store: &Store, caller: &Caller, f: &Filter, now: i64) -> Result<Vec<Feedback>> {
    let scope = scope_sql(caller, "area", 1);
    let mut n = scope.next(1);
    let mut sql = format!("SELECT {COLUMNS} FROM feedback WHERE {}", scope.sql);
    let mut binds: Vec<String> = scope.binds.clone();
    if let Some(s) = f.status {
        sql.push_str(&format!(" AND status = ${n}"));
        binds.push(s.as_str().into());
        n += 1;
    }
    if let Some(o) = &f.organisation_id {
        sql.push_str(&format!(" AND organisation_id = ${n}"));
        binds.push(o.clone());
        n += 1;
    }
    if let Some(p) = &f.policy_id {
        sql.push_str(&format!(" AND policy_id = ${n}"));
        binds.push(p.clone());
        n += 1;
    }
    if f.overdue {
        sql.push_str(&format!(
            " AND status IN ('received', 'assigned') AND due_at <= ${n}"
        ));
    }
    sql.push_str(
        " ORDER BY CASE WHEN status IN ('received', 'assigned') THEN 0 ELSE 1 END, \
         CASE WHEN status IN ('received', 'assigned') THEN due_at ELSE 0 END, received_at DESC LIMIT 500",
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(b);
    }
    if f.overdue {
        q = q.bind(now);
    }
    let rows = q.fetch_all(&store.pool).await?;
    let photo_rows = sqlx::query("SELECT feedback_id, n FROM feedback_photos ORDER BY feedback_id, n")
        .fetch_all(&store.pool)
        .await?;
    let mut photos: std::collections::HashMap<String, Vec<i64>> = Default::default();
    for r in &photo_rows {
        photos
            .entry(r.try_get("feedback_id")?)
            .or_default()
            .push(r.try_get("n")?);
    }
    rows.iter()
        .map(|r| {
            let id: String = r.try_get("id")?;
            item(r, photos.remove(&id).unwrap_or_default(), now)
        })
        .collect()
}

/// The published answers (newest first, at most `limit`), without personal fields unless the
/// citizen chose to show the name.
pub async fn published(store: &Store, limit: i64, now: i64) -> Result<Vec<Feedback>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM feedback WHERE answer_public = 1 AND status IN ('answered', 'closed') \
         ORDER BY answered_at DESC LIMIT $1"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(limit)
        .fetch_all(&store.pool)
        .await?;
    rows.iter().map(|r| item(r, Vec::new(), now)).collect()
}

/// A move of the moderation: which statuses it starts from, and the columns it sets.
#[derive(Debug, Clone)]
pub enum Move {
    /// To `assigned` with the organisation (from received or assigned: a reassignment).
    Assign {
        /// Organisation id.
        organisation_id: String,
    },
    /// To `answered` (from received or assigned; an answered item may be answered again).
    Answer {
        /// The text.
        answer: String,
        /// Published.
        public: bool,
        /// Who.
        by: String,
    },
    /// To `closed` (from any but closed).
    Close,
}

/// Apply a move to item `id` if its status allows it; the status found otherwise (409 by the
/// caller), `None` if there is no such item.
pub async fn apply(conn: &mut Conn, id: &str, m: &Move, now: i64) -> Result<std::result::Result<(), Status>> {
    let done =
        match m {
            Move::Assign { organisation_id } => {
                sqlx::query(
                    "UPDATE feedback SET status = 'assigned', organisation_id = $1, assigned_at = $2 \
                 WHERE id = $3 AND status IN ('received', 'assigned')",
                )
                .bind(organisation_id.clone())
                .bind(now)
                .bind(id.to_string())
                .execute(&mut *conn)
                .await?
            }
            Move::Answer { answer, public, by } => sqlx::query(
                "UPDATE feedback SET status = 'answered', answer = $1, answer_public = $2, answered_by = $3, \
                 answered_at = $4 WHERE id = $5 AND status IN ('received', 'assigned', 'answered')",
            )
            .bind(answer.clone())
            .bind(i64::from(*public))
            .bind(by.clone())
            .bind(now)
            .bind(id.to_string())
            .execute(&mut *conn)
            .await?,
            Move::Close => sqlx::query(
                "UPDATE feedback SET status = 'closed', closed_at = $1 WHERE id = $2 AND status <> 'closed'",
            )
            .bind(now)
            .bind(id.to_string())
            .execute(&mut *conn)
            .await?,
        };
    if done.rows_affected() == 1 {
        return Ok(Ok(()));
    }
    let found = crate::store::status_of(conn, "feedback", "feedback", id).await?;
    Ok(Err(Status::parse(&found, "status")?))
}

/// The photo `n` of item `id`.
pub async fn photo(store: &Store, id: &str, n: i64) -> Result<Option<Photo>> {
    let r = sqlx::query(
        "SELECT n, sha256, bytes, width, height FROM feedback_photos WHERE feedback_id = $1 AND n = $2",
    )
    .bind(id.to_string())
    .bind(n)
    .fetch_optional(&store.pool)
    .await?;
    r.map(|r| {
        Ok(Photo {
            n: r.try_get("n")?,
            sha256: r.try_get("sha256")?,
            bytes: r.try_get("bytes")?,
            width: r.try_get("width")?,
            height: r.try_get("height")?,
        })
    })
    .transpose()
}

/// Every item still waiting for its answer (for the SLA alarm).
pub async fn waiting(store: &Store) -> Result<Vec<Waiting>> {
    let rows = sqlx::query(
        "SELECT id, code, area, received_at, due_at FROM feedback WHERE status IN ('received', 'assigned')",
    )
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Waiting {
                id: r.try_get("id")?,
                code: r.try_get("code")?,
                area: r.try_get("area")?,
                received_at: r.try_get("received_at")?,
                due_at: r.try_get("due_at")?,
            })
        })
        .collect()
}

/// Clear the name and contact of every item received before `before` and not purged yet, and
/// delete their photo rows, in one transaction; the sha256 of each deleted photo that no
/// remaining row uses (the caller deletes those files after the commit) and the number of items.
pub async fn purge(store: &Store, before: i64, now: i64) -> Result<(usize, Vec<String>)> {
    let mut tx = store.begin_write().await?;
    let ids: Vec<String> =
        sqlx::query("SELECT id FROM feedback WHERE received_at < $1 AND purged_at IS NULL")
            .bind(before)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<std::result::Result<_, _>>()?;
    let mut shas = Vec::new();
    for id in &ids {
        let rows = sqlx::query("SELECT sha256 FROM feedback_photos WHERE feedback_id = $1")
            .bind(id.clone())
            .fetch_all(&mut *tx)
            .await?;
        for r in &rows {
            shas.push(r.try_get::<String, _>("sha256")?);
        }
        sqlx::query("DELETE FROM feedback_photos WHERE feedback_id = $1")
            .bind(id.clone())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE feedback SET name = NULL, contact = NULL, show_name = 0, purged_at = $1 WHERE id = $2",
        )
        .bind(now)
        .bind(id.clone())
        .execute(&mut *tx)
        .await?;
    }
    let mut unused = Vec::new();
    for sha in shas {
        let still = sqlx::query("SELECT 1 FROM feedback_photos WHERE sha256 = $1")
            .bind(sha.clone())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !still && !unused.contains(&sha) {
            unused.push(sha);
        }
    }
    tx.commit().await?;
    Ok((ids.len(), unused))
}

/// Every item received or answered in `[from, to)`: `(area, status, received_at, due_at,
/// answered_at)`, for the report (`domain::report::engagement` counts them).
pub async fn in_period(
    store: &Store,
    from: i64,
    to: i64,
) -> Result<Vec<crate::domain::report::engagement::FeedbackRow>> {
    let rows = sqlx::query(
        "SELECT area, status, received_at, due_at, answered_at FROM feedback WHERE (received_at >= $1 AND received_at < $2) \
         OR (answered_at >= $3 AND answered_at < $4)",
    )
    .bind(from)
    .bind(to)
    .bind(from)
    .bind(to)
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(crate::domain::report::engagement::FeedbackRow {
                area: r.try_get("area")?,
                status: Status::parse(&r.try_get::<String, _>("status")?, "status")?,
                received_at: r.try_get("received_at")?,
                due_at: r.try_get("due_at")?,
                answered_at: r.try_get("answered_at")?,
            })
        })
        .collect()
}

/// The area and status of every feedback about policy `id` (the policy page counts them).
pub async fn about_policy(store: &Store, id: &str) -> Result<Vec<(String, Status)>> {
    let rows = sqlx::query("SELECT area, status FROM feedback WHERE policy_id = $1")
        .bind(id.to_string())
        .fetch_all(&store.pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("area")?,
                Status::parse(&r.try_get::<String, _>("status")?, "status")?,
            ))
        })
        .collect()
}
